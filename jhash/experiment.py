"""A run's data and saved config, shared by the trainer, the evaluator and the shallow and online runners.

``load_experiment_data`` loads ``config.dataset``, draws (or reloads from ``split.npz``) its
split and carves the validation items; ``read_config`` reads a work dir's ``config.json``.
Both live here, below :mod:`jhash.train.trainer` and :mod:`jhash.evaluate`, so that neither
of those imports the other for them. ``run_once`` is the bookkeeping of a run without checkpoints
(the shallow and online runners).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
import time
from typing import Any, Callable

import ml_collections
import numpy as np

from jhash import data as jdata
from jhash import distributed
from jhash import io as jio
from jhash import registry
from jhash.config import base_config
from jhash.train.manifest import Manifest, describe
from jhash.train.state import make_mesh

__all__ = ["ExperimentData", "validation_split", "load_dataset", "run_split", "load_experiment_data", "read_config",
           "check_int", "run_once"]


@dataclasses.dataclass(frozen=True)
class ExperimentData:
    """The dataset of a run split by its protocol. Items are read a batch at a time (the dataset's
    images stay uint8 or on disk); :attr:`x_train` materialises the model-ready training set for
    the few callers that need it whole (the online methods' stage loops)."""

    dataset: Any
    split: Any
    train_index: np.ndarray  # the dataset positions trained on (split.train minus the validation items)
    validation_index: np.ndarray  # held-out training items for model selection (empty without config.validation)

    def labels(self, name: str) -> np.ndarray:
        """Labels of ``'query'``, ``'train'`` or ``'database'``."""
        return np.asarray(self.dataset.y[getattr(self.split, name)])

    @functools.cached_property
    def y_train(self) -> np.ndarray:
        return np.asarray(self.dataset.y[self.train_index])

    @functools.cached_property
    def x_train(self) -> np.ndarray:
        return jdata.to_float(self.dataset.x[self.train_index])

    def sample_x(self) -> np.ndarray:
        """One model-ready training item (shapes for initialisation)."""
        return jdata.to_float(self.dataset.x[self.train_index[:1]])


def validation_split(split, n_validation: int):
    """``(train_index, validation_index)``: ``n_validation`` items of ``split.train`` drawn with the split's seed.

    A pure function of the split, so a resumed run and ``jhash eval`` carve the same items.
    """
    if n_validation < 0 or n_validation >= len(split.train):
        raise ValueError(f"config.validation must be >= 0 and smaller than the training set ({len(split.train)}), "
                         f"got {n_validation}")
    if n_validation == 0:
        return split.train, split.train[:0]
    held = np.random.default_rng([split.seed, 1]).permutation(len(split.train))[:n_validation]
    mask = np.zeros(len(split.train), bool)
    mask[held] = True
    return split.train[~mask], split.train[mask]


def load_dataset(config):
    """``config.dataset`` as :func:`jhash.data.load` gives it with the config's data settings."""
    d = config.get("data", {})
    return jdata.load(config.dataset, data_dir=config.data_dir or None, image_size=int(config.get("image_size", 0)),
                      resize=int(d.get("resize", 0)), image_key=d.get("image_key", ""),
                      label_key=d.get("label_key", ""))


def run_split(config, dataset):
    """The split ``config`` asks for: ``config.split_file`` when set, else the protocol's draw."""
    if config.get("split_file", ""):
        return jdata.split_from_file(config.split_file, dataset)
    return jdata.make_split(dataset, jdata.get_protocol(config.protocol or config.dataset), seed=config.split_seed)


def training_index(config, split, train_index, validation_index):
    """The dataset positions the trainer trains on (its training set, whose rows ``build`` gets as
    ``train_labels`` and a method's ``database_codes`` cover).

    ``train_index``: the protocol's training items less the validation ones; that is the answer
    unless the method's module says, through ``trains_on_database(config) -> bool``, that it
    learns over the whole labelled database (ADSH, as its authors' code does: its V covers every
    database item). Then it is the database followed by any training items outside it (protocols
    whose database excludes the training set), validation items left out.
    """
    from jhash import methods  # flax and the method modules: only for a deep method's run

    asks = getattr(methods.get_method(config.method), "trains_on_database", None)
    if asks is None or not asks(config):
        return train_index
    items = np.concatenate([split.database, train_index[~np.isin(train_index, split.database)]])
    return items[~np.isin(items, validation_index)]


def load_experiment_data(config, workdir, *, new_split: bool = False) -> ExperimentData:
    """Loads ``config.dataset`` and its split.

    The split (:func:`run_split`) is made and saved in ``workdir/split.npz`` when there is none,
    and otherwise reloaded and verified against its checksum and the dataset's fingerprint.
    ``new_split`` (a run that has no checkpoint yet): a ``split.npz`` already in the work dir
    must be the one the config gives (a killed first call's), else it is an error rather than
    silently replaced (a split made elsewhere is passed as ``config.split_file``).
    With ``config.data.check_files`` every image file of a file-backed dataset is checked first.
    """
    dataset = load_dataset(config)
    if config.get("data", {}).get("check_files", False) and isinstance(dataset.x, jdata.ImageArray):
        jdata.check_image_files(dataset.x)
    split_file = pathlib.Path(workdir) / "split.npz"
    if split_file.exists() and not new_split:
        split = jdata.load_split(split_file, dataset=dataset)
    elif not distributed.is_primary():  # the other processes of a multi-process run draw it too; process 0 saves it
        split = run_split(config, dataset)
    else:
        split = run_split(config, dataset)
        if split_file.exists():
            try:
                there = jdata.load_split(split_file)
            except ValueError:
                there = None  # a truncated file of a killed first call
            if there is not None and there != split:
                raise ValueError(f"{split_file} holds another split ({there.protocol}, {there.sizes()}) than this "
                                 f"config gives ({split.protocol}, {split.sizes()}); to train on a given split pass "
                                 "--config.split_file=PATH, or use a new --workdir")
        jdata.save_split(split, split_file)
    train_index, validation_index = validation_split(split, int(config.get("validation", 0)))
    if registry.kind(config.method) == "deep":
        train_index = training_index(config, split, train_index, validation_index)  # ADSH: whole database
    return ExperimentData(dataset, split, train_index, validation_index)


# Fields added since the first runs, with the value that computes what a run made before them computed
# (their defaults, except where the new default computes something else).
_BEFORE_THE_FIELD = {"deterministic_reductions": False}


def _saved_config(path: pathlib.Path, hint: str = "") -> dict:
    """A saved config.json with the fields added to jhash since the run was made filled in so that it
    computes what the run computed (their defaults, or :data:`_BEFORE_THE_FIELD`)."""
    saved = jio.read_json(path, hint)
    for key, value in json.loads(base_config().to_json()).items():
        if key not in saved:
            saved[key] = _BEFORE_THE_FIELD.get(key, value)
        elif isinstance(value, dict) and isinstance(saved[key], dict):
            saved[key] = {**value, **saved[key]}
    return saved


def read_config(workdir) -> ml_collections.ConfigDict:
    """The config saved in ``workdir/config.json`` by ``jhash train`` (:func:`jhash.run.train`); a run made
    before a field existed gets the value that computes what it computed (:func:`_saved_config`)."""
    path = pathlib.Path(workdir) / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: is {workdir} a jhash work dir (made by `jhash train`)?")
    return ml_collections.ConfigDict(_saved_config(path))


# Fields that may differ when a run is resumed or rerun in its work dir (they do not change what is computed).
_RESUMABLE_FIELDS = ("progress", "log_every", "checkpoint_every", "keep_checkpoints", "eval")
_RESUMABLE_DATA_FIELDS = ("workers", "prefetch", "check_files")  # of config.data


def check_same_config(config, workdir, holds: str) -> None:
    """A work dir that ``holds`` a run's progress (checkpoints, or a finished run's results) is used again only
    under its own config, up to :data:`_RESUMABLE_FIELDS`: a ValueError names the fields that differ."""
    workdir = pathlib.Path(workdir)
    path = workdir / "config.json"
    if not path.exists():
        raise ValueError(f"workdir {workdir} {holds} but no config.json; use a new --workdir")
    old, new = _saved_config(path, "use a new --workdir"), json.loads(config.to_json())
    for c in (old, new):
        c["data"] = {k: v for k, v in c.get("data", {}).items() if k not in _RESUMABLE_DATA_FIELDS}
    diff = sorted(k for k in set(old) | set(new) if k not in _RESUMABLE_FIELDS and old.get(k) != new.get(k))
    if diff:
        raise ValueError(f"workdir {workdir} holds a run with a different config (fields {diff}); use a new --workdir")


def check_int(config, name: str, low: int) -> None:
    """``config.<name>`` (dotted) is an integer >= ``low``; a field the config lacks (a config.json written before
    the field existed) passes."""
    value = config
    for part in name.split("."):
        if part not in value:  # a config.json written before the field existed
            return
        value = value[part]
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"config.{name} must be an integer >= {low}, got {value!r}")


def run_once(config, workdir, body: Callable[[ExperimentData], tuple[dict, dict, int]]) -> dict:
    """A run without checkpoints in ``workdir``, with the work dir's lock: the data and split (``split.npz``
    must be the config's), config.json, the manifest's entry for this call, then ``body(data) -> (results,
    timing, steps)`` and timing.json. A call that fails leaves the manifest saying so (and, as the lock
    does, removes what it added to a new work dir); returns ``results``. A work dir that holds a finished run
    is refused for another config (:func:`check_same_config`), so its results are not overwritten."""
    workdir = pathlib.Path(workdir)
    with distributed.primary_only(jio.workdir_lock(workdir)):
        if (workdir / "metrics.json").exists():  # a finished run: rerun only under its own config
            check_same_config(config, workdir, "holds a finished run's metrics.json")
        data = load_experiment_data(config, workdir, new_split=True)
        primary = distributed.is_primary()
        if primary:
            jio.write_json(workdir / "config.json", json.loads(config.to_json()), sort_keys=True)
        manifest = Manifest(workdir, describe(config, dataset=data.dataset, split=data.split, mesh=make_mesh(1)),
                            write=primary)
        started = time.perf_counter()
        try:
            results, timing, steps = body(data)
        except BaseException as e:
            manifest.finish(status=f"stopped: {type(e).__name__}", steps=0, wall_s=time.perf_counter() - started)
            raise
        if primary:
            jio.write_json(workdir / "timing.json", timing)
        manifest.finish(status="finished", steps=steps, wall_s=time.perf_counter() - started,
                        train_s=timing["train_s"])
        return results
