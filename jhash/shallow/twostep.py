"""The general two-step framework of TSH and FastH: stagewise, bit-by-bit code inference for a
pairwise loss on Hamming distances, each bit followed by its hash function.

Lin, Shen, Suter, van den Hengel, "A general two-step approach to learning-based hashing",
ICCV 2013 (TSH), and Lin, Shen, Shi, van den Hengel, Suter, "Fast supervised hashing with
decision trees for high-dimensional data", CVPR 2014 (FastH), share this part:

    min_Z  sum_{(i,j) in P}  l_r( d_ij ),   d_ij = #bits where z_i, z_j differ (the first r bits),

over the pairs P of the training set, learned one bit at a time. At bit r the first r - 1 bits
are the *outputs of the hash functions already learned* (d0_ij, their Hamming distance), so
the loss of a pair depends on bit r only through whether z_i^r = z_j^r:

    l_r(d0_ij + (1 - z_i z_j) / 2) = (l_r(d0_ij) + l_r(d0_ij + 1)) / 2
                                      + z_i z_j (l_r(d0_ij) - l_r(d0_ij + 1)) / 2,

exactly, and bit r's step-1 problem is the binary quadratic problem

    min_{z in {-1,+1}^n}  sum_{(i,j) in P} w_ij z_i z_j,   w_ij = l_r(d0_ij) - l_r(d0_ij + 1)   (*)

(TSH's bitwise BQP; the authors' ``gen_pair_weights``: ``pair_weights = dist0_loss - dist1_loss``;
the loss of bit r is a constant plus half of (*)).
Step 2 trains a binary classifier h_r to predict z^r, each example weighted by
sum_j |w_ij| (the authors' ``data_weights``, a bincount of |w| over both ends of every pair),
and then h_r(X) replaces z^r for the following bits (their ``train_stagewise`` mode).

Losses (the authors' ``gen_loss_info``; r = the number of bits so far, y_ij = 1 for similar
pairs, i.e. pairs that share a label):

* ``"ksh"`` (KSH, Liu et al. CVPR 2012): (s_ij - (r - 2 d) / r)^2, s = +1 similar / -1 dissimilar;
* ``"bre"`` (BRE, Kulis & Darrell NIPS 2009): (t_ij - d / r)^2, t = 0 similar / 1 dissimilar;
* ``"hinge"``: (d / r)^2 for similar pairs, max(0, 1/2 - d / r)^2 for dissimilar pairs.

All three increase with d for similar pairs, so w_ij <= 0 there: a block of mutually similar
points (a class) gives a submodular sub-problem (FastH's GraphCut blocks).

The pair set P: the authors' demo (``gen_affinity_labels``) keeps, for every point, up to 100
random similar and 100 random dissimilar partners (the union of both directions);
``pairs_per_point=None`` uses every pair instead. P is held as a dense symmetric 0/1 mask
``(n, n)`` (static shapes; n = 5,000 is 100 MB in float32).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jhash.shallow.common import similarity_from_labels

__all__ = ["LOSSES", "pair_loss", "pair_mask", "hamming_distances", "bit_weights", "bit_objective",
           "total_loss", "data_weights", "check_loss"]

LOSSES = ("ksh", "bre", "hinge")
_HI = jax.lax.Precision.HIGHEST


def check_loss(loss: str) -> str:
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    return loss


def pair_loss(d, similar, r, loss: str):
    """l_r(d) elementwise: the loss of pairs at Hamming distance ``d`` over ``r`` bits."""
    check_loss(loss)
    d = jnp.asarray(d, jnp.float32)
    r = jnp.asarray(r, jnp.float32)
    if loss == "ksh":
        return (jnp.where(similar, 1.0, -1.0) - (r - 2.0 * d) / r) ** 2
    if loss == "bre":
        return (jnp.where(similar, 0.0, 1.0) - d / r) ** 2
    return jnp.where(similar, (d / r) ** 2, jnp.maximum(0.0, 0.5 - d / r) ** 2)


def pair_mask(labels, key, pairs_per_point: int | None = 100):
    """The pairs P as a symmetric float 0/1 ``(n, n)`` mask with a zero diagonal.

    ``pairs_per_point=None``: all pairs. Otherwise, as the authors' ``gen_affinity_labels``,
    each point draws up to ``pairs_per_point`` similar and as many dissimilar partners
    uniformly without replacement (all of them when it has fewer), and a pair is kept
    when either end drew it.
    """
    n = labels.shape[0]
    off = 1.0 - jnp.eye(n, dtype=jnp.float32)
    if pairs_per_point is None:
        return off
    sim = similarity_from_labels(labels, labels)
    k = min(int(pairs_per_point), n)
    u = jax.random.uniform(key, (n, n))

    def pick(group):
        # the k smallest random keys among the group's members (others pushed past 2)
        score = jnp.where(group, u, 2.0 + u)
        kth = -jax.lax.top_k(-score, k)[0][:, -1:]
        return group & (score <= kth)

    chosen = (pick(sim & (off > 0)) | pick(~sim)).astype(jnp.float32)
    return jnp.maximum(chosen, chosen.T) * off


def hamming_distances(h):
    """``(n, n)`` Hamming distances of +-1 rows ``h`` ``(n, r)`` (0 for r = 0)."""
    h = h.astype(jnp.float32)
    return 0.5 * (h.shape[1] - jnp.matmul(h, h.T, precision=_HI))


def bit_weights(d0, similar, mask, r, loss: str):
    """``W (n, n)``, symmetric with zero diagonal: w_ij of (*) for the pairs in ``mask``.

    ``d0``: Hamming distances over the previous r - 1 bits; ``r``: the bit being learned
    (1-based, may be traced). Bit r's loss is ``const + (1/2) sum_{i<j} W_ij z_i z_j``.
    """
    w = pair_loss(d0, similar, r, loss) - pair_loss(d0 + 1.0, similar, r, loss)
    return w * mask


def bit_objective(w, z):
    """``sum_{i<j} W_ij z_i z_j = z^T W z / 2`` for a symmetric, zero-diagonal ``W``."""
    z = z.astype(w.dtype)
    return 0.5 * z @ jnp.matmul(w, z, precision=_HI)


def total_loss(h, similar, mask, loss: str):
    """``sum_{i<j in P} l_r(d_ij)`` of codes ``h`` ``(n, r)`` (r = ``h.shape[1]``)."""
    d = hamming_distances(h)
    return 0.5 * jnp.sum(mask * pair_loss(d, similar, h.shape[1], loss))


def data_weights(w):
    """Step 2's example weights: ``sum_j |W_ij|`` (every pair counted at both its ends)."""
    return jnp.sum(jnp.abs(w), axis=1)


def class_blocks(labels) -> np.ndarray:
    """FastH's inference blocks (the authors' ``gen_infer_block_multiclass``): the points of
    each distinct label (class id, or multi-hot row with at least one label), so all pairs
    inside a block are similar. Points without any label are blocks of their own. Host-side
    (the block layout is data dependent): ``(G, L)`` int32 indices padded with ``n``."""
    a = np.asarray(labels)
    n = a.shape[0]
    rows = a.reshape(n, -1)
    _, inverse = np.unique(rows, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    groups = [np.flatnonzero(inverse == g) for g in range(inverse.max() + 1)]
    if a.ndim == 2:  # multi-hot: an empty label set is similar to nothing
        out = []
        for g in groups:
            out += [g] if rows[g[0]].any() else [np.array([i]) for i in g]
        groups = out
    size = max(len(g) for g in groups)
    blocks = np.full((len(groups), size), n, np.int32)
    for i, g in enumerate(groups):
        blocks[i, :len(g)] = g
    return blocks


def _weights_fn(loss):
    @jax.jit
    def weights(d0, similar, mask, r):
        return bit_weights(d0, similar, mask, r, loss)
    return weights


@jax.jit
def _after_bit(d0, out, similar, mask, w, z, r):
    """Adds bit r's fitted outputs to the distances; diagnostics of the bit."""
    d0 = d0 + (out[:, None] != out[None, :]).astype(jnp.float32)
    return d0, bit_objective(w, z), bit_objective(w, out)


def stagewise(labels, bits: int, key, *, loss: str, pairs_per_point, solve_bit, fit_bit):
    """The two-step loop shared by TSH and FastH (see the module docstring).

    ``solve_bit(w, key) -> (z (n,) +-1, info)`` solves bit r's BQP (*) for ``W``;
    ``fit_bit(z, weights, key) -> (params, outputs (n,) +-1)`` fits its hash function.
    Returns ``(per-bit params list, info)``; ``info`` holds the step-1 objective of each
    bit's inferred column and of the fitted function's outputs (both against (*)), the
    total loss sum_P l_r over the first r fitted bits, and the solvers' own diagnostics.
    """
    n = labels.shape[0]
    k_pairs, k_loop = jax.random.split(key)
    mask = pair_mask(labels, k_pairs, pairs_per_point)
    similar = similarity_from_labels(labels, labels)
    weights_fn = _weights_fn(loss)
    loss_fn = jax.jit(lambda d, r, mask, similar: 0.5 * jnp.sum(mask * pair_loss(d, similar, r, loss)))
    d0 = jnp.zeros((n, n), jnp.float32)
    params, step1, step2, totals, infos = [], [], [], [], []
    for r in range(1, bits + 1):
        w = weights_fn(d0, similar, mask, jnp.float32(r))
        z, info = solve_bit(w, jax.random.fold_in(k_loop, 2 * r))
        p, out = fit_bit(z, data_weights(w), jax.random.fold_in(k_loop, 2 * r + 1))
        d0, obj_z, obj_out = _after_bit(d0, out, similar, mask, w, z, jnp.float32(r))
        params.append(p)
        step1.append(float(obj_z))
        step2.append(float(obj_out))
        totals.append(float(loss_fn(d0, jnp.float32(r), mask, similar)))
        infos.append(info)
    info = {"step1_objective": np.array(step1), "fitted_objective": np.array(step2),
            "total_loss": np.array(totals), "pairs": float(jnp.sum(mask) / 2),
            "bit_info": jax.tree.map(lambda *a: np.stack([np.asarray(v) for v in a]), *infos)}
    return params, info
