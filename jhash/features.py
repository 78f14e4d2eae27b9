"""Feature-extraction mode: run a backbone once over a dataset, cache its features, train hash heads on them.

How most users get CIFAR-10 / NUS-WIDE results on one GPU: the backbone's features of every
item (e.g. a pretrained ResNet-50's 2048 pooled features, or the fc7 of AlexNet) are computed
once and written to an ``.npz`` that :func:`jhash.data.load_npz` reads as a dataset
(``x`` the features, ``y`` the labels, ``is_test`` the official test flags, ``num_classes``),
item for item in the order of the source dataset. A method then trains only its hash head
(e.g. ``model.name='mlp'``) on the cached features, in seconds per epoch.

Because items keep their order and ``is_test`` flags, the literature's protocol applied to the
feature file (``--config.protocol=cifar10``) draws exactly the split that the same
``split_seed`` draws on the images: the queries of a backbone trained on the training split
of a run stay unseen.

Two sources of a backbone:
  * :func:`from_run`: a jhash work dir (a backbone trained by ``jhash train``); its latest
    checkpoint is restored and the model's sown ``'features'`` are extracted
    (:func:`jhash.evaluate.extract_features`);
  * :func:`from_model`: a model by name with its keyword arguments, typically
    ``{'name': 'resnet50', 'weights': 'resnet50.npz'}``: pretrained weights converted by
    :mod:`jhash.models.convert` (the hash head's random weights play no part in the features).

The file also holds ``meta``, a JSON record of where the features came from (model, weights
or run, the source dataset's name and fingerprint). ``experiments/extract_features.py`` is the
command-line front end; ``experiments/configs/features.py`` trains a method on the file.
"""
from __future__ import annotations

import json
import pathlib
import time
import types

import jax
import numpy as np

from jhash import data as jdata
from jhash import io as jio
from jhash.evaluate import extract_features
from jhash.models import get_model, init_model, pretrained
from jhash.train.state import make_mesh


def features_of(model, params, model_state, x, *, batch_size: int = 256, mesh=None) -> np.ndarray:
    """The ``'features'`` ``model`` sows for every item of ``x`` (evaluation mode), float32 (n, d)."""
    method = types.SimpleNamespace(model=model)
    state = types.SimpleNamespace(params=params, model_state=model_state)
    return extract_features(method, state, x, batch_size=batch_size, mesh=mesh)


def from_model(model_config: dict, dataset, *, batch_size: int = 256, seed: int = 0, mesh=None) -> np.ndarray:
    """Features of ``dataset`` (a :class:`jhash.data.Dataset`) by the model ``model_config``
    (``{'name': ..., **keyword arguments}``), initialised with ``seed`` (and its ``weights`` file, if any)."""
    kwargs = dict(model_config)
    if "name" not in kwargs:
        raise ValueError(f"model_config must name the model ({{'name': 'resnet50', ...}}), got {model_config!r}")
    model = get_model(kwargs.pop("name"), bits=1, **kwargs)
    params, model_state = init_model(model, jax.random.PRNGKey(seed), jdata.to_float(dataset.x[:1]))
    params, model_state = pretrained.load(model, params, model_state)
    return features_of(model, params, model_state, dataset.x, batch_size=batch_size, mesh=mesh)


def from_run(workdir, *, batch_size: int = 256, mesh=None):
    """``(features, dataset, config)``: the features of every item of a run's dataset by its trained model."""
    from jhash.experiment import read_config
    from jhash.run import restore_run

    config = read_config(workdir)
    mesh = mesh or make_mesh(config.num_devices)
    method, state, data = restore_run(config, workdir, mesh=mesh)
    features = features_of(method.model, state.params, state.model_state, data.dataset.x, batch_size=batch_size,
                           mesh=mesh)
    return features, data.dataset, config


def save(path, features: np.ndarray, dataset, meta: dict) -> dict:
    """Writes the feature file ``path`` (``x``, ``y``, ``is_test``, ``num_classes``, ``meta``); returns ``meta`` as written."""
    features = np.asarray(features, np.float32)
    if features.ndim != 2 or len(features) != len(dataset):
        raise ValueError(f"features must be (n, d) with n = {len(dataset)} items of {dataset.name!r}, "
                         f"got shape {features.shape}")
    if not np.isfinite(features).all():
        raise ValueError("features contain NaN or inf values")
    path = pathlib.Path(path).expanduser()
    if path.suffix != ".npz":
        raise ValueError(f"path must end in .npz, got {str(path)!r}")
    meta = {**meta, "source_dataset": dataset.name, "source_fingerprint": dataset.fingerprint,
            "n": int(len(features)), "dim": int(features.shape[1])}
    arrays = {"x": features, "y": np.asarray(dataset.y), "num_classes": np.int64(dataset.num_classes),
              "meta": np.array(json.dumps(meta, sort_keys=True))}
    if dataset.is_test is not None:
        arrays["is_test"] = np.asarray(dataset.is_test)
    path.parent.mkdir(parents=True, exist_ok=True)
    jio.savez(path, **arrays)
    return meta


def read_meta(path) -> dict:
    """The ``meta`` record of a feature file written by :func:`save`."""
    with np.load(pathlib.Path(path).expanduser(), allow_pickle=False) as z:
        if "meta" not in z.files:
            raise ValueError(f"{path} has no meta record: not a feature file written by jhash.features.save")
        return json.loads(str(z["meta"]))


def extract(out, *, workdir=None, model_config: dict | None = None, dataset: str | None = None,
            data_dir: str | None = None, batch_size: int = 256, seed: int = 0) -> dict:
    """Extracts and saves features: from a run (``workdir``) or from a model (``model_config`` on ``dataset``).

    Returns the file's meta record, with ``extract_s``, the seconds taken by the extraction.
    """
    if (workdir is None) == (model_config is None):
        raise ValueError("give exactly one of workdir= (a trained run) or model_config= (a model, e.g. pretrained)")
    started = time.perf_counter()
    if workdir is not None:
        if dataset is not None:
            raise ValueError("dataset= is taken from the run's config when workdir= is given")
        features, ds, config = from_run(workdir, batch_size=batch_size)
        meta = {"from": "run", "workdir": str(workdir), "model": config.model.to_dict(), "method": config.method,
                "trained_on": f"{config.protocol or config.dataset} split, split_seed {config.split_seed}"}
    else:
        if dataset is None:
            raise ValueError("dataset= is needed with model_config=")
        ds = jdata.load(dataset, data_dir=data_dir or None)
        features = from_model(model_config, ds, batch_size=batch_size, seed=seed)
        meta = {"from": "model", "model": dict(model_config), "seed": seed}
    seconds = time.perf_counter() - started
    return save(out, features, ds, {**meta, "extract_s": round(seconds, 2)})
