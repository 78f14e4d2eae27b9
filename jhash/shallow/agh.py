"""AGH: anchor graph hashing, one- and two-layer.

Liu, Wang, Kumar, Chang, "Hashing with graphs", ICML 2011. The graph over the ``n``
training points is the anchor graph ``A = Z Lambda^{-1} Z^T`` (eq. 3), with ``Z`` the
truncated, row-normalised kernel affinities to ``m`` anchors (k-means centers; eq. 2,
see :func:`jhash.shallow.common.anchor_graph`) and ``Lambda = diag(Z^T 1)``. The spectral
hashing problem ``max tr(Y^T A Y)`` s.t. ``Y^T Y = n I``, ``1^T Y = 0`` is solved through
the small ``m x m`` matrix ``M = Lambda^{-1/2} Z^T Z Lambda^{-1/2}`` = ``V Sigma V^T``:
dropping the trivial eigenvalue 1, ``Y = sqrt(n) Z Lambda^{-1/2} V_r Sigma_r^{-1/2} = Z W``
(eq. 6), which also extends to new points as ``y(x) = W^T z(x)`` (eq. 7).

* One layer (AGH-1): ``h(x) = sign(W^T z(x))``, ``bits`` eigenfunctions.
* Two layers (AGH-2, section 4): ``bits/2`` eigenfunctions, each giving a second bit
  ``sign(y - b+)`` on its positive side and ``sign(-y + b-)`` on its negative side, with
  the thresholds ``b+, b-`` of the hierarchical threshold learning (eqs. 9-12), in the
  closed form of the authors' ``TwoLayerAGH_Train.m``.

Defaults from the paper and the authors' code: ``m = 300`` anchors by k-means, ``s = 2``
nearest anchors (the authors fix m = 300 and tune 2 <= s <= m/10), sigma = mean distance
to the ``s``-th nearest anchor, kernel ``exp(-d^2 / sigma^2)``; eigenvalues within 1e-3
of 1 are dropped as trivial, as in the authors' code. Differences: k-means is ours (JAX,
k-means++ init, 10 Lloyd iterations); a code bit is ``+1`` when the value is >= 0 (the
authors' code takes ``> 0``).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jhash.shallow.common import Hasher, anchor_graph, check_positive, choose_anchors, prepare_fit

_HI = jax.lax.Precision.HIGHEST


def spectral_embedding(z, r: int):
    """AGH's ``W (m, r)`` with ``Y = Z W`` the top ``r`` non-trivial anchor-graph eigenvectors
    scaled to ``Y^T Y = n I``; returns ``(W, eigenvalues (r,))`` (eigen-solve in JAX, the
    data-dependent selection of non-trivial eigenvalues on the host)."""
    n = z.shape[0]
    lam = jnp.sum(z, 0)
    if bool(jnp.any(lam <= 0)):
        lam = jnp.maximum(lam, 1e-12)  # an anchor nobody chose: its row/column of M is 0
    il = lam ** -0.5
    m = jnp.matmul(z.T, z, precision=_HI) * il[:, None] * il[None, :]
    val, vec = jnp.linalg.eigh(m)
    val, vec = np.asarray(val)[::-1], vec[:, ::-1]
    keep = np.flatnonzero((val > 1e-8) & (val < 1 - 1e-3))
    if len(keep) < r:
        raise ValueError(f"the anchor graph has only {len(keep)} non-trivial eigenvectors, "
                         f"{r} needed: use more anchors or fewer bits")
    keep = keep[:r]
    ev = jnp.asarray(val[keep], jnp.float32)
    w = il[:, None] * vec[:, keep] * (ev ** -0.5)[None, :] * np.sqrt(n)
    return w, ev


def second_layer_thresholds(y, z):
    """AGH-2 thresholds ``(2, r)``: row 0 is ``b+`` (positive side), row 1 ``b-`` (negative side)."""
    n = y.shape[0]
    lam = jnp.maximum(jnp.sum(z, 0), 1e-12)
    pos = (y > 0).astype(y.dtype)
    n1 = jnp.sum(pos, 0)
    n2 = n - n1
    right = jnp.matmul(jnp.abs(y).T, z, precision=_HI) / lam          # (r, m)
    left = jnp.matmul(pos.T, z, precision=_HI)                         # (r, m)
    s1 = jnp.sum(left * right, 1)
    s2 = n1 - jnp.sum(left * left / lam, 1)
    s3 = jnp.sum(y * pos, 0)
    b_pos = (2 * s3 + n2 * (s3 - s1) / s2) / n
    b_neg = (n1 * (s3 - s1) / s2 - 2 * s3) / n
    return jnp.stack([b_pos, b_neg])


def project(params, x, *, s: int):
    """Eigenfunction values ``W^T z(x)`` (and the second-layer values for AGH-2)."""
    z, _ = anchor_graph(x, params["anchors"], s, params["sigma"])
    y = jnp.matmul(z, params["w"], precision=_HI)
    if "thresholds" in params:
        t = params["thresholds"]
        y = jnp.concatenate([y, jnp.where(y > 0, y - t[0], -y + t[1])], 1)
    return y


def fit(features, labels=None, *, bits, key, layers: int = 1, anchors: int = 300, s: int = 2,
        kmeans_iters: int = 10) -> Hasher:
    """AGH-1 (``layers=1``) or AGH-2 (``layers=2``, ``bits`` even) on the training features."""
    x, _, bits = prepare_fit(features, labels, bits, supervised=False)
    if layers not in (1, 2):
        raise ValueError(f"layers must be 1 or 2, got {layers!r}")
    if layers == 2 and bits % 2:
        raise ValueError(f"bits must be even for two-layer AGH, got {bits}")
    anchors = check_positive(anchors, "anchors", x.shape[0], "the number of training points")
    s = check_positive(s, "s", anchors, "the number of anchors")
    u = choose_anchors(x, key, anchors, "kmeans", kmeans_iters)
    z, sigma = anchor_graph(x, u, s)
    r = bits // layers
    w, ev = spectral_embedding(z, r)
    params = {"anchors": u, "sigma": sigma, "w": w}
    if layers == 2:
        params["thresholds"] = second_layer_thresholds(jnp.matmul(z, w, precision=_HI), z)
    return Hasher(f"agh{layers}", bits, x.shape[1], functools.partial(project, s=s), params,
                  {"eigenvalues": ev})
