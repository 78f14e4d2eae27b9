"""DSRH: Zhao, Huang, Wang, Tan, "Deep semantic ranking based hashing for multi-label image retrieval", CVPR 2015.

Gain-weighted multilevel ranking hinge plus a bit-balance term (our reconstruction of the constants).
See jhash/methods/dsrh.py for the equations, the defaults and
where we follow or differ from the authors' code.

Run (from the repository root; the network and budget of each dataset are those of
experiments/configs/common.py, the same for every deep method):
  jhash train --config experiments/configs/dsrh.py:dataset=digits,bits=32 --workdir runs/dsrh-digits
  jhash train --config experiments/configs/dsrh.py:dataset=mnist,bits=32 --config.data_dir=../shared/data --workdir runs/dsrh-mnist
  jhash train --config experiments/configs/dsrh.py:dataset=cifar10,bits=32 --config.data_dir=../shared/data --workdir runs/dsrh-cifar10
Add ``cpu=true`` to the argument for the CPU-sized variant (fewer epochs). Override a
hyperparameter with e.g. ``--config.dsrh.<name>=<value>``.

Expected: see experiments/results/deep_mnist.md (mnist, cpu=true budget, 16/32/64 bits).
"""

from jhash.config import set_head
from jhash.configs import common


def get_config(arg=None):
    arg = common.method_arg(arg, dataset="mnist")  # dataset, bits (32), cpu (false), head (fc)
    c = common.experiment_config("dsrh", dataset=arg.dataset, bits=arg.bits, cpu=arg.cpu)  # the dataset's network and budget
    set_head(c, arg.head)
    c.dsrh = {  # the hyperparameters (what each means: jhash/methods/dsrh.py)
        "margin":  1.0,
        "balance": 1.0,
    }
    return c
