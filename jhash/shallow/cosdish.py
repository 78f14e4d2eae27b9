"""COSDISH: column sampling based discrete supervised hashing (Kang, Li, Zhou, AAAI 2016).

Codes B of the training set fit the scaled similarity, min_B ||q S - B B^T||^2 over
B in {-1, +1}^(n x q), without forming the n x n matrix: each iteration samples m columns
Omega of S and

  * updates the sampled points' codes B_Omega bit by bit, each bit a binary quadratic
    problem over m variables (:func:`jhash.solvers.bqp_bitwise`; the other points' codes
    fixed), then
  * the others' codes by B_Gamma = sign(S_Gamma B_Omega) (:func:`jhash.solvers.cosdish_gamma_update`),

and hash functions are then fitted to the codes (two-step hashing).

Where we follow the authors' code (the COSDISH MATLAB code; see jhash/solvers/bqp.py): the
similarity rescaled to 1 / -r (r = #similar / #dissimilar of the sampled block), B
initialised at random, the Gamma update with its tolerance. Where we differ: by default each
bit's BQP uses the residual of all other bits and the balanced partition refined by local
search (``solver='partition+local_search'``, ``residual='others'``: the objective on the
sampled columns never increases in the Omega step); the authors' exact choice is
``solver='partition', residual='previous'``. m = 1,000 sampled columns and 5 iterations are
our choices; the out-of-sample hash functions are ridge-fitted RBF kernel functions on
1,000 random anchors (as FTH here), where the paper trains linear or kernel classifiers.
"""
from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np

from jhash.codes import sign
from jhash.shallow.common import (Hasher, check_positive, choose_anchors, fit_ridge, jit, kernel_project,
                                  prepare_fit, rbf_bandwidth, rbf_features)
from jhash.losses import label_matrix, num_classes_of
from jhash.solvers import bqp_bitwise, cosdish_gamma_update, pairwise_objective


def rescaled_columns(y, omega):
    """S (n, m) for the sampled columns: 1 for similar, -r for dissimilar pairs, r = #similar / #dissimilar."""
    s = (y @ y[omega].T > 0).astype(jnp.float32)
    r = jnp.sum(s) / jnp.maximum(jnp.sum(1.0 - s), 1.0)
    return s * (1.0 + r) - r


@jit(static_argnames=("m", "solver", "restarts", "residual"))
def _step(b, y, key, t, *, m: int, solver: str, restarts: int, residual: str):
    """Iteration ``t`` of COSDISH (sample m columns, the Omega step, the Gamma step) as one program, compiled
    once per shape and settings. Returns ``(b, objective before, objective after the Omega step)``."""
    k_omega, k_bqp = jax.random.split(jax.random.fold_in(key, t))
    omega = jax.random.permutation(k_omega, b.shape[0])[:m]
    s = rescaled_columns(y, omega)
    before = pairwise_objective(b, s, omega)
    b = bqp_bitwise(b, s, omega, key=k_bqp, method=solver, restarts=restarts, residual=residual)
    after = pairwise_objective(b, s, omega)
    return cosdish_gamma_update(b, s, omega), before, after


@jit(static_argnames=("bits", "classes"))
def _start(key, labels, *, bits: int, classes: int):
    """The keys of the three random draws, the label matrix and the random initial codes, in one program."""
    k_init, k_anchor, k_loop = jax.random.split(key, 3)
    b = sign(jax.random.normal(k_init, (labels.shape[0], bits))).astype(jnp.float32)
    return label_matrix(labels, classes), b, k_anchor, k_loop


def fit(features, labels=None, *, bits, key, num_samples: int = 1000, iterations: int = 5,
        solver: str = "partition+local_search", residual: str = "others", restarts: int = 2,
        anchors: int = 1000, reg: float = 1.0) -> Hasher:
    """COSDISH codes for the labelled training set, then ridge-fitted RBF-kernel hash functions."""
    x, labels, bits = prepare_fit(features, labels, bits, supervised=True)
    n = x.shape[0]
    m = min(check_positive(num_samples, "num_samples"), n)
    anchors = check_positive(anchors, "anchors", n, "the number of training points")
    iterations = check_positive(iterations, "iterations")
    y, b, k_anchor, k_loop = _start(key, labels, bits=bits, classes=num_classes_of(labels))
    history = []
    for t in range(iterations):
        b, before, after = _step(b, y, k_loop, t, m=m, solver=solver, restarts=restarts,
                                 residual=residual)
        history.append((float(before), float(after)))
    u = choose_anchors(x, k_anchor, anchors, "random")
    sigma = rbf_bandwidth(x, u, "mean")  # op by op, as in jhash/shallow/sdh.py (``_draws``)
    w, bias = fit_ridge(rbf_features(x, u, sigma), b, reg)
    return Hasher("cosdish", bits, x.shape[1], kernel_project, {"anchors": u, "sigma": sigma, "w": w, "b": bias},
                  {"omega_step_objective": np.array(history), "train_codes": b.astype(jnp.int8)})
