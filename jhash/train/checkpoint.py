"""Orbax checkpoints of the train state, with a content digest so a damaged checkpoint is a clear error.

Orbax writes each checkpoint into a temporary folder and renames it when complete, so a
crash or a kill while saving leaves the previous checkpoint intact (the unfinished folder
is ignored). Each checkpoint also stores the SHA-256 of every array it holds; a restore
that reads different bytes, or cannot read the files at all, raises :class:`CheckpointError`.
"""
from __future__ import annotations

import hashlib
import pathlib
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp

from jhash import distributed


class CheckpointError(ValueError):
    """A checkpoint cannot be restored (missing, truncated, or its content changed)."""


def tree_digest(tree) -> str:
    """SHA-256 over the shapes, dtypes and bytes of every leaf of ``tree`` (in tree order); in a
    multi-process run every process must call it (shards held elsewhere are gathered)."""
    h = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if jax.dtypes.issubdtype(getattr(leaf, "dtype", np.float32), jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        a = distributed.host_value(leaf)  # whole, also where other processes hold shards of it
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
        except Exception as e:  # orbax raises many types for damaged files, often with pages of detail
            detail = (str(e).strip().splitlines() or [""])[0].split(" See full TensorStore details")[0][:200]
            raise CheckpointError(f"checkpoint at step {step} in {self.directory} cannot be read "
                                  f"({type(e).__name__}: {detail})") from e
        meta = restored["meta"]
        if not isinstance(meta, dict) or "digest" not in meta:
            raise CheckpointError(f"checkpoint at step {step} in {self.directory} has no digest metadata")
        state = restored["state"]
        if tree_digest(state) != meta["digest"]:
            raise CheckpointError(f"checkpoint at step {step} in {self.directory} is corrupt: its content does not match its digest")
        return state

    def restore_newest_intact(self, target, *, set_aside: bool):
        """Restores the latest checkpoint; when it is damaged, looks for the newest intact older one.

        With ``set_aside`` the damaged newer checkpoints are renamed ``damaged-STEP`` (kept for
        inspection, ignored from then on) and the intact one is restored, with a warning on
        stderr; without it the :class:`CheckpointError` names the intact step and what to do.
        """
        steps = sorted(self.all_steps(), reverse=True)
        if not steps:
            raise CheckpointError(f"no checkpoint found in {self.directory}")
        try:
            return self.restore(target, steps[0])
        except CheckpointError as e:
            damaged = str(e)
        workdir = self.directory.parent
        for step in steps[1:]:
            try:
                state = self.restore(target, step)
            except CheckpointError:
                continue
            if not set_aside:
                raise CheckpointError(f"{damaged}; the checkpoint at step {step} is intact: `jhash train --workdir "
                                      f"{workdir}` sets the damaged one aside and trains on from step {step}")
            if distributed.is_primary():
                for bad in (s for s in steps if s > step):
                    (self.directory / str(bad)).rename(self.directory / f"damaged-{bad}")
            distributed.sync("checkpoint set aside")
            self._manager.reload()
            print(f"jhash: warning: {damaged}; set aside as damaged-{steps[0]}, resuming from step {step}, "
                  "the newest intact checkpoint", file=sys.stderr)
            return state
        raise CheckpointError(f"{damaged}, and no older checkpoint is intact; start again in a new --workdir "
                              f"(or delete {self.directory})")

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()
