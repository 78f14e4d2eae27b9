"""ITQ: iterative quantization.

Gong & Lazebnik, "Iterative quantization: a Procrustean approach to learning binary
codes", CVPR 2011 (and TPAMI 2013). With ``V = (X - mean) W_pca`` (top-``bits`` PCA),
ITQ solves

    min_{B in {-1,1}^{n x c}, R^T R = I}  ||B - V R||_F^2                     (eq. 2)

by alternating ``B = sign(V R)`` and the orthogonal Procrustes step
``R = U S^T`` from the SVD ``V^T B = U Omega S^T`` (eq. 4 is written for ``B^T V``; the
authors' code computes ``svd(B^T V) = U_B S U_A^T``, ``R = U_A U_B^T``, the same matrix).
Each half-step minimises the objective over one block, so it never increases.
Defaults from the paper: 50 iterations, ``R`` initialised as a random orthogonal matrix.
Out of sample: ``h(x) = sign((x - mean) W_pca R)``.
"""
from __future__ import annotations


import jax
import jax.numpy as jnp

from jhash.codes import sign
from jhash.shallow.common import Hasher, check_bits, jit, linear_project, pca, prepare_fit, random_orthogonal

_HI = jax.lax.Precision.HIGHEST


def rotation_step(v, b):
    """The orthogonal ``R`` minimising ``||B - V R||_F`` (orthogonal Procrustes, by SVD)."""
    u, _, vt = jnp.linalg.svd(jnp.matmul(v.T, b, precision=_HI))
    return jnp.matmul(u, vt, precision=_HI)


def objective(v, r):
    """``||sign(V R) - V R||_F^2``: the quantisation loss at rotation ``R``."""
    p = jnp.matmul(v, r, precision=_HI)
    return jnp.sum((sign(p) - p) ** 2)


@jit(static_argnames=("iters",))
def iterate(v, r0, iters: int = 50):
    """``iters`` ITQ iterations from ``r0``. Returns ``(R, history)``: ``history[t]`` is
    ``||B_t - V R_t||_F^2`` with ``B_t = sign(V R_t)``, before the ``t``-th Procrustes step."""

    def body(t, carry):
        r, hist = carry
        b = sign(jnp.matmul(v, r, precision=_HI)).astype(v.dtype)
        hist = hist.at[t].set(jnp.sum((b - jnp.matmul(v, r, precision=_HI)) ** 2))
        return rotation_step(v, b), hist

    return jax.lax.fori_loop(0, iters, body, (r0, jnp.zeros(iters, v.dtype)))


def fit(features, labels=None, *, bits, key, iters: int = 50) -> Hasher:
    """PCA to ``bits`` dimensions, then ``iters`` ITQ iterations from a random rotation."""
    x, _, bits = prepare_fit(features, labels, bits, supervised=False)
    check_bits(bits, x.shape[1], "the feature dimension")
    mean, comps, _ = pca(x, bits)
    v = jnp.matmul(x - mean, comps, precision=_HI)
    r, hist = iterate(v, random_orthogonal(key, bits), int(iters))
    w = jnp.matmul(comps, r, precision=_HI)
    return Hasher("itq", bits, x.shape[1], linear_project, {"mean": mean, "w": w, "b": jnp.zeros(bits)},
                  {"objective": hist, "final_objective": objective(v, r)})
