"""AffHash: affinity-based binary hashing optimised with auxiliary coordinates
(Raziperchikolaei & Carreira-Perpinan, "Optimizing affinity-based binary hashing using
auxiliary coordinates", NIPS 2016; arXiv:1501.05352).

The loss is KSH's affinity loss on the codes of the hash function h (b bits, N points):

    min_h L(h(X)),   L(Z) = sum_nm (z_n^T z_m - b y_nm)^2 = ||Z Z^T - b Y||_F^2,   y_nm = +1 similar, -1 not.

The method of auxiliary coordinates (MAC) introduces the codes Z in {-1, +1}^(N x b) as
variables, z_n = h(x_n), and minimises the quadratic penalty

    E(Z, h; mu) = L(Z) + mu ||Z - h(X)||_F^2                                           (MAC)

for an increasing sequence of mu, alternating two steps:

* Z step (h fixed): over the bits in turn. For bit k with the other bits fixed it is the
  binary quadratic problem min_z z^T A z + c^T z, A = -2 R_k, R_k = b Y - sum_{l != k} z_l z_l^T,
  c = -2 mu h_k(X) (||z - h_k||^2 = const - 2 z^T h_k for binary vectors). The paper solves
  each bit's BQP with GraphCut; we use :func:`jhash.solvers.bqp_minimize` (1-flip local search
  from the current column plus ``restarts`` random starts). Like the paper's step it only
  accepts decreases, so each Z step never increases E (tested); unlike GraphCut on the
  submodular blocks it gives a 1-flip local minimum, not a block-optimal one.
* h step (Z fixed): one binary classifier per bit fitted to the column z_k, as the paper's
  linear SVMs (LIBLINEAR): the L2-regularised squared-hinge SVM
  min_w 1/2 ||w||^2 + C sum_n max(0, 1 - z_nk w^T [phi(x_n); 1])^2 (LIBLINEAR's default
  solver's problem, bias as a constant feature), solved in the dual by coordinate descent
  (Hsieh et al., ICML 2008) as LIBLINEAR does (:func:`svm_dual_cd`; tested against a direct
  minimisation of the primal). ``hash_functions='kernel'`` uses RBF features on random
  anchors instead of x (the paper also reports kernel hash functions).

The schedule: Z starts from the codes of random projections, the first Z step is run with
mu = 0 (the two-step method's code step, which the paper's algorithm "corrects and
iterates"), then for mu_i = mu0 * factor^i: h step, Z step. Like the paper we stop once the Z
step leaves Z = h(X) (then larger mu cannot change anything); if the schedule ends before
that, a last h step fits the hash functions to the final Z. Defaults (our choices, scaled
to the loss: one flip changes L by at most 8 N b): mu0 = 0.01 N b, factor 2, 9 values of mu
(up to 2.56 N b, where Z = h(X) is forced), C = 1, 10 dual coordinate-descent epochs. The
paper tunes mu0 and the factor per data set; its GraphCut step is replaced as said above.
The N x N affinity is dense: fine for N = 5,000, not past ~30,000; ``labelled`` = l < N
restricts the loss (and the SVMs) to l random training points, as KSH's l labelled points.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jhash.codes import sign
from jhash.shallow.common import Hasher, check_positive, prepare_fit, similarity_from_labels
from jhash.shallow.listwise import feature_map, feature_project
from jhash.solvers import bqp_minimize

_HI = jax.lax.Precision.HIGHEST


def affinity_loss(z, y):
    """KSH's loss ``||Z Z^T - b Y||_F^2`` (``z`` (N, b) +-1, ``y`` (N, N) +-1)."""
    return jnp.sum((jnp.matmul(z, z.T, precision=_HI) - z.shape[1] * y) ** 2)


def penalized_objective(z, hz, y, mu):
    """E(Z, h; mu) = L(Z) + mu ||Z - h(X)||^2 (``hz``: the codes h(X), +-1)."""
    return affinity_loss(z, y) + mu * jnp.sum((z - hz) ** 2)


@functools.partial(jax.jit, static_argnames=("restarts", "max_flips"))
def z_step(z, hz, y, mu, key, *, restarts: int = 0, max_flips: int | None = None):
    """One pass over the bits of the MAC Z step; each bit's BQP by :func:`jhash.solvers.bqp_minimize`.

    ``z`` (N, b) current codes, ``hz`` (N, b) h(X), ``y`` (N, N) affinities. Never increases
    :func:`penalized_objective`. Returns the new codes."""
    q = z.shape[1]
    zt = z.T
    r = q * y - jnp.matmul(zt.T, zt, precision=_HI)          # residual of all bits

    def bit(k, carry):
        zt, r = carry
        col = zt[k]
        r = r + jnp.outer(col, col)                           # put bit k back: R_k
        new = bqp_minimize(-2.0 * r, -2.0 * mu * hz[:, k], col, key=jax.random.fold_in(key, k),
                           restarts=restarts, max_flips=max_flips)
        return zt.at[k].set(new), r - jnp.outer(new, new)

    zt, _ = jax.lax.fori_loop(0, q, bit, (zt, r))
    return zt.T


def _augment(phi):
    return jnp.concatenate([phi, jnp.ones((phi.shape[0], 1), phi.dtype)], axis=1)


def svm_primal(w, phi, targets, c):
    """Per bit: ``1/2 ||w_k||^2 + C sum_n max(0, 1 - t_nk w_k^T [phi_n; 1])^2``; ``w`` (d + 1, b)."""
    margins = targets * jnp.matmul(_augment(phi), w, precision=_HI)
    return 0.5 * jnp.sum(w * w, 0) + c * jnp.sum(jnp.maximum(0.0, 1.0 - margins) ** 2, 0)


@functools.partial(jax.jit, static_argnames=("epochs",))
def svm_dual_cd(phi, targets, c, key, *, epochs: int = 10):
    """L2-loss linear SVMs, one per column of ``targets`` (N, b) +-1, by dual coordinate descent.

    The dual of :func:`svm_primal` is min_{alpha >= 0} 1/2 alpha^T (Q + I / (2C)) alpha - 1^T alpha,
    Q_nm = t_n t_m [phi_n; 1]^T [phi_m; 1]; each epoch visits the points in a random order
    and minimises over alpha_n exactly (projected Newton on a 1-D quadratic), keeping
    w = sum_n alpha_n t_n [phi_n; 1]. Returns w (d + 1, b): weights, then the bias."""
    xa = _augment(phi)
    n = xa.shape[0]
    diag = 0.5 / c
    qii = jnp.sum(xa * xa, 1) + diag

    def visit(i, carry):
        w, alpha = carry
        xi, ti = xa[i], targets[i]
        g = ti * jnp.matmul(xi, w, precision=_HI) - 1.0 + diag * alpha[i]
        new = jnp.maximum(alpha[i] - g / qii[i], 0.0)
        return w + jnp.outer(xi, (new - alpha[i]) * ti), alpha.at[i].set(new)

    def epoch(e, carry):
        order = jax.random.permutation(jax.random.fold_in(key, e), n)
        return jax.lax.fori_loop(0, n, lambda j, cr: visit(order[j], cr), carry)

    w0 = jnp.zeros((xa.shape[1], targets.shape[1]), phi.dtype)
    w, _ = jax.lax.fori_loop(0, epochs, epoch, (w0, jnp.zeros(targets.shape, phi.dtype)))
    return w


def fit(features, labels=None, *, bits, key, hash_functions: str = "linear", anchors: int = 1000, c: float = 1.0,
        svm_epochs: int = 10, mu0: float | None = None, mu_factor: float = 2.0, mu_steps: int = 9,
        restarts: int = 0, labelled: int | None = None) -> Hasher:
    """AffHash (MAC on KSH's loss) with linear-SVM hash functions (see the module docstring)."""
    x, labels, bits = prepare_fit(features, labels, bits, supervised=True)
    n = x.shape[0]
    mu_steps = check_positive(mu_steps, "mu_steps")
    svm_epochs = check_positive(svm_epochs, "svm_epochs")
    if not c > 0:
        raise ValueError(f"c (the SVM's C) must be positive, got {c!r}")
    if not mu_factor > 1:
        raise ValueError(f"mu_factor must be > 1, got {mu_factor!r}")
    restarts = int(restarts)
    k_anchor, k_init, k_loop, k_label = jax.random.split(key, 4)
    phi, params = feature_map(x, k_anchor, hash_functions, anchors)
    if labelled is not None and check_positive(labelled, "labelled") < n:  # KSH's l labelled points
        rows = jax.random.permutation(k_label, n)[:labelled]
        phi, labels, n = phi[rows], labels[rows], int(labelled)
    mu0 = 0.01 * n * bits if mu0 is None else float(mu0)
    if not mu0 > 0:
        raise ValueError(f"mu0 must be positive, got {mu0!r}")
    y = jnp.where(similarity_from_labels(labels, labels), 1.0, -1.0)
    z = sign(jnp.matmul(phi - jnp.mean(phi, 0), jax.random.normal(k_init, (phi.shape[1], bits)), precision=_HI))
    z = z.astype(jnp.float32)
    z = z_step(z, z, y, 0.0, jax.random.fold_in(k_loop, 0), restarts=restarts)   # mu = 0: the code step of two-step
    objective = jax.jit(penalized_objective)
    history = []  # (mu, E before the Z step, E after it, fraction of bits where Z != h(X))
    for i in range(mu_steps):
        mu = mu0 * mu_factor ** i
        k_svm, k_z = jax.random.split(jax.random.fold_in(k_loop, i + 1))
        w = svm_dual_cd(phi, z, float(c), k_svm, epochs=svm_epochs)
        hz = sign(jnp.matmul(_augment(phi), w, precision=_HI)).astype(jnp.float32)
        before = float(objective(z, hz, y, mu))
        z = z_step(z, hz, y, mu, k_z, restarts=restarts)
        mismatch = float(jnp.mean(z != hz))
        history.append((mu, before, float(objective(z, hz, y, mu)), mismatch))
        if mismatch == 0.0:
            break
    if history[-1][3] > 0:  # the hash functions of the final codes
        w = svm_dual_cd(phi, z, float(c), jax.random.fold_in(k_loop, mu_steps + 1), epochs=svm_epochs)
        hz = sign(jnp.matmul(_augment(phi), w, precision=_HI)).astype(jnp.float32)
    return Hasher("affhash", bits, x.shape[1], feature_project, dict(params, w=w[:-1], b=w[-1]),
                  {"history": np.array(history), "train_codes": z.astype(jnp.int8),
                   "affinity_loss": float(affinity_loss(hz, y))})
