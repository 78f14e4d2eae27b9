"""Any method trained end to end on a standard backbone (jhash.models.backbones), optionally from pretrained weights.

The argument names the method, the dataset (its protocol and budget as in
experiments/configs/common.py: batch size, epochs, schedule, augmentation), the backbone
(alexnet, vgg16, resnet18, resnet50), the converted weights file (experiments/convert_weights.py;
'' = random initialisation), the input size (``resize``: 0 keeps the images' own size, 224 is
the literature's for CIFAR-10 with ImageNet backbones) and the code length. The method's
hyperparameters are its defaults (``config.<method>``), as in its own config file; the
optimizer is the dataset's (Adam, lr 1e-3) unless ``lr`` is given: fine-tuning a pretrained
backbone usually wants a smaller one (e.g. lr=1e-4).

Run (from the repository root):
  # ResNet-18 from scratch on 32 x 32 CIFAR-10 (JPEG)
  jhash train --config 'experiments/configs/backbone.py:method=dpsh,dataset=cifar10,model=resnet18' \
      --config.data_dir=../shared/data --workdir runs/dpsh-resnet18-cifar10
  # AlexNet from torchvision's ImageNet weights, images resized to 224 (a GPU's job)
  python experiments/convert_weights.py --arch alexnet alexnet-owt-7be5be79.pth weights/alexnet.npz
  jhash train --config 'experiments/configs/backbone.py:method=dpsh,dataset=cifar10,model=alexnet,resize=224,lr=1e-4' \
      --config.model.weights=weights/alexnet.npz --config.data_dir=../shared/data --workdir runs/dpsh-alexnet-cifar10
Add ``cpu=true`` for the dataset's CPU-sized budget.
"""
from jhash import methods
from jhash.config import parse_arg
from jhash.configs.common import experiment_config


def get_config(arg=None):
    args = parse_arg(arg, method="dpsh", dataset="cifar10", model="resnet18", weights="", resize=0, bits=32,
                     lr=0.0, cpu=False)
    c = experiment_config(args.method, dataset=args.dataset, bits=args.bits, cpu=args.cpu)
    c.model = {"name": args.model, "weights": args.weights, "resize": args.resize}
    if args.lr:
        c.optimizer.learning_rate = args.lr
    c[args.method] = methods.get_method(args.method).defaults()  # the method's own config file's hyperparameters
    return c
