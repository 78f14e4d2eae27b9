"""Non-deep (shallow) data-dependent hashing: unsupervised baselines and supervised
triplet / ranking methods, in JAX.

Every method is a module ``jhash.shallow.<name>`` with

    fit(features, labels=None, *, bits, key, **hyperparameters) -> Hasher

(labels are class ids ``(n,)`` or multi-hot ``(n, c)``; unsupervised methods ignore them)
and the returned :class:`~jhash.shallow.common.Hasher` encodes new features to +-1 int8
codes with ``hasher.encode(x)`` (``hasher.apply(x)`` inside ``jit``)::

    from jhash import shallow
    hasher = shallow.get_method("itq")(x_train, bits=32, key=jax.random.key(0))
    db_codes = hasher.encode(x_db)

As a jhash run (``jhash train --config method:itq``, the same work dir, evaluator, sweep and
reproduce as the deep methods): :mod:`jhash.shallow.runner`, with the per-dataset settings of
:mod:`jhash.shallow.settings`.
"""
from __future__ import annotations

import importlib

from jhash.shallow.common import Hasher

UNSUPERVISED = ("lsh", "pcah", "itq", "sh", "agh", "sgh", "dgh")
SUPERVISED = ("fth", "sdh", "fsdh", "ksh", "cosdish", "lfh", "tsh", "fasth", "mlh", "hdml", "cgh", "toprsbc", "oph",
              "rsh", "rph", "dserh", "affhash")
METHODS = UNSUPERVISED + SUPERVISED

__all__ = ["Hasher", "METHODS", "SUPERVISED", "UNSUPERVISED", "get_method", "is_supervised"]


def get_method(name: str):
    """The ``fit`` function of the method called ``name`` (one of :data:`METHODS`)."""
    if name not in METHODS:
        raise ValueError(f"unknown shallow hashing method {name!r}; known: {', '.join(METHODS)}")
    return importlib.import_module(f"jhash.shallow.{name}").fit


def is_supervised(name: str) -> bool:
    get_method(name)
    return name in SUPERVISED
