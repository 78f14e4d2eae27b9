"""Retrieval metrics for binary codes: mAP@k, tie-aware AP / NDCG, precision and recall
within a Hamming radius, and precision / recall curves.

Inputs (every public function)
------------------------------
``query_codes (n_q, q)`` and ``db_codes (n_db, q)``: +-1 codes (numpy or jax arrays).
``query_labels`` / ``db_labels``: either class ids, shape ``(n,)`` (single-label), or
multi-hot matrices, shape ``(n, c)`` (multi-label).  A database item is *relevant* to a
query when they share at least one label (single-label: same class id).
Bad inputs (wrong ndim, non +-1 codes, different code lengths, mismatched lengths, mixed
single/multi-label) raise ``ValueError`` naming the argument.  Inputs are never mutated.

Ranking convention
------------------
Database items are ranked by Hamming distance ascending, **ties broken by database index**
(a stable sort over ``(distance, index)``).  Every metric averages over *all* queries.

Implementation
--------------
Every metric reads one *ranking pass* per query (:func:`_passes`): the Hamming distance to
each database item, its gain (relevance), per-distance histograms of (items, relevant
items, gain), and the ranking by (distance, index) -- a counting sort, since distances
take only q + 1 values -- from which AP@k and the relevance of the first positions follow.
Histogram metrics (radius, tie-aware AP / NDCG) finish in closed form on the histograms.

* ``backend="numba"`` (default): the pass of :mod:`jhash._ranking`, compiled by numba
  and run on the host's cores: per query it visits the database once in index order,
  bumping one counter per distance and recording, for each relevant item only, its
  distance and position within its distance bucket (all AP needs), so it needs no sort and
  no n_q x n_db matrix (memory is O(n_db) per thread, whatever the number of queries).
  XLA's CPU sort is a slow comparison sort and a counting sort needs a sequential pass that
  XLA does not express cheaply. Its distance to the floor (the distance matrix alone):
  experiments/bench/speed_floor.py.
* ``backend="jax"``: jitted XLA kernels for GPU / TPU and for use inside ``jax.jit``:
  distances and gains, the counting sort :func:`ranked_relevance` (a one-hot prefix sum,
  cost (q + 1) per item, fine on accelerators) and :func:`distance_histograms_jax`, over
  chunks of queries sized by a memory budget.

Both backends are tested against the same brute-force references.

Real-valued distances (the asymmetric quantizer distances of quantization methods,
:mod:`jhash.quantization`) have no small set of values to count:
:func:`mean_average_precision_by_distance` ranks them by a stable sort (the same tie rule:
distance, then database index) a chunk of queries at a time and shares the AP code above.
"""
from __future__ import annotations

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from jhash import codes as _codes

__all__ = [
    "mean_average_precision", "mean_average_precision_by_distance", "tie_aware_average_precision", "tie_aware_ndcg",
    "precision_recall_at_radius", "precision_recall_curve_radius", "precision_at_k_curve",
    "precision_recall_curve_rank", "ranked_relevance", "distance_histograms", "whole_ranking_metrics",
]

# Memory budget (bytes) for one chunk of queries.
MEMORY_BUDGET_BYTES = 256 * 2**20


# ----------------------------------------------------------------------------- inputs
def _check_labels(labels, name, n, n_name):
    shape = getattr(labels, "shape", None)
    if shape is None:
        labels = np.asarray(labels)
        shape = labels.shape
    if len(shape) not in (1, 2):
        raise ValueError(f"{name} must be class ids (n,) or multi-hot (n, c), got shape "
                         f"{tuple(shape)}")
    if shape[0] != n:
        raise ValueError(f"{name} has {shape[0]} rows but {n_name} has {n}")
    return labels


def _validate(query_codes, db_codes, query_labels, db_labels):
    """Checks the four inputs; returns ``(q, n_q, n_db)``."""
    _codes.check_codes(query_codes, "query_codes")
    _codes.check_codes(db_codes, "db_codes")
    if query_codes.shape[1] != db_codes.shape[1]:
        raise ValueError(f"db_codes has {db_codes.shape[1]} bits but query_codes has "
                         f"{query_codes.shape[1]}")
    query_labels = _check_labels(query_labels, "query_labels", query_codes.shape[0],
                                 "query_codes")
    db_labels = _check_labels(db_labels, "db_labels", db_codes.shape[0], "db_codes")
    if query_labels.ndim != db_labels.ndim:
        raise ValueError(f"query_labels is {query_labels.ndim}-D but db_labels is "
                         f"{db_labels.ndim}-D (both class ids or both multi-hot)")
    if query_labels.ndim == 2 and query_labels.shape[1] != db_labels.shape[1]:
        raise ValueError(f"db_labels has {db_labels.shape[1]} classes but query_labels has "
                         f"{query_labels.shape[1]}")
    return int(query_codes.shape[1]), int(query_codes.shape[0]), int(db_codes.shape[0])


def _chunk_size(n_q, n_db, bytes_per_item, cap=64):
    c = MEMORY_BUDGET_BYTES // max(1, n_db * bytes_per_item)
    return int(max(1, min(cap, c, max(n_q, 1))))


def _chunks(n, size):
    for s in range(0, n, size):
        yield s, min(n, s + size)


def _dist_dtype(q):
    return jnp.uint8 if q < 256 else jnp.uint16


def _gains(ql, dl):
    """Per-pair gain: 1/0 for class ids, number of shared labels for multi-hot."""
    if ql.ndim == 1:
        return (ql[:, None] == dl[None, :]).astype(jnp.int32)
    g = jnp.matmul(ql, dl.T, precision=jax.lax.Precision.HIGHEST)
    return jnp.round(g).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("q",))
def _dist_gain_kernel(qp, dp, ql, dl, q):
    return _codes._hamming_block(qp, dp).astype(_dist_dtype(q)), _gains(ql, dl)


@functools.partial(jax.jit, static_argnames=("q",))
def distance_histograms_jax(dist, gain, q):
    """Per-query histograms over distance 0..q (jit-compatible): items, relevant items, summed gain.

    ``dist``: integer distances ``(n, n_db)``; ``gain``: integer gains ``(n, n_db)``
    (relevant = gain > 0).  Scatter-adds, not one-hot reductions.
    """
    dist = dist.astype(jnp.int32)
    rows = jnp.arange(dist.shape[0])[:, None]
    zeros = jnp.zeros((dist.shape[0], q + 1), jnp.int32)
    return (zeros.at[rows, dist].add(1), zeros.at[rows, dist].add((gain > 0).astype(jnp.int32)),
            zeros.at[rows, dist].add(gain))


@functools.partial(jax.jit, static_argnames=("q", "k"))
def ranked_relevance(dist, rel, q, k):
    """JAX ranking step: relevance of the top ``k`` items in ranking order (jit-compatible).

    ``dist``: integer Hamming distances ``(n, n_db)`` in 0..q; ``rel``: boolean
    ``(n, n_db)``.  Ranking = distance ascending, ties by index.  A counting sort: the
    rank of item j at distance h is ``#{i: d_i < h} + #{i <= j: d_i = h}``; the second
    term is a one-hot prefix sum, so the cost is ``(q + 1) * n * n_db`` -- cheap on a GPU or
    TPU, slow on a CPU (where the default ``backend="numba"`` pass is used instead).
    """
    n, n_db = dist.shape
    dist = dist.astype(jnp.int32)
    onehot = (dist[:, :, None] == jnp.arange(q + 1)).astype(jnp.int32)
    hist = jnp.sum(onehot, axis=1)
    before = jnp.cumsum(hist, axis=1) - hist                      # #items at distance < h
    within = jnp.sum(jnp.cumsum(onehot, axis=1) * onehot, axis=2)  # #{i <= j, d_i = d_j}
    rank0 = jnp.take_along_axis(before, dist, axis=1) + within - 1
    rows = jnp.broadcast_to(jnp.arange(n)[:, None], (n, n_db))
    out = jnp.zeros((n, n_db), bool).at[rows, rank0].set(rel, unique_indices=True)
    return out[:, :k]


def _check_k(k, n_db):
    if k is None:
        return n_db
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer or None, got {k!r}")
    if k > n_db:
        warnings.warn(f"k={k} is larger than the database ({n_db} items); the top {n_db} are used", stacklevel=3)
    return int(min(k, n_db))


def _ap_from_ranked(rs):
    """AP of each row of ranked relevance ``rs`` (n, k) (the ``backend="jax"`` path).

    AP = mean over the relevant items in the list of (#relevant up to it) / (its rank);
    0 when the list holds no relevant item.  Works on the positions of the relevant items
    only (``flatnonzero``), with exact integer ordinals and float64 sums.
    """
    rs = np.ascontiguousarray(rs)
    n, k = rs.shape
    hits = np.count_nonzero(rs, axis=1)
    if k == 0 or not hits.any():
        return np.zeros(n)
    flat = np.flatnonzero(rs)
    starts = np.cumsum(hits) - hits
    rows = np.repeat(np.arange(n), hits)
    rank = flat - rows * k + 1                                # 1-based rank in the list
    ordinal = np.arange(1, flat.size + 1) - starts[rows]     # #relevant up to this one
    terms = ordinal / rank
    sums = np.zeros(n)
    nz = hits > 0
    sums[nz] = np.add.reduceat(terms, starts[nz])
    return np.where(nz, sums / np.maximum(hits, 1), 0.0)


def _passes(query_codes, db_codes, query_labels, db_labels, *, k, fill=0, backend=None,
            chunk_size=None):
    """The one ranking pass every metric reads, over chunks of queries.

    Yields ``(start, stop, out)`` with ``out`` a dict of numpy arrays for queries
    ``start:stop``: ``ap`` (AP@k), ``n_all``, ``n_rel``, ``gain`` (per-distance histograms,
    ``(chunk, q + 1)`` int64) and ``ranked`` (relevance of the first ``fill`` ranked items).

    ``backend="numba"`` (default): the compiled CPU pass of :mod:`jhash._ranking` (no sort,
    no distance matrix).  ``backend="jax"``: jitted XLA kernels (distances, the counting
    sort :func:`ranked_relevance`, :func:`distance_histograms_jax`), for GPU / TPU.
    """
    backend = backend or "numba"
    if backend not in ("numba", "jax"):
        raise ValueError(f"backend must be 'numba' or 'jax', got {backend!r}")
    q, n_q, n_db = _validate(query_codes, db_codes, query_labels, db_labels)
    if q >= 2**16:
        raise ValueError(f"codes of {q} bits are longer than the 65535 bits the metrics support")
    if backend == "jax":
        yield from _passes_jax(query_codes, db_codes, query_labels, db_labels, q, k, fill, chunk_size)
        return
    from jhash import _ranking

    qw = _ranking.pack_words(np.asarray(query_codes) > 0)
    dw_t = np.ascontiguousarray(_ranking.pack_words(np.asarray(db_codes) > 0).T)
    if np.ndim(query_labels) == 1:
        q_ids, db_ids = _ranking.class_ids(query_labels, db_labels)
        q_lw = np.zeros((n_q, 0), np.uint64)
        db_lw_t = np.zeros((0, n_db), np.uint64)
    else:
        q_ids, db_ids = np.zeros(n_q, np.int64), np.zeros(n_db, np.int64)
        q_lw = _ranking.pack_words(np.asarray(query_labels) > 0)
        db_lw_t = np.ascontiguousarray(_ranking.pack_words(np.asarray(db_labels) > 0).T)
    # Only the outputs grow with the chunk (the pass keeps O(n_db) scratch per thread).
    size = chunk_size or _chunk_size(n_q, max(fill, 1), 1, cap=max(n_q, 1))
    for s, e in _chunks(n_q, size):
        out = {"ap": np.zeros(e - s), "ranked": np.zeros((e - s, fill), np.bool_),
               **{name: np.zeros((e - s, q + 1), np.int64) for name in ("n_all", "n_rel", "gain")}}
        _ranking.ranking_pass(qw[s:e], dw_t, q_ids[s:e] if q_ids.size else q_ids, db_ids, q_lw[s:e],
                              db_lw_t, q, k, fill, out["ap"], out["n_all"], out["n_rel"], out["gain"],
                              out["ranked"], prepared=True)
        yield s, e, out


def _passes_jax(query_codes, db_codes, query_labels, db_labels, q, k, fill, chunk_size):
    qp = _codes.pack(query_codes, np.uint32)
    dp = _codes.pack(db_codes, np.uint32)
    if np.ndim(query_labels) == 1:
        ql, dl = jnp.asarray(query_labels, jnp.int32), jnp.asarray(db_labels, jnp.int32)
    else:
        ql, dl = jnp.asarray(query_labels, jnp.float32), jnp.asarray(db_labels, jnp.float32)
    n_q, n_db = qp.shape[0], dp.shape[0]
    size = chunk_size or _chunk_size(n_q, n_db, 12 * (q + 2), cap=64)
    width = max(k, fill)
    for s, e in _chunks(n_q, size):
        d, g = _dist_gain_kernel(qp[s:e], dp, ql[s:e], dl, q=q)
        ranked = np.asarray(ranked_relevance(d, g > 0, q=q, k=width)) if width else np.zeros((e - s, 0), bool)
        hists = [np.asarray(h).astype(np.int64) for h in distance_histograms_jax(d, g, q=q)]
        out = {"ap": _ap_from_ranked(ranked[:, :k]), "ranked": ranked[:, :fill],
               "n_all": hists[0], "n_rel": hists[1], "gain": hists[2]}
        yield s, e, out


def distance_histograms(query_codes, db_codes, query_labels, db_labels, *, backend=None,
                        chunk_size=None):
    """Per-query histograms over Hamming distance 0..q, as numpy int64 ``(n_q, q + 1)``.

    Returns ``(n_all, n_rel, gain)``: the number of database items, of relevant items, and
    the summed gain (1 per relevant item for class ids; number of shared labels for
    multi-hot labels) at each distance.
    """
    q = int(np.shape(query_codes)[1]) if np.ndim(query_codes) == 2 else 0
    outs = list(_passes(query_codes, db_codes, query_labels, db_labels, k=0, backend=backend,
                        chunk_size=chunk_size))
    if not outs:
        z = np.zeros((0, q + 1), np.int64)
        return z, z, z
    return tuple(np.concatenate([o[name] for _, _, o in outs]) for name in ("n_all", "n_rel", "gain"))


# -------------------------------------------------------------------------------- mAP
def mean_average_precision(query_codes, db_codes, query_labels, db_labels, k=None, *,
                           backend=None, chunk_size=None, per_query=False):
    """Mean average precision at ``k`` over Hamming ranking (Python float).

    Ranking: distance ascending, ties broken by database index.  ``k=None`` (or
    ``k >= n_db``) ranks the whole database.  AP@k of a query is
    ``sum_{j <= k, rel_j} P@j / #{relevant items within the top k}`` (the DeepHash
    convention: normalised by the relevant items *retrieved*, not all relevant items);
    a query with no relevant item in the top k contributes 0, and the mean runs over all
    queries.  ``backend``: ``"numba"`` (default, CPU) or ``"jax"`` (see :func:`_passes`).
    ``per_query=True`` returns the numpy array of per-query APs.
    """
    n_db = np.shape(db_codes)[0] if np.ndim(db_codes) == 2 else 0
    k = _check_k(k, n_db)
    aps = [out["ap"] for _, _, out in _passes(query_codes, db_codes, query_labels, db_labels,
                                              k=k, backend=backend, chunk_size=chunk_size)]
    aps = np.concatenate(aps) if aps else np.zeros(0)
    if per_query:
        return aps
    return float(aps.mean()) if aps.size else 0.0


def mean_average_precision_by_distance(distances, query_labels, db_labels, k=None, *, per_query=False,
                                       chunk_size=None):
    """Mean AP@k of a ranking by real-valued distances (asymmetric quantizer distances, ...), Python float.

    ``distances``: ``(n_q, n_db)`` array, lower = closer, or a function ``rows(start, stop)``
    returning the rows of queries ``start:stop`` (so the whole matrix is never held; it is
    called on chunks sized by the memory budget). Same conventions as
    :func:`mean_average_precision`: ranking by distance ascending with **ties broken by
    database index** (a stable sort), AP@k normalised by the relevant items retrieved in the
    top k, 0 for a query with none, the mean over all queries. ``per_query=True`` returns the
    per-query APs.
    """
    ql, dl = np.asarray(query_labels), np.asarray(db_labels)
    n_q = len(ql)
    _check_labels(dl, "db_labels", len(dl), "db_labels")
    _check_labels(ql, "query_labels", n_q, "query_labels")
    if ql.ndim != dl.ndim or (ql.ndim == 2 and ql.shape[1] != dl.shape[1]):
        raise ValueError(f"query_labels {ql.shape} and db_labels {dl.shape} must both be class ids or both "
                         "multi-hot with the same classes")
    n_db = len(dl)
    if callable(distances):
        rows = distances
    else:
        if np.ndim(distances) != 2 or np.shape(distances) != (n_q, n_db):
            raise ValueError(f"distances must have shape (n_q={n_q}, n_db={n_db}), got {np.shape(distances)}")
        rows = lambda s, e: distances[s:e]  # noqa: E731
    k = _check_k(k, n_db)
    size = chunk_size or _chunk_size(n_q, n_db, 24 + (dl.shape[1] if dl.ndim == 2 else 0))
    aps = []
    for s, e in _chunks(n_q, size):
        d = np.asarray(rows(s, e))
        if d.shape != (e - s, n_db):
            raise ValueError(f"distances rows {s}:{e} have shape {d.shape}, expected {(e - s, n_db)}")
        if not np.all(np.isfinite(d)):
            raise ValueError(f"distances rows {s}:{e} hold values that are not finite")
        order = np.argsort(d, axis=1, kind="stable")[:, :k]
        if ql.ndim == 1:
            rel = dl[order] == ql[s:e, None]
        else:
            rel = np.any((dl[order] > 0) & (ql[s:e, None, :] > 0), axis=2)
        aps.append(_ap_from_ranked(rel))
    aps = np.concatenate(aps) if aps else np.zeros(0)
    if per_query:
        return aps
    return float(aps.mean()) if aps.size else 0.0


def precision_at_k_curve(query_codes, db_codes, query_labels, db_labels, ks, *,
                         backend=None, chunk_size=None):
    """Mean precision@k for each k in ``ks`` (numpy float array, same order as ``ks``).

    P@k = #relevant in the top k / k (k larger than the database is clipped to n_db).
    """
    return precision_recall_curve_rank(query_codes, db_codes, query_labels, db_labels, ks,
                                       backend=backend, chunk_size=chunk_size)[0]


def precision_recall_curve_rank(query_codes, db_codes, query_labels, db_labels, ks=None, *,
                                backend=None, chunk_size=None):
    """Precision-recall points of the Hamming ranking at cut-offs ``ks``.

    Returns ``(precision, recall)`` numpy arrays, averaged over queries, at each cut-off
    (default: 100 cut-offs evenly spaced over 1..n_db).  recall@k = #relevant in the top
    k / #relevant in the database (0 for a query with no relevant item).
    """
    n_db = np.shape(db_codes)[0] if np.ndim(db_codes) == 2 else 0
    if ks is None:
        ks = np.unique(np.linspace(1, n_db, num=min(100, n_db)).round().astype(int))
    ks_arr = np.asarray([_check_k(int(k), n_db) for k in np.atleast_1d(ks)], dtype=np.int64)
    kmax = int(ks_arr.max()) if ks_arr.size else 1
    cuts = np.unique(ks_arr) if ks_arr.size else np.ones(1, np.int64)
    at = np.searchsorted(cuts, ks_arr)
    bounds = list(zip(np.concatenate([[0], cuts[:-1]]), cuts))
    prec = np.zeros(len(ks_arr))
    rec = np.zeros(len(ks_arr))
    n_q = 0
    for s, e, out in _passes(query_codes, db_codes, query_labels, db_labels, k=kmax, fill=kmax,
                             backend=backend, chunk_size=chunk_size):
        n_rel = out["n_rel"].sum(axis=1)
        # Relevant items before each cut-off: counts per segment between cut-offs (buffered
        # reductions; never an int64 copy of the (chunk, kmax) ranking), then their cumulative sum.
        seg = np.stack([out["ranked"][:, a:b].sum(axis=1, dtype=np.int64) for a, b in bounds], axis=1)
        hits = np.cumsum(seg, axis=1)[:, at]
        prec += (hits / ks_arr).sum(axis=0)
        rec += np.where(n_rel[:, None] > 0, hits / np.maximum(n_rel[:, None], 1), 0.0).sum(0)
        n_q += e - s
    return prec / max(n_q, 1), rec / max(n_q, 1)


# ---------------------------------------------------------------- radius metrics
def _radius_curves(n_all, n_rel):
    c_all = np.cumsum(n_all, axis=1)
    c_rel = np.cumsum(n_rel, axis=1)
    total = c_rel[:, -1:]
    prec = np.where(c_all > 0, c_rel / np.maximum(c_all, 1), 0.0)
    rec = np.where(total > 0, c_rel / np.maximum(total, 1), 0.0)
    return prec, rec


def precision_recall_curve_radius(query_codes, db_codes, query_labels, db_labels, *,
                                  chunk_size=None):
    """Mean precision and recall within Hamming radius r, for r = 0..q.

    Returns ``(precision, recall)`` numpy arrays of length q + 1 (see
    :func:`precision_recall_at_radius` for the conventions).
    """
    n_all, n_rel, _ = distance_histograms(query_codes, db_codes, query_labels, db_labels,
                                          chunk_size=chunk_size)
    prec, rec = _radius_curves(n_all, n_rel)
    n = max(prec.shape[0], 1)
    return prec.sum(0) / n, rec.sum(0) / n


def precision_recall_at_radius(query_codes, db_codes, query_labels, db_labels, radius=2, *,
                               chunk_size=None):
    """Mean (precision, recall) of the Hamming ball of ``radius`` around each query.

    Precision = relevant / retrieved items with distance <= radius; an empty ball has
    precision 0 (the DCH convention).  Recall = relevant items in the ball / relevant
    items in the database; a query with no relevant item has recall 0.  Both are means
    over all queries (Python floats).  ``radius >= q`` retrieves everything.
    """
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 0:
        raise ValueError(f"radius must be a non-negative integer, got {radius!r}")
    prec, rec = precision_recall_curve_radius(query_codes, db_codes, query_labels, db_labels,
                                              chunk_size=chunk_size)
    r = min(int(radius), prec.shape[0] - 1)
    return float(prec[r]), float(rec[r])


def whole_ranking_metrics(query_codes, db_codes, query_labels, db_labels, *, radius=2, chunk_size=None) -> dict:
    """mAP@ALL, tie-aware mAP@ALL and precision / recall within ``radius`` from one ranking pass.

    Equal to :func:`mean_average_precision` (``k=None``), :func:`tie_aware_average_precision`
    and :func:`precision_recall_at_radius`, which each make their own pass; this reads the AP
    and the per-distance histograms of the same pass (the evaluator's path). Returns a dict
    with ``map@all``, ``tie_aware_map@all``, ``precision@r<radius>`` and ``recall@r<radius>``.
    """
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 0:
        raise ValueError(f"radius must be a non-negative integer, got {radius!r}")
    n_db = np.shape(db_codes)[0] if np.ndim(db_codes) == 2 else 0
    parts = {"ap": [], "ta": [], "p": [], "r": []}
    for _, _, out in _passes(query_codes, db_codes, query_labels, db_labels, k=_check_k(None, n_db),
                             chunk_size=chunk_size):
        prec, rec = _radius_curves(out["n_all"], out["n_rel"])
        at = min(int(radius), prec.shape[1] - 1)
        parts["ap"].append(out["ap"])
        parts["ta"].append(_tie_aware_ap_from_hist(out["n_all"], out["n_rel"]))
        parts["p"].append(prec[:, at])
        parts["r"].append(rec[:, at])
    mean = {k: float(np.concatenate(v).mean()) if v and sum(map(len, v)) else 0.0 for k, v in parts.items()}
    return {"map@all": mean["ap"], "tie_aware_map@all": mean["ta"],
            f"precision@r{radius}": mean["p"], f"recall@r{radius}": mean["r"]}


# ------------------------------------------------------------------- tie-aware
def _harmonic(n):
    """H[t] = sum_{s=1}^t 1/s for t = 0..n (float64)."""
    return np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, n + 1, dtype=np.float64))])


def _tie_aware_ap_from_hist(n_all, n_rel):
    """He et al. (2018) tie-aware AP from per-distance histograms (exact expectation).

    In bin d with n_d items (r_d relevant) after N items at smaller distances (R relevant),
    position t = N + i (i = 1..n_d) is relevant with probability r_d / n_d and then has
    R + 1 + (i - 1)(r_d - 1)/(n_d - 1) relevant items at or before it in expectation.
    """
    n_all = n_all.astype(np.float64)
    n_rel = n_rel.astype(np.float64)
    N = np.cumsum(n_all, axis=1) - n_all
    R = np.cumsum(n_rel, axis=1) - n_rel
    H = _harmonic(int(n_all.sum(axis=1).max()) if n_all.size else 0)
    Ni = N.astype(np.int64)
    hsum = H[Ni + n_all.astype(np.int64)] - H[Ni]              # sum_{i} 1 / (N + i)
    isum = n_all - (N + 1) * hsum                                # sum_{i} (i - 1) / (N + i)
    slope = np.where(n_all > 1, (n_rel - 1) / np.maximum(n_all - 1, 1), 0.0)
    frac = np.where(n_all > 0, n_rel / np.maximum(n_all, 1), 0.0)
    per_bin = frac * ((R + 1) * hsum + slope * isum)
    total = n_rel.sum(axis=1)
    return np.where(total > 0, per_bin.sum(axis=1) / np.maximum(total, 1), 0.0)


def tie_aware_average_precision(query_codes, db_codes, query_labels, db_labels, k=None, *,
                                chunk_size=None, per_query=False):
    """Tie-aware mAP (He, Cakir, Bargal, Sclaroff, "Hashing as Tie-Aware Learning to Rank",
    CVPR 2018): the AP averaged over all orderings of the items tied at each distance,
    computed exactly in closed form from per-distance histograms.

    Only ``k=None`` (the whole database) is supported.  A query with no relevant item
    contributes 0; the mean runs over all queries.
    """
    if k is not None and k < db_codes.shape[0]:
        raise ValueError("tie_aware_average_precision supports only k=None (or k >= n_db)")
    n_all, n_rel, _ = distance_histograms(query_codes, db_codes, query_labels, db_labels,
                                          chunk_size=chunk_size)
    aps = _tie_aware_ap_from_hist(n_all, n_rel)
    if per_query:
        return aps
    return float(aps.mean()) if aps.size else 0.0


def _discount_table(n):
    """C[t] = sum_{s=1}^t 1 / log2(1 + s) for t = 0..n (float64)."""
    return np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, n + 2,
                                                                     dtype=np.float64)))])


def tie_aware_ndcg(query_codes, db_codes, query_labels, db_labels, k=None, *,
                   chunk_size=None, per_query=False):
    """Tie-aware NDCG@k (He et al., CVPR 2018): expected NDCG over all orderings of ties.

    Gain of a database item: 1 if relevant, 0 otherwise, for class ids; the number of
    shared labels for multi-hot labels.  Discount of rank t (1-based): 1 / log2(1 + t).
    DCG@k sums over ranks <= k (``k=None``: all).  With ties the expected DCG is
    ``sum_d (G_d / n_d) * sum_{t in bin d, t <= k} 1/log2(1 + t)`` (G_d: summed gain of the
    n_d items at distance d); it is divided by the ideal DCG@k (gains sorted descending).
    A query with no relevant item contributes 0; the mean runs over all queries.
    """
    _, _, n_db = _validate(query_codes, db_codes, query_labels, db_labels)
    k = _check_k(k, n_db)
    n_all, n_rel, gain = distance_histograms(query_codes, db_codes, query_labels, db_labels,
                                             chunk_size=chunk_size)
    C = _discount_table(n_db)
    start = np.cumsum(n_all, axis=1) - n_all
    lo = np.minimum(start, k)
    hi = np.minimum(start + n_all, k)
    dsum = C[hi] - C[lo]
    dcg = np.where(n_all > 0, gain / np.maximum(n_all, 1), 0.0) * dsum
    dcg = dcg.sum(axis=1)
    # Ideal DCG: per-query counts of each gain level, placed in descending order.
    if np.ndim(query_labels) == 1:
        gmax, levels = 1, np.stack([n_all.sum(axis=1) - n_rel.sum(axis=1), n_rel.sum(axis=1)], axis=1)
    else:
        ql = jnp.asarray(query_labels, jnp.float32)
        gmax = int(np.asarray(ql).sum(axis=1).max(initial=1))
        levels = _gain_level_counts(ql, jnp.asarray(db_labels, jnp.float32), gmax, chunk_size)
    ideal = np.zeros(n_all.shape[0])
    pos = np.zeros(n_all.shape[0], np.int64)
    for g in range(gmax, 0, -1):
        cnt = levels[:, g]
        ideal += g * (C[np.minimum(pos + cnt, k)] - C[np.minimum(pos, k)])
        pos += cnt
    nd = np.where(ideal > 0, dcg / np.where(ideal > 0, ideal, 1.0), 0.0)
    if per_query:
        return nd
    return float(nd.mean()) if nd.size else 0.0


@functools.partial(jax.jit, static_argnames=("gmax",))
def _gain_level_kernel(ql, dl, gmax):
    g = _gains(ql, dl)
    onehot = g[:, :, None] == jnp.arange(gmax + 1)
    return jnp.sum(onehot, axis=1, dtype=jnp.int32)


def _gain_level_counts(ql, dl, gmax, chunk_size):
    n_q, n_db = ql.shape[0], dl.shape[0]
    size = chunk_size or _chunk_size(n_q, n_db, 4 * (gmax + 2), cap=64)
    outs = [np.asarray(_gain_level_kernel(ql[s:e], dl, gmax=gmax))
            for s, e in _chunks(n_q, size)]
    return np.concatenate(outs).astype(np.int64) if outs else np.zeros((0, gmax + 1), np.int64)
