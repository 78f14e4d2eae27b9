"""BDNN: Do, Doan, Cheung, "Learning to hash with binary deep neural network", ECCV 2016 (supervised SH-BDNN).

Binary, independence, balance and KSH-style similarity terms, alternating B = sign(H).
See jhash/methods/bdnn.py for the equations, the defaults and
where we follow or differ from the authors' code.

Run (from the repository root; the network and budget of each dataset are those of
experiments/configs/common.py, the same for every deep method):
  jhash train --config experiments/configs/bdnn.py:dataset=digits,bits=32 --workdir runs/bdnn-digits
  jhash train --config experiments/configs/bdnn.py:dataset=mnist,bits=32 --config.data_dir=../shared/data --workdir runs/bdnn-mnist
  jhash train --config experiments/configs/bdnn.py:dataset=cifar10,bits=32 --config.data_dir=../shared/data --workdir runs/bdnn-cifar10
Add ``cpu=true`` to the argument for the CPU-sized variant (fewer epochs). Override a
hyperparameter with e.g. ``--config.bdnn.<name>=<value>``.

Expected: see experiments/results/deep_mnist.md (mnist, cpu=true budget, 16/32/64 bits).
"""

from jhash.config import set_head
from jhash.configs import common


def get_config(arg=None):
    arg = common.method_arg(arg, dataset="mnist")  # dataset, bits (32), cpu (false), head (fc)
    c = common.experiment_config("bdnn", dataset=arg.dataset, bits=arg.bits, cpu=arg.cpu)  # the dataset's network and budget
    set_head(c, arg.head)
    c.bdnn = {  # the hyperparameters (what each means: jhash/methods/bdnn.py)
        "binary":       0.05,
        "independence": 0.01,
        "balance":      5e-07,
        "similarity":   0.01,
    }
    return c
