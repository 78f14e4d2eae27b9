"""What the deep methods' config files share: their argument and the network and budget of each dataset.

Every deep method trains the same network with the same budget on a dataset, so that their results
compare; the dataset branches are written out once, here, rather than copied into the 25 method files
(each of which shows its own hyperparameters and calls :func:`experiment_config` by name).
"""
import ml_collections

from jhash.config import base_config, parse_arg


def method_arg(arg, *, dataset: str = "mnist") -> ml_collections.ConfigDict:
    """The argument of a method's config file: ``dataset`` (digits | mnist | fashion_mnist | cifar10),
    ``bits`` (32), ``cpu`` (false: the full budget; true: fewer epochs), ``head`` (fc | ninh | weighted |
    grouped, :mod:`jhash.models.heads`). An unknown key or a badly typed value is an error."""
    return parse_arg(arg, dataset=dataset, bits=32, cpu=False, head="fc")


def experiment_config(method: str, *, dataset: str, bits: int, cpu: bool = False) -> ml_collections.ConfigDict:
    """``jhash.config.base_config()`` with ``method``, ``bits`` and the shared settings of ``dataset``."""
    c = base_config()
    c.method, c.dataset, c.bits = method, dataset, bits
    c.optimizer.learning_rate = 1e-3
    if dataset == "digits":  # scikit-learn's bundled 8 x 8 digits: 2,100 steps of 64, seconds on a 2-core CPU
        c.model = {"name": "mlp", "hidden": (256, 256)}
        c.batch_size = 64
        c.num_epochs = 300
    elif dataset in ("mnist", "fashion_mnist"):
        c.model = {"name": "cnn", "channels": (32, 64), "convs_per_block": 1, "dense": 256}
        c.batch_size = 128
        c.num_epochs = 3 if cpu else 10
    elif dataset == "cifar10":
        c.model = {"name": "cnn", "channels": (32, 64, 128), "convs_per_block": 2, "dense": 512}
        c.optimizer.schedule = "cosine"
        c.batch_size = 64
        c.augment = "crop_flip"
        c.num_epochs = 10 if cpu else 150
    else:
        raise ValueError(f"no experiment settings for dataset {dataset!r}; expected digits, mnist, fashion_mnist or cifar10")
    return c
