"""DHN: Zhu, Long, Wang, Cao, "Deep hashing network for efficient similarity retrieval", AAAI 2016.

Pairwise cross-entropy on tanh outputs plus the log cosh quantization loss.
See jhash/methods/dhn.py for the equations, the defaults and
where we follow or differ from the authors' code.

Run (from the repository root; the network and budget of each dataset are those of
experiments/configs/common.py, the same for every deep method):
  jhash train --config experiments/configs/dhn.py:dataset=digits,bits=32 --workdir runs/dhn-digits
  jhash train --config experiments/configs/dhn.py:dataset=mnist,bits=32 --config.data_dir=../shared/data --workdir runs/dhn-mnist
  jhash train --config experiments/configs/dhn.py:dataset=cifar10,bits=32 --config.data_dir=../shared/data --workdir runs/dhn-cifar10
Add ``cpu=true`` to the argument for the CPU-sized variant (fewer epochs). Override a
hyperparameter with e.g. ``--config.dhn.<name>=<value>``.

Expected: see experiments/results/deep_mnist.md (mnist, cpu=true budget, 16/32/64 bits).
"""

from jhash.config import set_head
from jhash.configs import common


def get_config(arg=None):
    arg = common.method_arg(arg, dataset="mnist")  # dataset, bits (32), cpu (false), head (fc)
    c = common.experiment_config("dhn", dataset=arg.dataset, bits=arg.bits, cpu=arg.cpu)  # the dataset's network and budget
    set_head(c, arg.head)
    c.dhn = {  # the hyperparameters (what each means: jhash/methods/dhn.py)
        "scale":           1.0,
        "quantization":    0.1,
        "positive_weight": "balanced",
    }
    return c
