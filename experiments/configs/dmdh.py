"""DMDH: Chen, Yuan, Lu, Tian, Zhou, "Deep hashing via discrepancy minimization", CVPR 2018.

Taylor-expansion surrogate of the discrete pairwise loss with a growing discrepancy weight (our reconstruction).
See jhash/methods/dmdh.py for the equations, the defaults and
where we follow or differ from the authors' code.

Run (from the repository root; the network and budget of each dataset are those of
experiments/configs/common.py, the same for every deep method):
  jhash train --config experiments/configs/dmdh.py:dataset=digits,bits=32 --workdir runs/dmdh-digits
  jhash train --config experiments/configs/dmdh.py:dataset=mnist,bits=32 --config.data_dir=../shared/data --workdir runs/dmdh-mnist
  jhash train --config experiments/configs/dmdh.py:dataset=cifar10,bits=32 --config.data_dir=../shared/data --workdir runs/dmdh-cifar10
Add ``cpu=true`` to the argument for the CPU-sized variant (fewer epochs). Override a
hyperparameter with e.g. ``--config.dmdh.<name>=<value>``.

Expected: see experiments/results/deep_mnist.md (mnist, cpu=true budget, 16/32/64 bits).
"""

from jhash.config import set_head
from jhash.configs import common


def get_config(arg=None):
    arg = common.method_arg(arg, dataset="mnist")  # dataset, bits (32), cpu (false), head (fc)
    c = common.experiment_config("dmdh", dataset=arg.dataset, bits=arg.bits, cpu=arg.cpu)  # the dataset's network and budget
    set_head(c, arg.head)
    c.dmdh = {  # the hyperparameters (what each means: jhash/methods/dmdh.py)
        "lambda0":   0.1,
        "gamma":     0.005,
        "power":     0.5,
        "step_size": 200,
    }
    return c
