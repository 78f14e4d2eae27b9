"""Multi-host runs on JAX's own distributed runtime: start-up, each process's share of a batch, process 0's writes.

A multi-host run is N copies of the same command, one per host (or per local process),
each told the coordinator's address, the process count and its own id::

    jhash train ... --coordinator=HOST:PORT --num_processes=2 --process_id=0   # on host 0
    jhash train ... --coordinator=HOST:PORT --num_processes=2 --process_id=1   # on host 1

(``--distributed`` alone lets JAX detect them on Cloud TPU, SLURM and the other clusters
``jax.distributed.initialize`` knows.) The mesh then spans every process's devices. Every
process reads only the rows of each global batch that its own devices hold
(:func:`local_rows`), and the global array is assembled with
``jax.make_array_from_process_local_data`` (:func:`global_batch`), so the step computes on
exactly the batch a one-process run computes on. Checkpoints are saved and restored by all
processes together (orbax); files that describe the run (config, split, logs, metrics,
codes) are written by process 0 only (:func:`is_primary`). The work dir must be one folder
that all processes see (a shared file system, or one machine).
"""
from __future__ import annotations

import contextlib

import jax
import numpy as np


def initialize(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None,
               *, heartbeat_timeout_s: int = 100) -> None:
    """Joins this process to a multi-process run (``jax.distributed.initialize``); must come before any
    other JAX call. With no arguments JAX detects the cluster (Cloud TPU, SLURM, ...). CPU devices
    exchange their collectives over gloo."""
    if coordinator is not None or num_processes is not None or process_id is not None:
        if coordinator is None or num_processes is None or process_id is None:
            raise ValueError("a multi-process run needs all of --coordinator=HOST:PORT, --num_processes=N and "
                             "--process_id=I (or --distributed alone, where JAX detects them)")
        if num_processes < 1 or not 0 <= process_id < num_processes:
            raise ValueError(f"--process_id must be in [0, --num_processes) and --num_processes >= 1, got "
                             f"process_id={process_id}, num_processes={num_processes}")
        host, _, port = coordinator.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"--coordinator must be HOST:PORT, got {coordinator!r}")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator, num_processes, process_id, heartbeat_timeout_seconds=heartbeat_timeout_s)


def is_primary() -> bool:
    """True in process 0, the one that writes the run's files (and in every one-process run)."""
    return jax.process_index() == 0


def primary_only(context):
    """``context`` (e.g. the work dir's lock) in process 0; nothing in the others."""
    return context if is_primary() else contextlib.nullcontext()


def sync(name: str) -> None:
    """Waits until every process reaches the point ``name`` (nothing to wait for in a one-process run)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def local_rows(sharding, n: int) -> tuple[int, int]:
    """``(lo, hi)``: the rows of an ``n``-row array split by ``sharding`` that this process's devices hold.

    Raises ValueError when they are not one contiguous range (a mesh whose device order
    interleaves processes)."""
    spans = sorted({(s.start or 0, n if s.stop is None else s.stop)
                    for s, *_ in sharding.addressable_devices_indices_map((n,)).values()})
    lo, hi = spans[0][0], spans[0][0]
    for a, b in spans:
        if a > hi:
            raise ValueError(f"this process's devices hold rows {spans} of {n}, not one contiguous range")
        hi = max(hi, b)
    return lo, hi


def global_batch(local: dict, sharding, n: int) -> dict:
    """The global arrays of a batch of ``n`` rows from this process's rows ``local`` (:func:`local_rows`);
    0-d entries (the evaluation's ``'valid'``) stay host values. One process: ``jax.device_put`` (in
    ``make_array_from_process_local_data`` a Ctrl-C was at times lost or killed the process)."""
    if jax.process_count() == 1:
        return {k: jax.device_put(v, sharding) if np.ndim(v) else v for k, v in local.items()}
    return {k: (jax.make_array_from_process_local_data(sharding, v, (n,) + v.shape[1:]) if np.ndim(v) else v)
            for k, v in local.items()}


def host_value(x) -> np.ndarray:
    """``x`` whole as a NumPy array in every process, also when its shards live on other processes
    (then every process must call this: it gathers)."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable and not x.is_fully_replicated:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(jax.device_get(x))
