"""DSeRH: discrete semantic ranking hashing (Liu, Shao, Shen, Yu, "Discretely coding semantic rank
orders for supervised image hashing", CVPR 2017).

Rank orders come from the semantic similarity of the classes: with class embeddings e_c
(the paper: word embeddings of the class names), the relevance of x_j to x_i is the cosine
rel_ij = cos(e(y_i), e(y_j)) (multi-hot labels: the normalised sum of their classes'
embeddings). Without embeddings (``class_embeddings=None``) e_c is one-hot, so rel is 1 for
a shared class and 0 otherwise (the 0/1 rank orders the paper improves upon). A rank
triplet t = (i, j, k) says x_j must rank above x_k for x_i (rel_ij > rel_ik); its quadratic
rank-order loss compares the code-space gap with the semantic gap,

    l_t(B) = ( (b_i^T b_j - b_i^T b_k) / (2K) - (rel_ij - rel_ik) )^2,                 (rank loss)

(b_i^T b_j = K - 2 d_H(b_i, b_j), so the first term is (d_H(i, k) - d_H(i, j)) / K in [-1, 1]).
Codes B in {-1, +1}^(n x K) of the training set and hash functions F(x) = phi(x) W + c are
learned jointly:

    min_{B, W, c}  (1/T) sum_t l_t(B) + lam/(nK) (||B - phi(X) W - 1 c^T||^2 + nu ||W||^2).   (DSeRH)

* W step: ridge regression of B on phi (exact; :func:`jhash.shallow.common.fit_ridge`).
* B step, adaptive discrete minimisation (ADM): the objective f(B) is linearised at B_t
  and a proximal term added, B_{t+1} = argmin_{B in {-1,1}} <grad f(B_t), B> + eta/2 ||B - B_t||^2
  = sign(B_t - grad f(B_t) / eta) (closed form, tested by enumeration); eta adapts: it is
  doubled until f(B_{t+1}) <= f(B_t) (for eta large enough B_{t+1} = B_t, so the search
  ends), then halved for the next step. Every accepted step decreases f and both steps are
  exact or monotone, so the DSeRH objective never increases (tested) and, B being finite,
  the iteration converges.

What we could not check: the paper's full text was not available to us (no published code
either), so the exact form of its quadratic ranking loss and of the ADM step size rule are
our reading of its abstract and method summary: a quadratic nonlinear ranking objective on
the codes, optimised discretely by an adaptive linearisation that provably decreases it.
Our loss above and the doubling rule are our choices, as are the defaults: T = 50 n rank
triplets (anchors uniform; for 0/1 relevance a similar j and a dissimilar k, for graded
relevance random pairs ordered by rel, ties dropped), lam = 1, nu = 1, eta0 = 1, 10 outer
iterations of (5 ADM steps, W step), B started from the signs of random projections.
Hash functions: the paper's linear ones (``hash_functions='linear'``: phi(x) = x - mean) or
RBF kernel features on random anchors (``'kernel'``, as SDH).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jhash.codes import sign
from jhash.shallow.common import Hasher, check_positive, fit_ridge, prepare_fit, sample_triplets
from jhash.shallow.listwise import feature_map, feature_project

_HI = jax.lax.Precision.HIGHEST


def semantic_relevance(labels, class_embeddings=None):
    """``rel (n, n)``: cosine similarity of the items' class embeddings (one-hot when None)."""
    if labels.ndim == 1:
        c = int(jnp.max(labels)) + 1
        y = jax.nn.one_hot(labels, c, dtype=jnp.float32)
    else:
        y = labels.astype(jnp.float32)
    if class_embeddings is not None:
        e = jnp.asarray(class_embeddings, jnp.float32)
        if e.ndim != 2 or e.shape[0] < y.shape[1]:
            raise ValueError(f"class_embeddings must be (classes >= {y.shape[1]}, dim), got shape {e.shape}")
        y = jnp.pad(y, ((0, 0), (0, e.shape[0] - y.shape[1]))) @ e
    y = y / jnp.maximum(jnp.linalg.norm(y, axis=1, keepdims=True), 1e-12)
    return jnp.matmul(y, y.T, precision=_HI)


@functools.partial(jax.jit, static_argnames=("n_triplets",))
def graded_triplets(key, rel, n_triplets: int):
    """Rank triplets for graded relevance: (i, j, k) uniform, ordered so rel_ij >= rel_ik;
    ``valid`` where rel_ij > rel_ik and j, k differ from i. Returns ``(triplets, valid)``."""
    n = rel.shape[0]
    t = jax.random.randint(key, (n_triplets, 3), 0, n)
    i, j, k = t[:, 0], t[:, 1], t[:, 2]
    swap = rel[i, j] < rel[i, k]
    j, k = jnp.where(swap, k, j), jnp.where(swap, j, k)
    valid = (rel[i, j] > rel[i, k]) & (j != i) & (k != i)
    return jnp.stack([i, j, k], 1).astype(jnp.int32), valid


def rank_loss(b, triplets, valid, target):
    """``(1/T) sum_t l_t(B)`` over the valid triplets (``target``: rel_ij - rel_ik per triplet)."""
    bi, bj, bk = b[triplets[:, 0]], b[triplets[:, 1]], b[triplets[:, 2]]
    gap = jnp.sum(bi * (bj - bk), 1) / (2.0 * b.shape[1])
    return jnp.sum(jnp.where(valid, (gap - target) ** 2, 0.0)) / jnp.maximum(jnp.sum(valid), 1)


def objective(b, f, triplets, valid, target, w, *, lam, nu):
    """The DSeRH objective above; ``f = phi(X) W + c`` the hash functions' outputs."""
    n, k = b.shape
    return rank_loss(b, triplets, valid, target) + lam / (n * k) * (jnp.sum((b - f) ** 2) + nu * jnp.sum(w * w))


def adm_proposal(b, grad, eta):
    """``argmin_{B in {-1,+1}} <grad, B> + eta/2 ||B - b||^2 = sign(b - grad / eta)``."""
    return sign(b - grad / eta).astype(b.dtype)


@functools.partial(jax.jit, static_argnames=("steps", "max_doublings"))
def adm(b, f, triplets, valid, target, eta0, *, lam, steps: int, max_doublings: int = 40):
    """``steps`` ADM steps on f(B) = rank loss + lam/(nK) ||B - f||^2 from ``b``.

    Returns ``(B, eta, values)``: ``values[t]`` the objective after step t (non-increasing)."""
    n, k = b.shape

    def fb(b):
        return rank_loss(b, triplets, valid, target) + lam / (n * k) * jnp.sum((b - f) ** 2)

    grad_f = jax.grad(fb)

    def step(t, carry):
        b, eta, values = carry
        f0, g = fb(b), grad_f(b)

        def cond(c):
            _, _, ok, tries = c
            return (~ok) & (tries < max_doublings)

        def body(c):
            _, eta, _, tries = c
            eta = eta * 2.0
            nb = adm_proposal(b, g, eta)
            return nb, eta, fb(nb) <= f0, tries + 1

        nb = adm_proposal(b, g, eta)
        nb, eta, ok, _ = jax.lax.while_loop(cond, body, (nb, eta, fb(nb) <= f0, 0))
        nb = jnp.where(ok, nb, b)
        return nb, eta / 2.0, values.at[t].set(fb(nb))

    return jax.lax.fori_loop(0, steps, step, (b, eta0, jnp.zeros(steps, jnp.float32)))


def fit(features, labels=None, *, bits, key, class_embeddings=None, hash_functions: str = "linear",
        anchors: int = 1000, triplets_per_point: int = 50, lam: float = 1.0, nu: float = 1.0, eta0: float = 1.0,
        outer_iterations: int = 10, adm_steps: int = 5) -> Hasher:
    """DSeRH on labelled features (see the module docstring)."""
    x, labels, bits = prepare_fit(features, labels, bits, supervised=True)
    n = x.shape[0]
    n_trip = check_positive(triplets_per_point, "triplets_per_point") * n
    outer = check_positive(outer_iterations, "outer_iterations")
    adm_steps = check_positive(adm_steps, "adm_steps")
    for name, v in (("lam", lam), ("nu", nu), ("eta0", eta0)):
        if not v > 0:
            raise ValueError(f"{name} must be positive, got {v!r}")
    k_feat, k_init, k_trip = jax.random.split(key, 3)
    phi, params = feature_map(x, k_feat, hash_functions, anchors)
    rel = semantic_relevance(labels, class_embeddings)
    if class_embeddings is None:
        trip, valid = sample_triplets(k_trip, labels, n_trip)
    else:
        trip, valid = graded_triplets(k_trip, rel, n_trip)
    target = rel[trip[:, 0], trip[:, 1]] - rel[trip[:, 0], trip[:, 2]]
    b = sign(jnp.matmul(phi - jnp.mean(phi, 0), jax.random.normal(k_init, (phi.shape[1], bits)), precision=_HI))
    b = b.astype(jnp.float32)
    w, c = fit_ridge(phi, b, nu)
    eta = jnp.float32(eta0)
    obj = jax.jit(functools.partial(objective, lam=lam, nu=nu))
    history = []
    for _ in range(outer):
        f = jnp.matmul(phi, w, precision=_HI) + c
        b, eta, _ = adm(b, f, trip, valid, target, eta, lam=float(lam), steps=adm_steps)
        after_b = obj(b, f, trip, valid, target, w)
        w, c = fit_ridge(phi, b, nu)
        history.append((float(after_b), float(obj(b, jnp.matmul(phi, w, precision=_HI) + c, trip, valid, target, w))))
    return Hasher("dserh", bits, x.shape[1], feature_project, dict(params, w=w, b=c),
                  {"objective": np.array(history), "train_codes": b.astype(jnp.int8),
                   "rank_loss": float(rank_loss(b, trip, valid, target))})
