"""Configs: Python files returning an ``ml_collections.ConfigDict``, with command-line overrides.

A config file defines ``get_config(arg=None)``; ``arg`` is the text after a colon in
``--config path.py:dataset=mnist,bits=64`` and is parsed with :func:`parse_arg`. Fields can
then be overridden one by one (``--set optimizer.learning_rate=0.01``). :func:`base_config`
lists every field the trainer reads, with its default.
"""
from __future__ import annotations

import ast
import importlib.util
import inspect
import pathlib

import ml_collections


def base_config() -> ml_collections.ConfigDict:
    """The trainer's fields and defaults; a method config starts from this and changes what it needs."""
    c = ml_collections.ConfigDict()
    c.method = "dpsh"
    c.dataset = "digits"          # a name known to jhash.data.load
    c.data_dir = ""               # local files (e.g. ../shared/data); "" = the source's default
    c.protocol = ""               # a name known to jhash.data.get_protocol; "" = the dataset's own
    c.split_seed = 0              # seed of the query/train/database split
    c.split_file = ""             # an .npz with query/train/database position arrays: run on exactly that split
    c.image_size = 0              # side of the square images the model sees (e.g. 224); 0 = the dataset's own size
    c.data = ml_collections.ConfigDict({  # the input pipeline (jhash.data.pipeline, jhash.data.images)
        "workers": -1,            # grain worker processes; -1 = the CPU count for images read from files,
                                  # 0 (a prefetching thread) for arrays in memory
        "prefetch": 2,            # batches prefetched per worker
        "train_crop": "random",   # with image_size: random (resize, random crop, flip) | random_resized | center
        "resize": 0,              # with image_size: shorter side before the crop; 0 = image_size * 8 / 7
        "check_files": True,      # check that every listed image file exists and opens before training
        "image_key": "",          # TFDS: the image feature ("" = the first Image feature)
        "label_key": "",          # TFDS: the label feature ("" = 'label' or 'labels'/'objects' class labels)
    })
    c.validation = 0              # training items held out (not trained on) as validation queries for model
                                  # selection, ranked against the rest of the training set; never the query set
    c.bits = 32
    c.model = ml_collections.ConfigDict({"name": "mlp"})  # other fields are the model's keyword arguments
    c.optimizer = ml_collections.ConfigDict({
        "name": "adam",           # adam | sgd | momentum | adamw
        "learning_rate": 1e-3,
        "momentum": 0.9,          # for momentum
        "weight_decay": 0.0,      # decoupled for adamw; added to the gradient (L2) otherwise
        "schedule": "constant",   # constant | step | cosine
        "decay_every_epochs": 50,  # for step
        "decay_factor": 0.1,      # for step
    })
    c.batch_size = 128
    c.augment = "none"            # none | crop_flip (jhash.data.augment), applied inside the step
    c.num_epochs = 10
    c.seed = 0                    # parameter initialisation, data order and per-step randomness
    c.num_devices = 0             # data-parallel devices; 0 = all local devices
    c.reduction_groups = 8        # the batch's groups (must divide batch_size; a multiple of the devices): batch
                                  # norm and the sums of gradients run per group, added in a fixed order
    c.deterministic_reductions = True  # the same codes on any device count dividing reduction_groups
                                  # (jhash.train.trainer.make_train_step); False: XLA's all-reduce, faster
    c.dtype = "float32"           # the network's compute dtype: float32 | bfloat16 (parameters, optimizer state,
                                  # batch-norm statistics and losses stay float32; jhash.models.apply_model)
    c.log_every = 50              # steps between JSON-lines logs
    c.checkpoint_every = 500      # steps between checkpoints (and one at the end)
    c.keep_checkpoints = 2
    c.progress = True             # a progress bar on stderr
    c.regularize = ml_collections.ConfigDict({  # added to every method's loss (jhash.methods.base.regularized)
        "balance": 0.0,           # weight of the bit balance penalty (0 = off)
        "decorrelation": 0.0,     # weight of the bit decorrelation penalty (0 = off)
        "on": "tanh",             # discretizer applied to the outputs first: tanh | sign_ste | identity
    })
    c.eval = ml_collections.ConfigDict({
        "map_k": -1,              # mAP@k cut-off; -1 = the protocol's, 0 = all
        "radius": 2,              # Hamming radius for precision/recall within the ball
        "batch_size": 1024,       # encoding batch size
    })
    return c


def experiment_config(method: str, *, dataset: str, bits: int, cpu: bool = False) -> ml_collections.ConfigDict:
    """:func:`base_config` with ``method`` and the shared settings of ``dataset``: the same network and budget for every method.

      digits         MLP 256-256, batch 64, 300 epochs (seconds on a CPU)
      mnist,         small CNN (32-64 conv, dense 256, batch norm), batch 128, 10 epochs (3 with ``cpu``)
      fashion_mnist
      cifar10        CNN (32-64-128, two convs per block, dense 512), batch 64, cosine schedule,
                     random crop + flip, 150 epochs (10 with ``cpu``)
    A method's config adds its hyperparameters (``c.<method> = <module>.defaults()``).
    """
    c = base_config()
    c.method, c.dataset, c.bits = method, dataset, bits
    c.optimizer.learning_rate = 1e-3
    if dataset == "digits":
        c.model = {"name": "mlp", "hidden": (256, 256)}
        c.batch_size = 64
        c.num_epochs = 300  # 2,100 steps of 64: seconds on a 2-core CPU
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


def set_head(c: ml_collections.ConfigDict, head: str) -> None:
    """Puts the hash head ``head`` (:mod:`jhash.models.heads`) on ``c.model``; a head other than FC also gets
    ``model.head_groups`` and ``model.head_hidden`` at their defaults (:class:`jhash.models.HeadOptions`:
    4 groups, 0 = features / groups) for overriding. FC, the default head, leaves ``c.model`` as it was."""
    from jhash.models.heads import HeadOptions

    if head != HeadOptions.name:
        c.model.update({"head": head, "head_groups": HeadOptions.groups, "head_hidden": HeadOptions.hidden})


def method_config(method: str, *, dataset: str = "mnist"):
    """The ``get_config(arg)`` of a method's config file: :func:`experiment_config` for the dataset, bits and
    ``cpu`` given in ``arg`` (default ``dataset``, 32 bits, full size), plus the method's defaults in
    ``config.<method>`` (``jhash.methods.<method>.defaults()``).

    ``head=ninh`` (or ``weighted``, ``grouped``; :mod:`jhash.models.heads`) in ``arg`` puts that hash
    head on the network and adds ``model.head_groups`` / ``model.head_hidden`` for overriding;
    the default FC head leaves ``config.model`` as it was."""

    def get_config(arg=None):
        from jhash import methods

        args = parse_arg(arg, dataset=dataset, bits=32, cpu=False, head="fc")
        c = experiment_config(method, dataset=args.dataset, bits=args.bits, cpu=args.cpu)
        set_head(c, args.head)
        c[method] = methods.get_method(method).defaults()
        return c

    return get_config


def features_config(arg=None) -> ml_collections.ConfigDict:
    """Any method's hash head on cached backbone features (:mod:`jhash.features`, feature-extraction mode).

    ``arg`` names the method, the feature file (written by ``experiments/extract_features.py``),
    the protocol of the source dataset (so that the split is the one the same ``split_seed``
    draws on the images), the code length and the hash head (``head=fc|ninh|grouped|weighted``,
    as in :func:`method_config`). The model is an MLP on the features (``hidden=()``: the hash
    head alone, for ``fc`` a linear map of the features; ``hidden=(1024,)``: one ReLU layer
    first), trained with Adam (lr 1e-3), batch 64, ``epochs`` epochs (default 50). The method's
    hyperparameters are its defaults (``config.<method>``). ``load_config('features:ARG')``
    and ``experiments/configs/features.py:ARG`` both give this config."""
    from jhash import methods

    args = parse_arg(arg, method="dpsh", features="", protocol="", bits=32, hidden=(), epochs=50, head="fc")
    if not args.features:
        raise ValueError("the features config needs features=PATH (an .npz written by experiments/extract_features.py)")
    if not args.protocol:
        raise ValueError("the features config needs protocol=NAME, the source dataset's protocol (e.g. cifar10) "
                         "or custom:...")
    c = base_config()
    c.method, c.dataset, c.protocol, c.bits = args.method, args.features, args.protocol, args.bits
    c.model = {"name": "mlp", "hidden": tuple(args.hidden)}
    set_head(c, args.head)
    c.batch_size = 64
    c.num_epochs = args.epochs
    c[args.method] = methods.get_method(args.method).defaults()
    return c


def shallow_config(method: str, arg=None) -> ml_collections.ConfigDict:
    """A shallow method (:mod:`jhash.shallow`) as a run: ``arg`` gives ``dataset`` (default mnist), ``bits``
    (32), ``seed`` (0: the split's seed and the fit's key), ``center`` (subtract the training mean) and
    ``features`` (a feature file of the dataset to fit on instead of its pixels). ``config.shallow`` holds the
    fit function's name and the input scale, ``config.<method>`` every keyword argument of the fit
    (:func:`jhash.shallow.settings.fit_arguments`: its defaults and the per-dataset settings); the other
    fields are :func:`base_config`'s (eval, split, validation; the network and optimizer fields are unused).
    Settings given per code length are resolved from the ``bits`` of ``arg``: a sweep over code lengths puts
    ``bits={bits}`` in the spec, not a grid field."""
    from jhash.shallow.settings import fit_arguments, fit_settings

    args = parse_arg(arg, dataset="mnist", bits=32, seed=0, center=False, features="")
    s = fit_settings(method, dataset=args.dataset, bits=args.bits, features=args.features)
    c = base_config()
    c.method, c.dataset, c.protocol, c.bits = method, args.features or args.dataset, args.dataset, args.bits
    c.seed = c.split_seed = args.seed
    c.shallow = ml_collections.ConfigDict({"fit": s["fit"], "scale": s["scale"], "center": args.center})
    c[method] = ml_collections.ConfigDict(fit_arguments(s["fit"], s["hyper"]))
    return c


def online_config(method: str, arg=None) -> ml_collections.ConfigDict:
    """An online method (``online_mihash`` or ``dihn``, :mod:`jhash.online`) with classes arriving in stages:
    ``arg`` gives ``dataset`` (default mnist), ``bits`` (32), ``seed`` (0: split and learner) and ``cpu``
    (DIHN's CPU-sized budget). ``config.stages``: ``first`` classes, then ``per_stage`` at a time;
    ``config.retrain_stages`` also trains the from-scratch baseline of every stage. Online MIHash streams 3
    passes over each stage's new items; DIHN uses the dataset's shared network and budget
    (:func:`experiment_config`)."""
    from jhash.online.settings import defaults

    args = parse_arg(arg, dataset="mnist", bits=32, seed=0, cpu=False)
    if method == "dihn":
        c = experiment_config("dihn", dataset=args.dataset, bits=args.bits, cpu=args.cpu)
    else:
        c = base_config()
        c.method, c.dataset, c.bits = method, args.dataset, args.bits
    c.seed = c.split_seed = args.seed
    c.stages = ml_collections.ConfigDict({"first": 5, "per_stage": 1})
    c.retrain_stages = False
    c[method] = defaults(method)
    if method == "online_mihash":
        c.online_mihash.stream_epochs = 3  # 3 passes over each stage's new items (cheap: linear functions)
    return c


def parse_arg(arg: str | None, **defaults) -> ml_collections.ConfigDict:
    """Parses ``"dataset=mnist,bits=64"`` into a ConfigDict, starting from ``defaults``.

    A value takes the type of its default (bool accepts true/false/1/0; a default of None
    takes a Python literal when the text parses as one, else the text); a key with no default
    is an error that lists the known keys.
    """
    out = ml_collections.ConfigDict(defaults)
    for item in filter(None, (arg or "").split(",")):
        if "=" not in item:
            raise ValueError(f"config argument {item!r} must look like key=value (in {arg!r})")
        key, value = (s.strip() for s in item.split("=", 1))
        if key not in defaults:
            raise ValueError(f"unknown key {key!r} in the config argument {arg!r}; known keys: {sorted(defaults)}")
        out[key] = _coerce(value, defaults.get(key), key)
    return out


def _coerce(text: str, default, key: str):
    if isinstance(default, bool):
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise ValueError(f"{key} expects true or false, got {text!r}")
    if default is not None and not isinstance(default, str):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise ValueError(f"{key} expects a value like {default!r}, got {text!r}") from None
        if isinstance(default, float) and isinstance(value, int):
            value = float(value)
        if isinstance(default, (list, tuple)) and isinstance(value, (list, tuple)):
            return type(default)(value)
        if not isinstance(value, type(default)):
            raise ValueError(f"{key} expects a {type(default).__name__}, got {text!r}")
        return value
    if isinstance(default, str):
        return text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def load_config(spec: str) -> ml_collections.ConfigDict:
    """Loads ``path/to/config.py[:arg]``: imports the file and calls its ``get_config(arg)``.

    ``method:NAME[:arg]`` is the built-in config of a method (:func:`method_config`; what each
    ``experiments/configs/NAME.py`` holds; :func:`shallow_config` for a shallow method, :func:`online_config`
    for an online one: every name of :func:`jhash.registry.names`), for installs without the experiments folder;
    ``features:arg`` is :func:`features_config` (``experiments/configs/features.py``).
    """
    if spec.startswith("features:"):
        return features_config(spec[len("features:"):] or None)
    if spec.startswith("method:"):
        name, _, arg = spec[len("method:"):].partition(":")
        from jhash import registry

        kind = registry.kind(name)  # unknown method -> ValueError
        if kind == "shallow":
            return shallow_config(name, arg or None)
        if kind == "online":
            return online_config(name, arg or None)
        return method_config(name, dataset="digits" if name == "dpsh" else "mnist")(arg or None)
    path, _, arg = spec.partition(":")
    file = pathlib.Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"config file {path!r} not found (expected a Python file defining get_config)")
    module_spec = importlib.util.spec_from_file_location(f"jhash_config_{file.stem}", file)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ValueError(f"config file {path!r} defines no get_config()")
    takes_arg = len(inspect.signature(module.get_config).parameters) > 0
    if arg and not takes_arg:
        raise ValueError(f"config file {path!r} takes no argument, got {arg!r}")
    return module.get_config(arg or None) if takes_arg else module.get_config()


def apply_overrides(config: ml_collections.ConfigDict, overrides) -> ml_collections.ConfigDict:
    """Applies ``["optimizer.learning_rate=0.01", "bits=64"]`` to a copy of ``config``; keys must exist."""
    config = ml_collections.ConfigDict(config.to_dict())
    for item in overrides or ():
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key=value")
        key, value = item.split("=", 1)
        *parents, leaf = key.strip().split(".")
        node = config
        for p in parents:
            if p not in node or not isinstance(node[p], ml_collections.ConfigDict):
                raise ValueError(f"unknown config field {key!r}")
            node = node[p]
        if leaf not in node:
            raise ValueError(f"unknown config field {key!r}; known here: {sorted(node.keys())}")
        node[leaf] = _coerce(value.strip(), node[leaf], key)
    return config
