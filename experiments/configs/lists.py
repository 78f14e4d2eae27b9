"""Any method on the literature's split lists: NUS-WIDE, MS-COCO, ImageNet-100 (and CIFAR-10) as the papers run them.

The argument names the method, the lists (``nuswide_21``, ``coco``, ``imagenet100``, ``cifar10``:
the protocol ``lists:<name>``, whose mAP cut-off is the literature's: 5,000 / 5,000 / 1,000 / ALL),
the list folder ``dir`` (DeepHash-pytorch's ``data/<dataset>``: train.txt, test.txt, database.txt),
the folder the listed image paths are relative to (``images``, i.e. ``config.data_dir``), the
backbone (``alexnet``, ``vgg16``, ``resnet18``, ``resnet50``, or ``cnn``: the small CNN, for a
quick check) with its converted ImageNet weights (experiments/convert_weights.py), the code
length and the epochs. Images are shown at 224 x 224 (``image_size``; for training the shorter
side resized to 256, a random 224 crop and a horizontal flip, for evaluation the central crop:
DeepHash-pytorch's transforms), batch 64, Adam (lr 1e-4, ``lr``), the method's own defaults.

Run (from the repository root), given the images and the lists:
  python experiments/convert_weights.py --arch alexnet alexnet-owt-7be5be79.pth weights/alexnet.npz
  jhash train --config 'experiments/configs/lists.py:method=dpsh,lists=nuswide_21,dir=DeepHash-pytorch/data/nuswide_21,images=/data/nus_wide,weights=weights/alexnet.npz' \
      --workdir runs/dpsh-nuswide-32
  # lists=coco,dir=.../data/coco  |  lists=imagenet100,dir=.../data/imagenet  |  lists=cifar10,dir=.../data/cifar10
A GPU's job at 224 x 224 (about 10,000 training images an epoch). tests/test_data_scale.py runs this
config (``model=cnn``) on a small list tree made in the test.
"""
from jhash import methods
from jhash.config import base_config, parse_arg


def get_config(arg=None):
    args = parse_arg(arg, method="dpsh", lists="nuswide_21", dir="", images="", model="alexnet", weights="",
                     bits=32, epochs=50, lr=1e-4, image_size=224)
    if not args.dir:
        raise ValueError("the lists config needs dir=PATH, the folder holding train.txt, test.txt and database.txt")
    c = base_config()
    c.method, c.bits = args.method, args.bits
    c.dataset = f"imagelist:{args.dir}"
    c.data_dir = args.images
    c.protocol = f"lists:{args.lists}" if args.lists else "lists"
    c.image_size = args.image_size
    if args.model == "cnn":
        c.model = {"name": "cnn", "channels": (32, 64), "convs_per_block": 1, "dense": 256}
    else:
        c.model = {"name": args.model, "weights": args.weights, "resize": 0}
    c.batch_size = 64
    c.num_epochs = args.epochs
    c.optimizer.learning_rate = args.lr
    c[args.method] = methods.get_method(args.method).defaults()  # the method's own config file's hyperparameters
    return c
