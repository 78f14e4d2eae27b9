"""MLH: minimal loss hashing (Norouzi & Fleet, "Minimal loss hashing for compact binary
codes", ICML 2011).

Linear hash functions b(x; W) = sign(W^T x~ + c) (x~ = x minus the training mean) are
learned from pairs (x, x', s), s = 1 similar / 0 dissimilar, with the hinge-like loss of
the Hamming distance m = ||h - g||_H (eq. 3)

    l_rho(m, 1) = max(m - rho + 1, 0),      l_rho(m, 0) = lambda * max(rho - m + 1, 0)

(similar pairs should be within radius rho, dissimilar pairs beyond it). The empirical loss
is replaced by the structured-prediction upper bound (eq. 7; W includes the bias c)

    l(b(x), b(x'), s) <= max_{g,h} [ g^T f + h^T f' + l_rho(||g - h||_H, s) ] - max_g g^T f - max_h h^T f'

with f = W^T x~ + c, f' likewise; max_g g^T f = |f|_1 at g = b(x). The first term is the
loss-augmented inference, solved exactly by sorting (Sec. 4): for g_k = h_k bit k contributes
at most |f_k + f'_k|, for g_k != h_k at most |f_k - f'_k|; for each m in 0..q the best pair
at distance m flips the m bits with the largest gains |f_k - f'_k| - |f_k + f'_k|, so
sorting the gains once and scanning m gives the maximiser (O(q log q) per pair).
The bound is minimised by stochastic subgradient descent on mini-batches of pairs (Sec. 5):
W <- W - eta [ (g^ - b(x)) x~^T + (h^ - b(x')) x'~^T ] (+ weight decay, momentum), which is
what autodiff of the bound with (g^, h^) held fixed gives.

Defaults and differences:

* pairs: the paper trains on pairs drawn from the labelled neighbours; we draw them from
  ``triplets_per_point * n`` label triplets (i, j, k), each giving the similar pair (i, j)
  and the dissimilar pair (i, k), so half the pairs are similar;
* rho = max(1, round(bits / 4)) and lambda = 1 (the paper sets both by validation; ours were
  picked on the bundled digits: rho = bits / 8 or lambda = 0.5 gave lower mAP there);
  mini-batches of 100 pairs, momentum 0.9, weight decay 1e-4 and 3,000 steps with learning
  rate 1e-2 on features normalised to unit mean squared norm (our choices in the spirit of
  the authors' code: batches of 100, momentum 0.9, small weight decay). On mnist
  experiments/configs/shallow.py uses 30,000 steps (3,000 under-train 5,000 points) and rho
  picked per code length on a validation split of the training set (8 / 12 / 24 at 16 / 32 /
  64 bits, among q/4, 3q/8, q/2);
* W starts from LSH-like random projections of the centered data scaled to unit variance
  (the authors start from small random values).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jhash.shallow.common import Hasher, check_positive, linear_project, prepare_fit
from jhash.shallow.linear_sgd import draw, init_linear, normalise, sgd, triplet_pool, unnormalise

_HI = jax.lax.Precision.HIGHEST


def pair_loss(m, s, rho, lam):
    """l_rho(m, s): ``max(m - rho + 1, 0)`` for similar pairs, ``lam * max(rho - m + 1, 0)`` otherwise."""
    return jnp.where(s, jnp.maximum(m - rho + 1.0, 0.0), lam * jnp.maximum(rho - m + 1.0, 0.0))


def loss_augmented_inference(f, fp, s, rho, lam):
    """argmax_{g,h in {-1,1}^q} g^T f + h^T f' + l_rho(||g - h||_H, s) for one pair, by sorting.

    Returns ``(g, h, value)`` (``g``, ``h`` float +-1, ``value`` the maximum)."""
    q = f.shape[0]
    same, diff = jnp.abs(f + fp), jnp.abs(f - fp)
    gain = diff - same
    order = jnp.argsort(-gain)
    m = jnp.arange(q + 1, dtype=f.dtype)
    score = jnp.sum(same) + jnp.concatenate([jnp.zeros(1, f.dtype), jnp.cumsum(gain[order])])
    total = score + pair_loss(m, s, rho, lam)
    best = jnp.argmax(total)
    flip = jnp.zeros(q, bool).at[order].set(jnp.arange(q) < best)
    g_same = jnp.where(f + fp >= 0, 1.0, -1.0)
    g_diff = jnp.where(f - fp >= 0, 1.0, -1.0)
    g = jnp.where(flip, g_diff, g_same)
    h = jnp.where(flip, -g_diff, g_same)
    return g, h, total[best]


def upper_bound(params, x, xp, s, rho, lam):
    """The mean over the pairs of MLH's bound (eq. 7); its gradient is the paper's update."""
    f, fp = linear_project(params, x), linear_project(params, xp)
    g, h, _ = jax.vmap(loss_augmented_inference, (0, 0, 0, None, None))(
        jax.lax.stop_gradient(f), jax.lax.stop_gradient(fp), s, rho, lam)
    m = jnp.sum(g != h, 1).astype(f.dtype)
    aug = jnp.sum(g * f, 1) + jnp.sum(h * fp, 1) + pair_loss(m, s, rho, lam)
    return jnp.mean(aug - jnp.sum(jnp.abs(f), 1) - jnp.sum(jnp.abs(fp), 1))


def empirical_loss(params, x, xp, s, rho, lam):
    """Mean l_rho of the actual codes b(x), b(x') (the quantity the bound majorises)."""
    b, bp = linear_project(params, x) >= 0, linear_project(params, xp) >= 0
    return jnp.mean(pair_loss(jnp.sum(b != bp, 1).astype(jnp.float32), s, rho, lam))


def _batch_loss(params, data, key, *, batch: int):
    x, pool, rho, lam = data
    t = draw(key, pool, (batch + 1) // 2)
    first = jnp.concatenate([t[:, 0], t[:, 0]])[:batch]
    second = jnp.concatenate([t[:, 1], t[:, 2]])[:batch]
    s = jnp.arange(first.shape[0]) < t.shape[0]
    return upper_bound(params, x[first], x[second], s, rho, lam)


def fit(features, labels=None, *, bits, key, rho: float | None = None, lam: float = 1.0, steps: int = 3000,
        batch: int = 100, lr: float = 1e-2, momentum: float = 0.9, weight_decay: float = 1e-4,
        triplets_per_point: int = 20, init_scale: float = 1.0) -> Hasher:
    """MLH on labelled features (see the module docstring)."""
    x, labels, bits = prepare_fit(features, labels, bits, supervised=True)
    n = x.shape[0]
    batch = check_positive(batch, "batch")
    rho = float(max(1, round(bits / 4)) if rho is None else rho)
    if not 0 <= rho <= bits:
        raise ValueError(f"rho must be in [0, bits={bits}], got {rho}")
    if not lam >= 0:
        raise ValueError(f"lam must be non-negative, got {lam!r}")
    k_init, k_pool, k_sgd = jax.random.split(key, 3)
    pool = triplet_pool(k_pool, labels, check_positive(triplets_per_point, "triplets_per_point") * n)
    xs, scale = normalise(x)
    params = init_linear(xs, k_init, bits, init_scale)
    data = (xs, pool, jnp.float32(rho), jnp.float32(lam))
    params, hist = sgd(functools.partial(_batch_loss, batch=batch), params, data, k_sgd, steps=steps, lr=lr,
                       momentum=momentum, weight_decay=weight_decay)
    params = unnormalise(params, scale)
    return Hasher("mlh", bits, x.shape[1], linear_project, params, {"objective": hist, "rho": rho, "lam": lam})
