"""jhash.index against independent brute-force NumPy references (unpackbits + sum, lexsort)."""
import zipfile

import numpy as np
import pytest

from jhash import codes as jcodes
from jhash.index import HammingIndex, IndexFileError, plan_range_search
from jhash.train.state import make_mesh


# ------------------------------------------------------------------ references
def rand_codes(rng, n, q):
    return np.where(rng.random((n, q)) < 0.5, -1, 1).astype(np.int8)


def near_duplicates(rng, base, n, max_flips):
    """n codes, each a copy of a random row of ``base`` with up to ``max_flips`` bits flipped."""
    out = base[rng.integers(0, len(base), n)].copy()
    for row in out:
        flips = rng.choice(base.shape[1], rng.integers(0, max_flips + 1), replace=False)
        row[flips] *= -1
    return out


def ref_dist(qc, dc):
    """Hamming distances from np.packbits / np.unpackbits rows (independent of jhash)."""
    qb = np.unpackbits(np.packbits(qc > 0, axis=1), axis=1)
    db = np.unpackbits(np.packbits(dc > 0, axis=1), axis=1)
    return (qb[:, None, :] != db[None, :, :]).sum(-1)


def ref_topk(qc, dc, ids, k):
    d = ref_dist(qc, dc)
    out_i, out_d = [], []
    for row in d:
        order = np.lexsort((ids, row))[:k]  # by distance, then id
        out_i.append(ids[order])
        out_d.append(row[order])
    return np.array(out_i).reshape(len(qc), -1), np.array(out_d).reshape(len(qc), -1)


def ref_range(qc, dc, ids, r):
    d = ref_dist(qc, dc)
    res = []
    for row in d:
        sel = np.flatnonzero(row <= r)
        order = np.lexsort((ids[sel], row[sel]))
        res.append((ids[sel][order], row[sel][order]))
    return res


def assert_range_equal(result, ref):
    got = result.per_query()
    assert len(got) == len(ref)
    for (gi, gd), (ri, rd) in zip(got, ref):
        np.testing.assert_array_equal(gi, ri)
        np.testing.assert_array_equal(gd, rd)


# ------------------------------------------------------------------ top-k
@pytest.mark.parametrize("bits,n,n_q", [(8, 300, 20), (12, 257, 17), (64, 500, 25), (130, 333, 9),
                                        (256, 200, 7), (3, 150, 11), (128, 1001, 5), (32, 4099, 6)])
def test_topk_equals_bruteforce(bits, n, n_q):
    rng = np.random.default_rng(bits)
    dc, qc = rand_codes(rng, n, bits), rand_codes(rng, n_q, bits)
    index = HammingIndex(bits, dc)
    for k in (1, 7, 100, n, n + 5):  # bits=3: ties everywhere; k > n returns n columns
        ri, rd = ref_topk(qc, dc, np.arange(n), k)
        for qchunk, dchunk in ((4096, 4096), (4, 13)):  # chunks that do not divide the sizes
            ids, dist = index.search(qc, k, query_chunk=qchunk, db_chunk=dchunk)
            assert ids.shape == dist.shape == (n_q, min(k, n))
            assert ids.dtype == np.int64 and dist.dtype == np.int32
            np.testing.assert_array_equal(ids, ri)
            np.testing.assert_array_equal(dist, rd)


def test_topk_ties_follow_metrics_rule():
    """Identical database codes: the ranking is the database index order (as jhash.metrics)."""
    dc = np.ones((40, 16), np.int8)
    dc[::3, 0] = -1
    ids, dist = HammingIndex(16, dc).search(np.ones((2, 16), np.int8), 40)
    d0 = np.flatnonzero(dc[:, 0] > 0)
    np.testing.assert_array_equal(ids[0], np.concatenate([d0, np.flatnonzero(dc[:, 0] < 0)]))
    np.testing.assert_array_equal(dist[0], np.repeat([0, 1], [len(d0), 40 - len(d0)]))


def test_empty_index_and_no_queries():
    index = HammingIndex(20)
    ids, dist = index.search(rand_codes(np.random.default_rng(0), 3, 20), 5)
    assert ids.shape == dist.shape == (3, 0)
    res = index.range_search(rand_codes(np.random.default_rng(0), 3, 20), 2)
    np.testing.assert_array_equal(res.lims, [0, 0, 0, 0])
    index.add(rand_codes(np.random.default_rng(1), 4, 20))
    assert index.search(np.zeros((0, 20), np.int8), 3)[0].shape == (0, 3)


# ------------------------------------------------------------------ radius
@pytest.mark.parametrize("bits", [8, 12, 64, 130, 256])
def test_range_search_all_methods_equal_bruteforce(bits):
    rng = np.random.default_rng(100 + bits)
    base = rand_codes(rng, 30, bits)
    dc = np.concatenate([near_duplicates(rng, base, 250, 4), rand_codes(rng, 50, bits)])
    qc = np.concatenate([near_duplicates(rng, base, 12, 2), rand_codes(rng, 6, bits)])
    index = HammingIndex(bits, dc)
    radii = sorted({0, 1, 2, 3, bits // 4})
    for r in radii:
        ref = ref_range(qc, dc, np.arange(len(dc)), r)
        assert any(len(i) == 0 for i, _ in ref) or bits <= 12  # empty balls are covered
        methods = [("scan", None), ("mih", None)]
        for m in {max(2, -(-bits // 64)), max(bits // 16, -(-bits // 64))}:
            if plan_range_search(bits, len(dc), r, m=m)[2]["mih"] < 1e5:  # else too slow to probe
                methods.append(("mih", m))
        if plan_range_search(bits, len(dc), r)[2]["table"] < 5e4:
            methods.append(("table", None))
        assert len(methods) >= 3
        for method, m in methods:
            assert_range_equal(index.range_search(qc, r, method=method, m=m), ref)
        np.testing.assert_array_equal(index.range_count(qc, r), [len(i) for i, _ in ref])
        assert_range_equal(index.range_search(qc, r), ref)  # the automatic choice


def test_range_search_mih_substrings_of_one_bit_and_heavy_ties():
    rng = np.random.default_rng(5)
    dc, qc = rand_codes(rng, 120, 6), rand_codes(rng, 9, 6)
    index = HammingIndex(6, dc)
    for r in range(7):
        ref = ref_range(qc, dc, np.arange(120), r)
        for m in (1, 3, 6):
            assert_range_equal(index.range_search(qc, r, method="mih", m=m), ref)
        assert_range_equal(index.range_search(qc, r, method="table"), ref)


def test_plan_prefers_tables_for_small_radius_on_large_databases():
    assert plan_range_search(64, 10**7, 2)[0] == "mih"
    assert plan_range_search(16, 10**6, 1)[0] in ("table", "mih")
    assert plan_range_search(64, 100, 20)[0] == "scan"
    assert plan_range_search(64, 10**7, 2, method="table")[0] == "table"


# ------------------------------------------------------------------ ids, add / remove
def test_add_remove_custom_ids_and_packed_input():
    rng = np.random.default_rng(7)
    bits = 37
    a, b = rand_codes(rng, 60, bits), rand_codes(rng, 40, bits)
    ids_a = rng.permutation(1000)[:60]
    index = HammingIndex(bits, jcodes.pack(a), ids_a)  # packed uint8 rows
    np.testing.assert_array_equal(index.ids, np.sort(ids_a))
    assert index.add(b).tolist() == list(range(ids_a.max() + 1, ids_a.max() + 41))
    gone = np.concatenate([ids_a[:25], [ids_a.max() + 3]])
    index.remove(gone)
    ids_all = np.concatenate([ids_a, np.arange(ids_a.max() + 1, ids_a.max() + 41)])
    codes_all = np.concatenate([a, b])
    keep = ~np.isin(ids_all, gone)
    order = np.argsort(ids_all[keep])
    ref_ids, ref_codes = ids_all[keep][order], codes_all[keep][order]
    assert len(index) == 74
    np.testing.assert_array_equal(index.packed_codes(), np.packbits(ref_codes > 0, axis=1))
    qc = np.concatenate([ref_codes[:5], rand_codes(rng, 5, bits)])
    ri, rd = ref_topk(qc, ref_codes, ref_ids, 20)
    ids, dist = index.search(qc, 20)
    np.testing.assert_array_equal(ids, ri)
    np.testing.assert_array_equal(dist, rd)
    for method in ("mih", "scan", "table"):
        assert_range_equal(index.range_search(qc, 3, method=method), ref_range(qc, ref_codes, ref_ids, 3))
    # tables are rebuilt after a change
    index.add(qc[:1], ids=[-5])
    res = index.range_search(qc[:1], 0, method="mih").per_query()[0]
    assert -5 in res[0].tolist()


@pytest.mark.parametrize("bits", [40, 128, 200])
def test_search_sees_every_add_and_remove(bits, tmp_path):
    """Above 64 bits the scan reads a column-major copy of the codes: a search after add / remove / load
    must see the index as it is now, not the copy made by an earlier search."""
    rng = np.random.default_rng(bits)
    codes, qc = rand_codes(rng, 90, bits), rand_codes(rng, 6, bits)
    index = HammingIndex(bits, codes[:50])
    ids = np.arange(90)

    def check(keep):
        ri, rd = ref_topk(qc, codes[keep], ids[keep], 15)
        got_i, got_d = index.search(qc, 15)
        np.testing.assert_array_equal(got_i, ri)
        np.testing.assert_array_equal(got_d, rd)

    check(ids < 50)
    index.add(codes[50:])
    check(ids < 90)
    gone = rng.choice(90, 30, replace=False)
    index.remove(gone)
    check(~np.isin(ids, gone))
    index.save(tmp_path / "index.npz")
    index = HammingIndex.load(tmp_path / "index.npz")
    check(~np.isin(ids, gone))


def test_bad_inputs_name_the_argument():
    rng = np.random.default_rng(0)
    index = HammingIndex(12, rand_codes(rng, 10, 12))
    with pytest.raises(ValueError, match="queries has 13 bits"):
        index.search(rand_codes(rng, 2, 13), 3)
    with pytest.raises(ValueError, match="queries is packed uint8 with 1 bytes"):
        index.search(np.zeros((2, 1), np.uint8), 3)
    with pytest.raises(ValueError, match="padding bits"):
        index.add(np.full((1, 2), 255, np.uint8))
    with pytest.raises(ValueError, match="must hold"):
        index.add(np.ones((2, 12), bool))
    with pytest.raises(ValueError, match="only -1 and \\+1"):
        index.add(np.zeros((2, 12), np.int8))
    with pytest.raises(ValueError, match="queries must be 2-D"):
        index.search(np.ones(12, np.int8), 3)
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        index.search(rand_codes(rng, 2, 12), 0)
    with pytest.raises(ValueError, match="r must be an integer >= 0"):
        index.range_search(rand_codes(rng, 2, 12), -1)
    with pytest.raises(ValueError, match="method must be"):
        index.range_search(rand_codes(rng, 2, 12), 1, method="lsh")
    with pytest.raises(ValueError, match="m must be between"):
        index.range_search(rand_codes(rng, 2, 12), 1, method="mih", m=13)
    with pytest.raises(ValueError, match="already in the index"):
        index.add(rand_codes(rng, 1, 12), ids=[3])
    with pytest.raises(ValueError, match="distinct"):
        index.add(rand_codes(rng, 2, 12), ids=[20, 20])
    with pytest.raises(ValueError, match="not in the index"):
        index.remove([99])
    with pytest.raises(ValueError, match="bits must be an integer >= 1"):
        HammingIndex(0)


# ------------------------------------------------------------------ files
def test_save_load_roundtrip(tmp_path):
    rng = np.random.default_rng(3)
    index = HammingIndex(130, rand_codes(rng, 50, 130), rng.permutation(50) * 7)
    index.remove(index.ids[:3])
    path = index.save(tmp_path / "db.npz")
    loaded = HammingIndex.load(path)
    assert loaded.bits == 130 and len(loaded) == 47
    np.testing.assert_array_equal(loaded.ids, index.ids)
    np.testing.assert_array_equal(loaded.packed_codes(), index.packed_codes())
    assert loaded.add(rand_codes(rng, 1, 130)).tolist() == [49 * 7 + 1]  # id counter kept
    qc = rand_codes(rng, 4, 130)
    for a, b in zip(loaded.search(qc, 10), index.search(qc, 10)):
        np.testing.assert_array_equal(a[:, :10], b)


def test_damaged_or_foreign_files_raise_index_file_error(tmp_path):
    rng = np.random.default_rng(4)
    good = HammingIndex(64, rand_codes(rng, 200, 64)).save(tmp_path / "good.npz")
    data = good.read_bytes()
    cases = {"truncated.npz": data[: len(data) // 2], "empty.npz": b"", "text.npz": b"not an index\n"}
    corrupted = bytearray(data)
    corrupted[len(data) // 3] ^= 0xFF
    cases["flipped.npz"] = bytes(corrupted)
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(IndexFileError, match=name):
            HammingIndex.load(tmp_path / name)
    np.savez(tmp_path / "foreign.npz", x=np.arange(3))
    with pytest.raises(IndexFileError, match="not a jhash index"):
        HammingIndex.load(tmp_path / "foreign.npz")
    # Same fields, codes changed without a new checksum: caught by the SHA-256.
    with np.load(good) as z:
        fields = {k: z[k] for k in z.files}
    fields["codes"] = fields["codes"].copy()
    fields["codes"][0, 0] ^= 1
    np.savez(tmp_path / "tampered.npz", **fields)
    with pytest.raises(IndexFileError, match="checksum mismatch"):
        HammingIndex.load(tmp_path / "tampered.npz")
    fields["version"] = np.int64(99)
    np.savez(tmp_path / "newer.npz", **fields)
    with pytest.raises(IndexFileError, match="newer"):
        HammingIndex.load(tmp_path / "newer.npz")
    assert issubclass(IndexFileError, ValueError)
    with zipfile.ZipFile(good) as z:  # the file is a plain npz archive
        assert "codes.npy" in z.namelist()


# ------------------------------------------------------------------ sharded
@pytest.mark.parametrize("bits,n", [(64, 203), (12, 61), (130, 90)])
def test_sharded_search_equals_one_device(bits, n):
    rng = np.random.default_rng(bits + n)
    dc = rand_codes(rng, n, bits) if bits > 12 else near_duplicates(rng, rand_codes(rng, 5, bits), n, 2)
    qc = rand_codes(rng, 11, bits)
    index = HammingIndex(bits, dc, ids=np.arange(n) * 2 + 1)
    mesh8, mesh1 = make_mesh(8), make_mesh(1)
    assert mesh8.size == 8
    for k in (10, n + 3):  # n + 3: more than a device's share of the database
        ref = index.search(qc, k)
        np.testing.assert_array_equal(ref[0], ref_topk(qc, dc, np.arange(n) * 2 + 1, k)[0])
        for mesh, db_chunk, q_chunk in ((mesh8, 4096, 64), (mesh8, 5, 6), (mesh1, 7, 64)):
            got = index.search(qc, k, mesh=mesh, db_chunk=db_chunk, query_chunk=q_chunk)
            np.testing.assert_array_equal(got[0], ref[0])
            np.testing.assert_array_equal(got[1], ref[1])


# ------------------------------------------------------------------ faiss
def test_faiss_roundtrip():
    faiss = pytest.importorskip("faiss")
    rng = np.random.default_rng(9)
    for bits in (64, 12):
        dc, qc = rand_codes(rng, 300, bits), rand_codes(rng, 8, bits)
        index = HammingIndex(bits, dc)
        flat = index.to_faiss()
        assert isinstance(flat, faiss.IndexBinaryFlat) and flat.ntotal == 300
        fd, fi = flat.search(np.packbits(qc > 0, axis=1), 10)
        jd = index.search(qc, 10)[1]
        np.testing.assert_array_equal(fd, jd)  # faiss's tie order may differ; distances do not
        np.testing.assert_array_equal(fd, np.take_along_axis(ref_dist(qc, dc), fi, axis=1))
        back = HammingIndex.from_faiss(flat, bits=bits)
        np.testing.assert_array_equal(back.packed_codes(), index.packed_codes())
        np.testing.assert_array_equal(back.ids, np.arange(300))
    with pytest.raises(ValueError, match="bits must be in"):
        HammingIndex.from_faiss(flat, bits=3)


# ------------------------------------------------------------------ evaluation
@pytest.mark.parametrize("multi", [False, True])
def test_hash_lookup_metrics_equal_bruteforce(multi):
    """DCH's radius-2 lookup metrics of jhash.evaluate: a per-query NumPy loop, and the ranking
    metrics' precision_recall_at_radius (empty balls count precision 0)."""
    from jhash import evaluate, metrics

    rng = np.random.default_rng(11 + multi)
    base = rand_codes(rng, 6, 16)
    dc = near_duplicates(rng, base, 400, 3)
    qc = np.concatenate([near_duplicates(rng, base, 20, 1), rand_codes(rng, 10, 16)])
    if multi:
        dl, ql = (rng.random((400, 5)) < 0.3).astype(np.int32), (rng.random((30, 5)) < 0.3).astype(np.int32)
    else:
        dl, ql = rng.integers(0, 4, 400), np.append(rng.integers(0, 4, 29), 7)  # class 7: nothing relevant
    d = ref_dist(qc, dc)
    prec, rec, ret = [], [], []
    for i in range(len(qc)):
        rel = (dl == ql[i]) if not multi else ((dl > 0) & (ql[i] > 0)).any(1)
        ball = d[i] <= 2
        ret.append(ball.sum())
        prec.append((rel & ball).sum() / ball.sum() if ball.sum() else 0.0)
        rec.append((rel & ball).sum() / rel.sum() if rel.sum() else 0.0)
    got, timing = evaluate.hash_lookup_metrics(qc, dc, ql, dl, radius=2)
    assert got["lookup_precision@r2"] == pytest.approx(np.mean(prec), abs=1e-12)
    assert got["lookup_recall@r2"] == pytest.approx(np.mean(rec), abs=1e-12)
    assert got["lookup_retrieved@r2"] == pytest.approx(np.mean(ret))
    assert got["lookup_empty@r2"] == pytest.approx(np.mean(np.array(ret) == 0)) and 0 < got["lookup_empty@r2"] < 1
    p, r = metrics.precision_recall_at_radius(qc, dc, ql, dl, radius=2)
    assert (got["lookup_precision@r2"], got["lookup_recall@r2"]) == pytest.approx((p, r), abs=1e-12)
    assert timing["lookup_s"] >= 0 and timing["lookup_build_s"] >= 0


@pytest.mark.parametrize("multi", [False, True])
def test_index_map_at_k_equals_bruteforce(multi, monkeypatch):
    """mAP@k through the index's top-k search (what jhash eval reports as map@<k>): a NumPy
    stable argsort over (distance, index) and AP@k per query, with heavy ties, k > n_db, a query
    with nothing relevant, and query groups forced small by the memory budget."""
    from jhash import evaluate, metrics

    rng = np.random.default_rng(5 + multi)
    base = rand_codes(rng, 4, 24)
    dc = near_duplicates(rng, base, 300, 2)          # many equal distances
    qc = np.concatenate([near_duplicates(rng, base, 17, 1), rand_codes(rng, 6, 24)])
    if multi:
        dl, ql = (rng.random((300, 4)) < 0.3).astype(np.int32), (rng.random((23, 4)) < 0.3).astype(np.int32)
    else:
        dl, ql = rng.integers(0, 3, 300), np.append(rng.integers(0, 3, 22), 9)
    order = np.argsort(ref_dist(qc, dc), axis=1, kind="stable")
    index = HammingIndex(24, dc)
    monkeypatch.setattr(metrics, "MEMORY_BUDGET_BYTES", 4000)  # groups of a few queries
    for k in (1, 7, 100, 300, 1000):
        aps = []
        for i in range(len(qc)):
            top = order[i, :k]
            rel = (dl[top] == ql[i]) if not multi else ((dl[top] > 0) & (ql[i] > 0)).any(1)
            hits = np.cumsum(rel)
            aps.append(np.sum(rel * hits / np.arange(1, len(top) + 1)) / hits[-1] if hits[-1] else 0.0)
        got = evaluate.index_map_at_k(index, qc, ql, dl, k)
        assert got == pytest.approx(np.mean(aps), abs=1e-12)
        assert got == pytest.approx(metrics.mean_average_precision(qc, dc, ql, dl, k=k), abs=1e-12)
    with pytest.raises(ValueError, match="db_labels"):
        evaluate.index_map_at_k(index, qc, ql, dl[:10], 5)
