"""One small module per published method, composed from losses, discretizers and models.

A method module ``jhash/methods/<name>.py`` defines ``build(config, *, train_labels, schedule) -> Method``
and ``defaults() -> dict`` (its paper's hyperparameters, found in ``config.<name>``).
Methods are chosen by name with :func:`get_method` and built with :func:`build`.
"""
from __future__ import annotations

import importlib
import pkgutil

from jhash.methods.base import Method, Schedule


def available() -> list[str]:
    """Names of the methods shipped with jhash."""
    import jhash.methods as pkg

    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if m.name != "base" and not m.name.startswith("_"))


def get_method(name: str):
    """The module of the method called ``name`` (e.g. ``'dpsh'``)."""
    if name not in available():
        raise ValueError(f"unknown method {name!r}; expected one of {available()}")
    return importlib.import_module(f"jhash.methods.{name}")


def build(config, *, train_labels, schedule: Schedule | None = None) -> Method:
    """The method ``config.method`` built for a training set with labels ``train_labels``; ``schedule``
    defaults to :meth:`Schedule.of` the config and the training-set size (what the trainer passes)."""
    if schedule is None:
        schedule = Schedule.of(config, len(train_labels))
    return get_method(config.method).build(config, train_labels=train_labels, schedule=schedule)


__all__ = ["Method", "Schedule", "available", "build", "get_method"]
