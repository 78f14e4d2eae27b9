"""HBMP: Cakir, He, Sclaroff, "Hashing with binary matrix pursuit", ECCV 2018.

Two stages: target codes of the distinct labels by greedy binary matrix pursuit (inside the
jitted step, once), then the network fitted to them with a per-bit hinge loss. See
jhash/methods/hbmp.py for where we follow the authors' code and where we differ.

Run (from the repository root):
  jhash train --config experiments/configs/hbmp.py:dataset=digits,bits=32 --workdir runs/hbmp-digits
  jhash train --config experiments/configs/hbmp.py:dataset=mnist,bits=32 --config.data_dir=../shared/data --workdir runs/hbmp-mnist
  jhash train --config experiments/configs/hbmp.py:dataset=cifar10,bits=32 --config.data_dir=../shared/data --workdir runs/hbmp-cifar10
Add ``cpu=true`` to the argument for the CPU-sized variant (fewer epochs). Override a
hyperparameter with e.g. ``--config.hbmp.weighted=true``.

Expected (experiments/results/discrete_mnist.md, mnist, cpu=true, 3 seeds): mAP@ALL 0.967 /
0.972 / 0.976 at 16 / 32 / 64 bits.
"""

from jhash.config import set_head
from jhash.configs import common


def get_config(arg=None):
    arg = common.method_arg(arg, dataset="mnist")  # dataset, bits (32), cpu (false), head (fc)
    c = common.experiment_config("hbmp", dataset=arg.dataset, bits=arg.bits, cpu=arg.cpu)  # the dataset's network and budget
    set_head(c, arg.head)
    c.hbmp = {  # the hyperparameters (what each means: jhash/methods/hbmp.py)
        "weighted": False,
        "regress":  True,
        "seed":     0,
    }
    return c
