"""DQN: Cao, Long, Wang, Zhu, Wen, "Deep quantization network for efficient image retrieval", AAAI 2016.

Pairwise cosine loss plus a product-quantization loss (lambda = 1e-4, the authors' script),
codebooks re-learned by k-means in each subspace every two epochs; retrieval by asymmetric
quantizer distance; M = bits / 8 codebooks of K = 256 codewords (jhash/methods/dqn.py).

Run (from the repository root):
  jhash train --config experiments/configs/dqn.py:dataset=digits,bits=16 --workdir runs/dqn-digits
  jhash train --config experiments/configs/dqn.py:dataset=mnist,bits=32,cpu=true --config.data_dir=../shared/data --workdir runs/dqn-mnist
(digits has 500 training items: use ``--config.dqn.codebook_size=16`` there, which keeps
bits = M log2 K with M = bits / 4.)

Expected: see experiments/results/deep_quant_mnist.md (mnist, cpu=true, 3 seeds).
"""
from jhash.config import method_config

get_config = method_config("dqn")
