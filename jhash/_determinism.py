"""Deterministic GPU kernels, asked for when jhash is imported (``jhash/__init__.py``), so that the CLI, the notebooks
and any script calling ``jhash.train.train`` get them.

XLA reads ``XLA_FLAGS`` once, when JAX starts its backend: the flag takes effect only if jhash is imported before
JAX has run anything on a GPU. When a GPU backend has already started without it, :func:`request` warns once
(reruns with the same seed may then give different codes on that GPU); import jhash first, or set
``XLA_FLAGS=--xla_gpu_deterministic_ops=true`` yourself. ``JHASH_NONDETERMINISTIC=1`` opts out. No effect on CPU
(already deterministic).
"""
from __future__ import annotations

import os
import sys
import warnings

FLAG = "--xla_gpu_deterministic_ops=true"


def request() -> bool:
    """Adds :data:`FLAG` to ``XLA_FLAGS`` (unless ``JHASH_NONDETERMINISTIC=1`` or ``XLA_FLAGS`` names it already);
    returns False, with a warning, when a GPU backend had started before it was added, True otherwise."""
    if os.environ.get("JHASH_NONDETERMINISTIC") == "1":
        return True
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_gpu_deterministic_ops" in flags:
        return True
    os.environ["XLA_FLAGS"] = (flags + " " + FLAG).strip()
    if not _gpu_backend_started():
        return True
    warnings.warn("jhash: JAX started its GPU backend before jhash was imported, so XLA's deterministic GPU kernels "
                  f"({FLAG}) are not in effect in this process: import jhash before running anything with JAX, "
                  "or set XLA_FLAGS yourself (JHASH_NONDETERMINISTIC=1 silences this)", RuntimeWarning, stacklevel=3)
    return False


def _gpu_backend_started() -> bool:
    bridge = sys.modules.get("jax._src.xla_bridge")  # only when JAX is imported; jhash does not import it here
    return any(name in ("cuda", "rocm", "gpu") for name in getattr(bridge, "_backends", None) or ())
