"""DTSH: Wang, Shi, Kitani, "Deep supervised hashing with triplet labels", ACCV 2016.

Triplet likelihood with margin q/2, anchors from the batch, 50 x 450 triplets each drawn from a memory bank.
See jhash/methods/dtsh.py for the equations, the defaults and
where we follow or differ from the authors' code.

Run (from the repository root; the shared settings of each dataset are those of
jhash.config.experiment_config: the same network and budget for every method):
  jhash train --config experiments/configs/dtsh.py:dataset=digits,bits=32 --workdir runs/dtsh-digits
  jhash train --config experiments/configs/dtsh.py:dataset=mnist,bits=32 --config.data_dir=../shared/data --workdir runs/dtsh-mnist
  jhash train --config experiments/configs/dtsh.py:dataset=cifar10,bits=32 --config.data_dir=../shared/data --workdir runs/dtsh-cifar10
Add ``cpu=true`` to the argument for the CPU-sized variant (fewer epochs). Override a
hyperparameter with e.g. ``--config.dtsh.<name>=<value>``.

Expected: see experiments/results/deep_mnist.md (mnist, cpu=true budget, 16/32/64 bits).
"""
from jhash.config import method_config

get_config = method_config("dtsh")
