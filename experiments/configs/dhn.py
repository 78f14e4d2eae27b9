"""DHN: Zhu, Long, Wang, Cao, "Deep hashing network for efficient similarity retrieval", AAAI 2016.

Pairwise cross-entropy on tanh outputs plus the log cosh quantization loss.
See jhash/methods/dhn.py for the equations, the defaults and
where we follow or differ from the authors' code.

Run (from the repository root; the shared settings of each dataset are those of
jhash.config.experiment_config: the same network and budget for every method):
  jhash train --config experiments/configs/dhn.py:dataset=digits,bits=32 --workdir runs/dhn-digits
  jhash train --config experiments/configs/dhn.py:dataset=mnist,bits=32 --config.data_dir=../shared/data --workdir runs/dhn-mnist
  jhash train --config experiments/configs/dhn.py:dataset=cifar10,bits=32 --config.data_dir=../shared/data --workdir runs/dhn-cifar10
Add ``cpu=true`` to the argument for the CPU-sized variant (fewer epochs). Override a
hyperparameter with e.g. ``--config.dhn.<name>=<value>``.

Expected: see experiments/results/deep_mnist.md (mnist, cpu=true budget, 16/32/64 bits).
"""
from jhash.config import method_config

get_config = method_config("dhn")
