"""DSH: Liu, Wang, Shan, Chen, "Deep supervised hashing for fast image retrieval", CVPR 2016.

Contrastive loss with margin 2q on the real outputs plus alpha || |u| - 1 ||_1.
See jhash/methods/dsh.py for the equations, the defaults and
where we follow or differ from the authors' code.

Run (from the repository root; the network and budget of each dataset are those of
experiments/configs/common.py, the same for every deep method):
  jhash train --config experiments/configs/dsh.py:dataset=digits,bits=32 --workdir runs/dsh-digits
  jhash train --config experiments/configs/dsh.py:dataset=mnist,bits=32 --config.data_dir=../shared/data --workdir runs/dsh-mnist
  jhash train --config experiments/configs/dsh.py:dataset=cifar10,bits=32 --config.data_dir=../shared/data --workdir runs/dsh-cifar10
Add ``cpu=true`` to the argument for the CPU-sized variant (fewer epochs). Override a
hyperparameter with e.g. ``--config.dsh.<name>=<value>``.

Expected: see experiments/results/deep_mnist.md (mnist, cpu=true budget, 16/32/64 bits).
"""

from jhash.config import set_head
from jhash.configs import common


def get_config(arg=None):
    arg = common.method_arg(arg, dataset="mnist")  # dataset, bits (32), cpu (false), head (fc)
    c = common.experiment_config("dsh", dataset=arg.dataset, bits=arg.bits, cpu=arg.cpu)  # the dataset's network and budget
    set_head(c, arg.head)
    c.dsh = {  # the hyperparameters (what each means: jhash/methods/dsh.py)
        "alpha":  0.01,
        "margin": 0.0,
    }
    return c
