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


def l1_quantization(u):
    """sum_i || |u_i| - 1 ||_1: DSH's regularizer pulling every output to +-1.

    Liu, Wang, Shan, Chen, "Deep supervised hashing for fast image retrieval", CVPR 2016,
    eq. (5) (weighted by alpha there). ``u``: (n, q). Returns the sum over all entries.
    """
    check_codes("u", u)
    return jnp.sum(jnp.abs(jnp.abs(u) - 1.0))


def log_cosh_quantization(u):
    """sum_i sum_k log cosh(|u_ik| - 1): DHN's smooth surrogate of the quantization error.

    Zhu, Long, Wang, Cao, "Deep hashing network for efficient similarity retrieval",
    AAAI 2016, eq. (6). Computed stably as |x| + softplus(-2|x|) - log 2 with x = |u| - 1.
    ``u``: (n, q). Returns the sum over all entries.
    """
    check_codes("u", u)
    x = jnp.abs(jnp.abs(u) - 1.0)
    return jnp.sum(x + jax.nn.softplus(-2.0 * x) - jnp.log(2.0))


def cubic_penalty(u):
    """sum_i sum_k | |u_ik| - 1 |^3: GreedyHash's penalty keeping u near the codes it is rounded to.

    Su, Zhang, Zhu, Tian, "Greedy hash: towards fast optimization for accurate hash coding
    in CNN", NeurIPS 2018, eq. (8) (||H - sgn(H)||_p^p with p = 3). ``u``: (n, q). Returns
    the sum over all entries.
    """
    check_codes("u", u)
    return jnp.sum(jnp.abs(jnp.abs(u) - 1.0) ** 3)


def bit_balance_penalty(u):
    """sum_k (mean_i u_ik)^2: the mini-batch relaxation of the balance constraint 1^T B = 0.

    Each bit should be +1 on half of the items (Weiss et al., NIPS 2008; Liu et al., ICML
    2011; BDNN, ECCV 2016). ``u``: (n, q) (relaxed) codes. Returns a scalar >= 0, zero when
    every bit averages to 0 over the batch.
    """
    check_codes("u", u)
    return jnp.sum(jnp.square(jnp.mean(u, axis=0)))


def bit_decorrelation_penalty(u):
    """|| U^T U / n - I ||_F^2: the mini-batch relaxation of the independence constraint B^T B = n I.

    Different bits should carry uncorrelated information (Weiss et al., NIPS 2008; BDNN,
    ECCV 2016). ``u``: (n, q) (relaxed) codes. Returns a scalar >= 0, zero for +-1 codes
    with orthogonal columns.
    """
    check_codes("u", u)
    n, q = u.shape
    return jnp.sum(jnp.square(u.T @ u / n - jnp.eye(q, dtype=u.dtype)))
