"""The train state (a pytree), the optimizer from the config, and the device mesh."""
from __future__ import annotations

from typing import Any

import flax.struct
import jax
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


@flax.struct.dataclass
class TrainState:
    """Everything a step reads and writes; checkpointed whole.

    ``params`` are the trainable parameters, ``model_state`` the model's other variable
    collections (e.g. batch-norm statistics; an empty dict for most models).
    ``key`` is a raw uint32 PRNG key; the randomness of step ``s`` is ``fold_in(key, s)``,
    so a resumed run draws exactly what an uninterrupted one draws.
    """

    step: jax.Array
    params: Any
    model_state: Any
    opt_state: Any
    method_state: Any
    key: jax.Array


def make_optimizer(opt, *, steps_per_epoch: int, num_steps: int) -> optax.GradientTransformation:
    """An optax optimizer from ``config.optimizer`` (name, learning_rate, momentum, weight_decay, schedule...)."""
    lr = float(opt.learning_rate)
    if lr <= 0:
        raise ValueError(f"optimizer.learning_rate must be > 0, got {lr}")
    if opt.schedule == "constant":
        schedule = optax.constant_schedule(lr)
    elif opt.schedule == "step":
        every = int(opt.decay_every_epochs) * steps_per_epoch
        if every <= 0:
            raise ValueError(f"optimizer.decay_every_epochs must be > 0, got {opt.decay_every_epochs}")
        schedule = optax.exponential_decay(lr, transition_steps=every, decay_rate=float(opt.decay_factor), staircase=True)
    elif opt.schedule == "cosine":
        schedule = optax.cosine_decay_schedule(lr, decay_steps=max(num_steps, 1))
    else:
        raise ValueError(f"optimizer.schedule must be one of constant, step, cosine; got {opt.schedule!r}")
    wd = float(opt.weight_decay)
    if opt.name == "adamw":
        return optax.adamw(schedule, weight_decay=wd)
    base = {
        "adam": lambda: optax.adam(schedule),
        "sgd": lambda: optax.sgd(schedule),
        "momentum": lambda: optax.sgd(schedule, momentum=float(opt.momentum)),
    }
    if opt.name not in base:
        raise ValueError(f"optimizer.name must be one of adam, adamw, sgd, momentum; got {opt.name!r}")
    # L2 weight decay added to the gradient, as PyTorch's SGD/Adam weight_decay does.
    return optax.chain(optax.add_decayed_weights(wd), base[opt.name]()) if wd else base[opt.name]()


def make_mesh(num_devices: int = 0) -> Mesh:
    """A 1-D ``('data',)`` mesh over the first ``num_devices`` devices (0 = all); all the devices of
    all processes in a multi-process run."""
    devices = jax.devices()
    if num_devices < 0 or num_devices > len(devices):
        raise ValueError(f"num_devices must be between 0 and {len(devices)} (0 = all), got {num_devices}")
    if jax.process_count() > 1 and num_devices not in (0, len(devices)):
        raise ValueError(f"a run of {jax.process_count()} processes uses all {len(devices)} devices; "
                         f"num_devices must be 0 or {len(devices)}, got {num_devices}")
    return Mesh(np.asarray(devices[: num_devices or len(devices)]), ("data",))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def data_sharded(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over the mesh's ``'data'`` axis."""
    return NamedSharding(mesh, P("data"))


def state_shardings(state: TrainState, mesh: Mesh, sharded_keys=()) -> TrainState:
    """Shardings of ``state`` (a pytree like it): everything replicated except the entries
    ``sharded_keys`` of ``state.method_state``, whose leading axis is split over ``'data'``
    when its length is a multiple of the mesh size (replicated otherwise)."""
    shardings = jax.tree.map(lambda _: replicated(mesh), state)
    if not sharded_keys:
        return shardings
    missing = sorted(set(sharded_keys) - set(state.method_state))
    if missing:
        raise ValueError(f"sharded_state names {missing}, which the method state (keys {sorted(state.method_state)}) lacks")
    method_shardings = dict(shardings.method_state)
    for k in sharded_keys:
        rows = jax.tree.leaves(state.method_state[k])[0].shape[0]
        spec = data_sharded(mesh) if rows % mesh.size == 0 else replicated(mesh)
        method_shardings[k] = jax.tree.map(lambda _: spec, state.method_state[k])
    return shardings.replace(method_state=method_shardings)
