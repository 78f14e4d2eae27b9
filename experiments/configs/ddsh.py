"""DDSH: Jiang, Cui, Li, "Deep discrete supervised hashing", IEEE TIP 2018.

Column sampling: the codes of a sample of the training set are learned by bitwise BQP
steps inside the training step, the rest come from the network, which is fitted to them.
See jhash/methods/ddsh.py for where we follow the authors' code and where we differ.

Run (from the repository root; the network and budget of each dataset are those of
experiments/configs/common.py, the same for every deep method):
  jhash train --config experiments/configs/ddsh.py:dataset=digits,bits=32 --workdir runs/ddsh-digits
  jhash train --config experiments/configs/ddsh.py:dataset=mnist,bits=32 --config.data_dir=../shared/data --workdir runs/ddsh-mnist
  jhash train --config experiments/configs/ddsh.py:dataset=cifar10,bits=32 --config.data_dir=../shared/data --workdir runs/ddsh-cifar10
Add ``cpu=true`` to the argument for the CPU-sized variant (fewer epochs). Override a
hyperparameter with e.g. ``--config.ddsh.<name>=<value>``.

Expected: see experiments/results/deep_mnist.md (mnist, cpu=true budget, 16/32/64 bits).
"""

from jhash.config import set_head
from jhash.configs import common


def get_config(arg=None):
    arg = common.method_arg(arg, dataset="mnist")  # dataset, bits (32), cpu (false), head (fc)
    c = common.experiment_config("ddsh", dataset=arg.dataset, bits=arg.bits, cpu=arg.cpu)  # the dataset's network and budget
    set_head(c, arg.head)
    c.ddsh = {  # the hyperparameters (what each means: jhash/methods/ddsh.py)
        "num_samples":         1000,
        "update_every_epochs": 1,
        "solver":              "partition+local_search",
        "residual":            "others",
        "restarts":            2,
        "sweeps":              1,
        "seed":                0,
    }
    return c
