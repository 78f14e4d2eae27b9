"""Metrics logged as JSON lines (one object per logged step)."""
from __future__ import annotations

import json
import math
import pathlib

import numpy as np


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
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text("".join(line + "\n" for line in keep), encoding="utf-8")
            tmp.replace(self.path)
        self._file = open(self.path, "a", encoding="utf-8")

    def write(self, step: int, metrics: dict) -> None:
        row = {"step": int(step), **{k: to_python(v) for k, v in metrics.items()}}
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()
