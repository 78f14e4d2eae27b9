"""Quantization terms: how far real outputs are from binary codes."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jhash import codes
from jhash.losses._checks import check_codes


def binarize(u):
    """:func:`jhash.codes.sign` (sign(0) = +1) in the dtype of ``u``, for use inside losses."""
    return codes.sign(u).astype(u.dtype)


def quantization_error(u):
    """sum_i ||b_i - u_i||^2 with b = sign(u) held constant (no gradient flows through the sign).

    The hypercubic quantization penalty of DPSH (Li et al., IJCAI 2016, eq. 3) and ITQ-style
    methods. ``u``: (n, q) real outputs. Returns the sum over all entries.
    """
    check_codes("u", u)
    b = jax.lax.stop_gradient(binarize(u))
    return jnp.sum(jnp.square(b - u))
