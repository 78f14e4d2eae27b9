"""Boosted decision trees with static shapes (FastH's hash functions), in JAX.

Follows the tree learner of the FastH authors' code (Lin et al., CVPR 2014), which is
Piotr Dollar's ``binaryTreeTrain`` (his toolbox, modified by Guosheng Lin) boosted by their
stagewise ``cdboost`` (discrete AdaBoost):

* features quantised to ``bins`` (256) equal-width bins over the training range, widened
  by 1/1000 of the range on each side (``gen_quantize_info``);
* a tree of depth ``depth`` is grown level by level; at each node, over ``features_per_node``
  features drawn at random for that node (their "lazy boosting", 200; all features when
  there are fewer), the split (feature f, bin threshold t: bin(x_f) <= t goes left)
  minimises the node's weighted error of a stump whose two sides predict opposite labels
  (either polarity):

      err(f, t) = min(W+_left + W-_right, W-_left + W+_right) / W_node;

  a node is split only when that error is below the node's own min(W+, W-) / W_node (a
  strict gain), its positive fraction W+/W_node lies in [1e-3, 1 - 1e-3], and its weight
  is at least ``min_weight`` (0.01) of the tree's; an unsplit node sends every example to
  its left child (threshold bins - 1), so the tree keeps a complete static shape with
  2^depth leaves;
* a leaf outputs the sign of its weighted label balance (ties +1; the authors' trees output
  nonzerosign(log-ratio));
* boosting: weights u start at the example weights; each round fits a tree on the weights
  trimmed to the largest ones holding ``trim`` (0.99) of the mass, then
  alpha = 1/2 log(V+ / V-) (V+-: the weight of the examples it gets right / wrong; 0 when
  V+ <= V-, log(V+) + log(1e8) when V- vanishes), u_i <- u_i exp(-alpha y_i h(x_i)),
  renormalised to mean 1. The hash bit is sign(sum_t alpha_t h_t(x)) (sign(0) = +1).

Defaults from the authors' demo: 200 trees of depth 4, 200 features per node, trimming 0.99.
Where we differ: a split must send positive weight to both children (their check looks at
whether any training example, weighted or not, lands on each side), and the per-node
feature sample is drawn with JAX's generator (the authors' with MATLAB's ``randperm``).
Everything is a ``jit``-able function of static-shape arrays; one tree costs ``depth``
segment sums over ``n * features_per_node`` entries.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

__all__ = ["quantiser", "quantise", "fit_tree", "tree_apply", "trim_mask", "fit_boosted", "boosted_apply"]


def quantiser(x):
    """``(lo, hi)`` per feature: the training range widened by 1/1000 of it (at least eps)."""
    lo, hi = jnp.min(x, 0), jnp.max(x, 0)
    pad = jnp.maximum((hi - lo) / 1000.0, jnp.finfo(jnp.float32).eps)
    return lo - pad, hi + pad


def quantise(x, lo, hi, bins: int):
    """int32 bin ids in ``[0, bins)``: ``floor(bins * (x - lo) / (hi - lo))``, clipped."""
    b = jnp.floor(bins * (x - lo) / (hi - lo))
    return jnp.clip(b, 0, bins - 1).astype(jnp.int32)


def _node_features(key, m: int, f: int, k: int):
    """``(m, k)`` feature ids: a random subset of size k for each of m nodes (all when k >= f)."""
    if k >= f:
        return jnp.broadcast_to(jnp.arange(f, dtype=jnp.int32), (m, f))
    return jnp.argsort(jax.random.uniform(key, (m, f)), axis=1)[:, :k].astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("depth", "bins", "features_per_node"))
def fit_tree(xb, y, w, key, *, depth: int, bins: int, features_per_node: int, min_weight: float = 0.01):
    """One weighted tree on binned features ``xb`` ``(n, F)`` int, labels ``y`` (n,) +-1,
    weights ``w`` (n,) >= 0. Returns ``{"fid": (2^d - 1,), "thr": (2^d - 1,), "leaf": (2^d,)}``
    with nodes in heap order (level l at offset 2^l - 1): go right when ``xb[fid] > thr``."""
    n, f = xb.shape
    k = min(int(features_per_node), f)
    w = w / jnp.maximum(jnp.sum(w), jnp.finfo(jnp.float32).tiny)
    wpos = jnp.where(y > 0, w, 0.0)
    wneg = w - wpos
    rows = jnp.arange(n)
    node = jnp.zeros(n, jnp.int32)
    fids, thrs = [], []
    for level in range(depth):
        m = 2 ** level
        feats = _node_features(jax.random.fold_in(key, level), m, f, k)            # (m, k)
        xs = xb[rows[:, None], feats[node]]                                          # (n, k)
        seg = ((node[:, None] * k + jnp.arange(k)[None, :]) * bins + xs).reshape(-1)
        data = jnp.broadcast_to(jnp.stack([wneg, wpos], -1)[:, None, :], (n, k, 2)).reshape(-1, 2)
        hist = jax.ops.segment_sum(data, seg, num_segments=m * k * bins).reshape(m, k, bins, 2)
        left = jnp.cumsum(hist, axis=2)                                              # bins <= t
        right = jnp.flip(jnp.cumsum(jnp.flip(hist, 2), axis=2), 2)                   # bins >= t
        right = jnp.concatenate([right[:, :, 1:], jnp.zeros_like(right[:, :, :1])], axis=2)  # bins > t
        w0 = jax.ops.segment_sum(wneg, node, num_segments=m)
        w1 = jax.ops.segment_sum(wpos, node, num_segments=m)
        tot = jnp.maximum(w0 + w1, jnp.finfo(jnp.float32).tiny)
        err = jnp.minimum(left[..., 1] + right[..., 0], left[..., 0] + right[..., 1]) / tot[:, None, None]
        best = jnp.argmin(err.reshape(m, k * bins), axis=1)
        fi, t = best // bins, best % bins
        ms = jnp.arange(m)
        best_err = err[ms, fi, t]
        prior = w1 / tot
        base = jnp.minimum(prior, 1.0 - prior)
        split = ((best_err < base - 1e-6) & (prior >= 1e-3) & (prior <= 1.0 - 1e-3) & (w0 + w1 >= min_weight)
                 & (jnp.sum(left[ms, fi, t], -1) > 0) & (jnp.sum(right[ms, fi, t], -1) > 0))
        fid = jnp.where(split, feats[ms, fi], 0)
        thr = jnp.where(split, t, bins - 1).astype(jnp.int32)
        fids.append(fid)
        thrs.append(thr)
        node = 2 * node + (xb[rows, fid[node]] > thr[node]).astype(jnp.int32)
    w0 = jax.ops.segment_sum(wneg, node, num_segments=2 ** depth)
    w1 = jax.ops.segment_sum(wpos, node, num_segments=2 ** depth)
    leaf = jnp.where(w1 >= w0, 1.0, -1.0)
    return {"fid": jnp.concatenate(fids).astype(jnp.int32), "thr": jnp.concatenate(thrs), "leaf": leaf}


def tree_apply(tree, xb):
    """+-1 outputs ``(n,)`` of one tree on binned features ``xb`` ``(n, F)``."""
    depth = (tree["leaf"].shape[-1]).bit_length() - 1
    rows = jnp.arange(xb.shape[0])
    node = jnp.zeros(xb.shape[0], jnp.int32)
    for level in range(depth):
        at = 2 ** level - 1 + node
        node = 2 * node + (xb[rows, tree["fid"][at]] > tree["thr"][at]).astype(jnp.int32)
    return tree["leaf"][node]


def trim_mask(u, mass: float):
    """The authors' weight trimming: keep the largest weights up to and including the first
    whose cumulative share exceeds ``mass`` (all when ``mass >= 1``)."""
    if mass >= 1.0:
        return jnp.ones_like(u, dtype=bool)
    order = jnp.argsort(-u, stable=True)
    cum = jnp.cumsum(u[order])
    cum = cum / (cum[-1] + jnp.finfo(u.dtype).eps)
    last = jnp.argmax(cum > mass)
    last = jnp.where(jnp.any(cum > mass), last, u.shape[0] - 1)
    rank = jnp.zeros(u.shape[0], jnp.int32).at[order].set(jnp.arange(u.shape[0], dtype=jnp.int32))
    return rank <= last


def adaboost_alpha(v_pos, v_neg):
    """The stagewise weight of a tree from the weight it classifies right / wrong."""
    tiny = 1e-12 * (v_pos + v_neg)
    safe = jnp.maximum(v_neg, jnp.finfo(jnp.float32).tiny)
    return jnp.where(v_neg <= tiny, jnp.log(v_pos) + jnp.log(1e8),
                     jnp.where(v_pos > v_neg, 0.5 * jnp.log(v_pos / safe), 0.0))


@functools.partial(jax.jit, static_argnames=("trees", "depth", "bins", "features_per_node", "trim"))
def fit_boosted(xb, y, weights, key, *, trees: int, depth: int, bins: int, features_per_node: int,
                min_weight: float = 0.01, trim: float = 0.99):
    """Stagewise AdaBoost of ``trees`` trees for labels ``y`` (n,) +-1 with example ``weights``.

    Returns ``(params, outputs, u_history)``: params ``{"fid", "thr", "leaf"}`` stacked over
    trees plus ``"alpha"`` (trees,), the training outputs sign(sum_t alpha_t h_t) (n,) and
    the weights u each tree was fitted with before trimming (trees, n).
    """
    n = xb.shape[0]
    y = y.astype(jnp.float32)
    u0 = weights.astype(jnp.float32)
    u0 = n * u0 / jnp.maximum(jnp.sum(u0), jnp.finfo(jnp.float32).tiny)

    def round_(u, t):
        mask = trim_mask(u, trim)
        tree = fit_tree(xb, y, jnp.where(mask, u, 0.0), jax.random.fold_in(key, t), depth=depth, bins=bins,
                        features_per_node=features_per_node, min_weight=min_weight)
        h = tree_apply(tree, xb)
        v_pos = jnp.sum(jnp.where(y * h > 0, u, 0.0))
        v_neg = jnp.sum(jnp.where(y * h < 0, u, 0.0))
        alpha = adaboost_alpha(v_pos, v_neg)
        new = u * jnp.exp(-alpha * y * h)
        new = n * new / jnp.maximum(jnp.sum(new), jnp.finfo(jnp.float32).tiny)
        return new, (dict(tree, alpha=alpha), h, u)

    _, (params, hs, us) = jax.lax.scan(round_, u0, jnp.arange(trees))
    score = params["alpha"] @ hs
    return params, jnp.where(score >= 0, 1.0, -1.0), us


def boosted_apply(params, xb):
    """``sum_t alpha_t h_t(x)`` ``(n,)`` for stacked trees ``params`` on binned ``xb``."""
    hs = jax.vmap(tree_apply, in_axes=({"fid": 0, "thr": 0, "leaf": 0}, None))(
        {k: params[k] for k in ("fid", "thr", "leaf")}, xb)
    return params["alpha"] @ hs
