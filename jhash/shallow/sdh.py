"""SDH: supervised discrete hashing (Shen, Shen, Liu, Shen, CVPR 2015).

Codes B of the training set, a linear classifier W on the codes and kernel hash functions
F(x) = phi(x) P + c are learned together (eq. 8, points as rows):

    min_{B, W, P, c}  ||Y - B W||^2 + lam ||W||^2 + nu (||B - phi(X) P - c||^2 + delta ||P||^2),  B in {-1, +1}^(n x q)

by alternating three exact block minimisations, so the objective never increases:
  * G-step: W = (B^T B + lam I)^-1 B^T Y (ridge regression, :func:`jhash.solvers.ridge_regression`);
  * F-step: (P, c) by ridge regression of B on phi with an unpenalised intercept c (the
    authors append a column of ones to phi; without it the RBF features, all positive and
    alike, give every MNIST image the same code);
  * B-step: discrete cyclic coordinate descent over the bits (:func:`jhash.solvers.sdh_dcc`,
    eq. 13), each bit an exact closed-form minimiser.
phi(x) are RBF features on m anchors drawn from the training set, sigma the mean distance
to the anchors; codes are sign(phi(x) P + c).

Defaults follow the authors' SDH.m as our solvers' author read it (Fumin Shen's code):
m = 1,000 anchors, lam = 1, nu = 1e-5, 5 outer iterations, at most 10 DCC sweeps each
(stopping when a sweep changes nothing), B initialised at random. delta (the F-step's ridge,
``delta``; their RRC's regulariser) = 1e-2 is our choice; keeping it inside the objective
makes every step exact, which the tests check.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jhash.codes import sign
from jhash.losses import label_matrix
from jhash.shallow.common import (Hasher, check_positive, choose_anchors, fit_ridge, prepare_fit, rbf_bandwidth,
                                  rbf_features)
from jhash.solvers import ridge_regression, sdh_dcc

_HI = jax.lax.Precision.HIGHEST


def objective(b, w, p, c, y, phi, *, lam, nu, delta):
    """The SDH objective above (b +-1 (n, q), w (q, classes), p (m, q), c (q,))."""
    f = jnp.matmul(phi, p, precision=_HI) + c
    return (jnp.sum((y - jnp.matmul(b, w, precision=_HI)) ** 2) + lam * jnp.sum(w ** 2)
            + nu * (jnp.sum((b - f) ** 2) + delta * jnp.sum(p ** 2)))


def sdh_project(params, x):
    """``rbf(x, anchors, sigma) @ p + c``: SDH's kernel hash functions."""
    return jnp.matmul(rbf_features(x, params["anchors"], params["sigma"]), params["p"], precision=_HI) + params["c"]


def kernel_problem(features, labels, bits, key, anchors: int, outer_iterations: int):
    """The common start of SDH and FSDH: checked inputs, RBF features ``phi`` on ``anchors`` random
    training points (sigma = the mean distance), the label matrix Y and random initial codes B.
    Returns ``(x, phi, u, sigma, y, b, outer)``."""
    x, labels, bits = prepare_fit(features, labels, bits, supervised=True)
    n = x.shape[0]
    anchors = check_positive(anchors, "anchors", n, "the number of training points")
    outer = check_positive(outer_iterations, "outer_iterations")
    k_anchor, k_init = jax.random.split(key)
    u = choose_anchors(x, k_anchor, anchors, "random")
    sigma = rbf_bandwidth(x, u, "mean")
    b = sign(jax.random.normal(k_init, (n, bits))).astype(jnp.float32)
    return x, rbf_features(x, u, sigma), u, sigma, label_matrix(labels), b, outer


def fit(features, labels=None, *, bits, key, anchors: int = 1000, lam: float = 1.0, nu: float = 1e-5,
        delta: float = 1e-2, outer_iterations: int = 5, max_sweeps: int = 10) -> Hasher:
    """SDH on labelled features; returns the kernel hash functions (see the module docstring)."""
    x, phi, u, sigma, y, b, outer = kernel_problem(features, labels, bits, key, anchors, outer_iterations)

    @jax.jit
    def iteration(b, y, phi):  # the data are arguments, not constants XLA would try to fold
        w = ridge_regression(b, y, lam=lam)                       # G-step
        p, c = fit_ridge(phi, b, delta)                           # F-step
        f = jnp.matmul(phi, p, precision=_HI) + c
        b = sdh_dcc(b, y, f, w, nu=nu, max_sweeps=max_sweeps)     # B-step
        return b, w, p, objective(b, w, p, c, y, phi, lam=lam, nu=nu, delta=delta)

    history = []
    for _ in range(outer):
        b, w, p, value = iteration(b, y, phi)
        history.append(value)
    p, c = fit_ridge(phi, b, delta)  # the hash functions of the final codes
    return Hasher("sdh", bits, x.shape[1], sdh_project, {"anchors": u, "sigma": sigma, "p": p, "c": c},
                  {"objective": jnp.stack(history), "train_codes": b.astype(jnp.int8)})
