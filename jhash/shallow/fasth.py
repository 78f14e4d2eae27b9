"""FastH: fast supervised hashing with decision trees (Lin, Shen, Shi, van den Hengel, Suter,
"Fast supervised hashing with decision trees for high-dimensional data", CVPR 2014).

Two steps per bit, stagewise (the shared loop, losses and bit problem are in
:mod:`jhash.shallow.twostep`): with the first r - 1 bits given by the boosted-tree hash
functions already learned,

  step 1:  min_{z in {-1,+1}^n}  sum_{(i,j) in P} w_ij z_i z_j,  w_ij = l_r(d0_ij) - l_r(d0_ij + 1),

by block coordinate descent over blocks of points that are all mutually similar (one block
per class: the authors' ``gen_infer_block_multiclass``). Inside a block every w_ij <= 0, so
the block's sub-problem, with the other points' bits fixed (they enter as a linear term
c_i = sum_{j outside} w_ij z_j), is submodular;
  step 2:  boosted decision trees h_r (:mod:`jhash.shallow.trees`: AdaBoost of depth-4
trees on quantised features) trained to predict z, each example weighted by
sum_j |w_ij|; their training outputs replace z for the following bits.

Defaults from the authors' code (``fasthash_demo.m``): 2 block sweeps (``infer_iter_num``),
codes started at all ones, blocks visited in a random order each sweep (MATLAB ``randperm``), 200 trees of
depth 4, 200 features per node, weight trimming 0.99, 256 bins, for every point 100
similar and 100 dissimilar random partners. Loss: ``"ksh"`` by default (KSH's loss, with
which the paper formulates step 1); the authors' demo code selects ``"hinge"`` ("usually
performs the best"); ``"bre"`` is available too.

Where we differ: the paper solves each block exactly by GraphCut (min-cut); we solve it by
1-flip local search (:func:`jhash.solvers.bqp_local_search`) from the block's current bits
and from all of them flipped (a whole-block move, which a single flip cannot make in a
ferromagnetic block), keeping the better: every block update never increases the bit's
objective (asserted in the tests) and ends at a 1-flip local minimum of the block, but is
not the block's global minimum in general. Blocks are padded to the largest class size
(static shapes); the padding is inert.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jhash.shallow import trees as T
from jhash.shallow import twostep
from jhash.shallow.common import Hasher, check_positive, prepare_fit
from jhash.solvers import bqp_local_search


def _block_update(w, z, idx, max_flips):
    """Bits ``z`` with block ``idx`` (padded with n) re-solved; the others fixed."""
    n = w.shape[0]
    valid = idx < n
    both = valid[:, None] & valid[None, :]
    zb = jnp.where(valid, z[jnp.minimum(idx, n - 1)], 1.0)
    rows = jnp.where(valid[:, None], w[jnp.minimum(idx, n - 1)], 0.0)          # (L, n)
    wbb = jnp.where(both, rows[:, jnp.minimum(idx, n - 1)], 0.0)               # (L, L)
    c = jnp.matmul(rows, z, precision=jax.lax.Precision.HIGHEST) - jnp.matmul(wbb, zb, precision=jax.lax.Precision.HIGHEST)
    a = 0.5 * wbb
    starts = jnp.stack([zb, -zb])
    bs, vals = jax.vmap(lambda s: bqp_local_search(a, c, s, max_flips=max_flips))(starts)
    new = bs[jnp.argmin(vals)]
    return z.at[idx].set(new, mode="drop")


@functools.partial(jax.jit, static_argnames=("sweeps", "max_flips"))
def solve_bit(w, key, blocks, *, sweeps: int = 2, max_flips: int | None = None):
    """FastH step 1 for one bit: ``sweeps`` passes of block coordinate descent over
    ``blocks`` ``(G, L)`` (indices padded with n), from all ones. Returns ``(z, info)`` with
    ``info["objective"]`` the bit objective at the start and after every block update."""
    n = w.shape[0]
    g = blocks.shape[0]

    def sweep(z, s):
        order = jax.random.permutation(jax.random.fold_in(key, s), g)

        def visit(z, i):
            z = _block_update(w, z, blocks[order[i]], max_flips)
            return z, twostep.bit_objective(w, z)

        return jax.lax.scan(visit, z, jnp.arange(g))

    z0 = jnp.ones((n,), w.dtype)
    z, hist = jax.lax.scan(sweep, z0, jnp.arange(sweeps))
    return z, {"objective": jnp.concatenate([twostep.bit_objective(w, z0)[None], hist.reshape(-1)])}


def fasth_project(params, x, *, bins: int):
    """sum_t alpha_t h_t(x) per bit: ``(n, bits)`` real scores (codes = their signs)."""
    xb = T.quantise(x, params["lo"], params["hi"], bins)
    forest = {k: params[k] for k in ("fid", "thr", "leaf", "alpha")}
    return jax.lax.map(lambda p: T.boosted_apply(p, xb), forest).T


def fit(features, labels=None, *, bits, key, loss: str = "ksh", pairs_per_point: int | None = 100,
        sweeps: int = 2, trees: int = 200, depth: int = 4, features_per_node: int = 200, bins: int = 256,
        trim: float = 0.99, min_weight: float = 0.01) -> Hasher:
    """FastH on labelled features (see the module docstring)."""
    x, labels, bits = prepare_fit(features, labels, bits, supervised=True)
    twostep.check_loss(loss)
    if pairs_per_point is not None:
        pairs_per_point = check_positive(pairs_per_point, "pairs_per_point")
    sweeps = check_positive(sweeps, "sweeps")
    trees = check_positive(trees, "trees")
    depth = check_positive(depth, "depth", 16, "the deepest tree supported")
    features_per_node = check_positive(features_per_node, "features_per_node")
    bins = check_positive(bins, "bins", 256, "the authors' quantisation (uint8)")
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    if not 0.0 < trim <= 1.0:
        raise ValueError(f"trim must be in (0, 1], got {trim!r}")
    if not 0.0 <= min_weight < 1.0:
        raise ValueError(f"min_weight must be in [0, 1), got {min_weight!r}")
    blocks = jnp.asarray(twostep.class_blocks(labels))
    lo, hi = T.quantiser(x)
    xb = T.quantise(x, lo, hi, bins)

    def solve(w, k):
        return solve_bit(w, k, blocks, sweeps=sweeps)

    def fit_one(z, s, k):
        p, out, _ = T.fit_boosted(xb, z, s, k, trees=trees, depth=depth, bins=bins,
                                  features_per_node=features_per_node, min_weight=min_weight, trim=trim)
        return p, out

    forests, info = twostep.stagewise(labels, bits, key, loss=loss, pairs_per_point=pairs_per_point,
                                      solve_bit=solve, fit_bit=fit_one)
    params = jax.tree.map(lambda *a: jnp.stack(a), *forests)
    params.update(lo=lo, hi=hi)
    return Hasher("fasth", bits, x.shape[1], functools.partial(fasth_project, bins=bins), params,
                  dict(info, loss=loss, blocks=int(blocks.shape[0])))


__all__ = ["fit", "solve_bit", "fasth_project"]
