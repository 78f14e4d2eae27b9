"""A shallow method as a jhash run (``jhash train --config method:itq``): fit, save, score, in the one work dir layout.

``train(config, workdir)`` holds the work dir's lock, loads the dataset and its split as every run
does (:func:`jhash.experiment.load_experiment_data`: ``split.npz``, validation items), fits the
method on the training items' features with ``jax.random.key(config.seed)`` and writes

  hasher.npz      the fitted hash function (:func:`jhash.shallow.common.hasher_arrays`) and, with
                  ``config.shallow.center``, the training mean ``feature_mean``: ``jhash eval``
                  encodes and scores again from it without refitting
  metrics.json, codes.npz, curves.npz   by the evaluator's scoring (:func:`jhash.evaluate.score_run`)
  timing.json     ``train_s`` = ``fit_s`` (the fit, JAX compilation included), ``encode_s`` (queries +
                  database), ``eval_s``
  config.json, manifest.json (one entry per call, like a deep run's)

The features of an item are its values flattened and divided by ``config.shallow.scale`` (raw
pixels to [0, 1], or a feature file used as it is), less the training mean with
``config.shallow.center``: exactly what ``experiments/shallow_mnist.py`` fitted on before it became
a sweep, so a run's codes equal that script's for the same method, bits, seed and split. A shallow
run has no checkpoint: a call on a work dir that holds a finished run fits again.
"""
from __future__ import annotations

import inspect
import pathlib
import time

import jax
import numpy as np

from jhash import distributed
from jhash import evaluate as jeval
from jhash import io as jio
from jhash import shallow
from jhash.experiment import check_int, load_experiment_data, run_once
from jhash.shallow.common import hasher_arrays, hasher_from_arrays
from jhash.shallow.settings import method_names

__all__ = ["validate_config", "features", "train", "evaluate"]

HASHER_FILE = "hasher.npz"


def validate_config(config) -> None:
    """Clear errors for a shallow run's config: the method, bits, eval fields and the fit's keyword arguments."""
    if config.method not in method_names():
        raise ValueError(f"config.method must be one of {', '.join(method_names())}, got {config.method!r}")
    for name in ("bits", "eval.batch_size"):
        check_int(config, name, 1)
    for name in ("seed", "split_seed", "validation", "eval.radius"):
        check_int(config, name, 0)
    if config.eval.radius > config.bits:
        raise ValueError(f"config.eval.radius must be at most config.bits ({config.bits}), got {config.eval.radius}")
    scale = config.shallow.scale
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
        raise ValueError(f"config.shallow.scale must be a positive number, got {scale!r}")
    fit = shallow.get_method(config.shallow.fit)
    accepted = set(inspect.signature(fit).parameters) - {"features", "labels", "bits", "key"}
    unknown = sorted(set(config.get(config.method, {}) or {}) - accepted)
    if unknown:
        raise ValueError(f"config.{config.method} has {unknown}, which {config.shallow.fit}'s fit does not take; "
                         f"it takes {sorted(accepted)}")


def features(config, dataset, index, mean=None) -> np.ndarray:
    """The items ``index`` of ``dataset`` as the method sees them: flattened float32 divided by
    ``config.shallow.scale``, less ``mean`` when given (the training mean with ``config.shallow.center``)."""
    x = dataset.x[index].reshape(len(index), -1).astype(np.float32) / config.shallow.scale
    return x if mean is None else x - mean


def train(config, workdir) -> dict:
    """Fits ``config.method`` on the run's training split and evaluates it (see the module docstring)."""
    validate_config(config)
    workdir = pathlib.Path(workdir)

    def fit_and_score(data):
        started = time.perf_counter()
        x_train = features(config, data.dataset, data.train_index)
        mean = x_train.mean(0) if config.shallow.center else None
        if mean is not None:
            x_train = x_train - mean
        hasher = shallow.get_method(config.shallow.fit)(x_train, data.y_train, bits=config.bits,
                                                        key=jax.random.key(config.seed),
                                                        **dict(config.get(config.method, {}) or {}))
        jax.block_until_ready(hasher.params)
        fit_s = time.perf_counter() - started
        if distributed.is_primary():
            extra = {} if mean is None else {"feature_mean": mean}
            jio.savez(workdir / HASHER_FILE, **hasher_arrays(hasher), **extra)
        timing = {"train_s": fit_s, "fit_s": fit_s, "train_s_this_call": fit_s, "train_s_complete": True}
        started = time.perf_counter()
        results = _score(config, workdir, data, hasher, mean, timing)
        timing["eval_s"] = time.perf_counter() - started
        return results, timing, 1

    return run_once(config, workdir, fit_and_score)


def evaluate(config, workdir) -> dict:
    """Encodes and scores the run again with its saved hash function (``jhash eval``; no refit)."""
    workdir = pathlib.Path(workdir)
    path = workdir / HASHER_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {workdir} a finished shallow run (made by `jhash train`)?")
    with distributed.primary_only(jio.workdir_lock(workdir, create=False)):
        data = load_experiment_data(config, workdir)
        with np.load(path) as z:
            hasher = hasher_from_arrays(z)
            mean = np.asarray(z["feature_mean"]) if "feature_mean" in z.files else None
        timing_path = workdir / "timing.json"
        timing = jio.read_json(timing_path) if timing_path.is_file() else {}
        started = time.perf_counter()
        results = _score(config, workdir, data, hasher, mean, timing)
        timing["eval_s"] = time.perf_counter() - started
        if distributed.is_primary():
            jio.write_json(timing_path, timing)
        return results


def _score(config, workdir, data, hasher, mean, timing: dict) -> dict:
    encode_s = [0.0]

    def codes_of(index, *, database: bool = False):
        x = features(config, data.dataset, index, mean)
        started = time.perf_counter()
        codes = np.asarray(hasher.encode(x), np.int8)
        encode_s[0] += time.perf_counter() - started
        return codes

    results = jeval.score_run(config, workdir, data, codes_of, timing=timing)
    timing["encode_s"] = encode_s[0]
    return results
