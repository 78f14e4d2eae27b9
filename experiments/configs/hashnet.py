"""hashnet: Cao, Long, Wang, Yu, "HashNet: deep learning to hash by continuation", ICCV 2017.

Weighted pairwise likelihood on tanh(beta_t z), beta_t raised every 200 steps.
See jhash/methods/hashnet.py for the equations, the defaults and
where we follow or differ from the authors' code.

Run (from the repository root; the network and budget of each dataset are those of
experiments/configs/common.py, the same for every deep method):
  jhash train --config experiments/configs/hashnet.py:dataset=digits,bits=32 --workdir runs/hashnet-digits
  jhash train --config experiments/configs/hashnet.py:dataset=mnist,bits=32 --config.data_dir=../shared/data --workdir runs/hashnet-mnist
  jhash train --config experiments/configs/hashnet.py:dataset=cifar10,bits=32 --config.data_dir=../shared/data --workdir runs/hashnet-cifar10
Add ``cpu=true`` to the argument for the CPU-sized variant (fewer epochs). Override a
hyperparameter with e.g. ``--config.hashnet.<name>=<value>``.

Expected: see experiments/results/deep_mnist.md (mnist, cpu=true budget, 16/32/64 bits).
"""

from jhash.config import set_head
from jhash.configs import common


def get_config(arg=None):
    arg = common.method_arg(arg, dataset="mnist")  # dataset, bits (32), cpu (false), head (fc)
    c = common.experiment_config("hashnet", dataset=arg.dataset, bits=arg.bits, cpu=arg.cpu)  # the dataset's network and budget
    set_head(c, arg.head)
    c.hashnet = {  # the hyperparameters (what each means: jhash/methods/hashnet.py)
        "init_scale":      1.0,
        "gamma":           0.005,
        "power":           0.5,
        "step_size":       200,
        "alpha":           0.0,
        "positive_weight": "balanced",
    }
    return c
