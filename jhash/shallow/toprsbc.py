"""Top-RSBC: top rank supervised binary coding (Song, Liu, Ji, Meyer, Smith, "Top rank
supervised binary coding for visual search", ICCV 2015).

Linear coding functions b(x) = sign(W^T x~ + c) (x~ = x minus the training mean) are trained
so that the precision at the top of each query's Hamming ranking is high: for a query x_i,
a relevant item x_j is penalised by how far it falls below the *highest-ranked irrelevant*
item (the top-push form of the top-rank loss: a relevant item ranked below any irrelevant
one is a mistake at the top of the list),

    min_W  sum_i sum_{j in P_i} l( d_H(b_i, b_j) - min_{k in N_i} d_H(b_i, b_k) ) + (mu / 2) ||W||_F^2,

with l(z) = [1 + z]_+^2 the truncated quadratic surrogate of the 0/1 rank error, P_i / N_i
the items sharing / not sharing a label with x_i. The discrete problem is relaxed
(Sec. 3.2): b is replaced by tanh(W^T x~ + c) and d_H(b_i, b_j) by (q - b_i^T b_j) / 2, and the
surrogate is minimised by stochastic gradient descent over mini-batches of training items,
every item of the batch serving as a query against the others (Sec. 3.3).

Defaults and differences:

* mini-batches of 200 items, 3,000 steps, learning rate 1e-2, momentum 0.9, mu = 1e-4 on
  features normalised to unit mean squared norm (our choices; the paper tunes them);
* the paper also gives an online variant that updates per query; we keep the mini-batch
  SGD form; W starts from centered random projections;
* nothing in the method guarantees monotone decrease (SGD on a non-convex surrogate); the
  tests check the surrogate against a NumPy double loop and that training lowers it.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jhash.shallow.common import Hasher, check_positive, linear_project, prepare_fit, similarity_from_labels
from jhash.shallow.linear_sgd import init_linear, normalise, relaxed_codes, sgd, unnormalise

_HI = jax.lax.Precision.HIGHEST


def top_rank_loss(h, sim):
    """Mean over the (query, relevant item) pairs of ``[1 + d_ij - min_{k irrelevant} d_ik]_+^2``.

    ``h`` (n, q) relaxed or binary codes, ``sim`` (n, n) bool relevance; the diagonal is ignored,
    and queries without a relevant or an irrelevant item contribute nothing."""
    n, q = h.shape
    d = 0.5 * (q - jnp.matmul(h, h.T, precision=_HI))
    eye = jnp.eye(n, dtype=bool)
    pos, neg = sim & ~eye, ~sim & ~eye
    top_neg = jnp.min(jnp.where(neg, d, jnp.inf), 1, keepdims=True)
    valid = pos & jnp.isfinite(top_neg)
    err = jnp.where(valid, jnp.maximum(1.0 + d - jnp.where(jnp.isfinite(top_neg), top_neg, 0.0), 0.0) ** 2, 0.0)
    return jnp.sum(err) / jnp.maximum(jnp.sum(valid), 1)


def _batch_loss(params, data, key, *, batch: int):
    x, labels = data
    idx = jax.random.choice(key, x.shape[0], (batch,), replace=False)
    return top_rank_loss(relaxed_codes(params, x[idx]), similarity_from_labels(labels[idx], labels[idx]))


def fit(features, labels=None, *, bits, key, steps: int = 3000, batch: int = 200, lr: float = 1e-2,
        momentum: float = 0.9, weight_decay: float = 1e-4, init_scale: float = 1.0) -> Hasher:
    """Top-RSBC with linear coding functions on labelled features (see the module docstring)."""
    x, labels, bits = prepare_fit(features, labels, bits, supervised=True)
    batch = check_positive(batch, "batch", x.shape[0], "the number of training points")
    k_init, k_sgd = jax.random.split(key)
    xs, scale = normalise(x)
    params = init_linear(xs, k_init, bits, init_scale)
    params, hist = sgd(functools.partial(_batch_loss, batch=batch), params, (xs, labels), k_sgd, steps=steps, lr=lr,
                       momentum=momentum, weight_decay=weight_decay)
    return Hasher("toprsbc", bits, x.shape[1], linear_project, unnormalise(params, scale), {"objective": hist})
