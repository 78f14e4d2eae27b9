"""ADSH: Jiang & Li, "Asymmetric deep supervised hashing", AAAI 2018.

The network hashes queries; the database (training set) codes V are learned directly by
the closed-form bitwise V-step inside the training step, and used for retrieval. The
budget is ADSH's own: ``outer_iterations`` x ``inner_epochs`` epochs over samples of
``num_samples`` points (the dataset's num_epochs is not used). See jhash/methods/adsh.py.

Run (from the repository root):
  jhash train --config experiments/configs/adsh.py:dataset=digits,bits=32 --workdir runs/adsh-digits
  jhash train --config experiments/configs/adsh.py:dataset=mnist,bits=32 --config.data_dir=../shared/data --workdir runs/adsh-mnist
  jhash train --config experiments/configs/adsh.py:dataset=cifar10,bits=32 --config.data_dir=../shared/data --workdir runs/adsh-cifar10
Add ``cpu=true`` to the argument for the CPU-sized variant (fewer epochs).
Override a hyperparameter with e.g. ``--config.adsh.gamma=100``.
"""
from jhash.config import method_config

get_config = method_config("adsh")
