"""SGH: scalable graph hashing with feature transformation.

Jiang & Li, "Scalable graph hashing with feature transformation", IJCAI 2015. The
pairwise similarity ``S_ij = exp(-||x_i - x_j||^2 / rho)`` is rescaled to
``S~ = 2 S - 1`` and approximated without forming it: with ``e^t ~ (e - e^-1)/2 t +
(e + e^-1)/2`` on ``[-1, 1]`` (section 3.2), ``S~ ~ P Q^T`` where

    P(x) = [ sqrt(2 (e - 1/e) / rho) e^{-||x||^2/rho} x ; sqrt(e + 1/e) e^{-||x||^2/rho} ;  1 ]
    Q(x) = [ sqrt(2 (e - 1/e) / rho) e^{-||x||^2/rho} x ; sqrt(e + 1/e) e^{-||x||^2/rho} ; -1 ].

Hash functions are kernel projections ``h_t(x) = sign(K(x) w_t)`` (``K`` = centered RBF
features to ``m`` anchors) and the objective ``min ||c S~ - sign(K W) sign(K W)^T||_F^2``
is solved bit by bit (section 3.4, "sequential learning"): with the residual
``R_t = c S~ - sum_{s<t} b_s b_s^T``, bit ``t`` maximises ``w^T K^T R_t K w`` subject to
``w^T (K^T K + gamma I) w = 1``, a generalised eigenproblem of size ``m`` (eq. 7), and
``b_t = sign(K w_t)``. As in the authors' ``trainSGH.m``, the bits are then revisited once
in a random order (each one re-solved with its own term added back to the residual).

Defaults from the paper / the authors' code: ``m = 300`` anchors drawn at random from
the training set, ``K = exp(-d^2 / (2 delta))`` with ``delta`` the mean squared distance,
centered by its training mean, ``gamma = 1e-6``, ``rho = 2``, one refinement pass.
The features are centered and scaled so that ``max ||x|| = 1``, which keeps the Taylor
argument ``2 x^T y / rho`` in ``[-1, 1]`` (the authors' code assumes such a scaling).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jhash.codes import sign
from jhash.shallow.common import (Hasher, check_positive, choose_anchors, kernel_project, prepare_fit,
                                  rbf_bandwidth, rbf_features)

_HI = jax.lax.Precision.HIGHEST


def transform(x, rho: float = 2.0):
    """SGH's ``(P(x), Q(x))`` with ``P(x_i)^T Q(x_j) ~ 2 exp(-||x_i - x_j||^2 / rho) - 1``."""
    e = np.e
    f = jnp.exp(-jnp.sum(x * x, 1) / rho)[:, None]
    part = jnp.concatenate([np.sqrt(2 * (e - 1 / e) / rho) * x * f, np.sqrt(e + 1 / e) * f], 1)
    one = jnp.ones((x.shape[0], 1), x.dtype)
    return jnp.concatenate([part, one], 1), jnp.concatenate([part, -one], 1)


def _top_generalized(a, chol):
    """Top eigenvector ``w`` of ``a w = lambda (L L^T) w``, normalised ``w^T L L^T w = 1``."""
    li_a = jax.scipy.linalg.solve_triangular(chol, a, lower=True)
    c = jax.scipy.linalg.solve_triangular(chol, li_a.T, lower=True)
    val, vec = jnp.linalg.eigh((c + c.T) / 2)
    return jax.scipy.linalg.solve_triangular(chol.T, vec[:, -1], lower=False), val[-1]


@functools.partial(jax.jit, static_argnames=("bits", "refine"))
def sequential_learning(k, p, q, perm, *, bits: int, gamma: float = 1e-6, refine: int = 1):
    """The bitwise generalised eigenproblems of SGH; returns ``W (m, bits)``."""
    m = k.shape[1]
    kp, kq = jnp.matmul(k.T, p, precision=_HI), jnp.matmul(k.T, q, precision=_HI)
    a = bits * jnp.matmul(kp, kq.T, precision=_HI)
    chol = jnp.linalg.cholesky(jnp.matmul(k.T, k, precision=_HI) + gamma * jnp.eye(m, dtype=k.dtype))

    def vx(w):
        return jnp.matmul(k.T, sign(jnp.matmul(k, w, precision=_HI)).astype(k.dtype), precision=_HI)

    def solve(a, w_all, i):
        w, _ = _top_generalized(a, chol)
        v = vx(w)
        return a - jnp.outer(v, v), w_all.at[:, i].set(w)

    def first(i, carry):
        return solve(*carry, i)

    def again(t, carry):
        a, w_all = carry
        i = perm[t % bits]
        v = vx(w_all[:, i])
        return solve(a + jnp.outer(v, v), w_all, i)

    a, w_all = jax.lax.fori_loop(0, bits, first, (a, jnp.zeros((m, bits), k.dtype)))
    _, w_all = jax.lax.fori_loop(0, bits * refine, again, (a, w_all))
    return w_all


def fit(features, labels=None, *, bits, key, anchors: int = 300, gamma: float = 1e-6,
        rho: float = 2.0, refine: int = 1) -> Hasher:
    """SGH with ``anchors`` random kernel bases and ``refine`` passes of bitwise refinement."""
    x, _, bits = prepare_fit(features, labels, bits, supervised=False)
    anchors = check_positive(anchors, "anchors", x.shape[0], "the number of training points")
    k_anchor, k_perm = jax.random.split(key)
    xc = x - jnp.mean(x, 0)
    xs = xc / jnp.maximum(jnp.sqrt(jnp.max(jnp.sum(xc * xc, 1))), 1e-12)
    p, q = transform(xs, rho)
    u = choose_anchors(x, k_anchor, anchors, "random")
    sigma = rbf_bandwidth(x, u, "mean_sq")
    kx = rbf_features(x, u, sigma)
    bias = jnp.mean(kx, 0)
    w = sequential_learning(kx - bias, p, q, jax.random.permutation(k_perm, bits), bits=bits,
                            gamma=gamma, refine=int(refine))
    params = {"anchors": u, "sigma": sigma, "w": w, "b": -jnp.matmul(bias, w, precision=_HI)}
    return Hasher("sgh", bits, x.shape[1], kernel_project, params)
