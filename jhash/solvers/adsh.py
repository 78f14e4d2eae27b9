"""ADSH's closed-form bitwise update of the database codes V.

Jiang & Li, "Asymmetric deep supervised hashing", AAAI 2018, eq. (3), (9)-(11). With the
network outputs ``U`` (m, q) of the m sampled database points Omega, the database codes
``V`` (n, q) and the (rescaled) similarity ``S`` (m, n) between the samples and the whole
database, the V-step is

    min_V  ||U V^T - q S||^2 + gamma ||V_Omega - U||^2   over V in {-1, +1}^(n x q)      (9)
         = ||V U^T||^2 + tr(V^T Q) + const,   Q = -2 q S^T U - 2 gamma Ubar            (10)

where Ubar (n, q) holds U on the rows Omega and 0 elsewhere. With every bit but k fixed the
problem is separable over the n database points and its exact minimiser is            (11)

    V_k = -sign(2 V_{-k} U_{-k}^T U_k + Q_k),

V_{-k}, U_{-k} being V and U without column k. One sweep applies (11) to k = 1..q in turn,
as the authors' code does once per outer iteration (``ADSH_pytorch/ADSH_CIFAR_10.py``,
"learning binary codes: discrete coding"; ``ADSH_matlab/process_ADSH.m``). Their PyTorch
code starts from V = 0; that is allowed here (the first sweep then sees the not yet
updated bits as 0).

``use_sign_u``: the authors' MATLAB code builds Q from sign(U) in the similarity term,
``Q = -2 q S^T sign(U) - 2 gamma Ubar`` (``H = sign(Bq)``; Ubar and the U_{-k}^T U_k term
keep the real U), while the paper and the PyTorch code use U throughout. With the flag,
(11) is the exact per-bit minimiser of the objective with sign(U) in the cross term,

    ||V U^T||^2 - 2 q <S, sign(U) V^T> + q^2 ||S||^2 + gamma ||V_Omega - U||^2,

which is what :func:`adsh_objective` returns with ``use_sign_u=True``.

sign(0) = +1 (NumPy's and MATLAB's sign(0) = 0 would leave a 0 code; a 0 argument means
both values of the bit give the same objective). Everything is row-local over the database
axis, so V, S and the output can be sharded along it (``P('data')``) with no collective:
the compiled program gives the codes of one device.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jhash.solvers import _common
from jhash.solvers._common import dot, sign

__all__ = ["adsh_objective", "adsh_update_v"]


def _check(v, u, s, omega):
    _common.codes("v", v)
    n, q = v.shape
    _common.matrix("u", u, cols=q)
    m = u.shape[0]
    _common.matrix("s", s, rows=m, cols=n)
    _common.indices("omega", omega, size=m)


def _cross_codes(u, use_sign_u):
    return sign(u) if use_sign_u else u


def adsh_objective(v, u, s, omega, *, gamma, use_sign_u: bool = False):
    """``||U V^T - q S||^2 + gamma ||V_Omega - U||^2`` (ADSH eq. 9) for codes ``v``.

    ``v``: (n, q) database codes; ``u``: (m, q) network outputs of the sampled points;
    ``s``: (m, n) similarity of the samples to the database; ``omega``: (m,) database
    indices of the samples. With ``use_sign_u`` the cross term uses sign(U) (see the module
    docstring): the objective that the MATLAB code's update minimises bit by bit.
    """
    _check(v, u, s, omega)
    q = v.shape[1]
    vf = v.astype(u.dtype)
    cross = _cross_codes(u, use_sign_u)
    vu = dot(vf, u.T)                                   # (n, m)
    fit = jnp.sum(vu ** 2) - 2 * q * jnp.sum(dot(vf, cross.T) * s.T) + q * q * jnp.sum(s ** 2)
    return fit + gamma * jnp.sum((vf[omega] - u) ** 2)


def adsh_update_v(v, u, s, omega, *, gamma, use_sign_u: bool = False):
    """One sweep of ADSH's bitwise V update (eq. 11) over all q bits; returns the new V.

    ``v``: (n, q) current codes (+-1, or 0 before the first update as in the authors'
    code; the result has the dtype of ``v``); ``u``: (m, q) float outputs for the samples
    Omega; ``s``: (m, n) float similarity; ``omega``: (m,) int distinct indices into the
    database; ``gamma``: the quantization weight (traced values are fine).

    Q = -2 q S^T U - 2 gamma Ubar is one (q, m) x (m, n) product; then a ``lax.fori_loop``
    over the bits updates a whole column of V at once. Each bit update is the exact
    minimiser of :func:`adsh_objective` over that column with the others fixed (when V is
    +-1), so the objective never increases. The database axis can be sharded.
    """
    _check(v, u, s, omega)
    n, q = v.shape
    dtype = u.dtype
    cross = _cross_codes(u, use_sign_u)
    # Q^T (q, n) = -2 q U^T S - 2 gamma Ubar^T, the database along the last (shardable) axis.
    qt = -2.0 * q * dot(cross.T, s.astype(dtype))
    qt = qt.at[:, omega].add((-2.0 * gamma) * u.T)
    g = dot(u.T, u)                                       # U^T U, (q, q)

    def bit_update(k, vt):
        c = g[:, k].at[k].set(0)                          # U_{-k}^T U_k, column k removed
        return vt.at[k].set(sign(-(2.0 * dot(c, vt) + qt[k])))

    vt = jax.lax.fori_loop(0, q, bit_update, v.T.astype(dtype))
    return vt.T.astype(v.dtype)
