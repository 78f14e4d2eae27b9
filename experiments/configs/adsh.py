"""ADSH: Jiang & Li, "Asymmetric deep supervised hashing", AAAI 2018.

The network hashes queries; the database (training set) codes V are learned directly by
the closed-form bitwise V-step inside the training step, and used for retrieval. The
budget is ADSH's own: ``outer_iterations`` x ``inner_epochs`` epochs over samples of
``num_samples`` points (the dataset's num_epochs is not used). See jhash/methods/adsh.py.

Run (from the repository root):
  jhash train --config experiments/configs/adsh.py:dataset=digits,bits=32 --workdir runs/adsh-digits
  jhash train --config experiments/configs/adsh.py:dataset=mnist,bits=32 --config.data_dir=../shared/data --workdir runs/adsh-mnist
  jhash train --config experiments/configs/adsh.py:dataset=cifar10,bits=32 --config.data_dir=../shared/data --workdir runs/adsh-cifar10
Add ``cpu=true`` to the argument for the CPU-sized variant (fewer epochs).
Override a hyperparameter with e.g. ``--config.adsh.gamma=100``.
"""

from jhash.config import set_head
from jhash.configs import common


def get_config(arg=None):
    arg = common.method_arg(arg, dataset="mnist")  # dataset, bits (32), cpu (false), head (fc)
    c = common.experiment_config("adsh", dataset=arg.dataset, bits=arg.bits, cpu=arg.cpu)  # the dataset's network and budget
    set_head(c, arg.head)
    c.adsh = {  # the hyperparameters (what each means: jhash/methods/adsh.py)
        "gamma":            200.0,
        "num_samples":      2000,
        "inner_epochs":     3,
        "outer_iterations": 0,
        "use_sign_u":       False,
        "database":         "whole",
    }
    return c
