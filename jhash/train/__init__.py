"""The one trainer (state, step factory, mesh/sharding, checkpoints, logging).

``train``, ``make_train_step``, ``read_config``, ``ExperimentData`` and ``load_experiment_data``
are loaded from :mod:`jhash.train.trainer` on first use, so that :mod:`jhash.evaluate` (which the
trainer imports) can use :mod:`jhash.train.state` without importing the trainer back.
"""
import importlib

from jhash.train.checkpoint import CheckpointError, Checkpointer
from jhash.train.state import TrainState, make_mesh, make_optimizer

_FROM_TRAINER = ("ExperimentData", "load_experiment_data", "make_train_step", "read_config", "train")

__all__ = [
    "CheckpointError", "Checkpointer", "ExperimentData", "TrainState", "load_experiment_data",
    "make_mesh", "make_optimizer", "make_train_step", "read_config", "train",
]


def __getattr__(name):
    if name in _FROM_TRAINER:
        return getattr(importlib.import_module("jhash.train.trainer"), name)
    raise AttributeError(f"module 'jhash.train' has no attribute {name!r}")
