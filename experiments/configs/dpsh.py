"""DPSH: Li, Wang, Kang, "Feature learning based deep supervised hashing with pairwise labels", IJCAI 2016.

Pairwise likelihood of the similarity labels plus eta * ||sign(u) - u||^2, with the
authors' memory bank of training-set outputs (see jhash/methods/dpsh.py).

Run (from the repository root):
  jhash train --config experiments/configs/dpsh.py:dataset=digits,bits=32 --workdir runs/dpsh-digits
  jhash train --config experiments/configs/dpsh.py:dataset=mnist,bits=32 --config.data_dir=../shared/data --workdir runs/dpsh-mnist
  jhash train --config experiments/configs/dpsh.py:dataset=cifar10,bits=32 --config.data_dir=../shared/data --workdir runs/dpsh-cifar10
Add ``cpu=true`` to the argument for the CPU-sized variant (fewer epochs).

Expected at 32 bits (experiments/results/dpsh.md; 2-core CPU unless noted; the mnist and cifar10
figures were measured before the canonical reductions, i.e. as --config.deterministic_reductions=false):
  digits   mAP@ALL 0.9615, about 20 s in all (0.9686 and about 13 s with deterministic_reductions=false)
  mnist    mAP@ALL 0.980 (10 epochs, 5.4 s per epoch); cpu=true (3 epochs) about 0.95
  cifar10  mAP@ALL 0.448 (150 epochs, small CNN from scratch, CIFAR-10 (JPEG); 43 s on an H200);
           below the paper's 0.744, which fine-tunes an ImageNet-pretrained VGG-F
"""

from jhash.config import set_head
from jhash.configs import common


def get_config(arg=None):
    arg = common.method_arg(arg, dataset="digits")  # dataset, bits (32), cpu (false), head (fc)
    c = common.experiment_config("dpsh", dataset=arg.dataset, bits=arg.bits, cpu=arg.cpu)  # the dataset's network and budget
    set_head(c, arg.head)
    c.dpsh = {  # the hyperparameters (what each means: jhash/methods/dpsh.py)
        "eta":         10.0,  # the authors' CIFAR-10 setting
        "memory_bank": True,  # pairs of (batch x training set), as the authors' code
    }
    return c
