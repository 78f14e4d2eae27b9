"""DEPQ (the paper's DPQ): Klein & Wolf, "End-to-end supervised product quantization for image search and
retrieval", CVPR 2019.

Soft and hard product-quantized vectors from learned codebooks, a shared classifier on both,
joint central loss and Gini terms; retrieval by asymmetric distance from the query's soft
vector to the database's hard codes; M = bits / 8 codebooks of K = 256 (jhash/methods/depq.py).

Run (from the repository root):
  jhash train --config experiments/configs/depq.py:dataset=digits,bits=16 --workdir runs/depq-digits
  jhash train --config experiments/configs/depq.py:dataset=mnist,bits=32,cpu=true --config.data_dir=../shared/data --workdir runs/depq-mnist

Expected: see experiments/results/deep_quant_mnist.md (mnist, cpu=true, 3 seeds).
"""
from jhash.config import method_config

get_config = method_config("depq")
