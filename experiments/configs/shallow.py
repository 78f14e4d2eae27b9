"""Non-deep hashing (jhash.shallow) on fixed features: one config for every method.

``get_config("method=itq,dataset=mnist,bits=32")`` gives the method's name, the dataset,
the code length and ``hyper``, the keyword arguments passed to the method's ``fit``
(the paper's defaults live in each ``fit``; what is set here is per-dataset).

Run all methods on the mnist protocol (1,000 queries / 5,000 train / 69,000 database,
raw pixels scaled to [0, 1]), 16/32/64 bits, 3 seeds, and write the results table:
  PYTHONPATH=. python experiments/shallow_mnist.py --data_dir ../shared/data
On CNN features instead of pixels (a feature file per seed, each from the network trained on
that seed's training split, so no query was seen by its network; see experiments/README.md):
  PYTHONPATH=. python experiments/shallow_mnist.py --data_dir ../shared/data \
      --features 'runs/feats/mnist-dpsh32-{seed}.npz' --out experiments/results/shallow_mnist_cnn.md
On cifar10 pixels (scaled to [0, 1], 3,072 values): measured only at 32 bits, seed 0, for LSH
0.126, ITQ 0.137 and SDH 0.208 (SDH with the width it had before issue 20; ITQ's fit 109 s on one core):
  PYTHONPATH=. python experiments/shallow_mnist.py --dataset cifar10 --data_dir ../shared/data \
      --cache runs/shallow_cifar10.jsonl --out experiments/results/shallow_cifar10.md
A quick variant on the bundled digits (no files, seconds):
  PYTHONPATH=. python experiments/shallow_mnist.py --dataset digits --seeds 1

Expected on mnist (experiments/results/shallow_mnist.md, 3 seeds): mAP@ALL at 16 / 32 / 64 bits
LSH 0.20 / 0.27 / 0.32, ITQ 0.40 / 0.43 / 0.45, AGH-2 0.55 / 0.56 / 0.53, SDH 0.91 / 0.93 / 0.94,
FastH 0.88 / 0.91 / 0.92, KSH 0.84 / 0.86 / 0.87, TSH 0.76 / 0.79 / 0.80, MLH 0.46 / 0.54 / 0.60,
HDML 0.42 / 0.51 / 0.61, CGH 0.64 / 0.67 / 0.64, Top-RSBC 0.72 / 0.71 / 0.70, OPH 0.58 / 0.65 /
0.71, RPH 0.69 / 0.72 / 0.73, AffHash (1,000 labelled points) 0.60 / 0.65 / 0.67: every
supervised method above ITQ, ITQ above LSH. On one unshared core most fits take seconds to
two minutes (TSH and FastH up to about 3.5); Top-RSBC and OPH (30,000 SGD steps) about 4.
"""
from jhash.config import parse_arg
from jhash.shallow.settings import fit_settings, method_names  # noqa: F401  (method_names: the table's rows)


def get_config(arg=None):
    """The settings of one (method, dataset, bits) of the shallow table (jhash.shallow.settings.fit_settings):
    ``fit_method``, ``scale``, ``hyper``, ``protocol``, ``center``, ``features``. ``jhash train --config
    method:itq:dataset=mnist,bits=32,seed=0`` runs the same fit as a jhash run (jhash.config.shallow_config)."""
    arg = parse_arg(arg, method="itq", dataset="mnist", bits=32, seed=0, center=False, features="")
    s = fit_settings(arg.method, dataset=arg.dataset, bits=arg.bits, features=arg.features)
    c = arg
    c.fit_method, c.scale, c.hyper = s["fit"], s["scale"], s["hyper"]
    c.protocol = arg.dataset
    return c
