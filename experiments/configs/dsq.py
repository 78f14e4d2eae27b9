"""DSQ: Eghbali & Tahvildari, "Deep spherical quantization for image search", CVPR 2019.

L2-normalised embedding, additive (multi-codebook) quantization learned jointly with a cosine
classifier and a supervised quantization term; retrieval by inner-product AQD; M = bits / 8
codebooks of K = 256 (jhash/methods/dsq.py, which says what is our reading of the paper).

Run (from the repository root):
  jhash train --config experiments/configs/dsq.py:dataset=digits,bits=16 --workdir runs/dsq-digits
  jhash train --config experiments/configs/dsq.py:dataset=mnist,bits=32,cpu=true --config.data_dir=../shared/data --workdir runs/dsq-mnist

Expected: see experiments/results/deep_quant_mnist.md (mnist, cpu=true, 3 seeds).
"""

from jhash.config import set_head
from jhash.configs import common


def get_config(arg=None):
    arg = common.method_arg(arg, dataset="mnist")  # dataset, bits (32), cpu (false), head (fc)
    c = common.experiment_config("dsq", dataset=arg.dataset, bits=arg.bits, cpu=arg.cpu)  # the dataset's network and budget
    set_head(c, arg.head)
    c.dsq = {  # the hyperparameters (what each means: jhash/methods/dsq.py)
        "lambda_q":            0.1,
        "lambda_s":            0.1,
        "scale":               10.0,
        "codebook_size":       256,
        "dim":                 0,
        "icm_sweeps":          3,
        "update_every_epochs": 1,
        "codebook_steps":      2,
        "kmeans_iters":        20,
    }
    return c
