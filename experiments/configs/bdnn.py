"""BDNN: Do, Doan, Cheung, "Learning to hash with binary deep neural network", ECCV 2016 (supervised SH-BDNN).

Binary, independence, balance and KSH-style similarity terms, alternating B = sign(H).
See jhash/methods/bdnn.py for the equations, the defaults and
where we follow or differ from the authors' code.

Run (from the repository root; the shared settings of each dataset are those of
jhash.config.experiment_config: the same network and budget for every method):
  jhash train --config experiments/configs/bdnn.py:dataset=digits,bits=32 --workdir runs/bdnn-digits
  jhash train --config experiments/configs/bdnn.py:dataset=mnist,bits=32 --config.data_dir=../shared/data --workdir runs/bdnn-mnist
  jhash train --config experiments/configs/bdnn.py:dataset=cifar10,bits=32 --config.data_dir=../shared/data --workdir runs/bdnn-cifar10
Add ``cpu=true`` to the argument for the CPU-sized variant (fewer epochs). Override a
hyperparameter with e.g. ``--config.bdnn.<name>=<value>``.

Expected: see experiments/results/deep_mnist.md (mnist, cpu=true budget, 16/32/64 bits).
"""
from jhash.config import method_config

get_config = method_config("bdnn")
