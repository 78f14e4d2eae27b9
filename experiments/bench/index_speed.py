"""Speed of jhash.index against faiss's binary indexes and NumPy brute force, in one run.

Run:  python experiments/bench/index_speed.py                  (1,000 queries x 10^5, 10^6, 10^7 codes, 64 bits)
      python experiments/bench/index_speed.py --quick          (1,000 queries x 10^4, 10^5: seconds)
      python experiments/bench/index_speed.py --sizes 1e6 --threads 4

Data: random 64-bit codes (uniform bits).  Two tasks:

* exhaustive top-k (k = 100): jhash ``HammingIndex.search`` vs faiss ``IndexBinaryFlat.search``
  vs NumPy (XOR, ``np.bitwise_count``, ``np.partition`` for the k-th distance, a stable sort
  of the candidates);
* radius lookup (r = 2, items at distance <= 2): jhash ``HammingIndex.range_search`` (auto:
  multi-index hashing here) vs faiss ``IndexBinaryMultiHash`` (3 tables of 21 bits, no flips:
  exact for r = 2 by the pigeonhole principle) vs the exhaustive scans (jhash
  ``method="scan"``, faiss ``IndexBinaryFlat.range_search``, NumPy).  faiss's range search is
  strict (distance < radius), so it is called with r + 1.  Random codes almost never have a
  neighbour within 2 bits, so the lookup is also run on a database with planted near
  duplicates: for every query, 10 copies with 0, 1 or 2 random bits flipped, put at random
  positions (the rest random), so each query finds at least 10 items.

Every result is checked against jhash's (top-k distances equal; radius counts equal).  The
slow baselines run on the first ``--slow-queries`` queries at the largest sizes (queries per
second stays comparable).  Threads: numba (jhash) and OpenMP (faiss) both get ``--threads``
(default 2); NumPy runs on one thread; ``OMP_WAIT_POLICY=PASSIVE`` (set here unless given)
keeps idle OpenMP threads of one library from spinning on the cores the other needs.  Peak memory: the process's peak resident set size
during the call (VmHWM, reset before each call by writing 5 to /proc/self/clear_refs) minus
the resident size before it; where that is not available, the growth of ru_maxrss.
"""
import argparse
import os
import time

# OpenMP threads that spin-wait after a parallel region (faiss's and numba's runtimes are
# separate) steal the cores from the other library's next call: both wait passively.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

from jhash.index import HammingIndex  # noqa: E402

BITS = 64


# ------------------------------------------------------------------ memory
def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def measure(fn):
    """(seconds, extra peak memory in MiB, result) of ``fn()``."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        base, peak = _status_kb("VmRSS"), lambda: _status_kb("VmHWM")
    except OSError:
        import resource

        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # noqa: E731
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    return seconds, max(0, peak() - base) / 1024, out


# ------------------------------------------------------------------ data
def random_codes(rng, n, bits=BITS):
    return rng.integers(0, 256, (n, bits // 8), dtype=np.uint8)


def planted(rng, db, queries, copies=10):
    """``db`` with ``copies`` near duplicates (0-2 flipped bits) of every query at random rows."""
    db = db.copy()
    rows = rng.choice(len(db), len(queries) * copies, replace=False)
    dup = np.repeat(queries, copies, axis=0)
    bits = np.unpackbits(dup, axis=1)
    for i, n_flip in enumerate(rng.integers(0, 3, len(dup))):
        bits[i, rng.choice(bits.shape[1], n_flip, replace=False)] ^= 1
    db[rows] = np.packbits(bits, axis=1)
    return db


# ------------------------------------------------------------------ NumPy baselines
def numpy_topk(db, queries, k):
    dbw, qw = db.view(np.uint64)[:, 0], queries.view(np.uint64)[:, 0]
    out = np.zeros((len(qw), k), np.int64)
    for i, x in enumerate(qw):
        d = np.bitwise_count(dbw ^ x)
        kth = np.partition(d, k - 1)[k - 1]
        cand = np.flatnonzero(d <= kth)
        out[i] = d[cand[np.argsort(d[cand], kind="stable")[:k]]]
    return out


def numpy_radius_counts(db, queries, r):
    dbw, qw = db.view(np.uint64)[:, 0], queries.view(np.uint64)[:, 0]
    return np.array([np.count_nonzero(np.bitwise_count(dbw ^ x) <= r) for x in qw])


# ------------------------------------------------------------------ run
def row(name, n_q, seconds, mem, ref_seconds=None, ref_n_q=None, note=""):
    qps = n_q / seconds
    ratio = "" if ref_seconds is None else f"{qps / (ref_n_q / ref_seconds):8.2f}x"
    print(f"  {name:44s} {qps:12,.0f} q/s {ratio:>10s} {mem:9.1f} MiB  {note}")
    return qps


def bench_size(n, args, rng, faiss):
    queries = random_codes(rng, args.queries)
    db = random_codes(rng, n)
    slow_q = queries if n < args.slow_above else queries[: args.slow_queries]
    print(f"\n## {n:,} codes of {BITS} bits, {len(queries)} queries "
          f"(slow baselines: {len(slow_q)} queries)")
    print(f"  {'method':44s} {'queries/s':>16s} {'vs faiss':>10s} {'peak mem':>13s}")
    t_build, m_build, index = measure(lambda: HammingIndex(BITS, db))
    print(f"  build jhash index: {t_build:.2f} s, {m_build:.0f} MiB")

    print(f"### exhaustive top-{args.k}")
    t_j, m_j, (_, dj) = measure(lambda: index.search(queries, args.k))
    res = {}
    if faiss is not None:
        flat = faiss.IndexBinaryFlat(BITS)
        flat.add(db)
        t_f, m_f, (df, _) = measure(lambda: flat.search(slow_q, args.k))
        assert np.array_equal(df, dj[: len(slow_q)]), "faiss and jhash top-k distances differ"
        res["faiss_topk"] = row("faiss IndexBinaryFlat", len(slow_q), t_f, m_f)
        ref = (t_f, len(slow_q))
    else:
        ref = (None, None)
    res["jhash_topk"] = row("jhash HammingIndex.search", len(queries), t_j, m_j, *ref)
    t_n, m_n, dn = measure(lambda: numpy_topk(db, slow_q, args.k))
    assert np.array_equal(dn, dj[: len(slow_q)]), "NumPy and jhash top-k distances differ"
    res["numpy_topk"] = row("NumPy brute force", len(slow_q), t_n, m_n, *ref)

    for label, data in (("random", db), ("planted near duplicates", planted(rng, db, queries))):
        print(f"### radius {args.radius} lookup, {label} database")
        idx = index if data is db else HammingIndex(BITS, data)
        t_b, m_b, counts = measure(lambda: idx.range_count(queries[:1], args.radius))  # builds the tables
        t_l, m_l, out = measure(lambda: idx.range_search(queries, args.radius))
        counts = np.diff(out.lims)
        print(f"  jhash tables (MIH, built once): {t_b:.2f} s, {m_b:.0f} MiB; "
              f"mean items per query {counts.mean():.2f}, empty balls {np.mean(counts == 0):.1%}")
        t_s, m_s, scan = measure(lambda: idx.range_search(slow_q, args.radius, method="scan"))
        assert np.array_equal(np.diff(scan.lims), counts[: len(slow_q)])
        if faiss is not None:
            mh = faiss.IndexBinaryMultiHash(BITS, 3, 21)
            mh.nflip = 0
            t_mb, m_mb, _ = measure(lambda: mh.add(data))
            t_fm, m_fm, (lims, _, _) = measure(lambda: mh.range_search(queries, args.radius + 1))
            assert np.array_equal(np.diff(lims), counts), "faiss MultiHash and jhash radius counts differ"
            flat = faiss.IndexBinaryFlat(BITS)
            flat.add(data)
            t_ff, m_ff, (lims_f, _, _) = measure(lambda: flat.range_search(slow_q, args.radius + 1))
            assert np.array_equal(np.diff(lims_f), counts[: len(slow_q)])
            ref = (t_fm, len(queries))
            print(f"  faiss IndexBinaryMultiHash build: {t_mb:.2f} s, {m_mb:.0f} MiB")
            row("faiss IndexBinaryMultiHash(3 x 21 bits)", len(queries), t_fm, m_fm)
            qps_ff = row("faiss IndexBinaryFlat.range_search (scan)", len(slow_q), t_ff, m_ff, *ref)
        else:
            ref, qps_ff = (None, None), None
        qps_l = row("jhash range_search (auto: MIH)", len(queries), t_l, m_l, *ref)
        qps_s = row("jhash range_search(method='scan')", len(slow_q), t_s, m_s, *ref)
        t_nr, m_nr, nc = measure(lambda: numpy_radius_counts(data, slow_q, args.radius))
        assert np.array_equal(nc, counts[: len(slow_q)])
        qps_n = row("NumPy brute force scan", len(slow_q), t_nr, m_nr, *ref)
        note = f"  lookup / exhaustive scan: {qps_l / qps_s:,.0f}x (jhash scan)"
        if qps_ff:
            note += f", {qps_l / qps_ff:,.0f}x (faiss flat)"
        print(note + f", {qps_l / qps_n:,.0f}x (NumPy)")
        res[label] = qps_l
    return res


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1e5,1e6,1e7", help="database sizes, comma-separated")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--radius", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="numba and faiss threads")
    parser.add_argument("--slow-queries", type=int, default=200,
                        help="queries for the slow baselines at sizes >= --slow-above")
    parser.add_argument("--slow-above", type=float, default=1e7)
    parser.add_argument("--quick", action="store_true", help="sizes 1e4,1e5")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.sizes = "1e4,1e5"
    import numba

    numba.set_num_threads(args.threads)
    try:
        import faiss

        faiss.omp_set_num_threads(args.threads)
    except ImportError:
        faiss = None
        print("faiss is not installed (pip install 'jhash[faiss]'): no faiss columns")
    print(f"threads: numba {numba.get_num_threads()}, faiss {args.threads if faiss else '-'}, NumPy 1; "
          f"cpus {os.cpu_count()}; load average {os.getloadavg()[0]:.1f}")
    rng = np.random.default_rng(args.seed)
    # Compile jhash's kernels outside the timings.
    warm = HammingIndex(BITS, random_codes(rng, 1000))
    warm.search(random_codes(rng, 4), args.k)
    for method in ("mih", "scan", "table"):
        warm.range_search(random_codes(rng, 4), args.radius, method=method)
    for n in [int(float(s)) for s in args.sizes.split(",")]:
        bench_size(n, args, rng, faiss)


if __name__ == "__main__":
    main()
