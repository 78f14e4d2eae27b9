"""FTH: fast training of triplet-based binary codes (the code-inference step of FTH, with
kernel hash functions).

Zhuang, Lin, Shen, Reid, "Fast training of triplet-based deep binary embedding
networks", CVPR 2016. Training is two-step: (1) infer binary codes of the training set
that minimise a triplet ranking loss, (2) fit hash functions to those codes. Step 1 is

    min_{B in {-1,1}^{n x q}}  sum_{(i,j,k)}  l( d_H(b_i, b_j) - d_H(b_i, b_k) )          (eq. 2)

over triplets where ``j`` is similar to ``i`` and ``k`` is not, solved bit by bit (block
coordinate descent over bits, eq. 3-6): with all bits but ``r`` fixed, a triplet's loss
depends on bit ``r`` only through ``p = z_i z_j`` and ``p' = z_i z_k`` (``z = B[:, r]``),
four cases, so it equals exactly

    c0 + c1 z_i z_j + c2 z_i z_k + c3 z_j z_k          (using p p' = z_j z_k)

with ``c1..c3`` the Walsh coefficients of the four loss values. Summed over triplets,
bit ``r``'s subproblem is the binary quadratic problem ``min_z z^T A_r z`` (eq. 6), exact,
not a bound; solving it never increases the triplet loss.

Defaults and differences:

* loss ``l(x) = max(0, margin + x)``, a hinge on Hamming distances, ``margin = bits / 4``
  (our choice: the paper leaves the loss and margin to the experiment);
* the BQP is solved by single-variable greedy coordinate descent (flip ``z_i`` while that
  lowers ``z^T A z``; a local minimum w.r.t. one flip) instead of the paper's block
  GraphCut over submodular blocks: same objective, a weaker but still monotone solver;
* triplets: ``50 n`` sampled uniformly (the paper samples from each mini-batch); 2 rounds
  over the bits, codes initialised by random kernel projections;
* step 2: the paper trains a CNN on the codes; on fixed features we fit kernel hash
  functions ``sign(W^T phi(x) + b)`` on ``m = 1000`` random RBF anchors (sigma = mean
  distance to the anchors) by ridge regression (``reg = 1``), the SDH/KSH-style fitter.

``A_r`` is an ``n x n`` dense matrix: fine for the usual 5,000 training points, too big
past ~30,000.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jhash.codes import sign
from jhash.shallow.common import (Hasher, check_positive, choose_anchors, fit_ridge, kernel_project, prepare_fit,
                                  rbf_bandwidth, rbf_features, sample_triplets)

_HI = jax.lax.Precision.HIGHEST


def hinge(x, margin):
    return jnp.maximum(0.0, margin + x)


def triplet_loss(b, triplets, valid, margin):
    """``sum l(d_H(b_i, b_j) - d_H(b_i, b_k))`` over the valid triplets (``b`` is +-1)."""
    bi, bj, bk = b[triplets[:, 0]], b[triplets[:, 1]], b[triplets[:, 2]]
    d_pos = jnp.sum(bi != bj, 1).astype(jnp.float32)
    d_neg = jnp.sum(bi != bk, 1).astype(jnp.float32)
    return jnp.sum(jnp.where(valid, hinge(d_pos - d_neg, margin), 0.0))


def bit_coefficients(b, triplets, valid, r, margin):
    """``(c1, c2, c3)`` per triplet: bit ``r``'s loss is ``c0 + c1 z_i z_j + c2 z_i z_k + c3 z_j z_k``."""
    bi, bj, bk = b[triplets[:, 0]], b[triplets[:, 1]], b[triplets[:, 2]]
    mask = jnp.arange(b.shape[1]) != r
    d_pos = jnp.sum((bi != bj) & mask, 1).astype(jnp.float32)
    d_neg = jnp.sum((bi != bk) & mask, 1).astype(jnp.float32)

    def f(p, q):  # p = z_i z_j, q = z_i z_k
        return hinge(d_pos + (1 - p) / 2 - d_neg - (1 - q) / 2, margin)

    fpp, fpm, fmp, fmm = f(1, 1), f(1, -1), f(-1, 1), f(-1, -1)
    c = jnp.stack([fpp + fpm - fmp - fmm, fpp - fpm + fmp - fmm, fpp - fpm - fmp + fmm], 1) / 4
    return jnp.where(valid[:, None], c, 0.0)


def bqp_matrix(n, triplets, coef):
    """The symmetric ``A`` (zero diagonal) with ``z^T A z = sum_t c1 z_i z_j + c2 z_i z_k + c3 z_j z_k``."""
    i, j, k = triplets[:, 0], triplets[:, 1], triplets[:, 2]
    rows = jnp.concatenate([i, j, i, k, j, k])
    cols = jnp.concatenate([j, i, k, i, k, j])
    vals = jnp.concatenate([coef[:, 0], coef[:, 0], coef[:, 1], coef[:, 1], coef[:, 2], coef[:, 2]]) / 2
    return jnp.zeros((n, n), jnp.float32).at[rows, cols].add(vals)


def solve_bqp(a, z0, max_sweeps: int = 20):
    """Greedy coordinate descent on ``min_z z^T A z`` (``A`` symmetric, zero diagonal) from ``z0``:
    sweep over the variables in order, flipping ``z_i`` when that lowers the objective
    (by ``4 z_i (A z)_i``), until a sweep flips nothing or after ``max_sweeps`` sweeps."""
    n = a.shape[0]

    def visit(i, c):
        z, g, flips = c
        flip = z[i] * g[i] > 0
        g = jnp.where(flip, g - 2.0 * z[i] * a[i], g)  # A symmetric: row i (contiguous) = column i
        return z.at[i].set(jnp.where(flip, -z[i], z[i])), g, flips + flip

    def sweep(c):
        z, g, _, t = c
        z, g, flips = jax.lax.fori_loop(0, n, visit, (z, g, 0))
        return z, g, flips, t + 1

    def cond(c):
        return (c[2] > 0) & (c[3] < max_sweeps)

    z0 = z0.astype(jnp.float32)
    z, _, _, _ = jax.lax.while_loop(cond, sweep, (z0, jnp.matmul(a, z0, precision=_HI), 1, 0))
    return z


@functools.partial(jax.jit, static_argnames=("rounds", "max_sweeps"))
def infer_codes(b0, triplets, valid, margin, *, rounds: int = 2, max_sweeps: int = 20):
    """FTH step 1: ``rounds`` passes of bitwise BQP updates. Returns ``(B, history)`` with the
    triplet loss after every bit update (``rounds * q`` values, non-increasing)."""
    n, q = b0.shape

    def body(t, c):
        b, hist = c
        r = t % q
        a = bqp_matrix(n, triplets, bit_coefficients(b, triplets, valid, r, margin))
        z = solve_bqp(a, b[:, r], max_sweeps)
        b = b.at[:, r].set(z.astype(b.dtype))
        return b, hist.at[t].set(triplet_loss(b, triplets, valid, margin))

    return jax.lax.fori_loop(0, rounds * q, body, (b0, jnp.zeros(rounds * q, jnp.float32)))


def fit(features, labels=None, *, bits, key, margin: float | None = None, triplets_per_point: int = 50,
        rounds: int = 2, anchors: int = 1000, reg: float = 1.0, max_sweeps: int = 20) -> Hasher:
    """FTH codes for the labelled training set, then ridge-fitted RBF-kernel hash functions."""
    x, labels, bits = prepare_fit(features, labels, bits, supervised=True)
    n = x.shape[0]
    anchors = check_positive(anchors, "anchors", n, "the number of training points")
    n_trip = check_positive(triplets_per_point, "triplets_per_point") * n
    margin = bits / 4 if margin is None else float(margin)
    k_anchor, k_init, k_trip = jax.random.split(key, 3)
    u = choose_anchors(x, k_anchor, anchors, "random")
    sigma = rbf_bandwidth(x, u, "mean")
    phi = rbf_features(x, u, sigma)
    b0 = sign(jnp.matmul(phi - jnp.mean(phi, 0), jax.random.normal(k_init, (anchors, bits)), precision=_HI))
    trip, valid = sample_triplets(k_trip, labels, n_trip)
    b, hist = infer_codes(b0.astype(jnp.float32), trip, valid, jnp.float32(margin),
                          rounds=int(rounds), max_sweeps=int(max_sweeps))
    w, bias = fit_ridge(phi, b, reg)
    return Hasher("fth", bits, x.shape[1], kernel_project, {"anchors": u, "sigma": sigma, "w": w, "b": bias},
                  {"objective": hist, "initial_objective": triplet_loss(b0, trip, valid, margin),
                   "train_codes": b.astype(jnp.int8)})
