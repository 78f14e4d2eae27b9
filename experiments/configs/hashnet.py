"""hashnet: Cao, Long, Wang, Yu, "HashNet: deep learning to hash by continuation", ICCV 2017.

Weighted pairwise likelihood on tanh(beta_t z), beta_t raised every 200 steps.
See jhash/methods/hashnet.py for the equations, the defaults and
where we follow or differ from the authors' code.

Run (from the repository root; the shared settings of each dataset are those of
jhash.config.experiment_config: the same network and budget for every method):
  jhash train --config experiments/configs/hashnet.py:dataset=digits,bits=32 --workdir runs/hashnet-digits
  jhash train --config experiments/configs/hashnet.py:dataset=mnist,bits=32 --config.data_dir=../shared/data --workdir runs/hashnet-mnist
  jhash train --config experiments/configs/hashnet.py:dataset=cifar10,bits=32 --config.data_dir=../shared/data --workdir runs/hashnet-cifar10
Add ``cpu=true`` to the argument for the CPU-sized variant (fewer epochs). Override a
hyperparameter with e.g. ``--config.hashnet.<name>=<value>``.

Expected: see experiments/results/deep_mnist.md (mnist, cpu=true budget, 16/32/64 bits).
"""
from jhash.config import method_config

get_config = method_config("hashnet")
