"""Product and additive quantization as pure JAX functions, and retrieval by asymmetric quantizer distance.

Notation: ``M`` codebooks of ``K`` codewords each; a database item is stored as ``M`` indices,
``M log2(K)`` bits (:func:`num_codebooks`).

* **Product quantization** (PQ; Jegou, Douze, Schmid, TPAMI 2011): ``x in R^D`` is split into
  ``M`` sub-vectors of ``d = D / M`` (:func:`split`); codebook ``m`` (``(K, d)``) quantizes the
  ``m``-th sub-vector; codebooks ``(M, K, d)``; ``x ~ [C_1[b_1], ..., C_M[b_M]]``
  (:func:`pq_decode`). Encoding is the nearest codeword of each sub-vector (:func:`assign`,
  exact: the sub-problems are independent), codebooks are k-means in each subspace
  (:func:`pq_kmeans`, Lloyd's algorithm of :func:`jhash.shallow.common.kmeans`).
* **Additive / composite quantization** (Babenko & Lempitsky, CVPR 2014; Zhang, Du, Wang,
  ICML 2014): full-length codewords, codebooks ``(M, K, D)``, ``x ~ sum_m C_m[b_m]``
  (:func:`additive_decode`). The best code is a hard discrete problem; :func:`additive_encode`
  starts from greedy residual encoding and runs sweeps of iterated conditional modes (each
  sweep re-chooses ``b_m`` exactly given the others: the error never increases).

**Asymmetric quantizer distance** (AQD; Jegou et al. 2011, the "asymmetric distance
computation"): the query stays real, the database is quantized; per query a table
``T[m, k]`` (:func:`aqd_table`) gives each codeword's contribution and the distance to item
``j`` is ``sum_m T[m, b_jm]`` (:func:`aqd`), a lookup instead of a ``D``-dimensional product:

  ``metric="l2"`` (product only)  ``T[m, k] = ||q_m - C_m[k]||^2``  -> ``||q - decode(b)||^2`` exactly;
  ``metric="ip"``                  ``T[m, k] = -<q_m, C_m[k]>`` (product) or ``-<q, C_m[k]>`` (additive)
                                   -> ``-<q, decode(b)>`` (maximum inner product search).

Squared L2 with additive codebooks is not a sum of per-codebook terms (cross products between
codewords), so it raises a ValueError. Rankings sort the distances ascending, ties by
database index (:func:`jhash.metrics.mean_average_precision_by_distance`).

:class:`Quantizer` is what a quantization method hands the evaluator (``Method.quantizer``).
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp

_HI = jax.lax.Precision.HIGHEST
KINDS = ("product", "additive")
METRICS = ("l2", "ip")


@dataclasses.dataclass(frozen=True)
class Quantizer:
    """How the evaluator retrieves with a quantization method.

    Attributes:
      codebooks: ``codebooks(params, method_state) -> (M, K, d)`` the learned codebooks
        (``d = D / M`` for ``kind="product"``, ``d = D`` for ``"additive"``).
      encode: ``encode(out, codebooks) -> (features (n, D), codes (n, M) int32)``: from the
        model's outputs (evaluation mode), the real query vector the AQD table is built from
        and the database code of the same items.
      kind: ``"product"`` or ``"additive"``; metric: ``"l2"`` or ``"ip"`` (see the module docstring).
    """

    codebooks: Callable[[Any, Any], Any]
    encode: Callable[[Any, Any], Any]
    kind: str = "product"
    metric: str = "l2"

    def __post_init__(self):
        _check_kind_metric(self.kind, self.metric)


def _check_kind_metric(kind, metric):
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if kind == "additive" and metric == "l2":
        raise ValueError("metric='l2' needs product codebooks (squared L2 to a sum of full-length codewords has "
                         "cross terms that no per-codebook table holds); use metric='ip' with kind='additive'")


def num_codebooks(bits: int, codebook_size: int) -> int:
    """``M`` such that ``M log2(K) = bits`` (the code length of a database item); ValueError when none exists."""
    if isinstance(codebook_size, bool) or not isinstance(codebook_size, int) or codebook_size < 2 \
            or codebook_size & (codebook_size - 1):
        raise ValueError(f"codebook_size must be a power of two >= 2, got {codebook_size!r}")
    per = int(math.log2(codebook_size))
    if isinstance(bits, bool) or not isinstance(bits, int) or bits <= 0 or bits % per:
        raise ValueError(f"bits must be a positive multiple of log2(codebook_size) = {per}, got {bits!r}")
    return bits // per


def _check_codebooks(codebooks, name="codebooks"):
    if getattr(codebooks, "ndim", None) != 3:
        raise ValueError(f"{name} must have shape (M, K, d), got {getattr(codebooks, 'shape', None)}")


def split(x, m: int):
    """``(n, D) -> (n, m, D / m)``: the ``m`` sub-vectors of product quantization."""
    if getattr(x, "ndim", None) != 2:
        raise ValueError(f"x must have shape (n, D), got {getattr(x, 'shape', None)}")
    if m < 1 or x.shape[1] % m:
        raise ValueError(f"x has D={x.shape[1]} columns, not divisible into m={m} sub-vectors")
    return x.reshape(x.shape[0], m, x.shape[1] // m)


def sub_distances(x_sub, codebooks):
    """``||x_m - C_m[k]||^2`` for every item, codebook and codeword: ``(n, M, d), (M, K, d) -> (n, M, K)``."""
    _check_codebooks(codebooks)
    if getattr(x_sub, "ndim", None) != 3 or x_sub.shape[1:] != (codebooks.shape[0], codebooks.shape[2]):
        raise ValueError(f"x_sub must have shape (n, M={codebooks.shape[0]}, d={codebooks.shape[2]}), "
                         f"got {getattr(x_sub, 'shape', None)}")
    cross = jnp.einsum("nmd,mkd->nmk", x_sub, codebooks, precision=_HI)
    return (jnp.sum(x_sub ** 2, -1)[:, :, None] - 2.0 * cross + jnp.sum(codebooks ** 2, -1)[None])


@jax.jit
def assign(x_sub, codebooks):
    """Nearest codeword of each sub-vector: ``(n, M) int32`` (the lowest index among equally near ones)."""
    return jnp.argmin(sub_distances(x_sub, codebooks), axis=-1).astype(jnp.int32)


def pq_encode(x, codebooks):
    """Product-quantization codes ``(n, M) int32`` of ``x (n, D)`` (the nearest codeword in each subspace)."""
    _check_codebooks(codebooks)
    return assign(split(x, codebooks.shape[0]), codebooks)


def _check_codes(codes, codebooks):
    _check_codebooks(codebooks)
    if getattr(codes, "ndim", None) != 2 or codes.shape[1] != codebooks.shape[0]:
        raise ValueError(f"codes must have shape (n, M={codebooks.shape[0]}), got {getattr(codes, 'shape', None)}")


def _gather(codes, codebooks):
    """``(n, M, d)``: codeword ``codes[i, m]`` of codebook ``m`` for every item."""
    return codebooks[jnp.arange(codebooks.shape[0])[None, :], codes]


def pq_decode(codes, codebooks):
    """Reconstruction ``(n, M d)`` of product-quantization codes: the chosen sub-codewords side by side."""
    _check_codes(codes, codebooks)
    g = _gather(codes, codebooks)
    return g.reshape(g.shape[0], -1)


def additive_decode(codes, codebooks):
    """Reconstruction ``(n, D)`` of additive codes: the sum of the chosen full-length codewords."""
    _check_codes(codes, codebooks)
    return jnp.sum(_gather(codes, codebooks), axis=1)


@functools.partial(jax.jit, static_argnames=("sweeps",))
def additive_encode(x, codebooks, *, sweeps: int = 3):
    """Additive-quantization codes ``(n, M) int32`` of ``x (n, D)``, and the squared error of each step.

    Greedy residual encoding (codebook ``m`` quantizes what codebooks ``< m`` left), then
    ``sweeps`` sweeps of iterated conditional modes over ``m = 0..M-1``: ``b_m`` becomes the
    exact minimiser of ``||x - sum_{m' != m} C_m'[b_m'] - C_m[k]||^2`` over ``k`` (ties: the
    current codeword is kept when it is among the best, else the lowest index), so the error
    never increases. Returns ``(codes, errors)`` with ``errors (sweeps + 1,)`` the total squared
    error after the greedy pass and after each sweep.
    """
    _check_codebooks(codebooks)
    if getattr(x, "ndim", None) != 2 or x.shape[1] != codebooks.shape[2]:
        raise ValueError(f"x must have shape (n, D={codebooks.shape[2]}), got {getattr(x, 'shape', None)}")
    m_books = codebooks.shape[0]
    norms = jnp.sum(codebooks ** 2, -1)  # (M, K)

    def best(residual, m, current=None):
        d = norms[m][None] - 2.0 * jnp.matmul(residual, codebooks[m].T, precision=_HI)  # + ||residual||^2
        if current is None:
            return jnp.argmin(d, -1).astype(jnp.int32)
        keep = jnp.take_along_axis(d, current[:, None], 1)[:, 0] <= jnp.min(d, -1)
        return jnp.where(keep, current, jnp.argmin(d, -1).astype(jnp.int32))

    def greedy(m, carry):
        codes, residual = carry
        b = best(residual, m)
        return codes.at[:, m].set(b), residual - codebooks[m][b]

    codes0 = jnp.zeros((x.shape[0], m_books), jnp.int32)
    codes, residual = jax.lax.fori_loop(0, m_books, greedy, (codes0, x))

    def icm(i, carry):
        codes, residual, errors = carry

        def one(m, c):
            codes, residual = c
            residual = residual + codebooks[m][codes[:, m]]
            b = best(residual, m, codes[:, m])
            return codes.at[:, m].set(b), residual - codebooks[m][b]

        codes, residual = jax.lax.fori_loop(0, m_books, one, (codes, residual))
        return codes, residual, errors.at[i + 1].set(jnp.sum(residual ** 2))

    errors = jnp.zeros(sweeps + 1, x.dtype).at[0].set(jnp.sum(residual ** 2))
    codes, _, errors = jax.lax.fori_loop(0, sweeps, icm, (codes, residual, errors))
    return codes, errors


@functools.partial(jax.jit, static_argnames=("m", "k", "iters"))
def pq_kmeans(x, key, *, m: int, k: int, iters: int = 20):
    """Product-quantization codebooks of ``x (n, D)``: k-means (k-means++ start, ``iters`` Lloyd steps) in each of
    the ``m`` subspaces, independently (vmapped). Returns ``(codebooks (m, k, D/m), codes (n, m) int32,
    errors (iters,))`` where ``errors[t]`` is the total squared reconstruction error at Lloyd step ``t``
    (non-increasing; the sum of the subspaces' k-means costs)."""
    from jhash.shallow.common import kmeans

    xs = jnp.swapaxes(split(x, m), 0, 1)  # (m, n, d)
    if k > x.shape[0]:
        raise ValueError(f"k={k} codewords need at least k items, got n={x.shape[0]}")
    centers, a, hist = jax.vmap(lambda xm, km: kmeans(xm, km, k=k, iters=iters))(xs, jax.random.split(key, m))
    return centers, a.T.astype(jnp.int32), jnp.sum(hist, 0)


def aqd_table(queries, codebooks, *, kind: str = "product", metric: str = "l2"):
    """Per-query lookup tables ``(n_q, M, K)``: each codeword's contribution to the asymmetric distance."""
    _check_kind_metric(kind, metric)
    _check_codebooks(codebooks)
    if getattr(queries, "ndim", None) != 2:
        raise ValueError(f"queries must have shape (n_q, D), got {getattr(queries, 'shape', None)}")
    m_books, _, d = codebooks.shape
    if kind == "product":
        if queries.shape[1] != m_books * d:
            raise ValueError(f"queries have D={queries.shape[1]} but product codebooks {tuple(codebooks.shape)} "
                             f"quantize D={m_books * d}")
        q_sub = split(queries, m_books)
        if metric == "l2":
            return sub_distances(q_sub, codebooks)
        return -jnp.einsum("nmd,mkd->nmk", q_sub, codebooks, precision=_HI)
    if queries.shape[1] != d:
        raise ValueError(f"queries have D={queries.shape[1]} but additive codebooks {tuple(codebooks.shape)} "
                         f"have codewords of length {d}")
    return -jnp.einsum("nd,mkd->nmk", queries, codebooks, precision=_HI)


@jax.jit
def aqd(table, codes):
    """Asymmetric distances ``(n_q, n_db)``: ``sum_m table[q, m, codes[j, m]]``, one codebook at a time."""
    if table.ndim != 3 or codes.ndim != 2 or codes.shape[1] != table.shape[1]:
        raise ValueError(f"table must be (n_q, M, K) and codes (n_db, M); got {table.shape} and {codes.shape}")

    def add(m, acc):
        return acc + jnp.take(table[:, m, :], codes[:, m], axis=1)

    zero = jnp.zeros((table.shape[0], codes.shape[0]), table.dtype)
    return jax.lax.fori_loop(0, table.shape[1], add, zero)


def asymmetric_distances(queries, codes, codebooks, *, kind: str = "product", metric: str = "l2"):
    """``aqd(aqd_table(queries, codebooks), codes)``: distances from real queries to quantized items."""
    _check_codes(codes, codebooks)
    return aqd(aqd_table(queries, codebooks, kind=kind, metric=metric), jnp.asarray(codes, jnp.int32))


def decode(codes, codebooks, *, kind: str = "product"):
    """:func:`pq_decode` or :func:`additive_decode` by ``kind``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return pq_decode(codes, codebooks) if kind == "product" else additive_decode(codes, codebooks)
