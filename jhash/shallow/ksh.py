"""KSH: supervised hashing with kernels (Liu, Wang, Ji, Jiang, Chang, CVPR 2012).

Kernel hash functions h_k(x) = sign(a_k^T kbar(x)), kbar(x) the RBF kernel values of x at m
anchors minus their training mean, are learned so that code inner products fit the
pairwise labels of l labelled points, S_ij = +1 (similar) / -1:

    min_A || sign(Kbar A) sign(Kbar A)^T - r S ||_F^2                               (eq. 5)

greedily, one bit at a time (eq. 7-9): with the residual R_{k-1} = r S - sum_{t<k} b_t b_t^T,
bit k maximises b^T R_{k-1} b with b = sign(Kbar a). The sign is smoothed by
phi(x) = 2 / (1 + e^-x) - 1 and the smooth objective -phi(Kbar a)^T R phi(Kbar a) is minimised
by gradient descent from the spectral relaxation's solution (the leading generalised
eigenvector of Kbar^T R Kbar a = lambda Kbar^T Kbar a); as in the authors' code the
descent's result is kept only when its binary objective b^T R b beats the spectral one's.

Defaults from the paper: m = 300 anchors drawn at random from the training set, l = 2,000
labelled points (at most the training set), sigma^2 = the mean squared distance to the
anchors (their code's rule). Where we differ: the authors' gradient descent uses a line
search; we take ``steps`` = 300 plain gradient steps with a step size normalised by the
gradient's scale at the start (our choice).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jhash.codes import sign
from jhash.shallow.common import Hasher, check_positive, choose_anchors, prepare_fit, rbf_bandwidth, rbf_features
from jhash.losses import label_matrix

_HI = jax.lax.Precision.HIGHEST


def smooth_sign(x):
    """phi(x) = 2 / (1 + exp(-x)) - 1, KSH's smooth surrogate of sign."""
    return 2.0 * jax.nn.sigmoid(x) - 1.0


def spectral_direction(kbar, r, rcond: float = 1e-6):
    """The leading generalised eigenvector of Kbar^T R Kbar a = lambda Kbar^T Kbar a (KSH eq. 8).

    Solved by whitening with the eigendecomposition B = Kbar^T Kbar = U D U^T restricted to the
    eigenvalues above ``rcond`` times the largest (directions in which Kbar is null cannot change
    Kbar a): with W = U_k D_k^{-1/2}, a = W v for v the leading eigenvector of W^T A W. Kernel
    features are often nearly collinear (wide RBF kernels on CNN features), where a Cholesky
    factor of B in float32 breaks down into NaN and every bit becomes constant."""
    a_mat = kbar.T @ r @ kbar
    d, u = jnp.linalg.eigh(kbar.T @ kbar)
    keep = d > rcond * jnp.max(d)
    w_mat = u * jnp.where(keep, 1.0 / jnp.sqrt(jnp.where(keep, d, 1.0)), 0.0)
    c = w_mat.T @ a_mat @ w_mat
    _, v = jnp.linalg.eigh(0.5 * (c + c.T))
    return w_mat @ v[:, -1]


def fit_bit(kbar, r, *, steps: int, lr: float):
    """One greedy bit: the projection a (m,) maximising sign(Kbar a)^T R sign(Kbar a) (spectral start, then descent)."""
    a0 = spectral_direction(kbar, r)
    a0 = a0 / jnp.maximum(jnp.std(kbar @ a0), 1e-12)  # unit-scale projections, so phi is not saturated

    def smooth_loss(a):
        p = smooth_sign(kbar @ a)
        return -p @ r @ p

    grad = jax.grad(smooth_loss)
    step = lr / jnp.maximum(jnp.linalg.norm(grad(a0)), 1e-12) * jnp.linalg.norm(a0)

    def body(_, a):
        return a - step * grad(a)

    a1 = jax.lax.fori_loop(0, steps, body, a0)
    gain = lambda a: (lambda b: b @ r @ b)(sign(kbar @ a).astype(kbar.dtype))
    return jnp.where(gain(a1) > gain(a0), a1, a0)


def ksh_project(params, x):
    """``(rbf(x, anchors, sigma) - mean) @ a``: KSH's kernel hash functions."""
    return jnp.matmul(rbf_features(x, params["anchors"], params["sigma"]) - params["mean"], params["a"], precision=_HI)


def fit(features, labels=None, *, bits, key, anchors: int = 300, labelled: int = 2000, steps: int = 300,
        lr: float = 0.05) -> Hasher:
    """KSH on labelled features (see the module docstring)."""
    x, labels, bits = prepare_fit(features, labels, bits, supervised=True)
    n = x.shape[0]
    anchors = check_positive(anchors, "anchors", n, "the number of training points")
    l = min(check_positive(labelled, "labelled"), n)
    k_anchor, k_label = jax.random.split(key)
    u = choose_anchors(x, k_anchor, anchors, "random")
    sigma = rbf_bandwidth(x, u, "mean_sq")
    phi = rbf_features(x, u, sigma)
    mean = jnp.mean(phi, axis=0)
    rows = jax.random.permutation(k_label, n)[:l]
    kbar = phi[rows] - mean
    y = label_matrix(labels[rows])
    s = jnp.where(y @ y.T > 0, 1.0, -1.0)
    residual = bits * s
    fit_one = jax.jit(lambda kb, r: fit_bit(kb, r, steps=int(steps), lr=float(lr)))
    columns, losses = [], [float(jnp.sum(residual ** 2))]
    for _ in range(bits):
        a = fit_one(kbar, residual)
        b = sign(kbar @ a).astype(jnp.float32)
        residual = residual - jnp.outer(b, b)
        columns.append(a)
        losses.append(float(jnp.sum(residual ** 2)))
    return Hasher("ksh", bits, x.shape[1], ksh_project,
                  {"anchors": u, "sigma": sigma, "mean": mean, "a": jnp.stack(columns, axis=1)},
                  {"objective": np.array(losses)})
