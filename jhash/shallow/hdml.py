"""HDML: Hamming distance metric learning (Norouzi, Fleet, Salakhutdinov, NIPS 2012).

Hash functions b(x; W) = sign(f(x; W)), here linear f = W^T x~ + c (x~ = x minus the training
mean; the paper uses linear functions and two-layer nets), are learned from triplets
(x, x+, x-), x+ more similar to x than x-, with the triplet ranking loss (eq. 2)

    l_triplet(h, h+, h-) = [ ||h - h+||_H - ||h - h-||_H + 1 ]_+ .

The empirical loss is replaced by the structured upper bound (eq. 4)

    l_triplet(b(x), b(x+), b(x-)) <= max_{g,g+,g-} { l_triplet(g, g+, g-) + g^T f + g+^T f+ + g-^T f- }
                                     - max_h h^T f - max_h+ h+^T f+ - max_h- h-^T f-

(f = f(x), ...; each subtracted max is |f|_1 at h = b(x)). Loss-augmented inference (Sec. 4)
is exact: the loss depends on (g, g+, g-) only through D = m+ - m-, where m+ = ||g - g+||_H
and m- = ||g - g-||_H, a sum of per-bit terms delta_k = [g_k != g+_k] - [g_k != g-_k] in
{-1, 0, 1}. For each bit and each delta_k the best score of (g_k, g+_k, g-_k) is
|f_k -+ f+_k -+ f-_k| (the signs fixed by which codes differ from g_k), so a dynamic program
over the bits, with state the running sum D in -q..q, gives max_{g's: D} of the score for every
D in O(q^2); the maximiser is the D with the largest score + l(D), and back-tracking returns
(g, g+, g-). The bound is minimised by stochastic subgradient descent on mini-batches of
triplets with momentum and weight decay (Sec. 5); autodiff of the bound with the maximisers
held fixed gives the paper's update.

Defaults and differences:

* triplets: ``triplets_per_point * n`` triplets (i, j, k), j sharing a label with i and k
  not, drawn uniformly (the paper samples from class labels the same way);
* mini-batches of 100 triplets, momentum 0.9, weight decay 1e-4, 3,000 steps, learning
  rate 1e-2 on features normalised to unit mean squared norm (our choices; the paper tunes
  the learning rate and weight decay on validation data). 3,000 steps suit the bundled
  digits; on mnist's 5,000 training points they under-train, and
  experiments/configs/shallow.py uses 30,000 steps and lr 3e-2 (picked on a validation split
  of the training set);
* the paper's O(q^2) inference enumerates (m+, m-) after sorting; our dynamic program over
  D = m+ - m- computes the same maximum (tested against enumeration of all 2^{3q} triplets);
* linear hash functions only (the paper's MNIST nets are two-layer; out of scope here).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jhash.shallow.common import Hasher, check_positive, linear_project, prepare_fit
from jhash.shallow.linear_sgd import draw, init_linear, normalise, sgd, triplet_pool, unnormalise

_HI = jax.lax.Precision.HIGHEST


def triplet_loss(d):
    """l(D) = [D + 1]_+ with D = ||g - g+||_H - ||g - g-||_H."""
    return jnp.maximum(d + 1.0, 0.0)


def loss_augmented_inference(f, fp, fn):
    """argmax over (g, g+, g-) in ({-1,1}^q)^3 of l(m+ - m-) + g^T f + g+^T f+ + g-^T f-, exactly,
    by the dynamic program over D = m+ - m-. Returns ``(g, g+, g-, value)``."""
    q = f.shape[0]
    # per bit and per delta in (-1, 0, +1): (a, b) = ([g != g+], [g != g-]) and the best score
    s00, s11 = jnp.abs(f + fp + fn), jnp.abs(f - fp - fn)
    s10, s01 = jnp.abs(f - fp + fn), jnp.abs(f + fp - fn)
    zero_same = s00 >= s11
    score = jnp.stack([s01, jnp.maximum(s00, s11), s10], 1)            # (q, 3): delta = -1, 0, +1
    neg = jnp.full((1,), -jnp.inf, f.dtype)

    def step(v, sk):                          # v[D + q] = best score of the bits so far with sum D
        from_minus = jnp.concatenate([v[1:], neg]) + sk[0]              # previous D + 1, then delta -1
        from_zero = v + sk[1]
        from_plus = jnp.concatenate([neg, v[:-1]]) + sk[2]              # previous D - 1, then delta +1
        stacked = jnp.stack([from_minus, from_zero, from_plus])
        return jnp.max(stacked, 0), jnp.argmax(stacked, 0) - 1

    v0 = jnp.full((2 * q + 1,), -jnp.inf, f.dtype).at[q].set(0.0)
    v, choice = jax.lax.scan(step, v0, score)                            # choice (q, 2q+1)
    total = v + triplet_loss(jnp.arange(-q, q + 1, dtype=f.dtype))
    best = jnp.argmax(total)

    def back(d, ck):
        delta = ck[d]
        return d - delta, delta

    _, deltas = jax.lax.scan(back, best, choice, reverse=True)
    a = jnp.where(deltas == 1, True, jnp.where(deltas == -1, False, ~zero_same))   # g != g+
    b = jnp.where(deltas == -1, True, jnp.where(deltas == 1, False, ~zero_same))   # g != g-
    sp, sn = jnp.where(a, -1.0, 1.0), jnp.where(b, -1.0, 1.0)
    g = jnp.where(f + sp * fp + sn * fn >= 0, 1.0, -1.0)
    return g, sp * g, sn * g, total[best]


def upper_bound(params, x, xp, xn):
    """The mean over the triplets of HDML's bound (eq. 4); its gradient is the paper's update."""
    f, fp, fn = (linear_project(params, a) for a in (x, xp, xn))
    sg = jax.lax.stop_gradient
    g, gp, gn, _ = jax.vmap(loss_augmented_inference)(sg(f), sg(fp), sg(fn))
    d = jnp.sum(g != gp, 1).astype(f.dtype) - jnp.sum(g != gn, 1).astype(f.dtype)
    aug = triplet_loss(d) + jnp.sum(g * f + gp * fp + gn * fn, 1)
    return jnp.mean(aug - jnp.sum(jnp.abs(f) + jnp.abs(fp) + jnp.abs(fn), 1))


def empirical_loss(params, x, xp, xn):
    """Mean triplet loss of the actual codes (what the bound majorises)."""
    b, bp, bn = (linear_project(params, a) >= 0 for a in (x, xp, xn))
    return jnp.mean(triplet_loss(jnp.sum(b != bp, 1).astype(jnp.float32) - jnp.sum(b != bn, 1)))


def _batch_loss(params, data, key, *, batch: int):
    x, pool = data
    t = draw(key, pool, batch)
    return upper_bound(params, x[t[:, 0]], x[t[:, 1]], x[t[:, 2]])


def fit(features, labels=None, *, bits, key, steps: int = 3000, batch: int = 100, lr: float = 1e-2,
        momentum: float = 0.9, weight_decay: float = 1e-4, triplets_per_point: int = 20,
        init_scale: float = 1.0) -> Hasher:
    """HDML with linear hash functions on labelled features (see the module docstring)."""
    x, labels, bits = prepare_fit(features, labels, bits, supervised=True)
    batch = check_positive(batch, "batch")
    k_init, k_pool, k_sgd = jax.random.split(key, 3)
    pool = triplet_pool(k_pool, labels, check_positive(triplets_per_point, "triplets_per_point") * x.shape[0])
    xs, scale = normalise(x)
    params = init_linear(xs, k_init, bits, init_scale)
    params, hist = sgd(functools.partial(_batch_loss, batch=batch), params, (xs, pool), k_sgd, steps=steps, lr=lr,
                       momentum=momentum, weight_decay=weight_decay)
    return Hasher("hdml", bits, x.shape[1], linear_project, unnormalise(params, scale), {"objective": hist})
