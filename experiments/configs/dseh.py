"""DSEH: Li, Li, Deng, Liu, Gao, "Deep joint semantic-embedding hashing", IJCAI 2018.

A label network learns semantic codes first; the image network is fitted to them.
See jhash/methods/dseh.py for the equations, the defaults and
where we follow or differ from the authors' code.

Run (from the repository root; the shared settings of each dataset are those of
jhash.config.experiment_config: the same network and budget for every method):
  jhash train --config experiments/configs/dseh.py:dataset=digits,bits=32 --workdir runs/dseh-digits
  jhash train --config experiments/configs/dseh.py:dataset=mnist,bits=32 --config.data_dir=../shared/data --workdir runs/dseh-mnist
  jhash train --config experiments/configs/dseh.py:dataset=cifar10,bits=32 --config.data_dir=../shared/data --workdir runs/dseh-cifar10
Add ``cpu=true`` to the argument for the CPU-sized variant (fewer epochs). Override a
hyperparameter with e.g. ``--config.dseh.<name>=<value>``.

Expected: see experiments/results/deep_mnist.md (mnist, cpu=true budget, 16/32/64 bits).
"""
from jhash.config import method_config

get_config = method_config("dseh")
