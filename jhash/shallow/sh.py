"""SH: spectral hashing.

Weiss, Torralba, Fergus, "Spectral hashing", NIPS 2008. Under a uniform distribution on
a box (the PCA-aligned bounding box of the data), the Laplacian eigenfunctions are
separable; the one-dimensional ones on ``[a, b]`` are

    Phi_k(x) = sin(pi/2 + k pi / (b - a) * x),   lambda_k = 1 - exp(-eps^2/2 |k pi / (b - a)|^2)

(section 3.1). SH takes the ``bits`` eigenfunctions with the smallest eigenvalues over
all PCA directions and all ``k >= 1``, i.e. the smallest ``(k pi / (b_i - a_i))^2``
(``eps`` does not change the order), and thresholds them at zero.

As in the authors' code (``trainSH.m`` / ``compressSH.m``): ``npca = min(bits, d)``
directions; the box of direction ``i`` is ``[min - eps, max + eps]`` of the training
projections (``eps`` = float epsilon); the candidate modes of direction ``i`` are
``k = 1 .. ceil((bits + 1) R_i / max R) - 1``; ties keep the authors' order (direction by
direction, stable sort); the features are projected without centering (the box is
shifted by its minimum instead). A code bit is ``sign(prod_i sin(pi/2 + omega_i (x_i - a_i)))``,
where only one direction has ``omega_i != 0`` (single-direction modes, as in the paper).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jhash.shallow.common import Hasher, pca, prepare_fit

_HI = jax.lax.Precision.HIGHEST


def select_modes(ranges, bits: int) -> np.ndarray:
    """The ``(bits, npca)`` integer mode table: each row is ``k`` on one direction, 0 elsewhere,
    for the ``bits`` smallest ``sum_i (k_i pi / R_i)^2`` (host computation; shapes depend on data)."""
    ranges = np.asarray(ranges, np.float64)
    npca = ranges.shape[0]
    max_mode = np.ceil((bits + 1) * ranges / ranges.max()).astype(np.int64)
    rows = [np.zeros(npca, np.int64)]
    for i in range(npca):
        for k in range(1, max_mode[i]):  # the authors' table: modes 1 .. maxMode-1 after the -1 shift
            r = np.zeros(npca, np.int64)
            r[i] = k
            rows.append(r)
    modes = np.stack(rows)
    eig = np.sum((modes * (np.pi / ranges)) ** 2, 1)
    order = np.argsort(eig, kind="stable")
    if len(order) < bits + 1:
        raise ValueError(f"bits={bits}: spectral hashing found only {len(order) - 1} modes")
    return modes[order[1:bits + 1]]


def project(params, x):
    """The SH eigenfunction values ``prod_i sin(pi/2 + omega_i (x pc - mn)_i)``: ``(n, bits)``."""
    u = jnp.matmul(x, params["pc"], precision=_HI) - params["mn"]
    return jnp.prod(jnp.sin(jnp.pi / 2 + u[:, None, :] * params["omegas"][None]), axis=-1)


def fit(features, labels=None, *, bits, key=None) -> Hasher:
    """Spectral hashing of the training features (deterministic; ``key`` is unused)."""
    x, _, bits = prepare_fit(features, labels, bits, supervised=False)
    npca = min(bits, x.shape[1])
    _, pc, _ = pca(x, npca)
    proj = np.asarray(jnp.matmul(x, pc, precision=_HI), np.float64)
    eps = np.finfo(np.float32).eps
    mn, mx = proj.min(0) - eps, proj.max(0) + eps
    ranges = mx - mn
    modes = select_modes(ranges, bits)
    omegas = modes * (np.pi / ranges)[None, :]
    params = {"pc": pc, "mn": jnp.asarray(mn, jnp.float32), "omegas": jnp.asarray(omegas, jnp.float32)}
    return Hasher("sh", bits, x.shape[1], project, params, {"modes": modes})
