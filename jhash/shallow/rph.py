"""RPH: ranking preserving hashing (Wang, Zhang, Si, "Ranking preserving hashing for fast
similarity search", IJCAI 2015).

Linear hash functions h(x) = sign(W^T x) (W: d x K, features centred by their training
mean) are learned to maximise the NDCG of the Hamming ranking of each training query q over
a list of items x_1..x_L with graded relevance r_i (here: the number of labels shared with
q; 1 / 0 for class ids):

    NDCG(q) = (1/Z_q) sum_i (2^{r_i} - 1) / log2(1 + pi_i),   Z_q: the DCG of the ideal order,
    pi_i = 1 + sum_{j != i} I[ h(q)^T h(x_j) > h(q)^T h(x_i) ]                      (ranking position)

(our exact NDCG counts a tie as half a place, the mean position under random tie breaking;
a larger code inner product is a smaller Hamming distance, d_H = (K - h(q)^T h(x)) / 2).
NDCG is piecewise constant in W, so, as in the paper, the sign is relaxed to the linear
projection u(x) = W^T x and the indicator to a sigmoid,

    pi_i ~ 1 + sum_{j != i} sigmoid((u_q^T u_j - u_q^T u_i) / tau),                      (smooth position)

and the objective adds a quantisation term that keeps the projections near the codes they
are signed into, and a weight decay:

    min_W  -(1/|Q|) sum_q NDCG~(q; W) + gamma/(L K) sum_x ||sign(u(x)) - u(x)||^2 + alpha ||W||_F^2.

It is minimised by gradient steps (autodiff of the smooth objective; the quantisation
term's sign is held fixed, its gradient taken at the current codes). Each step draws a
batch of ``queries`` training points as queries and ``list_size`` other training points
as their common list, so the O(L^2) positions stay small.

Where we differ, and the defaults: the paper gives plain gradient descent; we use Adam
(lr 0.01; 0.03 on the small digits set) for 300 steps, queries = 64, list_size = 128,
tau = 1, gamma = 0.1, W started from random Gaussian directions scaled to unit projection
variance: our choices (no code was published). The weight decay alpha defaults to 0: the
quantisation term already fixes the scale of W, and a decay on W depends on the scale of the
features (on [0, 1] pixels it swamped the NDCG term). The tests check the smooth NDCG against a NumPy
exact NDCG as tau -> 0, its gradient by finite differences, and that training raises the
exact NDCG of the binary codes.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jhash.shallow.common import Hasher, check_positive, linear_project, prepare_fit
from jhash.shallow.listwise import relevance

_HI = jax.lax.Precision.HIGHEST


def _dcg_terms(rel, pos):
    return (2.0 ** rel - 1.0) / jnp.log2(1.0 + pos)


def ideal_dcg(rel):
    """The DCG of each row's ideal order (relevance sorted decreasingly). ``rel`` (Q, L) -> (Q,)."""
    srt = -jnp.sort(-rel, axis=1)
    return jnp.sum(_dcg_terms(srt, jnp.arange(1, rel.shape[1] + 1, dtype=rel.dtype)), 1)


def positions(scores, tau=None):
    """Ranking positions from scores ``(Q, L)`` (higher first): exact ``1 + #{j: s_j > s_i}`` plus half
    the number of other items tied with i (the expected position when ties are broken at random;
    binary codes tie often) when ``tau`` is None, else the smooth
    ``1 + sum_{j != i} sigmoid((s_j - s_i) / tau)``, whose limit as tau -> 0 is the former."""
    diff = scores[:, None, :] - scores[:, :, None]          # [q, i, j] = s_j - s_i
    off = 1.0 - jnp.eye(scores.shape[1], dtype=scores.dtype)
    if tau is None:
        return 1.0 + jnp.sum(off * jnp.where(diff > 0, 1.0, jnp.where(diff == 0, 0.5, 0.0)), axis=2)
    return 1.0 + jnp.sum(off * jax.nn.sigmoid(diff / tau), axis=2)


def ndcg(scores, rel, tau=None):
    """NDCG per query of the ranking by ``scores`` (Q, L) against relevance ``rel`` (Q, L);
    exact (``tau`` None) or smooth. A query with no relevant item scores 1."""
    dcg = jnp.sum(_dcg_terms(rel, positions(scores, tau)), 1)
    z = ideal_dcg(rel)
    return jnp.where(z > 0, dcg / jnp.where(z > 0, z, 1.0), 1.0)


def objective(w, xq, xl, rel, *, tau, gamma, alpha):
    """The smooth RPH objective on one batch (queries ``xq`` (Q, d), list ``xl`` (L, d), ``rel`` (Q, L))."""
    uq, ul = jnp.matmul(xq, w, precision=_HI), jnp.matmul(xl, w, precision=_HI)
    scores = jnp.matmul(uq, ul.T, precision=_HI)
    quant = jnp.sum((jax.lax.stop_gradient(jnp.where(ul >= 0, 1.0, -1.0)) - ul) ** 2) / ul.size
    return -jnp.mean(ndcg(scores, rel, tau)) + gamma * quant + alpha * jnp.sum(w * w)


@functools.partial(jax.jit, static_argnames=("steps", "queries", "list_size"))
def train(w0, x, labels, key, *, steps: int, queries: int, list_size: int, lr, tau, gamma, alpha):
    """``steps`` Adam steps on :func:`objective`, a fresh batch of queries and list each step.
    Returns ``(W, history)``: the smooth objective per step."""
    opt = optax.adam(lr)
    n = x.shape[0]
    grad = jax.value_and_grad(functools.partial(objective, tau=tau, gamma=gamma, alpha=alpha))

    def step(t, carry):
        w, state, hist = carry
        idx = jax.random.permutation(jax.random.fold_in(key, t), n)[: queries + list_size]
        q, l = idx[:queries], idx[queries:]
        value, g = grad(w, x[q], x[l], relevance(labels[q], labels[l]))
        updates, state = opt.update(g, state, w)
        return optax.apply_updates(w, updates), state, hist.at[t].set(value)

    w, _, hist = jax.lax.fori_loop(0, steps, step, (w0, opt.init(w0), jnp.zeros(steps, jnp.float32)))
    return w, hist


def fit(features, labels=None, *, bits, key, steps: int = 300, queries: int = 64, list_size: int = 128,
        lr: float = 0.01, tau: float = 1.0, gamma: float = 0.1, alpha: float = 0.0) -> Hasher:
    """RPH on labelled features: smooth-NDCG training of linear hash functions (module docstring)."""
    x, labels, bits = prepare_fit(features, labels, bits, supervised=True)
    n, d = x.shape
    steps = check_positive(steps, "steps")
    queries = check_positive(queries, "queries")
    list_size = check_positive(list_size, "list_size")
    if queries + list_size > n:
        raise ValueError(f"queries + list_size = {queries + list_size} is more than the training points ({n})")
    for name, v in (("lr", lr), ("tau", tau)):
        if not v > 0:
            raise ValueError(f"{name} must be positive, got {v!r}")
    k_init, k_train, k_eval = jax.random.split(key, 3)
    mean = jnp.mean(x, 0)
    xc = x - mean
    w0 = jax.random.normal(k_init, (d, bits))
    w0 = w0 / jnp.maximum(jnp.std(jnp.matmul(xc, w0, precision=_HI), axis=0), 1e-12)
    w, hist = train(w0, xc, labels, k_train, steps=steps, queries=queries, list_size=list_size, lr=float(lr),
                    tau=float(tau), gamma=float(gamma), alpha=float(alpha))

    def exact_ndcg(w):  # the binary codes' NDCG on one fixed batch of the training set
        idx = jax.random.permutation(k_eval, n)[: queries + list_size]
        b = jnp.where(jnp.matmul(xc[idx], w, precision=_HI) >= 0, 1.0, -1.0)
        scores = jnp.matmul(b[:queries], b[queries:].T, precision=_HI)
        return float(jnp.mean(ndcg(scores, relevance(labels[idx[:queries]], labels[idx[queries:]]))))

    return Hasher("rph", bits, d, linear_project, {"mean": mean, "w": w, "b": jnp.zeros((bits,), jnp.float32)},
                  {"objective": np.asarray(hist), "train_ndcg_before": exact_ndcg(w0),
                   "train_ndcg_after": exact_ndcg(w)})
