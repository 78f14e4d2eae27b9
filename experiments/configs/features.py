"""Any method's hash head on cached backbone features (jhash.features; feature-extraction mode).

The argument names the method, the feature file (written by experiments/extract_features.py),
the protocol of the source dataset (so the split is the one the same split_seed draws on the
images), the code length and the hash head (``head=fc|ninh|grouped|weighted``); the model is an
MLP on the features (``hidden=()``: the hash head alone, for fc a linear map of the features; ``hidden=(1024,)``: one ReLU layer first), trained
with Adam (lr 1e-3), batch 64, ``epochs`` epochs. The method's hyperparameters are its
defaults (``config.<method>``), as in its own config file. The same config is built in as
``--config features:ARG``.

Run (from the repository root):
  python experiments/extract_features.py --workdir runs/dpsh-cifar10 --out runs/feats/cifar10-cnn.npz
  jhash train --config 'experiments/configs/features.py:method=dpsh,features=runs/feats/cifar10-cnn.npz,protocol=cifar10,bits=32' \
      --workdir runs/dpsh-on-cnn-features

Pretrained weights instead of a trained run (see experiments/convert_weights.py):
  python experiments/extract_features.py --model resnet50 --weights weights/resnet50.npz --resize 224 \
      --dataset cifar10 --data-dir ../shared/data --out runs/feats/cifar10-resnet50.npz

Measured (experiments/results/features_cifar10.md, CIFAR-10 (JPEG), 2-core CPU): see that file.
"""

from jhash import methods
from jhash.config import base_config, parse_arg, set_head


def get_config(arg=None):
    arg = parse_arg(arg, method="dpsh", features="", protocol="", bits=32, hidden=(), epochs=50, head="fc")
    if not arg.features:
        raise ValueError("the features config needs features=PATH (an .npz written by experiments/extract_features.py)")
    if not arg.protocol:
        raise ValueError("the features config needs protocol=NAME, the source dataset's protocol (e.g. cifar10) "
                         "or custom:...")
    c = base_config()
    c.method, c.dataset, c.protocol, c.bits = arg.method, arg.features, arg.protocol, arg.bits
    c.model = {"name": "mlp", "hidden": tuple(arg.hidden)}
    set_head(c, arg.head)
    c.optimizer.learning_rate = 1e-3
    c.batch_size = 64
    c.num_epochs = arg.epochs
    c[arg.method] = methods.get_method(arg.method).defaults()  # the method's own config file's hyperparameters
    return c
