"""Binary quadratic problems (BQP): one bit column at a time, and the bitwise driver.

The pairwise two-step and column-sampling methods fit inner products of codes to a scaled
similarity. KSH (Liu et al., CVPR 2012) and TSH step 1 (Lin et al., ICCV 2013):

    min_B ||q S - B B^T||^2,           B in {-1, +1}^(n x q), S (n, n);

COSDISH (Kang, Li, Zhou, AAAI 2016) and DDSH (Jiang, Cui, Li, TIP 2018) sample m columns
Omega of S and solve for the codes of the sampled points B_Omega, the other points' codes
B_Gamma fixed:

    min_{B_Omega} ||q S - B B_Omega^T||^2
      = ||q S_Omega - B_Omega B_Omega^T||^2 + ||q S_Gamma - B_Gamma B_Omega^T||^2,  S (n, m).

Bit by bit, with R = q S - sum_{l != k} B_l B_{Omega,l}^T the residual of the other bits,
b = B_{Omega,k} and g = B_{Gamma,k}, the sub-problem for bit k is (up to a constant)

    min_b  b^T A b + c^T b,   A = -2 R_Omega (m, m),   c = -2 R_Gamma^T g (m,),          (*)

a BQP over b in {-1, +1}^m (NP-hard in general). The diagonal of A is a constant
(b_i^2 = 1). The authors' COSDISH and DDSH code (``trainDDSH.m`` in jiangqy/DDSH-TIP2018;
the COSDISH MATLAB code, which is the same) builds exactly (*) but with the residual of
the *previous* bits only, R = q S - sum_{l < k} B_l B_{Omega,l}^T (bits after k are
ignored: a greedy, KSH-like residual fit), and solves it with :func:`bqp_balanced_partition`.

Solvers for one BQP (*):

* :func:`bqp_local_search`: 1-flip coordinate descent (best improvement: flip the entry
  whose flip lowers the objective most, while one does) - a ``lax.while_loop`` with a cap.
  Guarantees: the objective never increases, and on return (unless the cap was hit) no
  single flip lowers it (a 1-flip local minimum). Not a global optimum in general.
* :func:`bqp_balanced_partition`: what the authors' ``Solve.m`` does (see its docstring):
  a balanced {0,1} partition by M = m + 1 nearest-neighbour seeds. It returns a column with
  exactly ``round((m + 1) / 2) - 1`` entries +1, ignores the current column and does not
  guarantee any decrease.
* :func:`bqp_minimize`: the best of local searches started from the current column, from
  random columns (restarts) and optionally from the balanced partition. Never worse than
  the current column.

:func:`bqp_bitwise` applies one of them to the bits in turn (``lax.fori_loop``), for a
number of sweeps. With ``residual="others"`` and a monotone solver (``"local_search"``,
``"partition+local_search"``) it is block coordinate descent on the full objective, which
then never increases.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jhash.solvers import _common
from jhash.solvers._common import dot

__all__ = ["bqp_value", "bqp_local_search", "bqp_balanced_partition", "bqp_minimize",
           "pairwise_objective", "bqp_bitwise", "cosdish_gamma_update"]

_METHODS = ("local_search", "partition", "partition+local_search")
_RESIDUALS = ("others", "previous")


def _check_bqp(a, c, b=None):
    _common.matrix("a", a)
    m = a.shape[0]
    if a.shape[1] != m:
        raise ValueError(f"a must be square; got shape {a.shape}")
    if getattr(c, "shape", None) != (m,):
        raise ValueError(f"c must have shape ({m},); got {getattr(c, 'shape', None)}")
    if b is not None and getattr(b, "shape", None) != (m,):
        raise ValueError(f"b must have shape ({m},); got {getattr(b, 'shape', None)}")


def _offdiag_sym(a):
    """The symmetric part of ``a`` with a zero diagonal: what b^T A b depends on for +-1 b."""
    s = 0.5 * (a + a.T)
    return s * (1 - jnp.eye(a.shape[0], dtype=a.dtype))


def bqp_value(a, c, b):
    """``b^T A b + c^T b`` for ``a`` (m, m), ``c`` (m,), ``b`` (m,) +-1 (diagonal of A included)."""
    _check_bqp(a, c, b)
    bf = b.astype(a.dtype)
    return bf @ dot(a, bf) + c @ bf


def bqp_local_search(a, c, b0, *, max_flips: int | None = None):
    """1-flip best-improvement coordinate descent for ``min_b b^T A b + c^T b`` from ``b0``.

    ``a``: (m, m) float (only its symmetric, off-diagonal part matters); ``c``: (m,);
    ``b0``: (m,) +-1 start. Flipping b_i changes the objective by
    ``delta_i = -2 b_i h_i`` with ``h = 2 A0 b + c`` (A0: symmetric part, zero diagonal);
    each step flips the i of the most negative delta_i and updates h in O(m). Stops when
    no delta_i is below ``-tol`` (tol: 16 float eps times the largest possible |h_i|, so
    rounding cannot make it cycle) or after ``max_flips`` flips (static; default 10 m).
    Returns ``(b, value)``: b in the dtype of ``b0`` and its objective.
    """
    _check_bqp(a, c, b0)
    m = a.shape[0]
    max_flips = 10 * m if max_flips is None else int(max_flips)
    a0 = _offdiag_sym(a)
    c = c.astype(a.dtype)
    b = b0.astype(a.dtype)
    tol = 16 * jnp.finfo(a.dtype).eps * (jnp.max(jnp.sum(2 * jnp.abs(a0), axis=1) + jnp.abs(c), initial=0.0))

    def cond(carry):
        flips, _, _, improving = carry
        return improving & (flips < max_flips)

    def body(carry):
        flips, b, h, _ = carry
        delta = -2.0 * b * h
        i = jnp.argmin(delta)
        improving = delta[i] < -tol
        step = jnp.where(improving, -2.0 * b[i], 0.0)       # b_i -> -b_i when improving
        # a0 is exactly symmetric (commutative float sums): its row i is its column i, read contiguously
        return flips + improving.astype(jnp.int32), b.at[i].add(step), h + 2.0 * step * a0[i], improving

    h0 = 2.0 * dot(a0, b) + c
    _, b, _, _ = jax.lax.while_loop(cond, body, (jnp.int32(0), b, h0, jnp.bool_(m > 0)))
    return b.astype(b0.dtype), bqp_value(a, c, b)


def bqp_balanced_partition(a, c):
    """The authors' COSDISH / DDSH heuristic (``Solve.m``): a balanced partition by seeds.

    Their construction for ``min_b b^T A b + c^T b`` (A with zero diagonal): substitute
    b = 2x - 1, x in {0,1}^m, giving ``x^T Qx x + px^T x`` with Qx = 4 A and
    px = 2 c - 2 (A + A^T) 1 ("problem (5)"); homogenise with a constant x_M = 1,
    z = [x; 1], Qt = [[Qx, px/2], [px^T/2, 0]] (M = m + 1, "problem (6)"); normalise by
    max|Qt|, take lambda = 10^4 and the Cholesky factor P^T P = lambda I - Qt ("problem
    (8)"). With exactly H = round(M / 2) ones in z (the constant one included), z^T Qt z =
    lambda H - ||P z||^2, and the within-group scatter of the chosen columns of P is
    lambda (H - 1) + z^T Qt z / H. ``Solve`` tries M candidates - for each seed column i of
    P, the H - 1 variable columns nearest to it, plus the constant - and keeps the one of
    least scatter, i.e. of least objective.

    Since ||P_i - P_j||^2 = 2 lambda + 2 Qt_ij for i != j (the diagonal of Qt is 0) and 0
    for i = j, the nearest columns to seed i are i itself and then those of smallest
    Qt_ij; this function uses that directly (no lambda, no Cholesky, no normalisation: the
    same candidates and the same choice; ties go to the lower index, as MATLAB's stable
    ``sort`` and ``min`` do). Returns b (m,) +-1 in the dtype of ``a`` with exactly
    H - 1 = round((m + 1) / 2) - 1 entries +1. Cost: an (M, M) sort and an (M, m) x (m, m)
    product.
    """
    _check_bqp(a, c)
    m = a.shape[0]
    dtype = a.dtype
    a0 = _offdiag_sym(a)
    qx = 4.0 * a0
    px = 2.0 * c.astype(dtype) - 4.0 * jnp.sum(a0, axis=1)
    half = (m + 2) // 2                       # H = round(M / 2) for M = m + 1 (MATLAB rounds .5 up)
    # keys[s, j]: how near variable j is to seed s (smaller = nearer); a seed is nearest itself.
    keys = jnp.concatenate([qx, 0.5 * px[None, :]], axis=0)          # (M, m): seeds x variables
    keys = jnp.where(jnp.arange(m + 1)[:, None] == jnp.arange(m)[None, :], -jnp.inf, keys)
    order = jnp.argsort(keys, axis=1, stable=True)
    ranks = jnp.argsort(order, axis=1, stable=True)
    x = (ranks < half - 1).astype(dtype)                                # (M, m) candidates
    values = jnp.sum(dot(x, qx) * x, axis=1) + x @ px                     # x^T Qx x + px^T x
    return 2.0 * x[jnp.argmin(values)] - 1.0


def bqp_minimize(a, c, b0, *, key=None, restarts: int = 0, partition: bool = False,
                 max_flips: int | None = None):
    """The best 1-flip local minimum of ``b^T A b + c^T b`` over several starts.

    Starts: ``b0`` (m,) +-1 (the current column), then, with ``partition``, the result of
    :func:`bqp_balanced_partition`, then ``restarts`` (static) uniformly random columns
    drawn from ``key``. Each is improved by :func:`bqp_local_search` (vmapped over the
    starts) and the least objective wins (ties: the earliest start). Guarantees: the result
    is a 1-flip local minimum (within the flip cap) no worse than ``b0``. Returns b in the
    dtype of ``b0``.
    """
    _check_bqp(a, c, b0)
    m = a.shape[0]
    starts = [b0.astype(a.dtype)[None]]
    if partition:
        starts.append(bqp_balanced_partition(a, c)[None])
    if restarts:
        if key is None:
            raise ValueError("bqp_minimize needs a key for random restarts")
        starts.append(jax.random.rademacher(key, (int(restarts), m), dtype=a.dtype))
    starts = jnp.concatenate(starts, axis=0)
    bs, values = jax.vmap(lambda s: bqp_local_search(a, c, s, max_flips=max_flips))(starts)
    return bs[jnp.argmin(values)].astype(b0.dtype)


def _check_pairwise(b, s, omega):
    _common.codes("b", b)
    n = b.shape[0]
    if omega is None:
        _common.matrix("s", s, rows=n, cols=n)
    else:
        _common.indices("omega", omega)
        _common.matrix("s", s, rows=n, cols=omega.shape[0])


def pairwise_objective(b, s, omega=None):
    """``||q S - B B_Omega^T||^2`` (``omega`` None: ``||q S - B B^T||^2``).

    ``b``: (n, q) +-1 codes; ``s``: (n, n) similarity, or (n, m) sampled columns with
    ``omega`` (m,) the (distinct) indices of the sampled points. Entries of S in {-1, +1}
    or real (COSDISH and DDSH rescale S to 1 and -r, r = #similar / #dissimilar).
    """
    _check_pairwise(b, s, omega)
    q = b.shape[1]
    bf = b.astype(s.dtype)
    bo = bf if omega is None else bf[omega]
    return jnp.sum((q * s - dot(bf, bo.T)) ** 2)


def bqp_bitwise(b, s, omega=None, *, key=None, sweeps: int = 1, method: str = "local_search",
                restarts: int = 0, residual: str = "others", max_flips: int | None = None):
    """Bitwise BQP updates of the sampled points' codes for :func:`pairwise_objective`.

    ``b``: (n, q) +-1 codes of all points; ``s``: (n, n), or (n, m) with ``omega`` (m,)
    distinct indices of the points whose codes are updated (B_Omega; the others, B_Gamma,
    stay fixed); ``omega`` None updates every row (KSH / TSH). Per sweep (``sweeps``,
    static), bits k = 0..q-1 in turn: build the BQP (*) of the module docstring and solve
    it by ``method``:

    * ``"local_search"``: :func:`bqp_minimize` from the current column plus ``restarts``
      random starts;
    * ``"partition"``: :func:`bqp_balanced_partition`, as the COSDISH / DDSH code;
    * ``"partition+local_search"``: :func:`bqp_minimize` with the partition as a start too.

    ``residual="others"``: the residual of all other bits (block coordinate descent on the
    full objective); ``"previous"``: the residual of the bits before k only, as the
    authors' COSDISH / DDSH code. ``key`` is needed for ``restarts > 0`` (folded in with the
    sweep and bit). The residual (n, m) is carried and updated in O(n m) per bit. Returns
    the codes (n, q) in the dtype of ``b``. Works under jit and vmap.
    """
    _check_pairwise(b, s, omega)
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}; got {method!r}")
    if residual not in _RESIDUALS:
        raise ValueError(f"residual must be one of {_RESIDUALS}; got {residual!r}")
    sweeps = _common.positive_int("sweeps", sweeps)
    if restarts and key is None:
        raise ValueError("bqp_bitwise needs a key for random restarts")
    n, q = b.shape
    dtype = s.dtype
    if omega is None:
        omega = jnp.arange(n)
    gamma_rows = jnp.ones((n,), dtype).at[omega].set(0)     # 1 on the fixed rows Gamma

    def solve(a, c, b0, sub_key):
        if method == "partition":
            return bqp_balanced_partition(a, c)
        return bqp_minimize(a, c, b0, key=sub_key, restarts=restarts,
                            partition=method == "partition+local_search", max_flips=max_flips)

    def bit_update(k, carry):
        sweep, bt, r = carry
        col = bt[k]                                           # (n,)
        col_o = col[omega]                                    # (m,)
        if residual == "others":
            r = r + col[:, None] * col_o[None, :]              # put bit k back
        a = -2.0 * r[omega]
        c = -2.0 * dot(gamma_rows * col, r)
        sub_key = None if key is None else jax.random.fold_in(key, sweep * q + k)
        new_o = solve(a, c, col_o, sub_key)
        new = col.at[omega].set(new_o)
        return sweep, bt.at[k].set(new), r - new[:, None] * new_o[None, :]

    def sweep_body(sweep, bt):
        r = q * s
        if residual == "others":
            r = r - dot(bt.T, bt[:, omega])
        _, bt, _ = jax.lax.fori_loop(0, q, bit_update, (sweep, bt, r))
        return bt

    bt = jax.lax.fori_loop(0, sweeps, sweep_body, b.T.astype(dtype))
    return bt.T.astype(b.dtype)


def cosdish_gamma_update(b, s, omega, *, tol: float = 1e-5):
    """COSDISH's update of the non-sampled codes: ``B_Gamma = sign(S_Gamma B_Omega)``.

    The authors' code (``nB(Gamma,:) = ex_sign(S_g * nB(Omega,:), B(Gamma,:))``): each
    entry whose argument has absolute value below ``tol`` keeps its previous value. ``b``:
    (n, q) codes; ``s``: (n, m) sampled columns; ``omega``: (m,) the sampled rows, which
    are returned unchanged. A relaxation (sign of the least-squares direction), not an
    exact minimiser of ||q S_Gamma - B_Gamma B_Omega^T||^2.
    """
    _check_pairwise(b, s, omega)
    bf = b.astype(s.dtype)
    arg = dot(s, bf[omega])                                       # (n, q)
    new = jnp.where(jnp.abs(arg) < tol, bf, jnp.where(arg > 0, 1.0, -1.0).astype(s.dtype))
    new = new.at[omega].set(bf[omega])
    return new.astype(b.dtype)
