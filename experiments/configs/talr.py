"""TALR: He, Cakir, Bargal, Sclaroff, "Hashing as tie-aware learning to rank", CVPR 2018.

Relaxed tie-aware AP (objective=ap, the default) or NDCG (objective=ndcg) by soft histogram binning.
See jhash/methods/talr.py for the equations, the defaults and
where we follow or differ from the authors' code.

Run (from the repository root; the network and budget of each dataset are those of
experiments/configs/common.py, the same for every deep method):
  jhash train --config experiments/configs/talr.py:dataset=digits,bits=32 --workdir runs/talr-digits
  jhash train --config experiments/configs/talr.py:dataset=mnist,bits=32 --config.data_dir=../shared/data --workdir runs/talr-mnist
  jhash train --config experiments/configs/talr.py:dataset=cifar10,bits=32 --config.data_dir=../shared/data --workdir runs/talr-cifar10
Add ``cpu=true`` to the argument for the CPU-sized variant (fewer epochs). Override a
hyperparameter with e.g. ``--config.talr.<name>=<value>``.

Expected: see experiments/results/deep_mnist.md (mnist, cpu=true budget, 16/32/64 bits).
"""

from jhash.config import set_head
from jhash.configs import common


def get_config(arg=None):
    arg = common.method_arg(arg, dataset="mnist")  # dataset, bits (32), cpu (false), head (fc)
    c = common.experiment_config("talr", dataset=arg.dataset, bits=arg.bits, cpu=arg.cpu)  # the dataset's network and budget
    set_head(c, arg.head)
    c.talr = {  # the hyperparameters (what each means: jhash/methods/talr.py)
        "objective": "ap",
        "gamma":     1.0,
        "num_bins":  0,
    }
    return c
