"""DGH: discrete graph hashing.

Liu, Mu, Kumar, Chang, "Discrete graph hashing", NIPS 2014. On the anchor graph
``A = Z Lambda^{-1} Z^T`` of AGH (never formed: ``A B = Z (Lambda^{-1} (Z^T B))``), DGH
keeps the codes discrete and solves (eq. 4)

    max_{B, Y}  tr(B^T A B) + rho tr(B^T Y)
    s.t. B in {-1, 1}^{n x r},  Y in R^{n x r},  1^T Y = 0,  Y^T Y = n I

by alternating maximisation (Algorithm 1):

* B-subproblem (Algorithm 1, eq. 6): signed gradient ascent ``B <- sgn(C(2 A B + rho Y, B))``
  with ``C(x, y) = x`` if ``x != 0`` else ``y``; since ``tr(B^T A B)`` is convex (A is PSD),
  each step never decreases the objective. Up to ``inner`` steps, stopping when B is fixed.
* Y-subproblem (eq. 7): ``Y = sqrt(n) [U U~] [V V~]^T`` from the thin SVD ``J B = U S V^T``
  (``J`` the centering matrix), an exact maximiser of ``tr(B^T Y)`` under the constraints.
  When ``J B`` is rank-deficient the columns for zero singular values are re-orthogonalised
  against ``1`` (the paper's Gram-Schmidt ``U~``).

Initialisation DGH-I (the paper's default): ``Y_0`` = the AGH eigenvectors (scaled to
``Y^T Y = n I``), ``B_0 = sgn(Y_0)``. The objective is recorded after every outer
iteration and is non-decreasing (Theorem / Algorithm 1's guarantee).

Defaults: ``m = 300`` k-means anchors, ``s = 3`` nearest anchors, ``rho = 1``, ``outer = 20``
and ``inner = 50`` (the paper caps iterations at larger numbers, but B stops changing
within a few steps on our data; both are arguments). Differences: the paper extends the
codes to new points with a closed form in the anchor space; we fit the out-of-sample
hash function ``sign(W^T z(x) + b)`` over the same anchor features ``z(x)`` by ridge
regression of B (``reg = 1e-3``), the generic two-step fitter.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jhash.codes import sign
from jhash.shallow import agh
from jhash.shallow.common import Hasher, anchor_graph, check_positive, choose_anchors, fit_ridge, prepare_fit

_HI = jax.lax.Precision.HIGHEST


def graph_times(z, lam_inv, b):
    """``A B`` for the anchor graph ``A = Z Lambda^{-1} Z^T``."""
    return jnp.matmul(z, lam_inv[:, None] * jnp.matmul(z.T, b, precision=_HI), precision=_HI)


def objective(z, lam_inv, b, y, rho):
    """``tr(B^T A B) + rho tr(B^T Y)``."""
    return jnp.sum(b * graph_times(z, lam_inv, b)) + rho * jnp.sum(b * y)


def b_step(z, lam_inv, b, y, rho):
    """One signed-gradient step ``sgn(C(2 A B + rho Y, B))``."""
    g = 2.0 * graph_times(z, lam_inv, b) + rho * y
    return jnp.where(g > 0, 1.0, jnp.where(g < 0, -1.0, b))


def y_step(b):
    """The maximiser of ``tr(B^T Y)`` over ``1^T Y = 0``, ``Y^T Y = n I``."""
    n = b.shape[0]
    jb = b - jnp.mean(b, 0)
    u, _, vt = jnp.linalg.svd(jb, full_matrices=False)
    qm, rm = jnp.linalg.qr(u - jnp.mean(u, 0))  # orthogonal to 1; equals U when J B has full rank
    qm = qm * jnp.where(jnp.diag(rm) < 0, -1.0, 1.0)
    return jnp.sqrt(n) * jnp.matmul(qm, vt, precision=_HI)


@functools.partial(jax.jit, static_argnames=("outer", "inner"))
def alternate(z, b0, y0, rho, *, outer: int, inner: int):
    """Algorithm 1: ``outer`` rounds of (B-subproblem, Y-subproblem). Returns ``(B, Y, history)``."""
    lam_inv = 1.0 / jnp.maximum(jnp.sum(z, 0), 1e-12)

    def b_loop(b, y):
        def cond(c):
            return (c[2] < inner) & c[1]

        def body(c):
            b, _, t = c
            nb = b_step(z, lam_inv, b, y, rho)
            return nb, jnp.any(nb != b), t + 1

        return jax.lax.while_loop(cond, body, (b, jnp.array(True), 0))[0]

    def body(t, c):
        b, y, hist = c
        b = b_loop(b, y)
        y = y_step(b)
        return b, y, hist.at[t].set(objective(z, lam_inv, b, y, rho))

    return jax.lax.fori_loop(0, outer, body, (b0, y0, jnp.zeros(outer, z.dtype)))


def project(params, x, *, s: int):
    z, _ = anchor_graph(x, params["anchors"], s, params["sigma"])
    return jnp.matmul(z, params["w"], precision=_HI) + params["b"]


def fit(features, labels=None, *, bits, key, anchors: int = 300, s: int = 3, rho: float = 1.0,
        outer: int = 20, inner: int = 50, reg: float = 1e-3, kmeans_iters: int = 10) -> Hasher:
    """DGH-I on the training features; returns the ridge-fitted anchor-space hash functions."""
    x, _, bits = prepare_fit(features, labels, bits, supervised=False)
    anchors = check_positive(anchors, "anchors", x.shape[0], "the number of training points")
    s = check_positive(s, "s", anchors, "the number of anchors")
    u = choose_anchors(x, key, anchors, "kmeans", kmeans_iters)
    z, sigma = anchor_graph(x, u, s)
    w0, _ = agh.spectral_embedding(z, bits)
    y0 = jnp.matmul(z, w0, precision=_HI)
    b0 = sign(y0).astype(jnp.float32)
    b, y, hist = alternate(z, b0, y0, jnp.float32(rho), outer=int(outer), inner=int(inner))
    w, bias = fit_ridge(z, b, reg)
    return Hasher("dgh", bits, x.shape[1], functools.partial(project, s=s),
                  {"anchors": u, "sigma": sigma, "w": w, "b": bias},
                  {"objective": hist, "train_codes": b.astype(jnp.int8)})
