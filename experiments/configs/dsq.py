"""DSQ: Eghbali & Tahvildari, "Deep spherical quantization for image search", CVPR 2019.

L2-normalised embedding, additive (multi-codebook) quantization learned jointly with a cosine
classifier and a supervised quantization term; retrieval by inner-product AQD; M = bits / 8
codebooks of K = 256 (jhash/methods/dsq.py, which says what is our reading of the paper).

Run (from the repository root):
  jhash train --config experiments/configs/dsq.py:dataset=digits,bits=16 --workdir runs/dsq-digits
  jhash train --config experiments/configs/dsq.py:dataset=mnist,bits=32,cpu=true --config.data_dir=../shared/data --workdir runs/dsq-mnist

Expected: see experiments/results/deep_quant_mnist.md (mnist, cpu=true, 3 seeds).
"""
from jhash.config import method_config

get_config = method_config("dsq")
