"""OPH: order preserving hashing (Wang, Wang, Yu, Li, "Order preserving hashing for
approximate nearest neighbor search", ACM Multimedia 2013).

(The issue lists other authors; the ACM record of the paper, doi 10.1145/2502081.2502100,
names Jianfeng Wang, Jingdong Wang, Nenghai Yu and Shipeng Li.)

For a query x_i the other items are grouped into K + 1 ordered categories by their rank in
the original space (category 0 the nearest, category K the far ones); in Hamming space the
items at distance <= r_t from the query form the t-th nested ball. The order is preserved
when, for every t < K, the items of categories 0..t are exactly those inside the t-th ball
(the alignment of the two orders, Sec. 3). OPH casts this as classification of the items
into the nested balls, one binary problem per t, and pools the classifiers over the
queries (Sec. 3-4):

    min_W  sum_i sum_{t<K} [ mean_{c(i,j) <= t} [d_ij - r_t]_+  +  mean_{c(i,j) > t} [r_t + 1 - d_ij]_+ ]

with d_ij the Hamming distance relaxed as in the paper by b(x) = tanh(W^T x~ + c):
d_ij = (q - b_i^T b_j) / 2, hash functions sign(W^T x~ + c) (x~ = x minus the training mean),
solved by stochastic gradient descent over mini-batches of training items, every item of the
batch a query against the others.

Defaults and differences:

* the order: the paper ranks by Euclidean distance (unsupervised nearest-neighbour search).
  With ``labels`` (how jhash's supervised protocol calls it) the relevant items, those that
  share a label with the query, come first, ordered among themselves by Euclidean distance,
  and the irrelevant ones form category K; with ``labels=None`` the nearest ``neighbours``
  fraction (default 0.1) of the batch is the relevant set, as in the paper. The relevant set
  is split into K categories of equal size by rank;
* K = 4 categories, radii r_t = t * max(1, round(bits / 16)) (our choice, so that longer codes
  get proportionally wider balls), each side of every threshold averaged separately (the far
  category is much larger than the near ones);
* hinge losses on the relaxed distance; mini-batches of 200 items, 3,000 steps, learning rate
  1e-2, momentum 0.9, weight decay 1e-4 on features normalised to unit mean squared norm,
  W from centered random projections (our choices); on mnist's 5,000 training points
  experiments/configs/shallow.py uses 30,000 steps (3,000 under-train there: validation mAP
  0.41 against 0.64 at 16 bits).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jhash.shallow.common import (Hasher, check_positive, linear_project, prepare_fit, similarity_from_labels,
                                  sqdist)
from jhash.shallow.linear_sgd import init_linear, normalise, relaxed_codes, sgd, unnormalise

_HI = jax.lax.Precision.HIGHEST


def categories(x, relevant, k: int):
    """Category ``(n, n)`` int of item j for query i: the relevant items (``relevant[i, j]``,
    j != i) ranked by Euclidean distance (ties by index) and split into ``k`` equal groups
    0..k-1; every other item (and j = i) is category ``k``."""
    n = x.shape[0]
    rel = relevant & ~jnp.eye(n, dtype=bool)
    # rank among the relevant items: a stable sort of the distances with the others pushed last
    order = jnp.argsort(jnp.where(rel, sqdist(x, x), jnp.inf), axis=1, stable=True)
    rank = jnp.zeros((n, n), jnp.int32).at[jnp.arange(n)[:, None], order].set(jnp.arange(n, dtype=jnp.int32))
    count = jnp.sum(rel, 1, keepdims=True)
    cat = (rank * k) // jnp.maximum(count, 1)
    return jnp.where(rel, cat, k)


def order_loss(h, cat, radii):
    """The relaxed order-preserving loss above for codes ``h`` (n, q), categories ``cat`` (n, n)
    (K = len(radii)), the query itself excluded; each side of a threshold is averaged separately."""
    n, q = h.shape
    d = 0.5 * (q - jnp.matmul(h, h.T, precision=_HI))
    off = ~jnp.eye(n, dtype=bool)
    total = 0.0
    for t, r in enumerate(radii):
        inside, outside = (cat <= t) & off, (cat > t) & off
        total += (jnp.sum(jnp.where(inside, jnp.maximum(d - r, 0.0), 0.0)) / jnp.maximum(jnp.sum(inside), 1)
                  + jnp.sum(jnp.where(outside, jnp.maximum(r + 1.0 - d, 0.0), 0.0)) / jnp.maximum(jnp.sum(outside), 1))
    return total


def _batch_loss(params, data, key, *, batch: int, radii: tuple, neighbours: float):
    x, labels = data
    idx = jax.random.choice(key, x.shape[0], (batch,), replace=False)
    xb = x[idx]
    if labels is None:   # the paper's unsupervised order: the nearest fraction of the batch is relevant
        d = sqdist(xb, xb) + jnp.diag(jnp.full(batch, jnp.inf))
        kth = jnp.sort(d, 1)[:, max(1, round(neighbours * (batch - 1))) - 1]
        relevant = d <= kth[:, None]
    else:
        relevant = similarity_from_labels(labels[idx], labels[idx])
    cat = jax.lax.stop_gradient(categories(xb, relevant, len(radii)))
    return order_loss(relaxed_codes(params, xb), cat, radii)


def fit(features, labels=None, *, bits, key, num_categories: int = 4, radius_step: int | None = None,
        neighbours: float = 0.1, steps: int = 3000, batch: int = 200, lr: float = 1e-2, momentum: float = 0.9,
        weight_decay: float = 1e-4, init_scale: float = 1.0) -> Hasher:
    """OPH with linear hash functions; the order from ``labels`` when given (see the module docstring)."""
    x, labels, bits = prepare_fit(features, labels, bits, supervised=False)
    batch = check_positive(batch, "batch", x.shape[0], "the number of training points")
    k = check_positive(num_categories, "num_categories")
    step = max(1, round(bits / 16)) if radius_step is None else check_positive(radius_step, "radius_step")
    if (k - 1) * step >= bits:
        raise ValueError(f"num_categories={k} with radius_step={step} needs radii beyond bits={bits}")
    if not 0.0 < neighbours < 1.0:
        raise ValueError(f"neighbours must be a fraction in (0, 1), got {neighbours!r}")
    radii = tuple(float(t * step) for t in range(k))
    k_init, k_sgd = jax.random.split(key)
    xs, scale = normalise(x)
    params = init_linear(xs, k_init, bits, init_scale)
    loss = functools.partial(_batch_loss, batch=batch, radii=radii, neighbours=float(neighbours))
    params, hist = sgd(loss, params, (xs, labels), k_sgd, steps=steps, lr=lr, momentum=momentum,
                       weight_decay=weight_decay)
    return Hasher("oph", bits, x.shape[1], linear_project, unnormalise(params, scale),
                  {"objective": hist, "radii": radii})
