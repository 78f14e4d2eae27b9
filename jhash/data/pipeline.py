"""Host-side batching whose order is a pure function of (seed, step).

Epoch ``e`` visits the items in the order ``np.random.default_rng([seed, e]).permutation(n)``
and the last ``n % batch_size`` items of every epoch are dropped, so every batch has the
same static shape and step ``s`` holds the same items whether training ran from step 0
or resumed from a checkpoint at step ``s``.
"""

from __future__ import annotations

import functools
from typing import Iterator

import numpy as np

__all__ = ["batch_indices", "iterate_batches", "steps_per_epoch", "to_float"]


def _check_int(name: str, v, minimum: int) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise ValueError(f"{name} must be an int, got {v!r}")
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    return int(v)


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Full batches per epoch (the remainder is dropped)."""
    n = _check_int("n", n, 1)
    batch_size = _check_int("batch_size", batch_size, 1)
    if batch_size > n:
        raise ValueError(f"batch_size={batch_size} is larger than the number of items n={n}")
    return n // batch_size


@functools.lru_cache(maxsize=4)
def _permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    p = np.random.default_rng([seed, epoch]).permutation(n)
    p.flags.writeable = False
    return p


def batch_indices(n: int, batch_size: int, seed: int, step: int) -> np.ndarray:
    """The item indices (int64, shape ``(batch_size,)``) of global step `step`."""
    spe = steps_per_epoch(n, batch_size)
    seed = _check_int("seed", seed, 0)
    step = _check_int("step", step, 0)
    epoch, pos = divmod(step, spe)
    return _permutation(int(n), seed, epoch)[pos * batch_size : (pos + 1) * batch_size].astype(np.int64)


def iterate_batches(
    x: np.ndarray,
    y: np.ndarray | None,
    batch_size: int,
    seed: int,
    start_step: int = 0,
    num_steps: int | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """Yields ``{'x': x[idx], 'y': y[idx], 'index': idx}`` for steps start_step, start_step+1, ...

    Endless when `num_steps` is None. `y` may be None (then no ``'y'`` key).
    """
    n = len(x)
    if y is not None and len(y) != n:
        raise ValueError(f"iterate_batches: x has {n} items but y has {len(y)}")
    steps_per_epoch(n, batch_size)  # validates n and batch_size
    start_step = _check_int("start_step", start_step, 0)
    if num_steps is not None:
        num_steps = _check_int("num_steps", num_steps, 0)
    step = start_step
    while num_steps is None or step < start_step + num_steps:
        idx = batch_indices(n, batch_size, seed, step)
        batch = {"x": x[idx], "index": idx}
        if y is not None:
            batch["y"] = y[idx]
        yield batch
        step += 1


def to_float(x):
    """Model input from a dataset's x: uint8 -> float32 in [0, 1]; floats -> float32.

    Works on NumPy and JAX arrays alike.
    """
    dtype = np.dtype(x.dtype)
    if dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255)
    if np.issubdtype(dtype, np.floating):
        return x.astype(np.float32)
    raise ValueError(f"to_float: expected uint8 images or float features, got dtype {dtype}")
