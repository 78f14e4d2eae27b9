"""MMHH: Kang, Cao, Long, Wang, Yu, "Maximum-margin Hamming hashing", ICCV 2019.

Margin t-distribution loss (gamma = 10, margin 2) with the authors' semi-batch memory after 300 steps.
See jhash/methods/mmhh.py for the equations, the defaults and
where we follow or differ from the authors' code.

Run (from the repository root; the shared settings of each dataset are those of
jhash.config.experiment_config: the same network and budget for every method):
  jhash train --config experiments/configs/mmhh.py:dataset=digits,bits=32 --workdir runs/mmhh-digits
  jhash train --config experiments/configs/mmhh.py:dataset=mnist,bits=32 --config.data_dir=../shared/data --workdir runs/mmhh-mnist
  jhash train --config experiments/configs/mmhh.py:dataset=cifar10,bits=32 --config.data_dir=../shared/data --workdir runs/mmhh-cifar10
Add ``cpu=true`` to the argument for the CPU-sized variant (fewer epochs). Override a
hyperparameter with e.g. ``--config.mmhh.<name>=<value>``.

Expected: see experiments/results/deep_mnist.md (mnist, cpu=true budget, 16/32/64 bits).
"""
from jhash.config import method_config

get_config = method_config("mmhh")
