"""greedyhash: Su, Zhang, Zhu, Tian, "Greedy hash", NeurIPS 2018.

sign forward with a straight-through gradient, a classifier on the binary codes, and the cubic penalty.
See jhash/methods/greedyhash.py for the equations, the defaults and
where we follow or differ from the authors' code.

Run (from the repository root; the shared settings of each dataset are those of
jhash.config.experiment_config: the same network and budget for every method):
  jhash train --config experiments/configs/greedyhash.py:dataset=digits,bits=32 --workdir runs/greedyhash-digits
  jhash train --config experiments/configs/greedyhash.py:dataset=mnist,bits=32 --config.data_dir=../shared/data --workdir runs/greedyhash-mnist
  jhash train --config experiments/configs/greedyhash.py:dataset=cifar10,bits=32 --config.data_dir=../shared/data --workdir runs/greedyhash-cifar10
Add ``cpu=true`` to the argument for the CPU-sized variant (fewer epochs). Override a
hyperparameter with e.g. ``--config.greedyhash.<name>=<value>``.

Expected: see experiments/results/deep_mnist.md (mnist, cpu=true budget, 16/32/64 bits).
"""
from jhash.config import method_config

get_config = method_config("greedyhash")
