"""The one evaluator: encode the query and database sets, score the Hamming ranking, write the results.

``evaluate_run`` (a deep method's network and train state) and ``write_results`` (any +-1 codes: the
shallow and online runs of :mod:`jhash.run` score theirs here) write into the work dir:

  metrics.json  {"map@all": ..., "map@<k>": ..., "tie_aware_map@all": ..., "precision@r2": ..., "recall@r2": ...,
                 "lookup_precision@r2": ..., "lookup_recall@r2": ..., "lookup_retrieved@r2": ...,
                 "lookup_empty@r2": ..., "bit_balance": ..., "distinct_db_codes": ..., ...}
                map@<k>: from the exact top-k search of a jhash.index.HammingIndex of the database;
                map@all, tie_aware_map@all, precision@r, recall@r: from one counting pass over the
                whole ranking (jhash.metrics.whole_ranking_metrics); both bounded in memory
                lookup_*: Hamming-ball retrieval as DCH (Cao et al., CVPR 2018) defines it, by hash
                lookup in a jhash.index.HammingIndex of the database (radius config.eval.radius):
                precision (an empty ball counts 0) and recall of the returned items, the mean number
                returned and the fraction of queries with an empty ball; precision and recall equal
                precision@r / recall@r of the ranking metrics (two independent computations)
  timing.json   "lookup_s": seconds of the index's radius lookup for all queries ("lookup_build_s": building
                its tables); kept out of metrics.json, which is reproducible
  codes.npz     query_codes, database_codes   packed codes, uint8 (n, ceil(bits/8)); jhash.codes.pack's bit
                                              order (bit i -> byte i // 8, most significant bit first), so
                                              jhash.codes.unpack(codes, bits) gives the +-1 codes back
                query_labels, database_labels the labels (class ids (n,) or multi-hot (n, c))
                query_index, database_index   positions of the items in the dataset
                bits                          the code length
  curves.npz    radius, precision_at_radius, recall_at_radius   precision / recall within Hamming radius r = 0..bits
                k, precision_at_k                               precision of the top k of the ranking
                pr_k, pr_precision, pr_recall                   the precision-recall curve of the ranking (100 cut-offs)

Quantization methods (``method.quantizer``, :mod:`jhash.quantization`) rank the database by
asymmetric quantizer distance (AQD) from the queries' real vectors to the database items'
codewords, ties by database index (:func:`quantized_retrieval_metrics`); their metrics.json
holds ``map@all``, ``map@<k>``, ``codebook_usage`` (fraction of the M x K codewords that some
database item uses) and ``distinct_db_codes``; their codes.npz holds ``query_features``,
``database_codes`` (codeword indices, (n, M) uint16), ``codebooks``, the labels and indices,
``bits`` (= M log2 K), ``kind`` and ``metric``; no curves.npz and no Hamming-radius metrics.
"""
from __future__ import annotations

import functools
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from jhash import codes as jcodes
from jhash import index as jindex
from jhash import io as jio
from jhash import metrics as jmetrics
from jhash import quantization as jquant
from jhash import data as jdata
from jhash import distributed
from jhash.models import apply_model, compute_dtype, hash_network
from jhash.train.state import data_sharded, make_mesh, replicated


def _map_batches(fn, state, x, index, batch_size: int, mesh, width: int, dtype, workers: int = -1) -> np.ndarray:
    """``fn(params, model_state, xb)`` over ``x[index]`` in fixed-size batches sharded over ``mesh``, on the host.

    The batches come from the input pipeline (:func:`jhash.data.stream`: read, decoded and made
    model-ready in worker processes for images read from files, prefetched), so a database is
    never held whole as float32; in a multi-process run each process reads its devices' rows of
    each batch and every process gets all the outputs. ``workers``: as ``config.data.workers`` (-1 = auto)."""
    mesh = mesh or make_mesh(1)
    batch_size = max(mesh.size, batch_size - batch_size % mesh.size)
    sharding = data_sharded(mesh)
    jitted = jax.jit(fn, in_shardings=(replicated(mesh), replicated(mesh), sharding), out_shardings=replicated(mesh))
    index = np.arange(len(x)) if index is None else np.asarray(index)
    reader = jdata.BatchReader(x, None, index, functools.partial(_chunk, batch_size, len(index)), pad_to=batch_size,
                               rows=distributed.local_rows(sharding, batch_size))  # this process's share
    out = []
    for batch in jdata.stream(reader, 0, -(-len(index) // batch_size), workers=jdata.num_workers(x, workers)):
        xb = distributed.global_batch({"x": batch["x"]}, sharding, batch_size)["x"]
        out.append(np.asarray(jitted(state.params, state.model_state, xb))[: int(batch["valid"])])
    return np.concatenate(out) if out else np.zeros((0, width), dtype)


def _chunk(batch_size: int, n: int, b: int) -> np.ndarray:
    return np.arange(b * batch_size, min(n, (b + 1) * batch_size))


def encode(method, state, x, *, index=None, batch_size: int = 1024, mesh=None, workers: int = -1,
           dtype=None) -> np.ndarray:
    """+-1 int8 codes of ``x[index]`` (all of ``x`` without ``index``): the method's model (in
    evaluation mode) then its ``encode``, in fixed-size batches over ``mesh``. Items are made
    model-ready (``jhash.data.to_float``) a batch at a time, so a large uint8 database is never
    held as float32. ``dtype``: the network's compute dtype (:func:`jhash.models.apply_model`)."""

    def codes_of(params, model_state, xb):
        u, _ = apply_model(method.model, params, model_state, xb, train=False, dtype=dtype)
        return method.encode(u).astype(jnp.int8)

    return _map_batches(codes_of, state, x, index, batch_size, mesh, hash_network(method.model).outputs, np.int8,
                        workers)


def extract_features(method, state, x, *, index=None, batch_size: int = 1024, mesh=None) -> np.ndarray:
    """The backbone's features before the hash head (what :class:`jhash.models.HashNetwork` sows as
    ``'features'``), float32 (n, d), batched like :func:`encode`."""

    def features_of(params, model_state, xb):
        _, sown = method.model.apply({"params": params, **model_state}, xb, train=False, mutable=["intermediates"])
        leaves = [v for path, v in jax.tree_util.tree_flatten_with_path(sown["intermediates"])[0]
                  if "features" in jax.tree_util.keystr(path)]
        return leaves[0]

    return _map_batches(features_of, state, x, index, batch_size, mesh, 0, np.float32)


def quantized_encode(method, state, x, codebooks, *, what: str, index=None, batch_size: int = 1024,
                     mesh=None, workers: int = -1, dtype=None) -> np.ndarray:
    """``what="features"``: the real query vectors (float32 (n, D)); ``what="codes"``: the codeword
    indices (int32 (n, M)) of ``x[index]``, from the method's model in evaluation mode and its
    ``quantizer.encode`` with ``codebooks``, batched like :func:`encode`."""
    if what not in ("features", "codes"):
        raise ValueError(f"what must be 'features' or 'codes', got {what!r}")
    cb = jnp.asarray(codebooks)
    pick = 0 if what == "features" else 1

    def fn(params, model_state, xb):
        out, _ = apply_model(method.model, params, model_state, xb, train=False, dtype=dtype)
        value = method.quantizer.encode(out, cb)[pick]
        return value if pick == 0 else value.astype(jnp.int32)

    return _map_batches(fn, state, x, index, batch_size, mesh, cb.shape[0] if pick else 0,
                        np.int32 if pick else np.float32, workers)


def quantized_retrieval_metrics(query_features, db_codes, codebooks, query_labels, db_labels, *, kind: str,
                                metric: str, map_k: int | None) -> dict:
    """mAP of the ranking by asymmetric quantizer distance (:func:`jhash.quantization.asymmetric_distances`,
    ties by database index) and the use of the codebooks, by name (see the module docstring)."""
    cb = jnp.asarray(codebooks)
    dbc = jnp.asarray(np.asarray(db_codes), jnp.int32)
    qf = np.asarray(query_features, np.float32)

    def rows(s, e):
        return np.asarray(jquant.asymmetric_distances(jnp.asarray(qf[s:e]), dbc, cb, kind=kind, metric=metric))

    out = {"map@all": jmetrics.mean_average_precision_by_distance(rows, query_labels, db_labels)}
    if map_k:
        out[f"map@{map_k}"] = jmetrics.mean_average_precision_by_distance(rows, query_labels, db_labels, k=map_k)
    codes = np.asarray(db_codes)
    used = sum(len(np.unique(codes[:, m])) for m in range(codes.shape[1]))
    out["codebook_usage"] = float(used / (cb.shape[0] * cb.shape[1]))
    out["distinct_db_codes"] = int(len(np.unique(codes, axis=0))) if len(codes) else 0
    return out


def _evaluate_quantized(method, state, config, data, mesh, workdir, map_k) -> dict:
    qz = method.quantizer
    enc = dict(mesh=mesh, workers=config.data.workers, dtype=compute_dtype(config.get("dtype", "float32")))
    codebooks = np.asarray(distributed.host_value(qz.codebooks(state.params, state.method_state)), np.float32)
    bs = config.eval.batch_size
    x = data.dataset.x
    qf = quantized_encode(method, state, x, codebooks, what="features", index=data.split.query, batch_size=bs,
                          **enc)
    dc = quantized_encode(method, state, x, codebooks, what="codes", index=data.split.database, batch_size=bs,
                          **enc)
    _substitute_learned(method, state, data, dc)
    yq, yd = data.labels("query"), data.labels("database")
    results = quantized_retrieval_metrics(qf, dc, codebooks, yq, yd, kind=qz.kind, metric=qz.metric, map_k=map_k)
    if len(data.validation_index):  # model selection, as for binary codes
        y = np.asarray(data.dataset.y)
        vq = quantized_encode(method, state, x, codebooks, what="features", index=data.validation_index,
                              batch_size=bs, **enc)
        vd = quantized_encode(method, state, x, codebooks, what="codes", index=data.train_index, batch_size=bs,
                              **enc)
        val = quantized_retrieval_metrics(vq, vd, codebooks, y[data.validation_index], y[data.train_index],
                                          kind=qz.kind, metric=qz.metric, map_k=None)
        results["val_map@all"] = val["map@all"]
    results = {k: (float(v) if isinstance(v, (float, np.floating)) else int(v)) for k, v in results.items()}
    if not distributed.is_primary():  # every process computes the results; process 0 writes them
        return results
    jio.savez(workdir / "codes.npz", query_features=qf, database_codes=dc.astype(np.uint16), codebooks=codebooks,
             query_labels=yq, database_labels=yd, query_index=data.split.query, database_index=data.split.database,
             bits=np.int64(config.bits), kind=np.str_(qz.kind), metric=np.str_(qz.metric))
    jio.write_json(workdir / "metrics.json", results, sort_keys=True)  # last: metrics.json marks the results complete
    return results


def _substitute_learned(method, state, data, db_codes):
    """Replaces, in place, the database rows that are training items by the method's learned codes (ADSH's V)."""
    if method.database_codes is None:
        return
    learned = np.asarray(distributed.host_value(method.database_codes(state.method_state))).astype(db_codes.dtype)
    order = np.argsort(data.train_index, kind="stable")  # a split from lists or a file need not be sorted
    train_sorted = data.train_index[order]
    position = np.searchsorted(train_sorted, data.split.database)
    found = position < len(train_sorted)
    found[found] = train_sorted[position[found]] == data.split.database[found]
    db_codes[found] = learned[order[position[found]]]


def retrieval_metrics(query_codes, db_codes, query_labels, db_labels, *, map_k: int | None, radius: int = 2,
                      timing: dict | None = None) -> dict:
    """The standard retrieval metrics of a Hamming ranking, by name (see the module docstring).

    The database goes into one :class:`jhash.index.HammingIndex`: ``map@<map_k>`` is computed
    from its exact top-k search (:func:`index_map_at_k`) and the ``lookup_*`` metrics from its
    radius lookup. The metrics over the whole ranking (``map@all``, ``tie_aware_map@all``,
    ``precision@r`` / ``recall@r``, all from one pass: :func:`jhash.metrics.whole_ranking_metrics`) need, per query, only the number of (relevant) items at each
    distance and where the relevant items fall in the (distance, index) order, which
    :mod:`jhash.metrics`' counting pass gives in one scan of the packed database with O(n_db)
    scratch per thread and no distance matrix or sort; a top-k search with k = n_db would
    hold every query's whole ranking instead. Both agree with brute force on the tie rule.
    ``timing``: a dict that receives the index's lookup times (:func:`hash_lookup_metrics`).
    """
    index = jindex.HammingIndex(int(np.shape(query_codes)[1]), db_codes)
    out = jmetrics.whole_ranking_metrics(query_codes, db_codes, query_labels, db_labels, radius=radius)
    if map_k:
        out[f"map@{map_k}"] = index_map_at_k(index, query_codes, query_labels, db_labels, map_k)
    lookup, lookup_timing = hash_lookup_metrics(query_codes, db_codes, query_labels, db_labels, radius=radius,
                                                index=index)
    out.update(lookup)
    if timing is not None:
        timing.update(lookup_timing)
    # Per-bit mean a chunk at a time (a 10^7-code database is never held as float32).
    chunk = 1 << 16
    sums = sum(np.asarray(jnp.sum(jnp.asarray(db_codes[s:s + chunk], jnp.int32), axis=0), np.int64)
               for s in range(0, len(db_codes), chunk))
    out["bit_balance"] = float(np.mean(np.abs(sums / max(len(db_codes), 1))))
    out["distinct_db_codes"] = int(jcodes.num_distinct(db_codes))
    return out


def index_map_at_k(index, query_codes, query_labels, db_labels, k: int) -> float:
    """mAP@k (the convention of :func:`jhash.metrics.mean_average_precision`) from ``index``'s
    exact top-k search: the first k items by (Hamming distance, id), with the default ids
    0..n_db-1 the database order, so ties fall exactly as in the metrics. ``db_labels[i]`` is
    the label of id ``i``. Queries go a group at a time so the returned ids, their relevance
    and the search's buffers stay within :data:`jhash.metrics.MEMORY_BUDGET_BYTES`."""
    k = jmetrics._check_k(k, len(index))
    ql, dl = np.asarray(query_labels), np.asarray(db_labels)
    if len(dl) != len(index):
        raise ValueError(f"db_labels must have one label per indexed item ({len(index)}), got {len(dl)}")
    qp = np.asarray(jcodes.pack(query_codes))
    per_query = k * (8 + 4 + 1 + (ql.shape[1] if ql.ndim == 2 else 0))
    group = max(1, jmetrics.MEMORY_BUDGET_BYTES // per_query)
    aps = []
    for s in range(0, len(qp), group):
        ids, _ = index.search(qp[s:s + group], k)
        if ql.ndim == 1:
            rel = dl[ids] == ql[s:s + group, None]
        else:
            rel = np.any((dl[ids] > 0) & (ql[s:s + group, None, :] > 0), axis=2)
        aps.append(jmetrics._ap_from_ranked(rel))
    return float(np.concatenate(aps).mean()) if aps else 0.0


def _relevant_totals(query_labels, db_labels, budget):
    """Number of relevant database items of each query (shares a label), in bounded memory."""
    ql, dl = np.asarray(query_labels), np.asarray(db_labels)
    if ql.ndim == 1:
        classes, counts = np.unique(dl, return_counts=True)
        if not len(classes):
            return np.zeros(len(ql), np.int64)
        at = np.clip(np.searchsorted(classes, ql), 0, len(classes) - 1)
        return np.where(classes[at] == ql, counts[at], 0)
    qf = (ql > 0).astype(np.float32)
    rows = max(1, budget // max(1, 4 * len(qf) + 4 * ql.shape[1]))
    total = np.zeros(len(ql), np.int64)
    for s in range(0, len(dl), rows):
        total += ((qf @ (dl[s:s + rows] > 0).astype(np.float32).T) > 0).sum(axis=1)
    return total


def hash_lookup_metrics(query_codes, db_codes, query_labels, db_labels, *, radius: int = 2, index=None):
    """Hamming-ball retrieval as DCH defines it (Cao et al., "Deep Cauchy Hashing", CVPR 2018):
    every database item within ``radius`` of the query, found by hash lookup in a
    :class:`jhash.index.HammingIndex` (the method it picks: ball enumeration or multi-index
    hashing), and the precision (0 for an empty ball) and recall of what it returns.

    Returns ``(metrics, timing)``: ``metrics`` holds ``lookup_precision@r``,
    ``lookup_recall@r``, ``lookup_retrieved@r`` (mean items returned) and ``lookup_empty@r``
    (fraction of queries with an empty ball), means over all queries; ``timing`` holds
    ``lookup_build_s`` (building the tables) and ``lookup_s`` (the lookups).  Queries are
    looked up in groups of at most about 2**24 returned items, so memory stays bounded.
    ``index``: the database's :class:`jhash.index.HammingIndex` when already built (its ids
    the database positions), else it is built from ``db_codes``.
    """
    budget = jmetrics.MEMORY_BUDGET_BYTES
    bits = int(np.shape(query_codes)[1])
    index = jindex.HammingIndex(bits, db_codes) if index is None else index
    qp = np.asarray(jcodes.pack(query_codes))
    started = time.perf_counter()
    counts = index.range_count(qp, radius)  # builds the tables; sizes the groups below
    build_s = time.perf_counter() - started
    ql, dl = np.asarray(query_labels), np.asarray(db_labels)
    per_item = 16 + (3 * ql.shape[1] if ql.ndim == 2 else 0)
    cap = max(1, budget // per_item)
    rel_ret = np.zeros(len(qp), np.int64)
    lookup_s, s = 0.0, 0
    while s < len(qp):
        e = s + max(1, int(np.searchsorted(np.cumsum(counts[s:]), cap, side="right")))
        started = time.perf_counter()
        res = index.range_search(qp[s:e], radius)
        lookup_s += time.perf_counter() - started
        owner = np.repeat(np.arange(s, e), np.diff(res.lims))
        if ql.ndim == 1:
            hit = dl[res.ids] == ql[owner]
        else:
            hit = np.any((dl[res.ids] > 0) & (ql[owner] > 0), axis=1)
        rel_ret[s:e] = np.bincount(owner - s, weights=hit, minlength=e - s).astype(np.int64)
        s = e
    total = _relevant_totals(ql, dl, budget)
    prec = np.where(counts > 0, rel_ret / np.maximum(counts, 1), 0.0)
    rec = np.where(total > 0, rel_ret / np.maximum(total, 1), 0.0)
    n = max(len(qp), 1)
    metrics = {f"lookup_precision@r{radius}": float(prec.sum() / n), f"lookup_recall@r{radius}": float(rec.sum() / n),
               f"lookup_retrieved@r{radius}": float(counts.sum() / n),
               f"lookup_empty@r{radius}": float(np.sum(counts == 0) / n)}
    return metrics, {"lookup_build_s": build_s, "lookup_s": lookup_s}


def retrieval_curves(query_codes, db_codes, query_labels, db_labels) -> dict:
    """Curves of a Hamming ranking (numpy arrays, see the module docstring)."""
    n_db = len(db_codes)
    p_r, r_r = jmetrics.precision_recall_curve_radius(query_codes, db_codes, query_labels, db_labels)
    ks = np.unique(np.clip([1, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, n_db], 1, max(n_db, 1)))
    pr_ks = np.unique(np.linspace(1, n_db, num=min(100, n_db)).round().astype(np.int64))
    p_rank, r_rank = jmetrics.precision_recall_curve_rank(query_codes, db_codes, query_labels, db_labels, pr_ks)
    return {
        "radius": np.arange(len(p_r)), "precision_at_radius": p_r, "recall_at_radius": r_r,
        "k": ks, "precision_at_k": jmetrics.precision_at_k_curve(query_codes, db_codes, query_labels, db_labels, ks),
        "pr_k": pr_ks, "pr_precision": p_rank, "pr_recall": r_rank,
    }


def evaluate_run(config, workdir, *, method, state, data, mesh=None, timing: dict | None = None) -> dict:
    """Encodes the run's query and database sets with ``method`` and its train ``state``, computes the
    metrics, writes metrics.json, codes.npz and curves.npz (:func:`write_results`).

    ``data``: the run's :class:`jhash.experiment.ExperimentData` (the trainer passes what it loaded);
    ``jhash eval`` restores a run's method and state with :func:`jhash.run.restore_run` first
    (:func:`jhash.run.evaluate`). The index's lookup times go into ``timing`` when given (the
    trainer writes it to timing.json), otherwise they are merged into the work dir's timing.json.
    Holds the work dir's lock (:func:`jhash.io.workdir_lock`).
    """
    workdir = pathlib.Path(workdir)
    with distributed.primary_only(jio.workdir_lock(workdir, create=False)):
        mesh = mesh or make_mesh(config.num_devices)
        if method.quantizer is not None:
            return _evaluate_quantized(method, state, config, data, mesh, workdir, map_k_of(config))
        enc = dict(batch_size=config.eval.batch_size, mesh=mesh, workers=config.data.workers,
                   dtype=compute_dtype(config.get("dtype", "float32")))

        def codes_of(index, *, database: bool = False):
            codes = encode(method, state, data.dataset.x, index=index, **enc)
            if database:
                _substitute_learned(method, state, data, codes)  # learned codes of the training items (ADSH's V)
            return codes

        return score_run(config, workdir, data, codes_of, timing=timing)


def score_run(config, workdir, data, codes_of, *, timing: dict | None = None) -> dict:
    """The evaluation every kind of run shares: ``codes_of(index)`` (+-1 int8 codes of the dataset items
    ``index``; ``database=True`` for the database) gives the query and database codes of the split, and
    with ``config.validation`` those of the validation items against the rest of the training set;
    then :func:`write_results`. Used by :func:`evaluate_run` (deep methods' networks) and
    :mod:`jhash.shallow.runner` (a fitted :class:`jhash.shallow.Hasher`)."""
    qc = codes_of(data.split.query)
    dc = codes_of(data.split.database, database=True)
    validation = None
    if len(data.validation_index):  # model selection: held-out training items against the rest of the training set
        y = np.asarray(data.dataset.y)
        validation = (codes_of(data.validation_index), codes_of(data.train_index), y[data.validation_index],
                      y[data.train_index])
    return write_results(config, workdir, qc, dc, data.labels("query"), data.labels("database"),
                         query_index=data.split.query, database_index=data.split.database, validation=validation,
                         timing=timing)


def write_results(config, workdir, qc, dc, yq, yd, *, query_index, database_index, validation=None,
                  timing: dict | None = None) -> dict:
    """Scores query codes ``qc`` against database codes ``dc`` (+-1, with labels ``yq``, ``yd`` and their
    dataset positions) by :func:`retrieval_metrics` and writes metrics.json, codes.npz and curves.npz
    (see the module docstring); ``validation``: ``(query codes, database codes, query labels, database
    labels)`` of the validation items, scored into ``val_map@all`` and ``val_precision@r``. The index's
    lookup times go into ``timing`` when given, else are merged into the work dir's timing.json.
    Every kind of run (deep, shallow, online) writes its results here."""
    workdir = pathlib.Path(workdir)
    lookup_timing = {}
    results = retrieval_metrics(qc, dc, yq, yd, map_k=map_k_of(config), radius=config.eval.radius,
                                timing=lookup_timing)
    if timing is not None:
        timing.update(lookup_timing)
    elif distributed.is_primary():
        path = workdir / "timing.json"
        old = jio.read_json(path) if path.is_file() else {}
        jio.write_json(path, {**old, **lookup_timing})
    if validation is not None:
        vq, vd, yvq, yvd = validation
        val = retrieval_metrics(vq, vd, yvq, yvd, map_k=None, radius=config.eval.radius)
        results.update({f"val_{k}": val[k] for k in ("map@all", f"precision@r{config.eval.radius}")})
    results = {k: (float(v) if isinstance(v, (float, np.floating)) else int(v)) for k, v in results.items()}
    if not distributed.is_primary():  # every process computes the results; process 0 writes them
        return results
    jio.savez(workdir / "codes.npz", query_codes=jcodes.pack(qc), database_codes=jcodes.pack(dc),
             query_labels=yq, database_labels=yd, query_index=query_index, database_index=database_index,
             bits=np.int64(config.bits))
    jio.savez(workdir / "curves.npz", **retrieval_curves(qc, dc, yq, yd))
    jio.write_json(workdir / "metrics.json", results, sort_keys=True)  # last: metrics.json marks the results complete
    return results


def map_k_of(config):
    """The mAP@k cut-off of ``config.eval.map_k``: the protocol's for -1, None (no mAP@k) for 0."""
    if config.eval.map_k != -1:
        return config.eval.map_k or None
    return jdata.get_protocol(config.protocol or config.dataset).map_k
