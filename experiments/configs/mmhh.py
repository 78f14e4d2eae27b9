"""MMHH: Kang, Cao, Long, Wang, Yu, "Maximum-margin Hamming hashing", ICCV 2019.

Margin t-distribution loss (gamma = 10, margin 2) with the authors' semi-batch memory after 300 steps.
See jhash/methods/mmhh.py for the equations, the defaults and
where we follow or differ from the authors' code.

Run (from the repository root; the network and budget of each dataset are those of
experiments/configs/common.py, the same for every deep method):
  jhash train --config experiments/configs/mmhh.py:dataset=digits,bits=32 --workdir runs/mmhh-digits
  jhash train --config experiments/configs/mmhh.py:dataset=mnist,bits=32 --config.data_dir=../shared/data --workdir runs/mmhh-mnist
  jhash train --config experiments/configs/mmhh.py:dataset=cifar10,bits=32 --config.data_dir=../shared/data --workdir runs/mmhh-cifar10
Add ``cpu=true`` to the argument for the CPU-sized variant (fewer epochs). Override a
hyperparameter with e.g. ``--config.mmhh.<name>=<value>``.

Expected: see experiments/results/deep_mnist.md (mnist, cpu=true budget, 16/32/64 bits).
"""

from jhash.config import set_head
from jhash.configs import common


def get_config(arg=None):
    arg = common.method_arg(arg, dataset="mnist")  # dataset, bits (32), cpu (false), head (fc)
    c = common.experiment_config("mmhh", dataset=arg.dataset, bits=arg.bits, cpu=arg.cpu)  # the dataset's network and budget
    set_head(c, arg.head)
    c.mmhh = {  # the hyperparameters (what each means: jhash/methods/mmhh.py)
        "gamma":             10.0,
        "margin":            2.0,
        "inside_similar":    0.5,
        "inside_dissimilar": 0.8,
        "positive_weight":   1.0,
        "quantization":      0.001,
        "memory_after":      300,
    }
    return c
