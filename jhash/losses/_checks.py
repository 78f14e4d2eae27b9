"""Shape and dtype checks shared by the loss functions (they run at trace time, so they cost nothing under jit).

Not chex asserts: these are user errors (``ValueError``, one line naming the argument and the shape it needs) that also
check dtypes and non-arrays; ``chex.assert_shape(..., exception_type=ValueError)`` would only prefix the message.
"""
from __future__ import annotations

import jax.numpy as jnp


def check_codes(name: str, u, *, bits: int | None = None) -> None:
    """``u`` must be a floating (n, q) array (q == ``bits`` when given)."""
    if getattr(u, "ndim", None) != 2:
        raise ValueError(f"{name} must have shape (n, bits); got shape {getattr(u, 'shape', None)}")
    if not jnp.issubdtype(u.dtype, jnp.floating):
        raise ValueError(f"{name} must be a floating array; got dtype {u.dtype}")
    if bits is not None and u.shape[1] != bits:
        raise ValueError(f"{name} must have {bits} columns (bits); got shape {u.shape}")


def check_labels(name: str, labels, n: int) -> None:
    """``labels`` are class ids (n,) of an integer dtype, or multi-hot (n, c)."""
    shape = getattr(labels, "shape", None)
    if shape is None or labels.ndim not in (1, 2) or shape[0] != n:
        raise ValueError(f"{name} must be class ids of shape ({n},) or multi-hot of shape ({n}, c); got shape {shape}")
    if labels.ndim == 1 and not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ValueError(f"{name} given as class ids must have an integer dtype; got {labels.dtype}")
