"""DCH: Cao, Long, Liu, Wang, "Deep Cauchy hashing for Hamming space retrieval", CVPR 2018.

Cauchy cross-entropy and Cauchy quantization loss (gamma = 20): codes concentrated within Hamming radius 2.
See jhash/methods/dch.py for the equations, the defaults and
where we follow or differ from the authors' code.

Run (from the repository root; the network and budget of each dataset are those of
experiments/configs/common.py, the same for every deep method):
  jhash train --config experiments/configs/dch.py:dataset=digits,bits=32 --workdir runs/dch-digits
  jhash train --config experiments/configs/dch.py:dataset=mnist,bits=32 --config.data_dir=../shared/data --workdir runs/dch-mnist
  jhash train --config experiments/configs/dch.py:dataset=cifar10,bits=32 --config.data_dir=../shared/data --workdir runs/dch-cifar10
Add ``cpu=true`` to the argument for the CPU-sized variant (fewer epochs). Override a
hyperparameter with e.g. ``--config.dch.<name>=<value>``.

Expected: see experiments/results/deep_mnist.md (mnist, cpu=true budget, 16/32/64 bits).
"""

from jhash.config import set_head
from jhash.configs import common


def get_config(arg=None):
    arg = common.method_arg(arg, dataset="mnist")  # dataset, bits (32), cpu (false), head (fc)
    c = common.experiment_config("dch", dataset=arg.dataset, bits=arg.bits, cpu=arg.cpu)  # the dataset's network and budget
    set_head(c, arg.head)
    c.dch = {  # the hyperparameters (what each means: jhash/methods/dch.py)
        "gamma":           20.0,
        "quantization":    0.1,
        "positive_weight": "balanced",
    }
    return c
