"""DSDH: Li, Sun, He, Tan, "Deep supervised discrete hashing", NIPS 2017.

Pairwise likelihood plus a classifier on the binary codes of the whole training set, whose
codes and classifier are updated once an epoch by DCC and ridge regression inside the
training step. See jhash/methods/dsdh.py for the defaults and their source.

Run (from the repository root; the shared settings of each dataset are those of
jhash.config.experiment_config: the same network and budget for every method):
  jhash train --config experiments/configs/dsdh.py:dataset=digits,bits=32 --workdir runs/dsdh-digits
  jhash train --config experiments/configs/dsdh.py:dataset=mnist,bits=32 --config.data_dir=../shared/data --workdir runs/dsdh-mnist
  jhash train --config experiments/configs/dsdh.py:dataset=cifar10,bits=32 --config.data_dir=../shared/data --workdir runs/dsdh-cifar10
Add ``cpu=true`` to the argument for the CPU-sized variant (fewer epochs). Override a
hyperparameter with e.g. ``--config.dsdh.<name>=<value>``.

Expected: see experiments/results/deep_mnist.md (mnist, cpu=true budget, 16/32/64 bits).
"""
from jhash.config import method_config

get_config = method_config("dsdh")
