"""greedyhash: Su, Zhang, Zhu, Tian, "Greedy hash", NeurIPS 2018.

sign forward with a straight-through gradient, a classifier on the binary codes, and the cubic penalty.
See jhash/methods/greedyhash.py for the equations, the defaults and
where we follow or differ from the authors' code.

Run (from the repository root; the network and budget of each dataset are those of
experiments/configs/common.py, the same for every deep method):
  jhash train --config experiments/configs/greedyhash.py:dataset=digits,bits=32 --workdir runs/greedyhash-digits
  jhash train --config experiments/configs/greedyhash.py:dataset=mnist,bits=32 --config.data_dir=../shared/data --workdir runs/greedyhash-mnist
  jhash train --config experiments/configs/greedyhash.py:dataset=cifar10,bits=32 --config.data_dir=../shared/data --workdir runs/greedyhash-cifar10
Add ``cpu=true`` to the argument for the CPU-sized variant (fewer epochs). Override a
hyperparameter with e.g. ``--config.greedyhash.<name>=<value>``.

Expected: see experiments/results/deep_mnist.md (mnist, cpu=true budget, 16/32/64 bits).
"""

from jhash.config import set_head
from jhash.configs import common


def get_config(arg=None):
    arg = common.method_arg(arg, dataset="mnist")  # dataset, bits (32), cpu (false), head (fc)
    c = common.experiment_config("greedyhash", dataset=arg.dataset, bits=arg.bits, cpu=arg.cpu)  # the dataset's network and budget
    set_head(c, arg.head)
    c.greedyhash = {  # the hyperparameters (what each means: jhash/methods/greedyhash.py)
        "alpha": 0.1,
    }
    return c
