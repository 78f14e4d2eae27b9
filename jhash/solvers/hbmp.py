"""HBMP stage 1: binary matrix pursuit, greedy bitwise code inference with residual updates.

Cakir, He, Sclaroff, "Hashing with binary matrix pursuit", ECCV 2018 (Sec. 3). The affinity
matrix S (c, c) in {0, 1} is mapped to T = 2 S - 1 in {-1, +1} and approximated by a
weighted sum of rank-one binary matrices, one per bit, fitted greedily to the residual:

    min_{b_t, w_t}  || M o (T - sum_t w_t b_t b_t^T) ||_F^2,   b_t in {-1, +1}^c,           (eq. 6-8)

with M the mask of the off-diagonal entries (self-affinities are not fitted). Bit t is the
binarised leading eigenvector of the masked residual R_t = M o (T - X_{t-1}),
X_{t-1} = sum_{l < t} w_l b_l b_l^T (a spectral relaxation of max_b b^T R_t b), and its
weight is the step w_t = b_t^T R_t b_t / (L c^2), L = ||M o T||_F, the residual being then
updated (X_t = X_{t-1} + w_t b_t b_t^T). With ``regress`` every weight found so far is refitted
by least squares on the off-diagonal entries, kept when it lowers the residual further.

Where we follow the authors' code (fcakir/deep-mihash, branch hbmp, ``binary_inference.m``):
the mask, L, the step w_t, the regression and its acceptance test; a column that repeats an
earlier one, or with b^T R_t b < 0 (binarisation can flip the sign of the ascent), is
replaced by a random column until it is new and an ascent direction (here: at most
``max_redraws`` draws, static). With ``weighted=False`` (their "constant" variant, all
weights 1) T is scaled by the number of bits and each bit is the binarised leading
eigenvector of the unmasked residual T q - sum_{l<t} b_l b_l^T. The leading eigenvector is
binarised as b = +1 where it is > 0 (their ``y > 0``). The residual norm never increases in
the weighted variant (each accepted step has b^T R b >= 0 and w_t <= 2 b^T R b / (c^2 - c);
the authors assert it); the constant variant has no such guarantee.

The problem is small: the authors run it on the c distinct label vectors of the training
set (every item of a class shares its class's code), not on the n items.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jhash.solvers import _common
from jhash.solvers._common import dot

__all__ = ["binary_matrix_pursuit", "masked_residual_norm", "leading_binary_vector", "regress_weights"]


def masked_residual_norm(affinity, codes, weights):
    """``||M o (2 S - 1 - B diag(w) B^T)||_F`` for ``affinity`` S (c, c) in {0, 1}, ``codes`` B (c, q), ``weights`` (q,)."""
    _common.matrix("affinity", affinity)
    c = affinity.shape[0]
    target = 2.0 * affinity - 1.0
    x = dot(codes * weights[None, :], codes.T)
    return jnp.sqrt(jnp.sum(jnp.square((target - x) * (1.0 - jnp.eye(c, dtype=target.dtype)))))


def leading_binary_vector(r):
    """+1 where the eigenvector of the largest eigenvalue of the symmetric ``r`` (c, c) is > 0, else -1."""
    _, vecs = jnp.linalg.eigh(r)
    return jnp.where(vecs[:, -1] > 0, 1.0, -1.0).astype(r.dtype)


def regress_weights(target, codes, active, mask):
    """Least-squares weights w (q,) of ``sum_l w_l b_l b_l^T`` fitting ``target`` on ``mask``'s entries,
    over the columns of ``codes`` (c, q) where ``active`` (q,) is 1 (others get weight 0)."""
    feats = (codes[:, None, :] * codes[None, :, :]) * (mask[:, :, None] * active[None, None, :])   # (c, c, q)
    feats = feats.reshape(-1, codes.shape[1])
    y = (target * mask).reshape(-1)
    w = dot(jnp.linalg.pinv(feats), y)
    return w * active


def binary_matrix_pursuit(affinity, *, bits: int, key, weighted: bool = True, regress: bool = True,
                          max_redraws: int = 100):
    """HBMP codes for the affinity ``affinity`` (c, c) in {0, 1} (symmetric).

    Returns ``(codes (c, bits) +-1, weights (bits,), residual (bits,))``: the codes, the bit
    weights (ones with ``weighted=False``) and ``||M o (2 S - 1 - X_t)||_F`` after each bit.
    ``key`` draws the replacement columns. Static: ``bits``, ``weighted``, ``regress``,
    ``max_redraws``. Works under jit.
    """
    _common.matrix("affinity", affinity)
    c = affinity.shape[0]
    if affinity.shape[1] != c:
        raise ValueError(f"affinity must be square; got shape {affinity.shape}")
    bits = _common.positive_int("bits", bits)
    dtype = affinity.dtype
    target = 2.0 * affinity - 1.0
    mask = 1.0 - jnp.eye(c, dtype=dtype)
    lipschitz = jnp.sqrt(jnp.sum(jnp.square(mask * target)))

    def redraw(t, y, residual, codes):
        def bad(y):
            repeats = jnp.any((dot(y, codes) == c) & (jnp.arange(bits) < t))
            return repeats | (y @ dot(residual, y) < 0)

        def body(carry):
            k, y = carry
            y = jax.random.rademacher(jax.random.fold_in(jax.random.fold_in(key, t), k), (c,), dtype=dtype)
            return k + 1, y

        _, y = jax.lax.while_loop(lambda kc: bad(kc[1]) & (kc[0] < max_redraws), body, (0, y))
        return y

    def step(t, carry):
        codes, w = carry
        x = dot(codes * w[None, :], codes.T)
        if weighted:
            residual = mask * (target - x)
            y = redraw(t, leading_binary_vector(residual), residual, codes)
            wt = (y @ dot(residual, y)) / (lipschitz * c * c)
        else:
            residual = bits * target - x
            y = leading_binary_vector(residual)
            wt = jnp.ones((), dtype)
        codes = codes.at[:, t].set(y)
        w = w.at[t].set(wt)
        if weighted and regress:
            active = (jnp.arange(bits) <= t).astype(dtype)
            w_fit = regress_weights(target, codes, active, mask)
            better = masked_residual_norm(affinity, codes, w_fit) < masked_residual_norm(affinity, codes, w)
            w = jnp.where(better, w_fit, w)
        return codes, w

    def record(t, carry):
        codes, w, hist = carry
        codes, w = step(t, (codes, w))
        scale = 1.0 if weighted else 1.0 / bits      # the constant variant fits q T: report ||M o (T - X / q)||
        return codes, w, hist.at[t].set(masked_residual_norm(affinity, codes, w * scale))

    init = (jnp.zeros((c, bits), dtype), jnp.zeros((bits,), dtype), jnp.zeros((bits,), dtype))
    codes, w, hist = jax.lax.fori_loop(0, bits, record, init)
    return codes, w, hist
