"""Metrics logged as JSON lines (one object per logged step).

Not CLU's metric_writers / periodic_actions: ``import clu.metric_writers`` imports TensorFlow (its SummaryWriter),
which jhash does not depend on, no CLU writer writes JSON lines or drops a resumed run's re-computed steps, and the
trainer's timing (timing.json: compilation excluded, per epoch, across resumes) is not what ReportProgress measures.
"""
from __future__ import annotations

import json
import math
import pathlib

import numpy as np

from jhash import io as jio


def to_python(value):
    """A JSON-ready Python scalar/list from a numpy/jax value."""
    a = np.asarray(value)
    if a.ndim == 0:
        v = a.item()
        return None if isinstance(v, float) and not math.isfinite(v) else v
    return a.tolist()


class JsonlWriter:
    """Appends ``{"step": s, name: value, ...}`` lines to ``path``, flushing each line.

    ``resume_step``: lines of steps after it (logged by a run that was stopped before its
    next checkpoint, and about to be computed again) are dropped first, so a resumed run's
    log reads like an uninterrupted one's.
    """

    def __init__(self, path, *, resume_step: int = 0):
        self.path = pathlib.Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            keep = []
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    if json.loads(line)["step"] <= resume_step:
                        keep.append(line)
                except (ValueError, KeyError, TypeError):  # a line cut short by a kill
                    pass
            jio.write_text(self.path, "".join(line + "\n" for line in keep))
        self._file = open(self.path, "a", encoding="utf-8")

    def write(self, step: int, metrics: dict) -> None:
        row = {"step": int(step), **{k: to_python(v) for k, v in metrics.items()}}
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class TensorBoardWriter:
    """The same scalars as :class:`JsonlWriter`, as TensorBoard event files in ``logdir`` (tensorboardX's writer).

    ``resume_step``: events of later steps (from a run stopped before its next checkpoint)
    are purged by TensorBoard when the resumed run writes its first event, so the curves
    read like an uninterrupted run's. View with ``tensorboard --logdir WORKDIR/tensorboard``.
    """

    def __init__(self, logdir, *, resume_step: int = 0):
        from tensorboardX import SummaryWriter

        self._writer = SummaryWriter(str(logdir), purge_step=resume_step + 1 if resume_step else None)

    def write(self, step: int, metrics: dict) -> None:
        for name, value in metrics.items():
            value = to_python(value)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self._writer.add_scalar(name, value, global_step=int(step))
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
