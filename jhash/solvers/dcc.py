"""SDH's discrete cyclic coordinate descent (DCC) for the pointwise B-step, and its W-step.

Shen, Shen, Liu, Shen, "Supervised discrete hashing", CVPR 2015, eq. (5)-(13). With the
points as rows (the paper stores them as columns), codes ``B`` (n, L), labels ``Y`` (n, C),
the hash-function outputs ``F = F(X)`` (n, L) and the linear classifier ``W`` (L, C), the
B-step is

    min_B  ||Y - B W||^2 + nu ||B - F||^2   over B in {-1, +1}^(n x L)               (8)
         = ||B W||^2 - 2 tr(B^T Q) + const,   Q = Y W^T + nu F                        (9)-(10)

(the paper's Q = W Y + nu F(X), transposed). Fixing every bit but l, with z = B[:, l],
q = Q[:, l], w = W[l] and B', W' the other columns of B and rows of W, the problem is
separable over points and its exact minimiser is                                      (13)

    z = sign(q - B' W' w).

DCC applies (13) to the bits in turn (one sweep), for several sweeps. Like the authors'
MATLAB ``SDH.m`` (Fumin Shen) it stops after 10 sweeps or as soon as a sweep changes
nothing (their test ``norm(B - Z0) < 1e-6 norm(Z0)`` on +-1 matrices). Each update is the
exact minimiser over its column, so the objective never increases; the result is a point
that no single-column change improves, not a global optimum. sign(0) = +1 here (MATLAB's
sign(0) = 0 would leave a 0 entry).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jhash.solvers import _common
from jhash.solvers._common import dot, sign

__all__ = ["sdh_objective", "sdh_dcc", "ridge_regression"]


def _check_problem(b, y, f, w):
    _common.codes("b", b)
    n, bits = b.shape
    _common.matrix("y", y, rows=n)
    _common.matrix("f", f, rows=n, cols=bits)
    _common.matrix("w", w, rows=bits, cols=y.shape[1])


def sdh_objective(b, y, f, w, *, nu):
    """``||Y - B W||^2 + nu ||B - F||^2`` (SDH eq. 8, points as rows).

    ``b``: (n, L) +-1 codes; ``y``: (n, C) labels (one-hot); ``f``: (n, L) hash outputs
    F(X); ``w``: (L, C) classifier. Returns a scalar in the dtype of ``f``.
    """
    _check_problem(b, y, f, w)
    bf = b.astype(f.dtype)
    return jnp.sum((y - dot(bf, w)) ** 2) + nu * jnp.sum((bf - f) ** 2)


def _dcc_sweep(bt, qt, g):
    """One DCC sweep over the bits of ``bt`` (L, n) (codes transposed), ``g = W W^T``."""

    def bit_update(l, bt):
        c = g[:, l].at[l].set(0)          # W' w (the row of bit l itself removed)
        z = sign(qt[l] - dot(c, bt))           # eq. (13), every point at once
        return bt.at[l].set(z)

    return jax.lax.fori_loop(0, bt.shape[0], bit_update, bt)


def sdh_dcc(b, y, f, w, *, nu, max_sweeps: int = 10):
    """SDH's B-step by discrete cyclic coordinate descent (eq. 13), from the codes ``b``.

    ``b``: (n, L) +-1 initial codes (any numeric dtype; the result has the same dtype);
    ``y``: (n, C) labels; ``f``: (n, L) F(X); ``w``: (L, C); ``nu``: the weight of
    ||B - F||^2 (a traced value is fine). Runs sweeps (a ``lax.fori_loop`` over bits,
    vectorised over points) inside a ``lax.while_loop`` until a sweep changes nothing or
    ``max_sweeps`` (static) sweeps are done. The objective :func:`sdh_objective` never
    increases. Works under ``jit`` and ``vmap``.
    """
    _check_problem(b, y, f, w)
    max_sweeps = _common.positive_int("max_sweeps", max_sweeps)
    dtype = f.dtype
    qt = (dot(y, w.T) + nu * f).T.astype(dtype)          # Q^T, (L, n)
    g = dot(w, w.T).astype(dtype)                     # (L, L)
    bt0 = b.T.astype(dtype)

    def cond(carry):
        sweep, _, changed = carry
        return (sweep < max_sweeps) & changed

    def body(carry):
        sweep, bt, _ = carry
        new = _dcc_sweep(bt, qt, g)
        return sweep + 1, new, jnp.any(new != bt)

    _, bt, _ = jax.lax.while_loop(cond, body, (jnp.int32(0), bt0, jnp.bool_(True)))
    return bt.T.astype(b.dtype)


def ridge_regression(x, y, *, lam):
    """Regularised least squares ``argmin_W ||Y - X W||^2 + lam ||W||^2 = (X^T X + lam I)^-1 X^T Y``.

    SDH's G-step (W = (B^T B + lambda I)^-1 B^T Y, ``x`` = the codes B) and F-step (the
    projection P of the RBF features onto B, ``x`` = phi(X), ``y`` = B): the authors'
    ``RRC``. ``x``: (n, d), ``y``: (n, c), ``lam`` >= 0 (> 0 unless X^T X is invertible).
    Returns (d, c), solved by a Cholesky factorisation.
    """
    _common.matrix("x", x, floating=False)
    _common.matrix("y", y, rows=x.shape[0], floating=False)
    dtype = jnp.result_type(x.dtype, y.dtype, jnp.float32)
    x, y = x.astype(dtype), y.astype(dtype)
    gram = dot(x.T, x) + lam * jnp.eye(x.shape[1], dtype=dtype)
    factor = jax.scipy.linalg.cho_factor(gram)
    return jax.scipy.linalg.cho_solve(factor, dot(x.T, y))
