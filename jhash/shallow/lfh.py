"""LFH: supervised hashing with latent factor models (Zhang, Zhang, Li, Guo, SIGIR 2014).

Real latent factors U (n x q) of the training points maximise the likelihood of the
pairwise labels with a Gaussian prior,

    L(U) = sum_{i != j} [ s_ij Theta_ij - log(1 + e^Theta_ij) ] - ||U||_F^2 / (2 beta),   Theta_ij = u_i^T u_j / 2,

(the LFH / DPSH likelihood, :func:`jhash.losses.pairwise_likelihood`), and the codes are
sign(U); linear hash functions W = (X^T X + lam I)^-1 X^T U are then fitted (codes of new
points: sign(x W)).

U is updated row by row (Gauss-Seidel) by the paper's surrogate step: with the others
fixed, the Hessian of L in u_i is bounded below by H_i = -(1/8) sum_{j != i} u_j u_j^T - I / beta
(sigmoid' <= 1/4, and each pair appears twice), so

    u_i <- u_i - H_i^-1 g_i,    g_i = sum_{j != i} (s_ij - sigmoid(Theta_ij)) u_j - u_i / beta,

maximises a lower bound of L that touches it at u_i: L never decreases (minorise-maximise;
the tests check it). ``num_samples`` = m > 0 gives the paper's stochastic learning: each
sweep uses m sampled columns of S (the sums over j run over the sample), which scales to
large n but drops the guarantee. Defaults: beta = 1 (our choice), 10 sweeps, full columns
for n <= 10,000 (m = 0), lam = 1 for the hash functions. U starts from small Gaussian noise.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jhash.shallow.common import Hasher, check_positive, fit_ridge, linear_project, prepare_fit
from jhash.losses import label_matrix

_HI = jax.lax.Precision.HIGHEST


def log_likelihood(u, s, *, beta):
    """L(U) above, over ordered pairs i != j; ``s`` (n, n) in {0, 1}."""
    theta = 0.5 * jnp.matmul(u, u.T, precision=_HI)
    off = 1.0 - jnp.eye(u.shape[0], dtype=u.dtype)
    return jnp.sum(off * (s * theta - jax.nn.softplus(theta))) - jnp.sum(u * u) / (2.0 * beta)


def sweep(u, s_cols, cols, *, beta):
    """One Gauss-Seidel pass of the surrogate row updates; ``s_cols`` (n, m) the labels against the columns ``cols`` (m,)."""
    q = u.shape[1]
    eye = jnp.eye(q, dtype=u.dtype)

    def row(i, u):
        v = u[cols]                                            # (m, q) the current column factors
        not_self = (cols != i).astype(u.dtype)
        theta = 0.5 * jnp.matmul(v, u[i], precision=_HI)
        g = jnp.matmul(not_self * (s_cols[i] - jax.nn.sigmoid(theta)), v, precision=_HI) - u[i] / beta
        bound = jnp.matmul((v * not_self[:, None]).T, v, precision=_HI) / 8.0 + eye / beta  # -H_i
        return u.at[i].add(jnp.linalg.solve(bound, g))

    return jax.lax.fori_loop(0, u.shape[0], row, u)


def fit(features, labels=None, *, bits, key, beta: float = 1.0, sweeps: int = 10, num_samples: int = 0,
        lam: float = 1.0) -> Hasher:
    """LFH codes for the labelled training set, then linear hash functions (see the module docstring)."""
    x, labels, bits = prepare_fit(features, labels, bits, supervised=True)
    n = x.shape[0]
    sweeps = check_positive(sweeps, "sweeps")
    m = n if not num_samples else min(check_positive(num_samples, "num_samples"), n)
    y = label_matrix(labels)
    k_init, k_cols = jax.random.split(key)
    u = 0.1 * jax.random.normal(k_init, (n, bits), jnp.float32)

    @jax.jit
    def step(u, y, key):
        cols = jnp.arange(n) if m == n else jax.random.permutation(key, n)[:m]
        s_cols = (jnp.matmul(y, y[cols].T, precision=_HI) > 0).astype(jnp.float32)
        return sweep(u, s_cols, cols, beta=beta)

    s_full = (jnp.matmul(y, y.T, precision=_HI) > 0).astype(jnp.float32) if m == n else None
    objective = jax.jit(lambda u, s: log_likelihood(u, s, beta=beta))
    history = [] if s_full is None else [float(objective(u, s_full))]
    for t in range(sweeps):
        u = step(u, y, jax.random.fold_in(k_cols, t))
        if s_full is not None:
            history.append(float(objective(u, s_full)))
    w, b = fit_ridge(x, u, lam)
    return Hasher("lfh", bits, x.shape[1], linear_project, {"mean": jnp.zeros((x.shape[1],), x.dtype), "w": w, "b": b},
                  {"log_likelihood": np.array(history), "train_codes": jnp.where(u >= 0, 1, -1).astype(jnp.int8)})
