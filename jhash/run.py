"""One run path for every method: ``train``, ``evaluate``, ``restore_run`` and ``validate_config`` by the method's kind.

  deep     (jhash.methods)  jhash.train.trainer trains (checkpoints, resume), jhash.evaluate encodes and scores
  shallow  (jhash.shallow)  jhash.shallow.runner fits on the training split's features and saves the fitted
                            hash function (hasher.npz); the same scoring (jhash.evaluate.score_run)
  online   (jhash.online)   jhash.online.runner runs the classes-arriving-in-stages protocol on the run's split;
                            the final stage's codes are scored like any run's, the stages' figures go in stages.json

Every kind writes the same work dir: config.json, split.npz, manifest.json, timing.json, metrics.json,
codes.npz, curves.npz under the work dir's lock, so ``jhash sweep``, ``jhash aggregate`` and
``jhash reproduce`` treat them alike. This module sits above the trainer and the evaluator and
imports both; neither imports it.
"""
from __future__ import annotations

import pathlib

import jax

from jhash import evaluate as jeval
from jhash import methods, registry
from jhash.experiment import load_experiment_data
from jhash.online import runner as online_runner
from jhash.shallow import runner as shallow_runner
from jhash.train import trainer
from jhash.train.checkpoint import Checkpointer
from jhash.train.state import make_mesh, make_optimizer, state_shardings

__all__ = ["train", "evaluate", "restore_run", "validate_config"]

_RUNNERS = {"shallow": shallow_runner, "online": online_runner}


def validate_config(config) -> None:
    """Clear errors for a config its runner cannot use (an unknown method name lists every known one)."""
    kind = registry.kind(config.method)
    (_RUNNERS[kind] if kind in _RUNNERS else trainer).validate_config(config)


def train(config, workdir, *, on_step=None, evaluate: bool = True) -> dict:
    """Runs ``config`` in ``workdir`` and returns its metrics (see :func:`jhash.train.trainer.train` for the deep
    methods' arguments; ``on_step`` and ``evaluate=False`` apply to them only)."""
    kind = registry.kind(config.method)
    if kind == "deep":
        return trainer.train(config, workdir, on_step=on_step, evaluate=evaluate)
    return _RUNNERS[kind].train(config, workdir)


def evaluate(config, workdir) -> dict:
    """Evaluates a run again from what it saved (``jhash eval``): a deep run's latest checkpoint, a shallow run's
    fitted hash function (no refit), an online run's final codes."""
    kind = registry.kind(config.method)
    if kind != "deep":
        return _RUNNERS[kind].evaluate(config, workdir)
    data = load_experiment_data(config, workdir)
    mesh = make_mesh(config.num_devices)
    method, state, data = restore_run(config, workdir, data=data, mesh=mesh)
    return jeval.evaluate_run(config, workdir, method=method, state=state, data=data, mesh=mesh)


def restore_run(config, workdir, *, data=None, mesh=None):
    """``(method, state, data)`` of a deep run: its method rebuilt from ``config`` and the newest intact checkpoint.

    ``data``: the run's data when already loaded (else loaded from the work dir's split). The
    restore target is abstract (:func:`jax.eval_shape` of the trainer's initial state): nothing is
    initialised or computed for it; its optimizer-state structure comes from ``config.optimizer``
    because the checkpoint's digest covers the whole train state.
    """
    data = data if data is not None else load_experiment_data(config, workdir)
    mesh = mesh or make_mesh(config.num_devices)
    method = methods.build(config, train_labels=data.y_train)
    optimizer = make_optimizer(config.optimizer, steps_per_epoch=1, num_steps=1)  # the state's structure only
    sample = data.sample_x()
    abstract = jax.eval_shape(lambda: trainer.init_state(method, optimizer, config, sample))
    target = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract,
                          state_shardings(abstract, mesh, method.sharded_state))
    ckpt = Checkpointer(pathlib.Path(workdir) / "checkpoints")
    try:
        return method, ckpt.restore_newest_intact(target, set_aside=False), data
    finally:
        ckpt.close()
