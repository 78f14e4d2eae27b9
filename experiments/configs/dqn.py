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

from jhash.config import set_head
from jhash.configs import common


def get_config(arg=None):
    arg = common.method_arg(arg, dataset="mnist")  # dataset, bits (32), cpu (false), head (fc)
    c = common.experiment_config("dqn", dataset=arg.dataset, bits=arg.bits, cpu=arg.cpu)  # the dataset's network and budget
    set_head(c, arg.head)
    c.dqn = {  # the hyperparameters (what each means: jhash/methods/dqn.py)
        "lambda_q":            0.0001,
        "codebook_size":       256,
        "dim":                 0,
        "update_every_epochs": 2,
        "kmeans_iters":        20,
        "aqd_metric":          "l2",
    }
    return c
