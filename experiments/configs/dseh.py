"""DSEH: Li, Li, Deng, Liu, Gao, "Deep joint semantic-embedding hashing", IJCAI 2018.

A label network learns semantic codes first; the image network is fitted to them.
See jhash/methods/dseh.py for the equations, the defaults and
where we follow or differ from the authors' code.

Run (from the repository root; the network and budget of each dataset are those of
experiments/configs/common.py, the same for every deep method):
  jhash train --config experiments/configs/dseh.py:dataset=digits,bits=32 --workdir runs/dseh-digits
  jhash train --config experiments/configs/dseh.py:dataset=mnist,bits=32 --config.data_dir=../shared/data --workdir runs/dseh-mnist
  jhash train --config experiments/configs/dseh.py:dataset=cifar10,bits=32 --config.data_dir=../shared/data --workdir runs/dseh-cifar10
Add ``cpu=true`` to the argument for the CPU-sized variant (fewer epochs). Override a
hyperparameter with e.g. ``--config.dseh.<name>=<value>``.

Expected: see experiments/results/deep_mnist.md (mnist, cpu=true budget, 16/32/64 bits).
"""

from jhash.config import set_head
from jhash.configs import common


def get_config(arg=None):
    arg = common.method_arg(arg, dataset="mnist")  # dataset, bits (32), cpu (false), head (fc)
    c = common.experiment_config("dseh", dataset=arg.dataset, bits=arg.bits, cpu=arg.cpu)  # the dataset's network and budget
    set_head(c, arg.head)
    c.dseh = {  # the hyperparameters (what each means: jhash/methods/dseh.py)
        "label_epochs":     10,
        "label_batch":      32,
        "label_lr":         0.001,
        "similarity_scale": 0.0,
        "label_weight":     0.0,
        "feature_weight":   -1.0,
        "seed":             0,
    }
    return c
