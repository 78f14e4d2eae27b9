"""CNNH stage 1: approximate hash codes by random coordinate descent with Newton directions.

Xia, Pan, Lai, Liu, Yan, "Supervised hashing for image retrieval via image representation
learning", AAAI 2014. Stage 1 looks for codes H of the n training items whose scaled inner
products fit the similarity matrix S (S_ij = 1 similar, -1 dissimilar):

    min_H ||S - H H^T / q||_F^2,   H in {-1, 1}^(n x q),                                  (1)

relaxed to -1 <= H_ij <= 1 (eq. 2), and solved by random coordinate descent: one entry H_ij
at a time, the others fixed. With D = H H^T - q S (so the objective is ||D||^2 / q^2), moving
H_ij by d changes row and column i of D, and the objective as a function of d is the quartic

    g(d) = 2 sum_{k != i} (D_ik + d H_kj)^2 + (D_ii + 2 d H_ij + d^2)^2   (times 1/q^2),

whose derivatives at 0 are g'(0) = 4 (D H)_ij and g''(0) = 4 (H^T H)_jj + 4 H_ij^2 + 4 D_ii.
The paper takes the Newton direction d = -g'(0) / g''(0), projected so that H_ij + d stays in
[-1, 1], and updates D's row and column i in O(n).

Where we differ: a Newton step on a quartic can increase it; we evaluate g exactly (O(1)
from the sums already formed) and take the step only when it lowers the objective, so every
step, and every sweep, never increases (1) (with g''(0) <= 0 the step goes to the bound in
the descent direction). "Random" is a random permutation of the n q entries per sweep
(every entry visited once a sweep). We never form D: (D H)_ij and D_ii come from H^T H
(q, q) and (S H)^T (q, n), updated in O(n + q) per entry and recomputed from H at the start
of each sweep so float32 rounding does not accumulate. The binary codes are sign(H) (sign(0) = +1).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jhash.solvers import _common
from jhash.solvers._common import dot, sign

__all__ = ["cnnh_objective", "cnnh_coordinate_descent", "cnnh_codes", "newton_entry_step"]


def _check(h, s):
    _common.matrix("h", h)
    n = h.shape[0]
    if h.shape[1] == 0:
        raise ValueError(f"h must have at least one column (bit); got shape {h.shape}")
    _common.matrix("s", s, rows=n, cols=n)


def cnnh_objective(h, s):
    """``||S - H H^T / q||_F^2`` for ``h`` (n, q) real (or +-1) and ``s`` (n, n) in {-1, +1}."""
    _check(h, s)
    q = h.shape[1]
    return jnp.sum(jnp.square(s - dot(h, h.T) / q))


def newton_entry_step(h, hth, sh_t, s_diag, i, j):
    """The step of entry (i, j): ``(step, change of ||D||^2)``, both scalars.

    ``h`` (n, q); ``hth`` = H^T H (q, q); ``sh_t`` = (S H)^T (q, n); ``s_diag`` = S_ii (n,);
    ``i``, ``j`` (traced) indices. The projected Newton step of the quartic g of the module
    docstring, or 0 when it would not lower g. Uses (D H)_ij = H_i (H^T H)_j - q (S H)_ij and
    D_ii = ||H_i||^2 - q S_ii: O(q) work, no n x n matrix.
    """
    q = h.shape[1]
    hi = h[i]
    hij = hi[j]
    e = hi @ hi - q * s_diag[i]                 # D_ii
    b_full = hi @ hth[:, j] - q * sh_t[j, i]    # (D H)_ij
    a_full = hth[j, j]                          # (H^T H)_jj
    g1 = 4.0 * b_full
    g2 = 4.0 * a_full + 4.0 * hij * hij + 4.0 * e
    lo, hi_bound = -1.0 - hij, 1.0 - hij
    toward_bound = jnp.where(g1 > 0, lo, hi_bound)
    newton = jnp.where(g2 > 0, -g1 / jnp.where(g2 > 0, g2, 1.0), toward_bound)
    step = jnp.clip(newton, lo, hi_bound)
    b_other = b_full - e * hij                  # sum_{k != i} D_ik H_kj
    a_other = a_full - hij * hij                # sum_{k != i} H_kj^2
    change = (2.0 * (2.0 * b_other * step + a_other * step * step)
              + jnp.square(e + 2.0 * hij * step + step * step) - e * e)
    take = change < 0
    return jnp.where(take, step, 0.0), jnp.where(take, change, 0.0)


def _entry_update(s, s_diag, carry, i, j):
    h, hth, sh_t = carry
    step, _ = newton_entry_step(h, hth, sh_t, s_diag, i, j)
    hi = h[i]
    # H^T H: row and column j move by step * H_i (the diagonal by 2 step H_ij + step^2)
    delta = step * hi
    delta = jax.lax.dynamic_update_slice(delta, (2.0 * step * hi[j] + step * step)[None], (j,))
    row = hth[j] + delta
    hth = jax.lax.dynamic_update_slice(hth, row[None, :], (j, 0))
    hth = jax.lax.dynamic_update_slice(hth, row[:, None], (0, j))
    sh_t = jax.lax.dynamic_update_slice(sh_t, (sh_t[j] + step * s[i])[None, :], (j, 0))   # (S H)_:j += step S_:i
    h = jax.lax.dynamic_update_slice(h, (hi[j] + step)[None, None], (i, j))
    return h, hth, sh_t


def cnnh_coordinate_descent(h0, s, *, key, sweeps: int = 1):
    """``sweeps`` (static) sweeps of CNNH's coordinate descent from ``h0`` (n, q) in [-1, 1].

    ``s``: (n, n) similarity in {-1, +1}; ``key``: the random visiting order (a permutation
    of the n q entries per sweep, folded in with the sweep). Returns ``(h, history)``:
    ``h`` (n, q) in [-1, 1] in the dtype of ``s`` and the objective (1) after each sweep
    (``sweeps``,), non-increasing. Works under jit and vmap.
    """
    _check(h0, s)
    sweeps = _common.positive_int("sweeps", sweeps)
    n, q = h0.shape
    dtype = s.dtype

    s_diag = jnp.diagonal(s)

    def one_sweep(t, carry):
        h, hist = carry
        order = jax.random.permutation(jax.random.fold_in(key, t), n * q)

        def visit(p, c):
            return _entry_update(s, s_diag, c, order[p] // q, order[p] % q)

        h, _, _ = jax.lax.fori_loop(0, n * q, visit, (h, dot(h.T, h), dot(s, h).T))
        return h, hist.at[t].set(cnnh_objective(h, s))

    h = jnp.clip(h0.astype(dtype), -1.0, 1.0)
    return jax.lax.fori_loop(0, sweeps, one_sweep, (h, jnp.zeros((sweeps,), dtype)))


def cnnh_codes(s, *, bits: int, key, sweeps: int = 3):
    """CNNH's approximate hash codes for the similarity ``s`` (n, n) in {-1, +1}.

    H starts uniform in [-1, 1] (drawn from ``key``; H = 0 is a stationary point), runs
    ``sweeps`` sweeps of :func:`cnnh_coordinate_descent` and returns
    ``(sign(H) (n, bits) float, H, history)``.
    """
    bits = _common.positive_int("bits", bits)
    _common.matrix("s", s)
    init_key, order_key = jax.random.split(key)
    h0 = jax.random.uniform(init_key, (s.shape[0], bits), s.dtype, -1.0, 1.0)
    h, hist = cnnh_coordinate_descent(h0, s, key=order_key, sweeps=sweeps)
    return sign(h), h, hist
