"""DTSH: Wang, Shi, Kitani, "Deep supervised hashing with triplet labels", ACCV 2016.

Triplet likelihood with margin q/2, anchors from the batch, 50 x 450 triplets each drawn from a memory bank.
See jhash/methods/dtsh.py for the equations, the defaults and
where we follow or differ from the authors' code.

Run (from the repository root; the network and budget of each dataset are those of
experiments/configs/common.py, the same for every deep method):
  jhash train --config experiments/configs/dtsh.py:dataset=digits,bits=32 --workdir runs/dtsh-digits
  jhash train --config experiments/configs/dtsh.py:dataset=mnist,bits=32 --config.data_dir=../shared/data --workdir runs/dtsh-mnist
  jhash train --config experiments/configs/dtsh.py:dataset=cifar10,bits=32 --config.data_dir=../shared/data --workdir runs/dtsh-cifar10
Add ``cpu=true`` to the argument for the CPU-sized variant (fewer epochs). Override a
hyperparameter with e.g. ``--config.dtsh.<name>=<value>``.

Expected: see experiments/results/deep_mnist.md (mnist, cpu=true budget, 16/32/64 bits).
"""

from jhash.config import set_head
from jhash.configs import common


def get_config(arg=None):
    arg = common.method_arg(arg, dataset="mnist")  # dataset, bits (32), cpu (false), head (fc)
    c = common.experiment_config("dtsh", dataset=arg.dataset, bits=arg.bits, cpu=arg.cpu)  # the dataset's network and budget
    set_head(c, arg.head)
    c.dtsh = {  # the hyperparameters (what each means: jhash/methods/dtsh.py)
        "margin":        0.0,
        "eta":           100.0,
        "num_positives": 50,
        "num_negatives": 450,
    }
    return c
