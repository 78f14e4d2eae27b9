"""FSDH: fast supervised discrete hashing (Gui, Liu, Sun, Tao, Tan, IEEE TPAMI 2018).

SDH regresses the labels from the codes (||Y - B W||^2), which makes its B-step a bitwise
coordinate descent. FSDH regresses the codes from the labels instead,

    min_{B, W, P, c}  ||B - Y W||^2 + lam ||W||^2 + nu (||B - phi(X) P - c||^2 + delta ||P||^2),  B in {-1, +1}^(n x q)

and every step becomes a closed form, each an exact block minimisation (so the objective
never increases; tested):
  * W = (Y^T Y + lam I)^-1 Y^T B (ridge regression of the codes on the labels);
  * (P, c): the kernel hash functions, as in SDH (:mod:`jhash.shallow.sdh`);
  * B = sign(Y W + nu (phi(X) P + c)), entrywise (the objective is separable in B's entries).
Codes of new points are sign(phi(x) P + c) on the same RBF anchor features as SDH.

Defaults as SDH here (m = 1,000 random anchors, sigma the mean distance, lam = 1,
nu = 1e-5, delta = 1e-2, 5 iterations); the paper's own lam and nu per dataset are not
reproduced (our choice: SDH's).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jhash.codes import sign
from jhash.shallow.common import Hasher, fit_ridge
from jhash.shallow.sdh import kernel_problem, sdh_project
from jhash.solvers import ridge_regression

_HI = jax.lax.Precision.HIGHEST


def objective(b, w, p, c, y, phi, *, lam, nu, delta):
    """The FSDH objective above (b +-1 (n, q), w (classes, q), p (m, q), c (q,))."""
    f = jnp.matmul(phi, p, precision=_HI) + c
    return (jnp.sum((b - jnp.matmul(y, w, precision=_HI)) ** 2) + lam * jnp.sum(w ** 2)
            + nu * (jnp.sum((b - f) ** 2) + delta * jnp.sum(p ** 2)))


def fit(features, labels=None, *, bits, key, anchors: int = 1000, lam: float = 1.0, nu: float = 1e-5,
        delta: float = 1e-2, outer_iterations: int = 5) -> Hasher:
    """FSDH on labelled features; returns the kernel hash functions (see the module docstring)."""
    x, phi, u, sigma, y, b, outer = kernel_problem(features, labels, bits, key, anchors, outer_iterations)

    @jax.jit
    def iteration(b, y, phi):
        w = ridge_regression(y, b, lam=lam)
        p, c = fit_ridge(phi, b, delta)
        f = jnp.matmul(phi, p, precision=_HI) + c
        b = sign(jnp.matmul(y, w, precision=_HI) + nu * f).astype(jnp.float32)
        return b, objective(b, w, p, c, y, phi, lam=lam, nu=nu, delta=delta)

    history = []
    for _ in range(outer):
        b, value = iteration(b, y, phi)
        history.append(value)
    p, c = fit_ridge(phi, b, delta)
    return Hasher("fsdh", bits, x.shape[1], sdh_project, {"anchors": u, "sigma": sigma, "p": p, "c": c},
                  {"objective": jnp.stack(history), "train_codes": b.astype(jnp.int8)})
