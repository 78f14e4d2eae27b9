"""DAGH: Chen, Lai, Ding, Lin, Wong, "Deep supervised hashing with anchor graph", ICCV 2019.

Codes B for the whole training set, optimised by SDH's discrete cyclic coordinate descent
against the labels and an anchor graph on the network's outputs, inside the training step;
the network is fitted to B. See jhash/methods/dagh.py for what follows the method's public
demo code and what is our reconstruction.

Run (from the repository root; the network and budget of each dataset are those of
experiments/configs/common.py, the same for every deep method):
  jhash train --config experiments/configs/dagh.py:dataset=digits,bits=32 --workdir runs/dagh-digits
  jhash train --config experiments/configs/dagh.py:dataset=mnist,bits=32 --config.data_dir=../shared/data --workdir runs/dagh-mnist
  jhash train --config experiments/configs/dagh.py:dataset=cifar10,bits=32 --config.data_dir=../shared/data --workdir runs/dagh-cifar10
Add ``cpu=true`` to the argument for the CPU-sized variant (fewer epochs). Override a
hyperparameter with e.g. ``--config.dagh.<name>=<value>``.

Expected: see experiments/results/deep_mnist.md (mnist, cpu=true budget, 16/32/64 bits).
"""

from jhash.config import set_head
from jhash.configs import common


def get_config(arg=None):
    arg = common.method_arg(arg, dataset="mnist")  # dataset, bits (32), cpu (false), head (fc)
    c = common.experiment_config("dagh", dataset=arg.dataset, bits=arg.bits, cpu=arg.cpu)  # the dataset's network and budget
    set_head(c, arg.head)
    c.dagh = {  # the hyperparameters (what each means: jhash/methods/dagh.py)
        "anchors":             300,
        "nearest":             2,
        "nu":                  0.001,
        "ridge":               1.0,
        "graph":               1.0,
        "balance":             0.5,
        "kmeans_iters":        10,
        "dcc_sweeps":          3,
        "update_every_epochs": 1,
        "seed":                0,
    }
    return c
