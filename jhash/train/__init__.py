"""The one trainer (state, step factory, mesh/sharding, checkpoints, logging)."""
from jhash.train.checkpoint import CheckpointError, Checkpointer
from jhash.train.state import TrainState, make_mesh, make_optimizer
from jhash.train.trainer import ExperimentData, load_experiment_data, make_train_step, read_config, train

__all__ = [
    "CheckpointError", "Checkpointer", "ExperimentData", "TrainState", "load_experiment_data",
    "make_mesh", "make_optimizer", "make_train_step", "read_config", "train",
]
