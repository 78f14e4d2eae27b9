"""Pretrained backbone weights, put into a model's variables after initialisation (``load``, as big_vision's
``params = model.load(params, path)``), and recorded by their SHA-256.

A backbone of :mod:`jhash.models.backbones` with ``weights=PATH`` (``config.model.weights``)
names a file written by :mod:`jhash.models.convert`. Initialising the model never reads it: the
trunk starts as torchvision initialises it and :func:`load` then replaces the trunk's variables
by the file's arrays, wherever the backbone sits (a :class:`jhash.models.HashNetwork` at the
root, or under ``backbone`` in a wrapper such as :class:`jhash.models.CodeClassifier`). The
trainer loads the files when a run starts and writes :func:`record` (path, architecture,
SHA-256 of each file) into the run's manifest (``pretrained``); a resumed run restores its
parameters from the checkpoint and :func:`check_unchanged` refuses a file that is still at its
path but whose digest differs from the record. ``jhash eval`` and ``restore_run`` restore the
checkpoint and never read the file.
"""
from __future__ import annotations

import dataclasses
import pathlib

import flax.linen as nn
import jax.numpy as jnp
from flax import traverse_util

from jhash.models.convert import file_sha256, load_weights
from jhash.models.nets import HashNetwork


def sites(model: nn.Module, path: tuple = ()) -> list[tuple[tuple, nn.Module]]:
    """``[(path in the variable tree, backbone)]`` for every backbone of ``model`` that names a weights file.

    A :class:`HashNetwork` shares its scope with its backbone (same path); any other module's
    submodule field ``f`` sits at ``path + (f,)`` (flax names such submodules after the field)."""
    if isinstance(model, HashNetwork):
        return sites(model.backbone, path)
    if getattr(model, "weights", ""):
        return [(path, model)]
    found = []
    for field in dataclasses.fields(model):
        value = getattr(model, field.name, None)
        if isinstance(value, nn.Module) and field.name not in ("parent", "name"):
            found += sites(value, path + (field.name,))
    return found


def load(model: nn.Module, params, model_state):
    """``(params, model_state)`` with the trunk variables of every backbone of ``model`` that names a
    weights file replaced by the file's arrays (cast to each variable's dtype); the rest unchanged."""
    found = sites(model)
    if not found:
        return params, model_state
    trees = {"params": traverse_util.flatten_dict(dict(params)),
             **{c: traverse_util.flatten_dict(dict(v)) for c, v in model_state.items()}}
    for path, backbone in found:
        for key, array in load_weights(backbone.weights, arch=backbone.arch).items():
            collection, *rest = key.split("/")
            where = path + tuple(rest)
            leaf = trees.get(collection, {}).get(where)
            if leaf is None:
                raise ValueError(f"weights file {backbone.weights!r} ({backbone.arch}) has {key!r}, which the model "
                                 f"does not have at {'/'.join(where)}")
            if tuple(array.shape) != tuple(leaf.shape):
                raise ValueError(f"weights file {backbone.weights!r}: {key} has shape {array.shape}, "
                                 f"the {backbone.arch} model needs {tuple(leaf.shape)}")
            trees[collection][where] = jnp.asarray(array, leaf.dtype)
    params = traverse_util.unflatten_dict(trees.pop("params"))
    return params, {c: traverse_util.unflatten_dict(v) for c, v in trees.items()}


def record(model: nn.Module) -> list[dict]:
    """``[{'path', 'arch', 'sha256'}]`` of the weights files of ``model`` (empty without any)."""
    return [{"path": str(b.weights), "arch": b.arch, "sha256": file_sha256(pathlib.Path(b.weights).expanduser())}
            for _, b in sites(model)]


def check_unchanged(model: nn.Module, recorded: list[dict] | None) -> list[dict]:
    """On resuming a run: ``recorded`` (its manifest's ``pretrained``), after checking that every weights
    file of ``model`` that is still at its path has the recorded SHA-256 (a missing file is fine: the
    checkpoint holds the parameters). A run recorded before digests were (``None``) is not checked."""
    if recorded is None:
        return []
    digests = {r["path"]: r["sha256"] for r in recorded}
    for _, backbone in sites(model):
        path = pathlib.Path(backbone.weights).expanduser()
        if backbone.weights in digests and path.is_file():
            now = file_sha256(path)
            if now != digests[backbone.weights]:
                raise ValueError(f"weights file {backbone.weights} changed since the run started (SHA-256 "
                                 f"{digests[backbone.weights][:12]}... recorded, {now[:12]}... now); the run's "
                                 "checkpoint holds the parameters: restore the file, move it away, or use a new --workdir")
    return list(recorded)
