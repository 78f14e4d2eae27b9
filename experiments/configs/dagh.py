"""DAGH: Chen, Lai, Ding, Lin, Wong, "Deep supervised hashing with anchor graph", ICCV 2019.

Codes B for the whole training set, optimised by SDH's discrete cyclic coordinate descent
against the labels and an anchor graph on the network's outputs, inside the training step;
the network is fitted to B. See jhash/methods/dagh.py for what follows the method's public
demo code and what is our reconstruction.

Run (from the repository root; the shared settings of each dataset are those of
jhash.config.experiment_config: the same network and budget for every method):
  jhash train --config experiments/configs/dagh.py:dataset=digits,bits=32 --workdir runs/dagh-digits
  jhash train --config experiments/configs/dagh.py:dataset=mnist,bits=32 --config.data_dir=../shared/data --workdir runs/dagh-mnist
  jhash train --config experiments/configs/dagh.py:dataset=cifar10,bits=32 --config.data_dir=../shared/data --workdir runs/dagh-cifar10
Add ``cpu=true`` to the argument for the CPU-sized variant (fewer epochs). Override a
hyperparameter with e.g. ``--config.dagh.<name>=<value>``.

Expected: see experiments/results/deep_mnist.md (mnist, cpu=true budget, 16/32/64 bits).
"""
from jhash.config import method_config

get_config = method_config("dagh")
