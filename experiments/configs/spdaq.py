"""SPDAQ: Chen & Cheung, "Similarity preserving deep asymmetric quantization for image retrieval", AAAI 2019.

Asymmetric: the network embeds queries (trained on sampled subsets, as ADSH), the database's
composite-quantization codes and codebooks are learned directly (ICM B-step, conjugate-gradient
C-step); retrieval by inner-product AQD; M = bits / 8 codebooks of K = 256
(jhash/methods/spdaq.py, which says what is our reading of the paper).

Run (from the repository root):
  jhash train --config experiments/configs/spdaq.py:dataset=digits,bits=16 --workdir runs/spdaq-digits
  jhash train --config experiments/configs/spdaq.py:dataset=mnist,bits=32,cpu=true --config.data_dir=../shared/data --workdir runs/spdaq-mnist

Expected: see experiments/results/deep_quant_mnist.md (mnist, cpu=true, 3 seeds).
"""
from jhash.config import method_config

get_config = method_config("spdaq")
