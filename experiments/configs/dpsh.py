"""DPSH: Li, Wang, Kang, "Feature learning based deep supervised hashing with pairwise labels", IJCAI 2016.

Pairwise likelihood of the similarity labels plus eta * ||sign(u) - u||^2, with the
authors' memory bank of training-set outputs (see jhash/methods/dpsh.py).

Run (from the repository root):
  jhash train --config experiments/configs/dpsh.py:dataset=digits,bits=32 --workdir runs/dpsh-digits
  jhash train --config experiments/configs/dpsh.py:dataset=mnist,bits=32 --config.data_dir=../shared/data --workdir runs/dpsh-mnist
  jhash train --config experiments/configs/dpsh.py:dataset=cifar10,bits=32 --config.data_dir=../shared/data --workdir runs/dpsh-cifar10
Add ``cpu=true`` to the argument for the CPU-sized variant (fewer epochs).

Expected at 32 bits (experiments/results/dpsh.md; 2-core CPU unless noted):
  digits   mAP@ALL 0.971, about 10 s in all
  mnist    mAP@ALL 0.980 (10 epochs, 5.4 s per epoch); cpu=true (3 epochs) about 0.95
  cifar10  mAP@ALL 0.448 (150 epochs, small CNN from scratch, CIFAR-10 (JPEG); 43 s on an H200);
           below the paper's 0.744, which fine-tunes an ImageNet-pretrained VGG-F
"""
from jhash.config import base_config, parse_arg
from jhash.methods import dpsh


def get_config(arg=None):
    arg = parse_arg(arg, dataset="digits", bits=32, cpu=False)
    c = base_config()
    c.method = "dpsh"
    c.dataset = arg.dataset
    c.bits = arg.bits
    c.dpsh = dpsh.defaults()  # eta = 10 (the authors' CIFAR-10 setting), memory bank on
    if arg.dataset == "digits":
        c.model = {"name": "mlp", "hidden": (256, 256)}
        c.optimizer.learning_rate = 1e-3
        c.batch_size = 64
        c.num_epochs = 300  # 2,100 steps of 64: about 3 s on a 2-core CPU
    elif arg.dataset in ("mnist", "fashion_mnist"):
        c.model = {"name": "cnn", "channels": (32, 64), "convs_per_block": 1, "dense": 256}
        c.optimizer.learning_rate = 1e-3
        c.batch_size = 128
        c.num_epochs = 3 if arg.cpu else 10
    elif arg.dataset == "cifar10":
        c.model = {"name": "cnn", "channels": (32, 64, 128), "convs_per_block": 2, "dense": 512}
        c.optimizer.learning_rate = 1e-3
        c.optimizer.schedule = "cosine"
        c.batch_size = 64
        c.augment = "crop_flip"
        c.num_epochs = 10 if arg.cpu else 150  # 150 epochs as in the authors' code
    else:
        raise ValueError(f"dpsh config has no settings for dataset {arg.dataset!r}; expected digits, mnist, fashion_mnist or cifar10")
    return c
