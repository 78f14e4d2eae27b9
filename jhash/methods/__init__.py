"""One small module per published method, composed from losses, discretizers and models.

A method module ``jhash/methods/<name>.py`` defines ``build(config, *, train_labels) -> Method``
and ``defaults() -> dict`` (its paper's hyperparameters, found in ``config.<name>``).
Methods are chosen by name with :func:`get_method`.
"""
from __future__ import annotations

import importlib
import pkgutil

from jhash.methods.base import Method


def available() -> list[str]:
    """Names of the methods shipped with jhash."""
    import jhash.methods as pkg

    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if m.name != "base" and not m.name.startswith("_"))


def get_method(name: str):
    """The module of the method called ``name`` (e.g. ``'dpsh'``)."""
    if name not in available():
        raise ValueError(f"unknown method {name!r}; expected one of {available()}")
    return importlib.import_module(f"jhash.methods.{name}")


__all__ = ["Method", "available", "get_method"]
