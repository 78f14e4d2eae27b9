"""The input pipeline: batches whose content is a pure function of (seed, step), streamed by grain.

Epoch ``e`` visits the items in the order ``np.random.default_rng([seed, e]).permutation(n)``
and the last ``n % batch_size`` items of every epoch are dropped, so every batch has the
same static shape and step ``s`` holds the same items whether training ran from step 0
or resumed from a checkpoint at step ``s``.

:func:`stream` turns such a schedule into a grain pipeline (``grain.MapDataset`` over the
steps, one element per batch): a batch is gathered, decoded (for a lazy
:class:`jhash.data.images.ImageArray`: read, resized and cropped per item; random training
crops of item j drawn from ``default_rng([seed, step, 1, j])``, so they too are a pure function
of the step, whichever process reads which rows) and made model-ready (:func:`to_float`) in
grain's worker processes for datasets read from files, or by a prefetching thread for arrays already in memory (copying them into
workers would only cost memory), and prefetched so the device does not wait in steady state.
Host memory holds the prefetched batches, never the dataset.
"""

from __future__ import annotations

import functools
import os
from typing import Callable, Iterator

import numpy as np

from jhash.data.images import ImageArray

__all__ = ["BatchReader", "batch_indices", "iterate_batches", "num_workers", "steps_per_epoch", "stream",
           "to_float"]


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

    Endless when `num_steps` is None. `y` may be None (then no ``'y'`` key). ``x`` stays as it
    is (uint8 images stay uint8); :func:`stream` is the trainer's model-ready, prefetched form.
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


class BatchReader:
    """``reader(step) -> batch``: the model-ready batch of a step (picklable, so grain workers can run it).

    Args:
      x: the dataset's items (an array or a lazy :class:`ImageArray`), indexed by dataset position.
      y: their labels, or None.
      positions: the dataset positions the schedule's indices refer to (e.g. the training set).
      indices: ``indices(step) -> positions[...]`` indices of the step's items (int array).
      seed: for the random training crops of an :class:`ImageArray`; item ``j`` of step ``s``'s batch
        is cropped with ``default_rng([seed, s, 1, j])``, so any process reading any rows of the
        batch draws the crops a one-process run draws.
      crop: ``None`` (the evaluation view) or a training crop of :data:`jhash.data.images.TRAIN_CROPS`.
      pad_to: pad the last, shorter batch with zeros to this size (evaluation; the key
        ``'valid'`` says how many rows of the whole batch are real).
      rows: ``(lo, hi)``: read only these rows of the (padded) batch, the ones this process's
        devices hold in a multi-process run (:func:`jhash.distributed.local_rows`); None = all.
    """

    def __init__(self, x, y, positions, indices: Callable[[int], np.ndarray], *, seed: int = 0,
                 crop: str | None = None, pad_to: int | None = None, rows: tuple[int, int] | None = None):
        self.x, self.y, self.positions, self.indices = x, y, np.asarray(positions), indices
        self.seed, self.crop, self.pad_to, self.rows = seed, crop, pad_to, rows

    def __call__(self, step: int) -> dict:
        step = int(step)
        idx = np.asarray(self.indices(step))
        valid = len(idx)
        lo, hi = self.rows or (0, max(valid, self.pad_to or 0))
        mine = np.arange(min(lo, valid), min(hi, valid))  # the real rows read here
        pos = self.positions[idx[mine]]
        if isinstance(self.x, ImageArray) and self.crop is not None and len(pos):
            x = np.stack([self.x.train_item(p, np.random.default_rng([self.seed, step, 1, j]), self.crop)
                          for p, j in zip(pos, mine)])
        else:
            x = self.x[pos]
        batch = {"x": to_float(x), "index": idx[mine].astype(np.int32)}
        if self.y is not None:
            batch["y"] = np.asarray(self.y[pos])
        pad = hi - lo - len(mine)
        if pad and self.pad_to is None:
            raise ValueError(f"rows {lo}:{hi} of a batch of {valid} items need pad_to")
        if self.pad_to is not None:
            batch = {k: np.concatenate([v, np.zeros((pad,) + v.shape[1:], v.dtype)]) if pad else v
                     for k, v in batch.items()}
            batch["valid"] = np.int32(valid)
        return batch


def num_workers(x, workers: int) -> int:
    """Worker processes for ``x``: ``workers`` >= 0 as given; -1 = the CPU count for a lazy
    :class:`ImageArray` (decoding is the work), 0 for arrays in memory."""
    if workers < -1:
        raise ValueError(f"config.data.workers must be -1 (auto) or >= 0, got {workers}")
    if workers == -1:
        return (os.cpu_count() or 1) if isinstance(x, ImageArray) else 0
    return workers


def stream(reader: BatchReader, start: int, stop: int, *, workers: int = 0, prefetch: int = 2) -> Iterator[dict]:
    """The batches ``reader(s)`` for s in [start, stop), in order, from a grain pipeline.

    ``workers`` > 0: grain worker processes (``mp_prefetch``), each holding ``prefetch``
    batches; 0: a thread of this process prefetches ``prefetch`` batches. Closing the
    generator (or finishing it) stops the workers and frees their shared memory.
    """
    import grain

    if stop <= start:
        return
    ds = grain.MapDataset.range(start, stop).map(reader)
    if workers > 0:
        _absl_flags_parsed()
        it = ds.to_iter_dataset(grain.ReadOptions(num_threads=0, prefetch_buffer_size=0)).mp_prefetch(
            grain.MultiprocessingOptions(num_workers=workers, per_worker_buffer_size=max(1, prefetch)))
    else:
        it = ds.to_iter_dataset(grain.ReadOptions(num_threads=1 if prefetch else 0, prefetch_buffer_size=prefetch))
    it = iter(it)
    try:
        yield from it
    finally:
        it.close()


def _absl_flags_parsed() -> None:
    """grain's worker processes read absl flags; a program that never parsed them (any library user) must
    mark them parsed first, or grain fails with UnparsedFlagAccessError."""
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


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
