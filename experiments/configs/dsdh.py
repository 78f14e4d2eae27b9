"""DSDH: Li, Sun, He, Tan, "Deep supervised discrete hashing", NIPS 2017.

Pairwise likelihood plus a classifier on the binary codes of the whole training set, whose
codes and classifier are updated once an epoch by DCC and ridge regression inside the
training step. See jhash/methods/dsdh.py for the defaults and their source.

Run (from the repository root; the network and budget of each dataset are those of
experiments/configs/common.py, the same for every deep method):
  jhash train --config experiments/configs/dsdh.py:dataset=digits,bits=32 --workdir runs/dsdh-digits
  jhash train --config experiments/configs/dsdh.py:dataset=mnist,bits=32 --config.data_dir=../shared/data --workdir runs/dsdh-mnist
  jhash train --config experiments/configs/dsdh.py:dataset=cifar10,bits=32 --config.data_dir=../shared/data --workdir runs/dsdh-cifar10
Add ``cpu=true`` to the argument for the CPU-sized variant (fewer epochs). Override a
hyperparameter with e.g. ``--config.dsdh.<name>=<value>``.

Expected: see experiments/results/deep_mnist.md (mnist, cpu=true budget, 16/32/64 bits).
"""

from jhash.config import set_head
from jhash.configs import common


def get_config(arg=None):
    arg = common.method_arg(arg, dataset="mnist")  # dataset, bits (32), cpu (false), head (fc)
    c = common.experiment_config("dsdh", dataset=arg.dataset, bits=arg.bits, cpu=arg.cpu)  # the dataset's network and budget
    set_head(c, arg.head)
    c.dsdh = {  # the hyperparameters (what each means: jhash/methods/dsdh.py)
        "mu":         1.0,
        "nu":         0.1,
        "eta":        55.0,
        "dcc_sweeps": 10,
    }
    return c
