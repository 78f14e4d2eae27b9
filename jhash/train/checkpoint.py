"""Orbax checkpoints of the train state, with a content digest so a damaged checkpoint is a clear error.

Orbax writes each checkpoint into a temporary folder and renames it when complete, so a
crash or a kill while saving leaves the previous checkpoint intact (the unfinished folder
is ignored). Each checkpoint also stores the SHA-256 of every array it holds; a restore
that reads different bytes, or cannot read the files at all, raises :class:`CheckpointError`.
"""
from __future__ import annotations

import hashlib
import pathlib

import jax
import numpy as np
import orbax.checkpoint as ocp


class CheckpointError(ValueError):
    """A checkpoint cannot be restored (missing, truncated, or its content changed)."""


def tree_digest(tree) -> str:
    """SHA-256 over the shapes, dtypes and bytes of every leaf of ``tree`` (in tree order)."""
    h = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        a = np.asarray(jax.device_get(leaf))
        if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            a = np.asarray(jax.random.key_data(leaf))
        h.update(jax.tree_util.keystr(path).encode())
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


class Checkpointer:
    """Saves and restores a train-state pytree under ``directory`` (one sub-folder per step)."""

    def __init__(self, directory, *, max_to_keep: int = 2):
        self.directory = pathlib.Path(directory).absolute()
        # Synchronous saves: the trainer donates the state's buffers to the next step.
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    @staticmethod
    def latest_step_in(directory) -> int | None:
        """The latest complete checkpoint's step in ``directory`` (None if none), without opening a manager."""
        directory = pathlib.Path(directory)
        if not directory.is_dir():
            return None
        steps = [int(p.name) for p in directory.iterdir() if p.name.isdigit() and (p / "commit_success.txt").exists()]
        return max(steps, default=None)

    def all_steps(self) -> list[int]:
        return list(self._manager.all_steps())

    def save(self, step: int, state) -> None:
        """Saves ``state`` as step ``step``; when this returns the checkpoint is complete on disk."""
        meta = {"step": int(step), "digest": tree_digest(state)}
        self._manager.save(
            int(step),
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
        )

    def restore(self, target, step: int | None = None):
        """Restores the state saved at ``step`` (default: the latest) with the structure, shardings and dtypes of ``target``."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint found in {self.directory}")
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, target)
        try:
            restored = self._manager.restore(
                step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore())
            )
        except Exception as e:  # orbax raises many types for damaged files
            raise CheckpointError(f"checkpoint at step {step} in {self.directory} cannot be read: {type(e).__name__}: {e}") from e
        meta = restored["meta"]
        if not isinstance(meta, dict) or "digest" not in meta:
            raise CheckpointError(f"checkpoint at step {step} in {self.directory} has no digest metadata")
        state = restored["state"]
        if tree_digest(state) != meta["digest"]:
            raise CheckpointError(f"checkpoint at step {step} in {self.directory} is corrupt: its content does not match its digest")
        return state

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()
