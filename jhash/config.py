"""Configs: Python files returning an ``ml_collections.ConfigDict``, read and overridden with ``ml_collections.config_flags``.

A config file defines ``get_config(arg=None)``; ``arg`` is the text after a colon in
``--config path.py:dataset=mnist,bits=64`` and is parsed with :func:`parse_arg` (an unknown key is an error).
Fields are then overridden one by one (``--config.optimizer.learning_rate=0.01``; an unknown field is an
error with config_flags' "did you mean"). :func:`load_config` and :func:`apply_overrides` are the library
form of those two flags, used by the CLI, the sweep runner and the tests alike. The config files ship with
jhash as the package ``jhash.configs`` (``experiments/configs``), so ``method:NAME[:arg]`` and
``features:arg`` name them without a checkout (:func:`config_file`; config_flags takes a path, so these two
forms are resolved to one here). :func:`base_config` lists every field the trainer reads, with its default.
"""
from __future__ import annotations

import ast
import pathlib
import re
import sys
import warnings

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


def set_head(c: ml_collections.ConfigDict, head: str) -> None:
    """Puts the hash head ``head`` (:mod:`jhash.models.heads`) on ``c.model``; a head other than FC also gets
    ``model.head_groups`` and ``model.head_hidden`` at their defaults (:class:`jhash.models.HeadOptions`:
    4 groups, 0 = features / groups) for overriding. FC, the default head, leaves ``c.model`` as it was."""
    from jhash.models.heads import HeadOptions

    if head != HeadOptions.name:
        c.model.update({"head": head, "head_groups": HeadOptions.groups, "head_hidden": HeadOptions.hidden})


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
    (``jhash.configs.common.experiment_config``)."""
    from jhash.online.settings import defaults

    args = parse_arg(arg, dataset="mnist", bits=32, seed=0, cpu=False)
    if method == "dihn":
        from jhash.configs.common import experiment_config

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


def config_file(spec: str) -> str:
    """The ``path.py[:arg]`` that ``spec`` names: ``method:NAME[:arg]`` is the installed ``jhash/configs/NAME.py``
    (the same file as ``experiments/configs/NAME.py``), ``features:arg`` the installed ``features.py``; a path is
    checked to exist."""
    import jhash.configs

    installed = pathlib.Path(jhash.configs.__file__).parent
    if spec.startswith("features:"):
        return f"{installed / 'features.py'}:{spec[len('features:'):]}"
    if spec.startswith("method:"):
        name, _, arg = spec[len("method:"):].partition(":")
        from jhash import registry

        if registry.kind(name) == "shallow":  # unknown method -> ValueError
            raise ValueError(f"{name} is a shallow method: its config is jhash.config.shallow_config, not a file")
        return f"{installed / name}.py:{arg}"
    path = spec.partition(":")[0]
    if not pathlib.Path(path).is_file():
        raise FileNotFoundError(f"config file {path!r} not found (expected a Python file defining get_config)")
    return spec


def load_config(spec: str) -> ml_collections.ConfigDict:
    """Loads ``path/to/config.py[:arg]`` with ``ml_collections.config_flags`` (as ``--config path.py:arg``): imports
    the file and calls its ``get_config(arg)`` (``get_config()`` when no arg is given).

    ``method:NAME[:arg]`` and ``features:arg`` are the config files installed with jhash (:func:`config_file`);
    for a shallow method ``method:NAME[:arg]`` is :func:`shallow_config`.
    An error in the file or its argument is raised as the file raised it (one line, no traceback).
    """
    from absl import flags
    from ml_collections import config_flags

    from jhash import registry

    name, _, arg = spec.partition(":")[2].partition(":")
    if spec.startswith("method:") and registry.kind(name) == "shallow":  # one file would hold 25 one-liners
        return shallow_config(name, arg or None)
    values = flags.FlagValues()
    argv = ["jhash", f"--config={config_file(spec)}"]
    holder = config_flags.DEFINE_config_file("config", flag_values=values, sys_argv=argv, lock_config=False)
    sys.modules.pop("config_config", None)  # config_flags' module name: a stale one would lend its get_config
    try:
        with warnings.catch_warnings():  # config_flags imports the file with the deprecated load_module()
            warnings.filterwarnings("ignore", "the load_module", DeprecationWarning)
            values(argv)
    except flags.IllegalFlagValueError as e:  # config_flags wraps the file's error with its traceback: keep the error
        last = str(e).strip().splitlines()[-1]
        kind, _, message = last.partition(": ")
        raise (FileNotFoundError if kind == "FileNotFoundError" else ValueError)(message or last) from None
    except AttributeError as e:
        if "get_config" not in str(e):
            raise
        raise ValueError(f"config file {spec.partition(':')[0]!r} defines no get_config()") from None
    finally:
        sys.modules.pop("config_config", None)
    config = holder.value
    if not isinstance(config, ml_collections.ConfigDict):
        raise ValueError(f"the get_config() of {spec!r} returned {type(config).__name__}, not a ConfigDict")
    return config


def apply_overrides(config: ml_collections.ConfigDict, overrides) -> ml_collections.ConfigDict:
    """Applies ``["optimizer.learning_rate=0.01", "bits=64"]`` to a copy of ``config`` with ``ml_collections.config_flags``
    (as ``--config.optimizer.learning_rate=0.01``): a field must exist (an unknown one is an error with config_flags'
    "did you mean"), a value is parsed as the type of the field's current value."""
    from absl import flags
    from ml_collections import config_flags
    from ml_collections.config_flags import config_path

    config = ml_collections.ConfigDict(config.to_dict())
    argv = ["jhash"]
    for item in overrides or ():
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key=value")
        key, value = (s.strip() for s in item.split("=", 1))
        try:
            config_path.get_value(key, config)
        except (KeyError, AttributeError, TypeError) as e:
            hint = [line for line in str(e.args[0] if e.args else e).splitlines() if line.startswith("Did you mean")]
            raise ValueError(f"unknown config field {key!r}" + (f"; did you mean{hint[0][12:]}" if hint else "")) from None
        argv.append(f"--config.{key}={value}")
    values = flags.FlagValues()
    holder = config_flags.DEFINE_config_dict("config", config, flag_values=values, sys_argv=argv, lock_config=False)
    try:
        values(argv)
    except flags.IllegalFlagValueError as e:
        m = re.match(r"flag --config\.([\w.]+)=(.*?): (.*)", str(e), re.S)
        if not m:
            raise ValueError(str(e).splitlines()[0]) from None
        key, text, why = m.groups()
        raise ValueError(f"{key} expects a value like {config_path.get_value(key, config)!r}, got {text!r} ({why})"
                         ) from None
    return holder.value
