"""jhash.metrics against independent brute-force NumPy references (plain per-query loops)."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jhash import metrics


# ------------------------------------------------------------------ references
def rand_codes(rng, n, q):
    return np.where(rng.random((n, q)) < 0.5, -1, 1).astype(np.int8)


def make_case(seed, n_q, n_db, q, n_cls=3, multi=False):
    rng = np.random.default_rng(seed)
    qc, dc = rand_codes(rng, n_q, q), rand_codes(rng, n_db, q)
    if multi:
        ql = (rng.random((n_q, n_cls)) < 0.35).astype(np.int32)
        dl = (rng.random((n_db, n_cls)) < 0.35).astype(np.int32)
    else:
        ql, dl = rng.integers(0, n_cls, n_q), rng.integers(0, n_cls, n_db)
    return qc, dc, ql, dl


def ref_dist(x, dc):
    return np.array([int(np.sum(x != y)) for y in dc])


def ref_gain(ql_i, dl):
    if np.ndim(dl) == 1:
        return (dl == ql_i).astype(float)
    return np.array([float(np.sum((ql_i > 0) & (row > 0))) for row in dl])


def ref_ap_at_k(d, rel, k):
    order = np.argsort(d, kind="stable")             # (distance, index)
    rs = rel[order][:k]
    if rs.sum() == 0:
        return 0.0
    prec = np.cumsum(rs) / np.arange(1, len(rs) + 1)
    return float(prec[rs > 0].mean())


def ref_map(qc, dc, ql, dl, k=None):
    k = len(dc) if k is None else k
    return float(np.mean([ref_ap_at_k(ref_dist(qc[i], dc), ref_gain(ql[i], dl) > 0, k)
                          for i in range(len(qc))]))


def tie_orderings(d):
    """All orderings of the items consistent with the distance order (ties permuted)."""
    for perm in itertools.permutations(range(len(d))):
        if all(d[perm[t]] <= d[perm[t + 1]] for t in range(len(d) - 1)):
            yield np.array(perm)


def ref_tie_ap(qc, dc, ql, dl):
    aps = []
    for i in range(len(qc)):
        d, rel = ref_dist(qc[i], dc), ref_gain(ql[i], dl) > 0
        if rel.sum() == 0:
            aps.append(0.0)
            continue
        vals = []
        for p in tie_orderings(d):
            rs = rel[p]
            vals.append(np.sum((np.cumsum(rs) / np.arange(1, len(rs) + 1))[rs]) / rel.sum())
        aps.append(np.mean(vals))
    return float(np.mean(aps))


def ref_tie_ndcg(qc, dc, ql, dl, k=None):
    out = []
    k = len(dc) if k is None else min(k, len(dc))
    disc = 1.0 / np.log2(1 + np.arange(1, len(dc) + 1))
    for i in range(len(qc)):
        d, g = ref_dist(qc[i], dc), ref_gain(ql[i], dl)
        ideal = np.sum(np.sort(g)[::-1][:k] * disc[:k])
        if ideal == 0:
            out.append(0.0)
            continue
        out.append(np.mean([np.sum(g[p][:k] * disc[:k]) for p in tie_orderings(d)]) / ideal)
    return float(np.mean(out))


def ref_radius(qc, dc, ql, dl, r):
    P, R = [], []
    for i in range(len(qc)):
        d, rel = ref_dist(qc[i], dc), ref_gain(ql[i], dl) > 0
        ball = d <= r
        P.append(rel[ball].sum() / ball.sum() if ball.sum() else 0.0)
        R.append(rel[ball].sum() / rel.sum() if rel.sum() else 0.0)
    return float(np.mean(P)), float(np.mean(R))


def ref_prk(qc, dc, ql, dl, k):
    P, R = [], []
    for i in range(len(qc)):
        d, rel = ref_dist(qc[i], dc), ref_gain(ql[i], dl) > 0
        top = rel[np.argsort(d, kind="stable")][:k]
        P.append(top.sum() / min(k, len(dc)))
        R.append(top.sum() / rel.sum() if rel.sum() else 0.0)
    return float(np.mean(P)), float(np.mean(R))


CASES = [  # (seed, n_q, n_db, q, n_cls, multi)
    (0, 7, 40, 2, 3, False),     # heavy ties
    (1, 6, 50, 3, 4, True),
    (2, 5, 33, 4, 2, False),
    (3, 5, 1, 8, 3, False),      # n_db = 1
    (4, 9, 60, 16, 5, True),
    (5, 4, 30, 33, 20, False),   # many queries without relevant items
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("backend", ["numba", "jax"])
def test_map_matches_bruteforce(case, backend):
    seed, n_q, n_db, q, n_cls, multi = case
    qc, dc, ql, dl = make_case(seed, n_q, n_db, q, n_cls, multi)
    for k in [None, 1, 3, n_db, n_db + 10]:
        got = metrics.mean_average_precision(qc, dc, ql, dl, k=k, backend=backend,
                                             chunk_size=3)
        assert isinstance(got, float)
        assert got == pytest.approx(ref_map(qc, dc, ql, dl, k), abs=1e-6), k


def test_map_no_relevant_and_inputs_not_mutated():
    qc, dc, ql, dl = make_case(7, 4, 20, 4)
    ql = np.array([9, 9, 0, 1])                     # two queries with no relevant item
    copies = [a.copy() for a in (qc, dc, ql, dl)]
    got = metrics.mean_average_precision(qc, dc, ql, dl)
    assert got == pytest.approx(ref_map(qc, dc, ql, dl), abs=1e-6)
    for a, b in zip((qc, dc, ql, dl), copies):
        np.testing.assert_array_equal(a, b)
    assert metrics.mean_average_precision(qc, dc, np.full(4, 9), dl) == 0.0


def test_map_last_item_counts():
    # The only relevant item is the last one in the ranking: AP = 1 / n_db (k = all).
    dc = np.array([[1, 1], [1, 1], [-1, -1]])
    got = metrics.mean_average_precision(np.array([[1, 1]]), dc, np.array([0]),
                                         np.array([1, 1, 0]))
    assert got == pytest.approx(1 / 3)


def test_map_jax_arrays_and_ranked_relevance_under_jit():
    qc, dc, ql, dl = make_case(8, 6, 25, 3, 3, False)
    got = metrics.mean_average_precision(jnp.asarray(qc), jnp.asarray(dc), jnp.asarray(ql),
                                         jnp.asarray(dl))
    assert got == pytest.approx(ref_map(qc, dc, ql, dl), abs=1e-6)
    d = np.array([[ref_dist(x, dc)] for x in qc])[:, 0]
    rel = ql[:, None] == dl[None, :]
    rs = jax.jit(metrics.ranked_relevance, static_argnames=("q", "k"))(
        jnp.asarray(d), jnp.asarray(rel), q=3, k=10)
    ref = np.stack([rel[i][np.argsort(d[i], kind="stable")][:10] for i in range(6)])
    np.testing.assert_array_equal(np.asarray(rs), ref)


@pytest.mark.parametrize("case", CASES[:4] + [(9, 5, 7, 3, 2, False), (10, 4, 7, 2, 3, True)])
def test_tie_aware_ap_and_ndcg_enumeration(case):
    seed, n_q, _, q, n_cls, multi = case
    qc, dc, ql, dl = make_case(seed, n_q, 7 if case[2] > 1 else 1, q, n_cls, multi)
    got = metrics.tie_aware_average_precision(qc, dc, ql, dl)
    assert got == pytest.approx(ref_tie_ap(qc, dc, ql, dl), abs=1e-6)
    for k in [None, 1, 3, 20]:
        got = metrics.tie_aware_ndcg(qc, dc, ql, dl, k=k)
        assert got == pytest.approx(ref_tie_ndcg(qc, dc, ql, dl, k), abs=1e-6), k


def test_tie_aware_equals_map_without_ties():
    # Distinct distances (each database code at a different distance): no ties.
    q = 6
    dc = np.array([[1] * (q - t) + [-1] * t for t in range(q + 1)])
    qc = np.ones((1, q), int)
    dl = np.array([0, 1, 0, 0, 1, 1, 0])
    a = metrics.tie_aware_average_precision(qc, dc, np.array([0]), dl)
    assert a == pytest.approx(metrics.mean_average_precision(qc, dc, np.array([0]), dl))
    with pytest.raises(ValueError):
        metrics.tie_aware_average_precision(qc, dc, np.array([0]), dl, k=2)


@pytest.mark.parametrize("case", CASES)
def test_radius_and_curves(case):
    seed, n_q, n_db, q, n_cls, multi = case
    qc, dc, ql, dl = make_case(seed, n_q, n_db, q, n_cls, multi)
    for r in [0, 1, 2, q, q + 3]:
        got = metrics.precision_recall_at_radius(qc, dc, ql, dl, radius=r)
        np.testing.assert_allclose(got, ref_radius(qc, dc, ql, dl, r), atol=1e-6)
    P, R = metrics.precision_recall_curve_radius(qc, dc, ql, dl)
    assert P.shape == (q + 1,)
    for r in range(q + 1):
        np.testing.assert_allclose((P[r], R[r]), ref_radius(qc, dc, ql, dl, r), atol=1e-6)
    ks = [1, 2, n_db, n_db + 5]
    P, R = metrics.precision_recall_curve_rank(qc, dc, ql, dl, ks)
    Pk = metrics.precision_at_k_curve(qc, dc, ql, dl, ks, backend="jax")
    for j, k in enumerate(ks):
        ref = ref_prk(qc, dc, ql, dl, k)
        np.testing.assert_allclose((P[j], R[j]), ref, atol=1e-6)
        assert Pk[j] == pytest.approx(ref[0], abs=1e-6)


def test_bad_inputs():
    qc, dc, ql, dl = make_case(0, 4, 10, 8)
    f = metrics.mean_average_precision
    with pytest.raises(ValueError, match="query_labels"):
        f(qc, dc, ql[:3], dl)
    with pytest.raises(ValueError, match="db_labels"):
        f(qc, dc, ql, dl[:9])
    with pytest.raises(ValueError, match="db_codes"):
        f(qc, dc[:, :6], ql, dl)
    with pytest.raises(ValueError, match="query_codes"):
        f(np.zeros_like(qc), dc, ql, dl)
    with pytest.raises(ValueError, match="db_codes"):
        f(qc, dc[0], ql, dl)
    with pytest.raises(ValueError, match="db_labels"):
        f(qc, dc, ql, np.eye(3)[dl % 3])
    with pytest.raises(ValueError, match="k"):
        f(qc, dc, ql, dl, k=0)
    with pytest.raises(ValueError, match="radius"):
        metrics.precision_recall_at_radius(qc, dc, ql, dl, radius=-1)
    with pytest.raises(ValueError, match="query_codes"):
        metrics.tie_aware_ndcg(qc * 2, dc, ql, dl)


@pytest.mark.parametrize("case", CASES)
def test_histograms_of_both_backends_match_bruteforce(case):
    seed, n_q, n_db, q, n_cls, multi = case
    qc, dc, ql, dl = make_case(seed, n_q, n_db, q, n_cls, multi)
    want_all = np.zeros((n_q, q + 1), np.int64)
    want_rel = np.zeros((n_q, q + 1), np.int64)
    want_gain = np.zeros((n_q, q + 1), np.int64)
    for i in range(n_q):
        for d, g in zip(ref_dist(qc[i], dc), ref_gain(ql[i], dl)):
            want_all[i, d] += 1
            want_rel[i, d] += g > 0
            want_gain[i, d] += int(g)
    for backend in ("numba", "jax"):
        got = metrics.distance_histograms(qc, dc, ql, dl, backend=backend, chunk_size=2)
        for g, w in zip(got, (want_all, want_rel, want_gain)):
            np.testing.assert_array_equal(g, w, err_msg=backend)


def test_multilabel_with_many_classes_uses_several_label_words():
    qc, dc, ql, dl = make_case(11, 5, 40, 8, n_cls=150, multi=True)
    for k in (None, 7):
        got = metrics.mean_average_precision(qc, dc, ql, dl, k=k)
        assert got == pytest.approx(ref_map(qc, dc, ql, dl, k), abs=1e-6)


def test_long_codes_use_several_words():
    qc, dc, ql, dl = make_case(12, 4, 30, 130, n_cls=3)
    assert metrics.mean_average_precision(qc, dc, ql, dl) == pytest.approx(ref_map(qc, dc, ql, dl), abs=1e-6)


@pytest.mark.parametrize("case", CASES)
def test_whole_ranking_metrics_one_pass_equals_references(case):
    """The evaluator's one-pass mAP@ALL, tie-aware mAP and radius precision / recall against the
    brute-force references (tie-aware by enumeration where the database is small enough)."""
    seed, n_q, n_db, q, n_cls, multi = case
    qc, dc, ql, dl = make_case(seed, n_q, n_db, q, n_cls, multi)
    for r in [0, 2, q + 1]:
        got = metrics.whole_ranking_metrics(qc, dc, ql, dl, radius=r, chunk_size=2)
        assert got["map@all"] == pytest.approx(ref_map(qc, dc, ql, dl, None), abs=1e-6)
        np.testing.assert_allclose((got[f"precision@r{r}"], got[f"recall@r{r}"]),
                                   ref_radius(qc, dc, ql, dl, r), atol=1e-6)
        assert got["tie_aware_map@all"] == pytest.approx(
            metrics.tie_aware_average_precision(qc, dc, ql, dl), abs=1e-12)
    small = make_case(seed, n_q, min(n_db, 7), q, n_cls, multi)
    got = metrics.whole_ranking_metrics(*small)
    assert got["tie_aware_map@all"] == pytest.approx(ref_tie_ap(*small), abs=1e-6)
    with pytest.raises(ValueError, match="radius"):
        metrics.whole_ranking_metrics(qc, dc, ql, dl, radius=-1)
