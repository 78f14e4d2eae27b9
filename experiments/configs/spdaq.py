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

from jhash.config import set_head
from jhash.configs import common


def get_config(arg=None):
    arg = common.method_arg(arg, dataset="mnist")  # dataset, bits (32), cpu (false), head (fc)
    c = common.experiment_config("spdaq", dataset=arg.dataset, bits=arg.bits, cpu=arg.cpu)  # the dataset's network and budget
    set_head(c, arg.head)
    c.spdaq = {  # the hyperparameters (what each means: jhash/methods/spdaq.py)
        "gamma":            200.0,
        "similarity_scale": 0.0,
        "num_samples":      2000,
        "inner_epochs":     3,
        "outer_iterations": 0,
        "icm_sweeps":       3,
        "cg_iterations":    10,
        "codebook_size":    256,
        "dim":              0,
    }
    return c
