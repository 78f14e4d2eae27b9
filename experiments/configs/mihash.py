"""mihash: Cakir, He, Bargal, Sclaroff, "MIHash: online hashing with mutual information", ICCV 2017.

Mutual information between relaxed Hamming distances and neighbour labels, by soft histogram binning.
See jhash/methods/mihash.py for the equations, the defaults and
where we follow or differ from the authors' code.

Run (from the repository root; the network and budget of each dataset are those of
experiments/configs/common.py, the same for every deep method):
  jhash train --config experiments/configs/mihash.py:dataset=digits,bits=32 --workdir runs/mihash-digits
  jhash train --config experiments/configs/mihash.py:dataset=mnist,bits=32 --config.data_dir=../shared/data --workdir runs/mihash-mnist
  jhash train --config experiments/configs/mihash.py:dataset=cifar10,bits=32 --config.data_dir=../shared/data --workdir runs/mihash-cifar10
Add ``cpu=true`` to the argument for the CPU-sized variant (fewer epochs). Override a
hyperparameter with e.g. ``--config.mihash.<name>=<value>``.

Expected: see experiments/results/deep_mnist.md (mnist, cpu=true budget, 16/32/64 bits).
"""

from jhash.config import set_head
from jhash.configs import common


def get_config(arg=None):
    arg = common.method_arg(arg, dataset="mnist")  # dataset, bits (32), cpu (false), head (fc)
    c = common.experiment_config("mihash", dataset=arg.dataset, bits=arg.bits, cpu=arg.cpu)  # the dataset's network and budget
    set_head(c, arg.head)
    c.mihash = {  # the hyperparameters (what each means: jhash/methods/mihash.py)
        "steepness": 1.0,
        "num_bins":  0,
    }
    return c
