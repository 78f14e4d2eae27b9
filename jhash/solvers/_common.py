"""Shape and dtype checks (run at trace time: free under jit), sign and dot shared by the solvers.

Not chex asserts: these are user errors (``ValueError``, one line naming the argument and the shape it needs) that also
check dtypes and non-arrays; ``chex.assert_shape(..., exception_type=ValueError)`` would only prefix the message.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


def matrix(name: str, x, *, rows: int | None = None, cols: int | None = None, floating: bool = True):
    """``x`` must be a 2-D numeric array (floating unless ``floating=False``) of the given sizes."""
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) != 2:
        raise ValueError(f"{name} must be a 2-D array; got shape {shape}")
    if x.dtype == jnp.bool_ or not jnp.issubdtype(x.dtype, jnp.number):
        raise ValueError(f"{name} must hold numbers; got dtype {x.dtype}")
    if floating and not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"{name} must be a floating array; got dtype {x.dtype}")
    if rows is not None and shape[0] != rows:
        raise ValueError(f"{name} must have {rows} rows; got shape {tuple(shape)}")
    if cols is not None and shape[1] != cols:
        raise ValueError(f"{name} must have {cols} columns; got shape {tuple(shape)}")


def codes(name: str, b, *, rows: int | None = None, cols: int | None = None):
    """``b`` must be an (n, q) array of +-1 codes (any numeric dtype; values are not checked)."""
    matrix(name, b, rows=rows, cols=cols, floating=False)
    if b.shape[1] == 0:
        raise ValueError(f"{name} must have at least one bit (column); got shape {tuple(b.shape)}")


def indices(name: str, idx, *, size: int | None = None):
    """``idx`` must be a 1-D integer array (of length ``size`` when given)."""
    shape = getattr(idx, "shape", None)
    if shape is None or len(shape) != 1 or not jnp.issubdtype(idx.dtype, jnp.integer):
        raise ValueError(f"{name} must be a 1-D integer index array; got shape {shape}, "
                         f"dtype {getattr(idx, 'dtype', None)}")
    if size is not None and shape[0] != size:
        raise ValueError(f"{name} must have {size} entries; got {shape[0]}")


def positive_int(name: str, value) -> int:
    if int(value) != value or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def sign(x):
    """+-1 in the dtype of ``x``, with sign(0) = +1 (the convention of :func:`jhash.codes.sign`)."""
    return jnp.where(x >= 0, 1, -1).astype(x.dtype)


# Full float32 precision for the products whose signs become codes (TPUs and GPUs would
# otherwise use bfloat16 / TF32 passes for float32 matmuls and flip near-tied bits).
dot = functools.partial(jnp.matmul, precision=jax.lax.Precision.HIGHEST)
