"""TSH: two-step hashing (Lin, Shen, Suter, van den Hengel, "A general two-step approach to
learning-based hashing", ICCV 2013).

Bits are learned one at a time (stagewise; see :mod:`jhash.shallow.twostep` for the shared
loop, the losses and the exact bitwise problem). For bit r, with the first r - 1 bits given
by the hash functions already learned,

  step 1:  min_{z in {-1,+1}^n}  z^T W z / 2,   W_ij = l_r(d0_ij) - l_r(d0_ij + 1) on the pairs,

solved as in the paper by relaxation: the spectral solution (the eigenvector of W's
smallest eigenvalue, i.e. min z^T W z subject to ||z||^2 = n), scaled into the box, then the
box-constrained relaxation min_{z in [-1, 1]^n} z^T W z refined from it, then rounded by sign;
  step 2:  a binary classifier h_r(x) = sign(w^T phi(x) + b) trained to predict z, each
example weighted by sum_j |W_ij|; its outputs on the training set replace z for later bits.

Losses: ``"ksh"`` (default; the paper's TSH-KSH), ``"bre"``, ``"hinge"`` (the authors' code).

Defaults and where we differ:

* the box-constrained step: the paper (and the authors' ``spectral`` inference) runs
  L-BFGS-B; we run ``box_iterations`` = 100 projected-gradient steps of size 1/L with L =
  max_i sum_j |W_ij| >= ||W||_2, which never increase the relaxed objective (asserted in
  the tests); the rounded column is then polished by 1-flip local search
  (:func:`jhash.solvers.bqp_local_search`, never increases z^T W z, ends at a 1-flip local
  minimum): an addition of ours;
* the spectral vector: dense ``eigh`` up to n = 1,024 points, LOBPCG (``spectral_iterations``
  = 100, unused below that size) beyond;
* step 2: the paper trains SVMs (linear, or on RBF kernel features); we train a weighted
  squared-hinge (L2-loss) SVM, reg/2 ||w||^2 + sum_i s_i max(0, 1 - y_i (w^T phi_i + b))^2,
  LIBLINEAR's default primal, by ``svm_iterations`` = 10 generalised Newton steps
  (each a weighted ridge solve on the margin violators) from the weighted ridge solution,
  keeping the best iterate, on RBF features of 300 random anchors (KSH's kernel setup;
  sigma = the mean distance to the anchors; the authors' demo uses 500 random support
  vectors) with reg = 1 and example weights normalised to mean 1 (our choices);
* pairs: 100 similar + 100 dissimilar partners per point, as the authors' demo code
  (their FastH code, which extends the TSH framework; ``pairs_per_point=None``: all pairs).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jhash.codes import sign
from jhash.shallow import twostep
from jhash.shallow.common import (Hasher, check_positive, choose_anchors, kernel_project, prepare_fit, rbf_bandwidth,
                                  rbf_features)
from jhash.solvers import bqp_local_search

_HI = jax.lax.Precision.HIGHEST
_DENSE_EIGH = 1024


def spectral_start(w, key, iterations: int = 100, dense_limit: int = _DENSE_EIGH):
    """The eigenvector of the smallest eigenvalue of symmetric ``w``, scaled to max |z_i| = 1
    (dense ``eigh`` up to ``dense_limit`` rows, LOBPCG with ``iterations`` beyond)."""
    n = w.shape[0]
    if n <= dense_limit:
        v = jnp.linalg.eigh(w)[1][:, 0]
    else:
        from jax.experimental.sparse.linalg import lobpcg_standard
        bound = jnp.max(jnp.sum(jnp.abs(w), 1))   # bound I - W is PSD: its top vector is W's bottom one
        op = lambda u: bound * u - jnp.matmul(w, u, precision=_HI)  # noqa: E731
        v = lobpcg_standard(op, jax.random.normal(key, (n, 1)), m=iterations)[1][:, 0]
    return v / jnp.maximum(jnp.max(jnp.abs(v)), jnp.finfo(jnp.float32).tiny)


@functools.partial(jax.jit, static_argnames=("box_iterations", "spectral_iterations", "max_flips"))
def solve_bit(w, key, *, box_iterations: int = 100, spectral_iterations: int = 100, max_flips: int | None = None):
    """TSH step 1 for one bit: spectral start, projected gradient on the box, sign, 1-flip
    local search. Returns ``(z (n,) +-1 float, info)`` with ``info["relaxed"]`` the relaxed
    objective z^T W z / 2 before and after every projected-gradient step and
    ``info["rounded"]`` / ``info["final"]`` the binary objective before / after the local search."""
    lip = jnp.maximum(jnp.max(jnp.sum(jnp.abs(w), 1)), jnp.finfo(jnp.float32).tiny)
    z0 = spectral_start(w, key, spectral_iterations)

    def step(z, _):
        g = jnp.matmul(w, z, precision=_HI)
        new = jnp.clip(z - g / lip, -1.0, 1.0)
        return new, twostep.bit_objective(w, new)

    z, hist = jax.lax.scan(step, z0, None, length=box_iterations)
    b = sign(z).astype(w.dtype)
    rounded = twostep.bit_objective(w, b)
    b, _ = bqp_local_search(0.5 * w, jnp.zeros_like(b), b, max_flips=max_flips)
    relaxed = jnp.concatenate([twostep.bit_objective(w, z0)[None], hist])
    return b, {"relaxed": relaxed, "rounded": rounded, "final": twostep.bit_objective(w, b)}


def svm_objective(theta, phi, y, s, reg):
    """reg/2 ||w||^2 + sum_i s_i max(0, 1 - y_i (phi_i w + b))^2 for theta = [w; b]."""
    f = jnp.matmul(phi, theta[:-1], precision=_HI) + theta[-1]
    return 0.5 * reg * jnp.sum(theta[:-1] ** 2) + jnp.sum(s * jnp.maximum(0.0, 1.0 - y * f) ** 2)


@functools.partial(jax.jit, static_argnames=("iterations",))
def fit_l2svm(phi, y, s, reg, *, iterations: int = 10):
    """Weighted squared-hinge linear SVM with an unregularised bias, by generalised Newton.

    On the set A of margin violators (y_i f_i < 1) the loss is sum_A s_i (y_i - f_i)^2, so a
    Newton step is the weighted ridge solve (2 X_A^T S X_A + R) theta = 2 X_A^T S y_A with
    X = [phi, 1], R = diag(reg, ..., reg, 0) (+1e-8 on the bias for an empty A). Starts from
    every point active (weighted ridge); returns the iterate of least objective.
    """
    n, m = phi.shape
    x = jnp.concatenate([phi, jnp.ones((n, 1), phi.dtype)], 1)
    r = jnp.diag(jnp.concatenate([jnp.full((m,), reg, phi.dtype), jnp.full((1,), 1e-8, phi.dtype)]))

    def newton(active):
        sa = s * active
        g = 2.0 * jnp.matmul(x.T * sa, x, precision=_HI) + r
        return jnp.linalg.solve(g, 2.0 * jnp.matmul(x.T, sa * y, precision=_HI))

    def body(carry, _):
        theta, best, best_val = carry
        f = jnp.matmul(x, theta, precision=_HI)
        theta = newton((y * f < 1.0).astype(phi.dtype))
        val = svm_objective(theta, phi, y, s, reg)
        better = val < best_val
        return (theta, jnp.where(better, theta, best), jnp.where(better, val, best_val)), val

    theta0 = newton(jnp.ones((n,), phi.dtype))
    val0 = svm_objective(theta0, phi, y, s, reg)
    (_, theta, _), _ = jax.lax.scan(body, (theta0, theta0, val0), None, length=iterations)
    return theta


def fit(features, labels=None, *, bits, key, loss: str = "ksh", pairs_per_point: int | None = 100,
        anchors: int = 300, reg: float = 1.0, box_iterations: int = 100, spectral_iterations: int = 100,
        svm_iterations: int = 10) -> Hasher:
    """TSH on labelled features (see the module docstring)."""
    x, labels, bits = prepare_fit(features, labels, bits, supervised=True)
    n = x.shape[0]
    twostep.check_loss(loss)
    anchors = check_positive(anchors, "anchors", n, "the number of training points")
    if pairs_per_point is not None:
        pairs_per_point = check_positive(pairs_per_point, "pairs_per_point")
    box_iterations = check_positive(box_iterations, "box_iterations")
    spectral_iterations = check_positive(spectral_iterations, "spectral_iterations")
    svm_iterations = check_positive(svm_iterations, "svm_iterations")
    if not reg > 0:
        raise ValueError(f"reg must be positive, got {reg!r}")
    k_anchor, k_fit = jax.random.split(key)
    u = choose_anchors(x, k_anchor, anchors, "random")
    sigma = rbf_bandwidth(x, u, "mean")
    phi = rbf_features(x, u, sigma)

    def solve(w, k):
        return solve_bit(w, k, box_iterations=box_iterations, spectral_iterations=spectral_iterations)

    def fit_one(z, s, _):
        s = n * s / jnp.maximum(jnp.sum(s), jnp.finfo(jnp.float32).tiny)
        theta = fit_l2svm(phi, z, s, jnp.float32(reg), iterations=svm_iterations)
        return theta, sign(jnp.matmul(phi, theta[:-1], precision=_HI) + theta[-1]).astype(jnp.float32)

    thetas, info = twostep.stagewise(labels, bits, k_fit, loss=loss, pairs_per_point=pairs_per_point,
                                     solve_bit=solve, fit_bit=fit_one)
    theta = jnp.stack(thetas, 1)                                              # (m + 1, bits)
    return Hasher("tsh", bits, x.shape[1], kernel_project, {"anchors": u, "sigma": sigma, "w": theta[:-1], "b": theta[-1]},
                  dict(info, loss=loss))


__all__ = ["fit", "solve_bit", "fit_l2svm", "svm_objective", "spectral_start"]
