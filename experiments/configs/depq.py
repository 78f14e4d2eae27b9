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

from jhash.config import set_head
from jhash.configs import common


def get_config(arg=None):
    arg = common.method_arg(arg, dataset="mnist")  # dataset, bits (32), cpu (false), head (fc)
    c = common.experiment_config("depq", dataset=arg.dataset, bits=arg.bits, cpu=arg.cpu)  # the dataset's network and budget
    set_head(c, arg.head)
    c.depq = {  # the hyperparameters (what each means: jhash/methods/depq.py)
        "lambda_jcl":    0.01,
        "lambda_gini":   1.0,
        "codebook_size": 256,
        "dim":           0,
    }
    return c
