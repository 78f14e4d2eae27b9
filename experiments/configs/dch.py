"""DCH: Cao, Long, Liu, Wang, "Deep Cauchy hashing for Hamming space retrieval", CVPR 2018.

Cauchy cross-entropy and Cauchy quantization loss (gamma = 20): codes concentrated within Hamming radius 2.
See jhash/methods/dch.py for the equations, the defaults and
where we follow or differ from the authors' code.

Run (from the repository root; the shared settings of each dataset are those of
jhash.config.experiment_config: the same network and budget for every method):
  jhash train --config experiments/configs/dch.py:dataset=digits,bits=32 --workdir runs/dch-digits
  jhash train --config experiments/configs/dch.py:dataset=mnist,bits=32 --config.data_dir=../shared/data --workdir runs/dch-mnist
  jhash train --config experiments/configs/dch.py:dataset=cifar10,bits=32 --config.data_dir=../shared/data --workdir runs/dch-cifar10
Add ``cpu=true`` to the argument for the CPU-sized variant (fewer epochs). Override a
hyperparameter with e.g. ``--config.dch.<name>=<value>``.

Expected: see experiments/results/deep_mnist.md (mnist, cpu=true budget, 16/32/64 bits).
"""
from jhash.config import method_config

get_config = method_config("dch")
