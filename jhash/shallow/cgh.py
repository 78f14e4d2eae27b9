"""CGH: column generation hashing (Li, Lin, Shen, van den Hengel, Dick, "Learning hash
functions using column generation", ICML 2013).

Hash functions h_m(x) = sign(v_m^T x~) (x~ = x minus the training mean) and non-negative bit
weights w define the weighted Hamming distance d_w(x, y) = sum_m w_m [h_m(x) != h_m(y)].
Triplets (i, j, k), j relevant to i and k not, should satisfy d_w(i, k) - d_w(i, j) >= 1;
with delta_t in {-1, 0, 1}^M, delta_tm = [h_m(x_i) != h_m(x_k)] - [h_m(x_i) != h_m(x_j)], the
master problem over the current M hash functions is (the paper's squared-hinge form)

    min_{w >= 0}  1^T w + (C / T) sum_t max(0, 1 - w^T delta_t)^2 .                     (P)

Its dual variables (KKT) are u_t = (2 C / T) max(0, 1 - w^T delta_t), and the dual constraint
of a column h is sum_t u_t delta_t(h) <= 1; column generation adds the most violated one,

    h* = argmax_h  sum_t u_t delta_t(h),   delta_t(h) = h(x_i) (h(x_j) - h(x_k)) / 2,     (S)

re-solves (P) over M + 1 columns, and repeats (Algorithm 1); each added column can only lower
the optimum of (P) (the previous w, with weight 0 on the new column, stays feasible).

Solvers (ours; the paper used off-the-shelf LP/QP and L-BFGS solvers):

* (P) by FISTA (Beck & Teboulle 2009) projected onto w >= 0 with step 1 / L,
  L = 2 (C / T) ||Delta||_2^2, warm-started from the previous w, keeping the best iterate (so the
  master objective never increases from one column to the next); all ``bits`` columns live in
  a fixed-size array with the unused ones masked, so the whole column generation is one
  compiled ``lax.fori_loop``;
* (S) by the spectral relaxation (h = v^T x~: maximise v^T sym(A) v on the unit sphere with
  A = sum_t u_t x~_i (x~_j - x~_k)^T, by shifted power iteration with matrix-free products), then
  gradient ascent on the smooth objective with h = tanh(v^T x~); the better of the two in the
  exact binary objective (S) is kept (as KSH's code does for its bits).

Defaults and differences: ``triplets_per_point * n`` triplets with 10 per point, C = 10,
exactly ``bits`` columns (the paper also stops at the code length), 300 FISTA iterations per
column, 100 power and 100 ascent iterations. Retrieval: the paper ranks by d_w; jhash's
evaluation ranks by plain Hamming distance, so ``encode`` returns the plain codes and the
weights are in ``info["bit_weights"]`` (:func:`weighted_distance` ranks with them); the tables
report plain Hamming retrieval.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jhash.shallow.common import Hasher, check_positive, linear_project, prepare_fit
from jhash.shallow.linear_sgd import normalise, triplet_pool, unnormalise

_HI = jax.lax.Precision.HIGHEST


def triplet_deltas(codes, triplets):
    """``delta (T, M)``: ``[h(x_i) != h(x_k)] - [h(x_i) != h(x_j)]`` per triplet and bit (codes +-1)."""
    ci, cj, ck = codes[triplets[:, 0]], codes[triplets[:, 1]], codes[triplets[:, 2]]
    return (ci != ck).astype(jnp.float32) - (ci != cj).astype(jnp.float32)


def master_objective(w, delta, c):
    """(P): ``sum(w) + c / T * sum_t max(0, 1 - delta_t . w)^2``."""
    xi = jnp.maximum(0.0, 1.0 - jnp.matmul(delta, w, precision=_HI))
    return jnp.sum(w) + c / delta.shape[0] * jnp.sum(xi ** 2)


def dual_variables(w, delta, c):
    """u_t = 2 c / T * max(0, 1 - delta_t . w), the dual solution of (P) at its optimum."""
    return 2.0 * c / delta.shape[0] * jnp.maximum(0.0, 1.0 - jnp.matmul(delta, w, precision=_HI))


def solve_master(delta, c, w0, active, iters: int):
    """FISTA on (P) over the ``active`` columns (the others held at 0), from ``w0``; the best iterate."""
    nu = c / delta.shape[0]
    dm = delta * active
    lip = 2.0 * nu * jnp.maximum(jnp.linalg.eigvalsh(jnp.matmul(dm.T, dm, precision=_HI))[-1], 1e-6)
    grad = lambda w: 1.0 - 2.0 * nu * jnp.matmul(dm.T, jnp.maximum(0.0, 1.0 - jnp.matmul(dm, w, precision=_HI)),
                                                 precision=_HI)
    w0 = w0 * active

    def body(_, carry):
        w, y, t, best, fbest = carry
        w_new = jnp.maximum(0.0, y - grad(y) / lip) * active
        t_new = 0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * t * t))
        y = w_new + (t - 1.0) / t_new * (w_new - w)
        f = master_objective(w_new, dm, c)
        better = f < fbest
        return w_new, y, t_new, jnp.where(better, w_new, best), jnp.where(better, f, fbest)

    f0 = master_objective(w0, dm, c)
    out = jax.lax.fori_loop(0, iters, body, (w0, w0, jnp.float32(1.0), w0, f0))
    return out[3], out[4]


def column_gain(h, triplets, u):
    """(S)'s objective ``sum_t u_t h_i (h_j - h_k) / 2`` for one column ``h`` (n,) (+-1 or relaxed)."""
    return 0.5 * jnp.sum(u * h[triplets[:, 0]] * (h[triplets[:, 1]] - h[triplets[:, 2]]))


def spectral_column(x, triplets, u, key, iters: int):
    """The unit v maximising v^T sym(A) v (A as in the module docstring), by shifted power iteration."""
    quad = lambda v: column_gain(jnp.matmul(x, v, precision=_HI), triplets, u)   # = v^T sym(A) v / 2
    matvec = jax.grad(quad)                                                       # = sym(A) v
    v0 = jax.random.normal(key, (x.shape[1],))
    v0 = v0 / jnp.linalg.norm(v0)

    def power(m):
        def body(_, v):
            z = m(v)
            return z / jnp.maximum(jnp.linalg.norm(z), 1e-30)
        return jax.lax.fori_loop(0, iters, body, v0)

    top = power(matvec)                                  # the eigenvalue of largest magnitude
    shift = jnp.abs(jnp.dot(top, matvec(top)))
    return power(lambda v: matvec(v) + shift * v)         # the largest (algebraic) one


def best_column(x, triplets, u, key, *, power_iters: int, ascent_iters: int, lr: float):
    """A hash function for (S): the spectral direction, refined by gradient ascent on the tanh relaxation."""
    v0 = spectral_column(x, triplets, u, key, power_iters)
    v0 = v0 / jnp.maximum(jnp.std(jnp.matmul(x, v0, precision=_HI)), 1e-12)
    smooth = lambda v: column_gain(jnp.tanh(jnp.matmul(x, v, precision=_HI)), triplets, u)
    grad = jax.grad(smooth)
    step = lr * jnp.linalg.norm(v0) / jnp.maximum(jnp.linalg.norm(grad(v0)), 1e-12)
    v1 = jax.lax.fori_loop(0, ascent_iters, lambda _, v: v + step * grad(v), v0)
    exact = lambda v: column_gain(jnp.where(jnp.matmul(x, v, precision=_HI) >= 0, 1.0, -1.0), triplets, u)
    # the sign of v is free (both give the same gain); keep the better of the spectral and refined ones
    return jnp.where(exact(v1) > exact(v0), v1, v0)


@functools.partial(jax.jit, static_argnames=("bits", "master_iters", "power_iters", "ascent_iters"))
def column_generation(x, triplets, key, c, lr, *, bits: int, master_iters: int, power_iters: int,
                      ascent_iters: int):
    """Algorithm 1 for ``bits`` columns. Returns ``(V (d, bits), w (bits,), objective (bits,), gain (bits,))``:
    the master optimum after each column and each new column's dual gain sum_t u_t delta_t(h)."""
    n, d = x.shape

    def body(m, carry):
        v_all, codes, w, hist, gains = carry
        active = (jnp.arange(bits) < m).astype(jnp.float32)
        delta = triplet_deltas(codes, triplets) * active
        u = dual_variables(w, delta, c)
        v = best_column(x, triplets, u, jax.random.fold_in(key, m), power_iters=power_iters,
                        ascent_iters=ascent_iters, lr=lr)
        h = jnp.where(jnp.matmul(x, v, precision=_HI) >= 0, 1.0, -1.0)
        codes = codes.at[:, m].set(h)
        active = (jnp.arange(bits) <= m).astype(jnp.float32)
        w, f = solve_master(triplet_deltas(codes, triplets), c, w, active, master_iters)
        return v_all.at[:, m].set(v), codes, w, hist.at[m].set(f), gains.at[m].set(column_gain(h, triplets, u))

    init = (jnp.zeros((d, bits)), jnp.ones((n, bits)), jnp.zeros(bits), jnp.zeros(bits), jnp.zeros(bits))
    v_all, _, w, hist, gains = jax.lax.fori_loop(0, bits, body, init)
    return v_all, w, hist, gains


def weighted_distance(query_codes, db_codes, weights):
    """The weighted Hamming distances ``(nq, ndb)``: sum_m w_m [q_m != d_m] (+-1 codes)."""
    q = np.asarray(query_codes, np.float64)
    d = np.asarray(db_codes, np.float64)
    w = np.asarray(weights, np.float64)
    if q.ndim != 2 or d.ndim != 2 or q.shape[1] != d.shape[1] or w.shape != (q.shape[1],):
        raise ValueError(f"codes (nq, q), (ndb, q) and weights (q,) expected, got {q.shape}, {d.shape}, {w.shape}")
    return 0.5 * (w.sum() - (q * w) @ d.T)


def fit(features, labels=None, *, bits, key, c: float = 10.0, triplets_per_point: int = 10,
        master_iters: int = 300, power_iters: int = 100, ascent_iters: int = 100, lr: float = 0.05) -> Hasher:
    """CGH on labelled features (see the module docstring)."""
    x, labels, bits = prepare_fit(features, labels, bits, supervised=True)
    if not c > 0:
        raise ValueError(f"c must be positive, got {c!r}")
    k_pool, k_col = jax.random.split(key)
    trip = triplet_pool(k_pool, labels, check_positive(triplets_per_point, "triplets_per_point") * x.shape[0])
    xs, scale = normalise(x)
    mean = jnp.mean(xs, 0)
    v, w, hist, gains = column_generation(
        xs - mean, trip, k_col, jnp.float32(c), jnp.float32(lr), bits=bits,
        master_iters=check_positive(master_iters, "master_iters"), power_iters=check_positive(power_iters, "power_iters"),
        ascent_iters=check_positive(ascent_iters, "ascent_iters"))
    params = unnormalise({"mean": mean, "w": v, "b": jnp.zeros(bits, jnp.float32)}, scale)
    return Hasher("cgh", bits, x.shape[1], linear_project, params,
                  {"bit_weights": w, "objective": hist, "column_gain": gains})
