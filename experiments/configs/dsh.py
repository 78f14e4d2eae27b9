"""DSH: Liu, Wang, Shan, Chen, "Deep supervised hashing for fast image retrieval", CVPR 2016.

Contrastive loss with margin 2q on the real outputs plus alpha || |u| - 1 ||_1.
See jhash/methods/dsh.py for the equations, the defaults and
where we follow or differ from the authors' code.

Run (from the repository root; the shared settings of each dataset are those of
jhash.config.experiment_config: the same network and budget for every method):
  jhash train --config experiments/configs/dsh.py:dataset=digits,bits=32 --workdir runs/dsh-digits
  jhash train --config experiments/configs/dsh.py:dataset=mnist,bits=32 --config.data_dir=../shared/data --workdir runs/dsh-mnist
  jhash train --config experiments/configs/dsh.py:dataset=cifar10,bits=32 --config.data_dir=../shared/data --workdir runs/dsh-cifar10
Add ``cpu=true`` to the argument for the CPU-sized variant (fewer epochs). Override a
hyperparameter with e.g. ``--config.dsh.<name>=<value>``.

Expected: see experiments/results/deep_mnist.md (mnist, cpu=true budget, 16/32/64 bits).
"""
from jhash.config import method_config

get_config = method_config("dsh")
