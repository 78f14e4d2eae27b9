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
phi(x) are RBF features on m anchors drawn from the training set, sigma ``bandwidth`` times
the mean distance to the anchors; codes are sign(phi(x) P + c).

The algorithm is the authors' SDH.m (Fumin Shen; read in the SSHBIR toolkit copy, github
Eddie-Wang1120/single-modal-supervised-hashing-baseline-for-image-retrieval): the same steps
in the same order (G, F, then per iteration B, G, F), at most 10 DCC sweeps per B-step
(stopping when a sweep changes nothing), B initialised at random, and their settings
m = 1,000 anchors, lam = 1, nu = 1e-5, delta = 1e-2 (their F-step ridge, ``Fmap.lambda``),
5 outer iterations. tests/test_shallow_reference.py checks the objective after every outer
iteration against an independent NumPy float64 transcription of that algorithm.

Where jhash differs, and why:
  * the RBF width: their demo fixes sigma = 0.4 "for normalized data"; on other data a
    per-dataset width is needed, and ours is ``bandwidth`` times the mean distance from the
    training points to the anchors, ``bandwidth = 0.6`` by default, chosen on a validation
    split of the mnist training set (seeds 0 and 1: 4,000 points fitted, 1,000 held-out
    queries against them; never the test queries): validation mAP at 16 bits 0.916 / 0.926 /
    0.920 / 0.908 for 0.4 / 0.6 / 0.8 / 1.0, at 32 bits 0.939 / 0.941 / 0.940 for 0.5 / 0.6 /
    0.7. With the width 1.0 (the mean distance) jhash and the authors' code run the same
    algorithm and differ only by the random draws; 0.6 gives +0.02 mAP at 16 bits on mnist
    (experiments/results/shallow_mnist.md); on the kept-back digits (300 anchors, 3 seeds) 0.6
    against 1.0 gives 0.973 / 0.985 against 0.965 / 0.980 at 16 / 32 bits (FSDH 0.975 / 0.982
    against 0.963 / 0.975); on kept-back cifar10 pixels (seed 0, 32 bits) SDH 0.217 against
    0.208 and FSDH 0.217 against 0.211.
  * the intercept c of the hash functions is not penalised (the authors append a column of
    ones to phi, so their delta also shrinks c; with n points this changes c by about
    delta / n, nothing measurable);
  * float32 throughout (the authors: float64); the F-step and the DCC agree with a float64
    computation to the last digit of mAP on mnist;
  * sign(0) = +1 (MATLAB's sign(0) = 0).
"""
from __future__ import annotations


import jax
import jax.numpy as jnp

from jhash.codes import sign
from jhash.losses import label_matrix, num_classes_of
from jhash.shallow.common import (Hasher, check_positive, choose_anchors, fit_ridge, jit, prepare_fit, rbf_bandwidth,
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


@jit(static_argnames=("anchors", "bits", "classes"))
def _draws(x, labels, key, *, anchors: int, bits: int, classes: int):
    """The random anchors and initial codes and the label matrix of :func:`kernel_problem` in one
    compiled program (op by op they were about 20 small compilations in a fresh process). The RBF
    width and features stay op by op: under one ``jit`` XLA folds the transpose of the distances'
    product into the dot, which moves the last bit of some features on mnist."""
    k_anchor, k_init = jax.random.split(key)
    u = choose_anchors(x, k_anchor, anchors, "random")
    b = sign(jax.random.normal(k_init, (x.shape[0], bits))).astype(jnp.float32)
    return u, label_matrix(labels, classes), b


def kernel_problem(features, labels, bits, key, anchors: int, outer_iterations: int, bandwidth: float):
    """The common start of SDH and FSDH: checked inputs, RBF features ``phi`` on ``anchors`` random
    training points (sigma = ``bandwidth`` times the mean distance to them), the label matrix Y and
    random initial codes B.
    Returns ``(x, phi, u, sigma, y, b, outer)``."""
    x, labels, bits = prepare_fit(features, labels, bits, supervised=True)
    n = x.shape[0]
    anchors = check_positive(anchors, "anchors", n, "the number of training points")
    outer = check_positive(outer_iterations, "outer_iterations")
    u, y, b = _draws(x, labels, key, anchors=anchors, bits=bits, classes=num_classes_of(labels))
    sigma = bandwidth * rbf_bandwidth(x, u, "mean")
    return x, rbf_features(x, u, sigma), u, sigma, y, b, outer


def solve(phi, y, b, *, lam: float, nu: float, delta: float, outer_iterations: int, max_sweeps: int = 10):
    """SDH's alternating loop (a ``lax.scan`` over the outer iterations, jit-able) from the codes ``b``
    (n, q) on features ``phi`` (n, m) and labels ``y`` (n, classes); each iteration is the G-, F-
    and B-step of the module docstring, in the authors' order. Returns ``(b, p, c, history)``:
    the final codes, the hash functions (P, c) refitted to them and the objective after each
    outer iteration (``outer_iterations``,)."""
    def iteration(b, _):
        w = ridge_regression(b, y, lam=lam)                       # G-step
        p, c = fit_ridge(phi, b, delta)                           # F-step
        f = jnp.matmul(phi, p, precision=_HI) + c
        b = sdh_dcc(b, y, f, w, nu=nu, max_sweeps=max_sweeps)     # B-step
        return b, objective(b, w, p, c, y, phi, lam=lam, nu=nu, delta=delta)

    b, history = jax.lax.scan(iteration, b.astype(phi.dtype), None, length=outer_iterations)
    p, c = fit_ridge(phi, b, delta)  # the hash functions of the final codes
    return b, p, c, history


# one jitted solver for every fit (a new ``jit`` per call would trace and compile again)
_solve = jit(solve, static_argnames=("lam", "nu", "delta", "outer_iterations", "max_sweeps"))


def fit(features, labels=None, *, bits, key, anchors: int = 1000, lam: float = 1.0, nu: float = 1e-5,
        delta: float = 1e-2, outer_iterations: int = 5, max_sweeps: int = 10, bandwidth: float = 0.6) -> Hasher:
    """SDH on labelled features; returns the kernel hash functions (see the module docstring)."""
    x, phi, u, sigma, y, b, outer = kernel_problem(features, labels, bits, key, anchors, outer_iterations, bandwidth)
    b, p, c, history = _solve(phi, y, b, lam=float(lam), nu=float(nu), delta=float(delta), outer_iterations=outer,
                              max_sweeps=int(max_sweeps))
    return Hasher("sdh", bits, x.shape[1], sdh_project, {"anchors": u, "sigma": sigma, "p": p, "c": c},
                  {"objective": history, "train_codes": b.astype(jnp.int8)})
