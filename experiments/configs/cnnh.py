"""CNNH / CNNH+: Xia, Pan, Lai, Liu, Yan, "Supervised hashing for image retrieval via image representation learning", AAAI 2014.

Two stages: approximate codes of the training set from ||S - H H^T / q||^2 by random
coordinate descent (inside the jitted step, once), then the network fitted to them
(``--config.cnnh.class_outputs=true``: CNNH+, with class outputs too). See
jhash/methods/cnnh.py for the details and where we differ.

Run (from the repository root):
  jhash train --config experiments/configs/cnnh.py:dataset=digits,bits=32 --workdir runs/cnnh-digits
  jhash train --config experiments/configs/cnnh.py:dataset=mnist,bits=32 --config.data_dir=../shared/data --workdir runs/cnnh-mnist
  jhash train --config experiments/configs/cnnh.py:dataset=cifar10,bits=32 --config.data_dir=../shared/data --workdir runs/cnnh-cifar10
Add ``cpu=true`` to the argument for the CPU-sized variant (fewer epochs).

Expected (experiments/results/discrete_mnist.md, mnist, cpu=true, 3 seeds): mAP@ALL 0.965 /
0.968 / 0.972 at 16 / 32 / 64 bits. In the literature CNNH is below DPSH; here it is above
(DPSH 0.933 / 0.955 / 0.959): its stage-1 codes factorise the label similarity, so on mnist
they are nearly per-class codes, which the CNN fits within the 3-epoch budget that leaves
DPSH's pairwise loss short of converged.
"""

from jhash.config import set_head
from jhash.configs import common


def get_config(arg=None):
    arg = common.method_arg(arg, dataset="mnist")  # dataset, bits (32), cpu (false), head (fc)
    c = common.experiment_config("cnnh", dataset=arg.dataset, bits=arg.bits, cpu=arg.cpu)  # the dataset's network and budget
    set_head(c, arg.head)
    c.cnnh = {  # the hyperparameters (what each means: jhash/methods/cnnh.py)
        "sweeps":        3,
        "class_outputs": False,
        "seed":          0,
    }
    return c
