"""FTDSH: Zhuang, Lin, Shen, Reid, "Fast training of triplet-based deep binary embedding networks", CVPR 2016.

Groups of 8 bits: the codes of the training set inferred bit by bit from a triplet hinge
loss cast as a BQP (inside the jitted step), then the network fitted to them as binary
classifiers, group after group. See jhash/methods/ftdsh.py for the details and where we differ.

Run (from the repository root):
  jhash train --config experiments/configs/ftdsh.py:dataset=digits,bits=32 --workdir runs/ftdsh-digits
  jhash train --config experiments/configs/ftdsh.py:dataset=mnist,bits=32 --config.data_dir=../shared/data --workdir runs/ftdsh-mnist
  jhash train --config experiments/configs/ftdsh.py:dataset=cifar10,bits=32 --config.data_dir=../shared/data --workdir runs/ftdsh-cifar10
Add ``cpu=true`` to the argument for the CPU-sized variant (fewer epochs).

Expected (experiments/results/discrete_mnist.md, mnist, cpu=true, 3 seeds): mAP@ALL 0.964 /
0.964 / 0.966 at 16 / 32 / 64 bits.
"""

from jhash.config import set_head
from jhash.configs import common


def get_config(arg=None):
    arg = common.method_arg(arg, dataset="mnist")  # dataset, bits (32), cpu (false), head (fc)
    c = common.experiment_config("ftdsh", dataset=arg.dataset, bits=arg.bits, cpu=arg.cpu)  # the dataset's network and budget
    set_head(c, arg.head)
    c.ftdsh = {  # the hyperparameters (what each means: jhash/methods/ftdsh.py)
        "bits_per_group":     8,
        "triplets_per_point": 50,
        "restarts":           2,
        "seed":               0,
    }
    return c
