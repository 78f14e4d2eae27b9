"""RSH: ranking-based supervised hashing, learning hash codes with listwise supervision
(Wang, Liu, Sun, Jiang, "Learning hash codes with listwise supervision", ICCV 2013).

Supervision is a ranking list of the training points for each query q_m (m = 1..M), held
as the triplet tensor

    S_mij = +1 if x_i ranks before x_j for q_m (r(q_m, x_i) > r(q_m, x_j)),
            -1 if after, 0 if tied,                                                  (rank triplets)

where r is the relevance (here: the number of labels q and x share; 1 / 0 for class ids).
With linear hash functions h(x) = sign(W^T x) (W: d x K, features centred by their training
mean) and the Hamming distance written as an inner product, d_H = (K - h(q)^T h(x)) / 2,
the listwise loss is

    L_H(W) = - sum_m sum_ij h(q_m)^T [h(x_i) - h(x_j)] S_mij.                       (listwise loss)

Relaxing sign(W^T x) to W^T x gives L(W) = - sum_m q_m^T W W^T p_m = - tr(W^T C W), with
p_m = sum_ij S_mij (x_i - x_j) and C = sum_m p_m q_m^T (only its symmetric part matters).
Because S is antisymmetric in (i, j), p_m = 2 sum_i s_mi x_i with s_mi = sum_j S_mij
(the number of points below x_i in q_m's list minus the number above), so the O(M N^2)
tensor is never formed: s is computed in O(M N log N) by sorting each list
(:func:`triplet_row_sums`; tested against the explicit tensor). The relaxed loss is unbounded
in the scale of W, so the paper constrains W^T W = I and solves

    min_W -tr(W^T C W)   s.t.  W^T W = I

by the augmented Lagrangian (ALM) method: with multipliers Lambda (K x K) and penalty rho,

    L_rho(W, Lambda) = -tr(W^T C W) + tr(Lambda^T (W^T W - I)) + rho/2 ||W^T W - I||_F^2,

W is updated by gradient descent on L_rho (``inner_steps`` steps of size ``lr``) and then
Lambda <- Lambda + rho (W^T W - I) (``outer_iterations`` times). Its fixed points are the
KKT points of the constrained problem, whose global optimum is any orthonormal basis of the
top-K eigenspace of C_sym (value: the sum of its K largest eigenvalues), which the tests use
as the independent reference.

Defaults and choices: M = 1,000 queries drawn from the training set, each ranking all n
training points (the paper samples queries and lists from its training data; sizes vary by
experiment); C is divided by its Frobenius norm (the minimiser is unchanged; it makes one
step size fit every data set); rho = 1, 20 outer x 50 inner steps, lr = 0.1, W started from a
random orthonormal matrix (our choices: the paper does not publish code). Codes of new
points: sign(W^T (x - mean)), the paper's linear hash functions.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jhash.shallow.common import Hasher, check_positive, linear_project, prepare_fit, random_orthogonal
from jhash.shallow.listwise import relevance

_HI = jax.lax.Precision.HIGHEST


def triplet_tensor(rel):
    """The explicit rank-triplet tensor ``S_mij = sign(r_mi - r_mj)``, ``(M, N, N)`` (small sizes only)."""
    return jnp.sign(rel[:, :, None] - rel[:, None, :])


@jax.jit
def triplet_row_sums(rel):
    """``s_mi = sum_j S_mij`` = #{j: r_mj < r_mi} - #{j: r_mj > r_mi}, by sorting each list. ``(M, N)``."""
    n = rel.shape[1]

    def row(r):
        srt = jnp.sort(r)
        below = jnp.searchsorted(srt, r, side="left")
        above = n - jnp.searchsorted(srt, r, side="right")
        return (below - above).astype(jnp.float32)

    return jax.vmap(row)(rel)


def listwise_loss(hq, hx, s_rows):
    """``L = -sum_m sum_ij h(q_m)^T [h(x_i) - h(x_j)] S_mij = -2 sum_mi s_mi h(q_m)^T h(x_i)``.

    ``hq`` (M, K) and ``hx`` (N, K): codes (+-1) or their relaxations; ``s_rows`` (M, N):
    :func:`triplet_row_sums`. Equals the sum over the explicit tensor (tested)."""
    return -2.0 * jnp.sum(s_rows * jnp.matmul(hq, hx.T, precision=_HI))


def ranking_matrix(xq, x, s_rows):
    """The symmetric ``C_sym = (C + C^T) / 2`` with ``C = sum_m p_m q_m^T``, ``p_m = 2 X^T s_m``."""
    p = 2.0 * jnp.matmul(s_rows, x, precision=_HI)         # (M, d): rows p_m
    c = jnp.matmul(p.T, xq, precision=_HI)                  # sum_m p_m q_m^T
    return 0.5 * (c + c.T)


@functools.partial(jax.jit, static_argnames=("outer_iterations", "inner_steps"))
def alm(c, w0, *, rho, lr, outer_iterations: int, inner_steps: int):
    """The augmented Lagrangian method for ``min -tr(W^T C W) s.t. W^T W = I`` from ``w0``.

    Returns ``(W, history)``: ``history[t] = (tr(W^T C W), ||W^T W - I||_F)`` after outer
    iteration t."""
    k = w0.shape[1]
    eye = jnp.eye(k, dtype=c.dtype)

    def grad(w, lam):
        gap = jnp.matmul(w.T, w, precision=_HI) - eye
        return (-2.0 * jnp.matmul(c, w, precision=_HI) + jnp.matmul(w, lam + lam.T, precision=_HI)
                + 2.0 * rho * jnp.matmul(w, gap, precision=_HI))

    def outer(t, carry):
        w, lam, hist = carry
        w = jax.lax.fori_loop(0, inner_steps, lambda _, w: w - lr * grad(w, lam), w)
        gap = jnp.matmul(w.T, w, precision=_HI) - eye
        lam = lam + rho * gap
        value = jnp.trace(jnp.matmul(w.T, jnp.matmul(c, w, precision=_HI), precision=_HI))
        return w, lam, hist.at[t].set(jnp.stack([value, jnp.linalg.norm(gap)]))

    init = (w0, jnp.zeros((k, k), c.dtype), jnp.zeros((outer_iterations, 2), c.dtype))
    w, _, hist = jax.lax.fori_loop(0, outer_iterations, outer, init)
    return w, hist


def fit(features, labels=None, *, bits, key, queries: int = 1000, rho: float = 1.0, lr: float = 0.1,
        outer_iterations: int = 20, inner_steps: int = 50) -> Hasher:
    """RSH on labelled features: rank lists -> C -> ALM -> linear hash functions (module docstring)."""
    x, labels, bits = prepare_fit(features, labels, bits, supervised=True)
    n, d = x.shape
    if bits > d:
        raise ValueError(f"bits={bits} is more than the feature dimension ({d}): W^T W = I needs bits <= d")
    m = min(check_positive(queries, "queries"), n)
    outer_iterations = check_positive(outer_iterations, "outer_iterations")
    inner_steps = check_positive(inner_steps, "inner_steps")
    if not rho > 0 or not lr > 0:
        raise ValueError(f"rho and lr must be positive, got rho={rho!r}, lr={lr!r}")
    k_query, k_init = jax.random.split(key)
    mean = jnp.mean(x, 0)
    xc = x - mean
    rows = jax.random.choice(k_query, n, (m,), replace=False)
    s_rows = triplet_row_sums(relevance(labels[rows], labels))
    c = ranking_matrix(xc[rows], xc, s_rows)
    c = c / jnp.maximum(jnp.linalg.norm(c), 1e-30)
    w, hist = alm(c, random_orthogonal(k_init, d)[:, :bits], rho=float(rho), lr=float(lr),
                  outer_iterations=outer_iterations, inner_steps=inner_steps)
    codes = jnp.where(jnp.matmul(xc, w, precision=_HI) >= 0, 1.0, -1.0)
    return Hasher("rsh", bits, d, linear_project, {"mean": mean, "w": w, "b": jnp.zeros((bits,), jnp.float32)},
                  {"alm": hist, "listwise_loss": listwise_loss(codes[rows], codes, s_rows),
                   "train_codes": codes.astype(jnp.int8)})
