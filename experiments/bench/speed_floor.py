"""Distance to the floor: jhash against a numba distance-matrix loop and faiss, one command.

Run:  python experiments/bench/speed_floor.py                 (every section, 5 rounds)
      python experiments/bench/speed_floor.py --quick         (small sizes, 2 rounds: a smoke test)
      python experiments/bench/speed_floor.py --sections eval,hamming --rounds 7

Every contender runs in its own process (``--worker``), with its thread count fixed before
import (NUMBA_NUM_THREADS, OMP_NUM_THREADS; numba.set_num_threads and faiss.omp_set_num_threads
too); the processes are alternated, in a rotated order, for ``--rounds`` rounds, and each
figure is the minimum over its timed calls in all rounds (the first call of a process is a
warm-up, reported separately as the first-call time: numba loads its cache then). "1 thread"
limits every library to one thread (per-core speed); "2 threads" uses both cores.

Sections (add one by writing a ``CASES`` entry and a ``run_<section>`` worker function):

* ``eval``: mAP@ALL, tie-aware mAP and P/R within radius 2 (``jhash.metrics.
  whole_ranking_metrics``, one pass, from +-1 codes) on 1,000 x 69,000 codes at 32 and 64
  bits, against the floor: the Hamming distance matrix alone, a numba prange popcount loop
  on 64-bit words into a preallocated int32 matrix (:func:`floor_matrix`);
* ``hamming``: ``jhash.codes.hamming_distance`` (packed uint8 rows in, a new int32 matrix
  out) against the same numba loop allocating its output and ``faiss.hammings``;
* ``topk``: ``HammingIndex.search`` against ``faiss.IndexBinaryFlat.search`` at 69,000,
  10^6 and 10^7 random codes of 32, 64 and 128 bits, k = 1, 100, 1000 (1,000 / 200 / 32
  queries); every result's distances checked equal to faiss's in the worker's first call;
* ``compile``: the first call of each jhash function above in a fresh process, on tiny
  inputs, with an empty numba cache (``cold``: compilation) and with the cache filled by an
  earlier process (``warm``: what a user waits for after the first run);
* ``profile`` (not in the default run: ``--sections profile``): where the eval pass's time
  goes at 1 thread: the floor, the pass's first loop alone (:func:`keys_only`: uint8 distances and
  relevance bits per 64 items), the pass, the whole metric call; the first three also as the
  minimum over 60 alternated calls on 10-query slices (robust to a loaded machine);
* ``radius``: ``HammingIndex.range_search`` (radius 2, method auto) against
  ``faiss.IndexBinaryHash`` (all bits hashed, nflip 2, so exact; faiss's radius is strict, so
  it gets 3) at 10^6 and 10^7 codes of 32 bits with planted near duplicates (index_speed.py's
  data), 1,000 queries; counts checked equal.

* ``shallow`` (not in the default run: about 10 minutes a round on a quiet 2-core machine, KSH and
  COSDISH most of it, so ``--sections shallow --rounds 2``): SDH,
  COSDISH, KSH, ITQ and AGH fits at 32 bits on mnist with the experiments' settings, and COSDISH and
  KSH with the authors' demo settings too (``cosdish@authors``, ``ksh@authors``: the work the Octave
  driver does; experiments/bench/shallow_fit.py's workers, each fit a fresh process): jhash's first call with no persistent compilation
  cache (``cold``) and with one an earlier process filled (``warm``), its second call (not
  for COSDISH and KSH, whose fits are execution-bound), and the authors' MATLAB code under
  GNU Octave (``octave``) when ``octave`` is on PATH and ``--octave-code DIR`` holds their
  code (shallow_fit.py's docstring says which repositories); otherwise the Octave column
  says why. ``--shallow-methods`` picks the methods (``--quick``: ITQ only).

* ``train``, ``train_flags``, ``train_profile`` (the last not in the default run): jhash's CPU
  training step (DPSH, the small CNN and the MLP) against the same function in PyTorch, what
  each XLA flag or step option gives, and where the time goes: experiments/bench/train_step.py.

faiss is optional: without it the faiss columns say so; torch too (``--torch-python PATH``).
"""
import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import time

import numba
import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import shallow_fit as sf  # noqa: E402
import train_step  # noqa: E402
from jhash._ranking import _ctpop as ctpop, _eq64 as eq64, _popcount as popcount  # noqa: E402

CASES = {  # section -> contenders; each contender is one worker process per thread count
    "eval": ["floor", "jhash"],
    "hamming": ["numba", "faiss", "jhash"],
    "topk": ["faiss", "jhash"],
    "radius": ["faiss", "jhash"],
    "compile": ["cold", "warm"],
    "profile": ["jhash"],
    "shallow": ["cold", "warm", "octave"],
    **train_step.SECTIONS,  # train, train_flags, train_profile: experiments/bench/train_step.py
}
THREADS = {"compile": (2,), "profile": (1,), "shallow": (2,), **train_step.THREADS}  # default (1, 2)
FAISS_FREE = {"floor", "numba", "jhash", "cold", "warm", "octave", *(w for s in train_step.SECTIONS.values() for w in s)}
NOT_DEFAULT = ("profile", "shallow", "train_profile")  # sections run only when named in --sections


def sizes(quick):
    if quick:
        return {"eval": (200, 10000), "topk": [(10000, 100), (100000, 20)], "radius": [100000], "rq": 100}
    return {"eval": (1000, 69000), "topk": [(69000, 1000), (10**6, 200), (10**7, 32)], "radius": [10**6, 10**7],
            "rq": 1000}


# ------------------------------------------------------------------ the floor (numba)
@numba.njit(parallel=True, cache=True)
def floor_matrix(aw, bw, out):
    """The floor: ``out[i, j]`` = popcount(aw[i] ^ bw[j]) over 64-bit words, a prange loop."""
    for i in numba.prange(aw.shape[0]):
        for j in range(bw.shape[0]):
            d = 0
            for w in range(aw.shape[1]):
                d += popcount(aw[i, w] ^ bw[j, w])
            out[i, j] = d


def words64(rows):
    """Packed uint8 rows -> uint64 words (zero-padded)."""
    out = np.zeros((rows.shape[0], -(-rows.shape[1] // 8) * 8), np.uint8)
    out[:, :rows.shape[1]] = rows
    return out.view(np.uint64)


# ------------------------------------------------------------------ workers
def timed(fn, reps):
    """(first call seconds, min of ``reps`` further calls, first result)."""
    t0 = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t0
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return first, best, out


def run_eval(who, quick):
    from eval_speed import make_data

    n_q, n_db = sizes(quick)["eval"]
    res = {}
    for bits in (32, 64):
        Q, B, ql, dl = make_data(n_q, n_db, bits, seed=bits)
        if who == "floor":
            qw, bw = words64(np.packbits(Q > 0, axis=1)), words64(np.packbits(B > 0, axis=1))
            out = np.empty((n_q, n_db), np.int32)
            res[f"{bits}"] = timed(lambda: floor_matrix(qw, bw, out), 3)[:2]
        else:
            from jhash import metrics

            first, best, val = timed(lambda: metrics.whole_ranking_metrics(Q, B, ql, dl), 3)
            res[f"{bits}"] = (first, best, val)
    return res


def run_hamming(who, quick):
    from eval_speed import make_data

    n_q, n_db = sizes(quick)["eval"]
    res = {}
    for bits in (32, 64, 128):
        Q, B, _, _ = make_data(n_q, n_db, bits, seed=bits)
        qp, bp = np.packbits(Q > 0, axis=1), np.packbits(B > 0, axis=1)
        if who == "numba":
            qw, bw = words64(qp), words64(bp)

            def fn():
                out = np.empty((n_q, n_db), np.int32)
                floor_matrix(qw, bw, out)
                return out
        elif who == "faiss":
            import faiss

            def fn():
                out = np.empty((n_q, n_db), np.int32)
                faiss.hammings(faiss.swig_ptr(qp), faiss.swig_ptr(bp), n_q, n_db, qp.shape[1], faiss.swig_ptr(out))
                return out
        else:
            from jhash import codes

            def fn():
                return codes.hamming_distance(qp, bp).block_until_ready()
        first, best, out = timed(fn, 30 if quick else 3)  # --quick: ~1 ms calls, more of them to see past the warm-up
        res[f"{bits}"] = (first, best, int(np.asarray(out)[:50, :50].sum()))
    return res


def run_topk(who, quick):
    from index_speed import random_codes

    res = {}
    for n, n_q in sizes(quick)["topk"]:
        for bits in (32, 64, 128):
            rng = np.random.default_rng(n + bits)
            db, qs = random_codes(rng, n, bits), random_codes(rng, n_q, bits)
            if who == "faiss":
                import faiss

                index = faiss.IndexBinaryFlat(bits)
                index.add(db)
                search = lambda k: index.search(qs, k)[0]  # noqa: E731
            else:
                from jhash.index import HammingIndex

                index = HammingIndex(bits, db)
                search = lambda k: index.search(qs, k)[1]  # noqa: E731
            del db
            for k in (1, 100, 1000):
                first, best, dist = timed(lambda: search(k), 1 if n >= 10**7 else 2)
                res[f"{n}/{bits}/{k}"] = (first, best, int(np.asarray(dist, np.int64).sum()))
    return res


def run_radius(who, quick):
    from index_speed import planted, random_codes

    s = sizes(quick)
    res = {}
    bits, r = 32, 2
    for n in s["radius"]:
        rng = np.random.default_rng(n)
        qs = random_codes(rng, s["rq"], bits)
        db = planted(rng, random_codes(rng, n, bits), qs)
        if who == "faiss":
            import faiss

            index = faiss.IndexBinaryHash(bits, bits)
            index.nflip = r
            t0 = time.perf_counter()
            index.add(db)
            build = time.perf_counter() - t0
            fn = lambda: np.diff(index.range_search(qs, r + 1)[0])  # noqa: E731
        else:
            from jhash.index import HammingIndex

            index = HammingIndex(bits, db)
            t0 = time.perf_counter()
            index.range_count(qs[:1], r)  # builds the tables
            build = time.perf_counter() - t0
            fn = lambda: np.diff(index.range_search(qs, r).lims)  # noqa: E731
        first, best, counts = timed(fn, 3)
        res[f"{n}/{bits}"] = (first, best, int(counts.sum()), build)
    return res


def run_compile(who, quick):
    import tempfile

    import shutil

    cache = tempfile.mkdtemp()
    try:
        if who == "warm":
            first_calls(cache)  # an earlier process fills the cache
        return {name: (t, t) for name, t in first_calls(cache).items()}
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def first_calls(cache):
    """Seconds of the import and of each first call, in a fresh process using this numba cache."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    code = """
import time, numpy as np
t0 = time.perf_counter()
from jhash import codes, metrics
from jhash.index import HammingIndex
res = {"import": time.perf_counter() - t0}
rng = np.random.default_rng(0)
Q, B = np.where(rng.random((5, 64)) < .5, -1, 1), np.where(rng.random((50, 64)) < .5, -1, 1)
ql, dl = rng.integers(0, 3, 5), rng.integers(0, 3, 50)
index = HammingIndex(64, B)
for name, fn in (("whole_ranking_metrics", lambda: metrics.whole_ranking_metrics(Q, B, ql, dl)),
                 ("hamming_distance", lambda: codes.hamming_distance(codes.pack(Q), codes.pack(B))),
                 ("HammingIndex.search", lambda: index.search(Q, 3)),
                 ("HammingIndex.range_search", lambda: index.range_search(Q, 2))):
    t0 = time.perf_counter(); fn(); res[name] = time.perf_counter() - t0
print("RESULT", __import__("json").dumps(res))
"""
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))[7:])


def run_profile(who, quick):
    """Where the eval pass's time goes, 1 thread: the floor, the keys loop alone, the pass,
    the whole metric call (packing, labels, closed forms), per database item. The first three
    are also timed on 10-query slices, alternated, minimum of many: on a loaded machine a
    0.2 s call is rarely uninterrupted, a few-ms one often is."""
    from eval_speed import make_data
    from jhash import _ranking, metrics

    n_q, n_db = sizes(quick)["eval"]
    res = {}
    for bits in (32, 64):
        Q, B, ql, dl = make_data(n_q, n_db, bits, seed=bits)
        qw, bw = words64(np.packbits(Q > 0, axis=1)), words64(np.packbits(B > 0, axis=1))
        dw_t = np.ascontiguousarray(bw.T)
        out = np.empty((n_q, n_db), np.int32)
        q_ids, db_ids = _ranking.class_ids(ql, dl)  # what whole_ranking_metrics converts once
        hist = {name: np.zeros((n_q, bits + 1), np.int64) for name in ("n_all", "n_rel", "gain")}
        no_lw = np.zeros((n_q, 0), np.uint64), np.zeros((0, n_db), np.uint64)
        sliced = {  # queries lo:hi
            "floor: distance matrix": lambda lo, hi: floor_matrix(qw[lo:hi], bw, out[lo:hi]),
            "keys: distances + relevance (the pass's first loop alone)": lambda lo, hi: keys_only(
                qw[lo:hi], dw_t, q_ids[lo:hi], db_ids),
            "ranking pass (keys + counters + records + AP)": lambda lo, hi: _ranking.ranking_pass(
                qw[lo:hi], dw_t, q_ids[lo:hi], db_ids, *(a[lo:hi] for a in no_lw[:1]), no_lw[1], bits, n_db, 0,
                np.zeros(hi - lo), *(h[lo:hi] for h in hist.values()), np.zeros((hi - lo, 0), bool), prepared=True),
        }
        steps = {name: (lambda fn=fn: fn(0, n_q)) for name, fn in sliced.items()}
        steps["whole_ranking_metrics (+ packing, labels, closed forms)"] = lambda: metrics.whole_ranking_metrics(
            Q, B, ql, dl)
        for name, fn in steps.items():
            for h in hist.values():
                h[:] = 0
            res[f"{bits}/{name}"] = timed(fn, 3)[:2]
        best, width = {name: float("inf") for name in sliced}, min(10, n_q)
        for rep in range(60):
            lo = rep * width % (n_q - width + 1)
            for name, fn in sliced.items():
                t0 = time.perf_counter()
                fn(lo, lo + width)
                best[name] = min(best[name], time.perf_counter() - t0)
        for name, t in best.items():  # as seconds for all n_q queries
            res[f"{bits}/{name}, min over 10-query slices"] = (t * n_q / width, t * n_q / width)
    return res


@numba.njit(parallel=True, cache=True)
def keys_only(qw, dw_t, q_ids, db_ids):
    """The ranking pass's first loop alone (uint8 distances into a 1,024-item buffer, from row
    views; relevance bits of each 64-item block from the compact class ids), as in
    :func:`jhash._ranking._pass` for codes of <= 64 bits."""
    acc = np.zeros(qw.shape[0], np.uint64)
    for i in numba.prange(qw.shape[0]):
        dist = np.zeros(1024 + 64, np.uint8)
        relm = np.zeros(16, np.uint64)
        for s in range(0, dw_t.shape[1], 1024):
            m = min(1024, dw_t.shape[1] - s)
            x = qw[i, 0]
            col = dw_t[0, s:s + m]
            for j in range(m):
                dist[j] = np.uint8(ctpop(x ^ col[j]))
            for bi in range((m + 63) >> 6):
                relm[bi] = eq64(db_ids, s + 64 * bi, q_ids[i])
            acc[i] += dist[m - 1] + relm[0]
    return acc


# ------------------------------------------------------------------ shallow fits (shallow_fit.py's workers)
SHALLOW_METHODS = ",".join(sf.DEFAULT)  # with METHOD@authors: shallow_fit.AUTHORS_SETTINGS
SHALLOW_FIRST_ONLY = ("cosdish", "ksh")  # execution-bound fits (with their @authors rows): no second call


def run_shallow(who, quick):
    """{method: [first call s, second call s, compile s, programs, mAP@ALL]} for ``cold`` / ``warm``
    (a fresh process per fit; ``warm``: a persistent compilation cache filled by an earlier process),
    {method: [s, s]} for ``octave`` (methods it cannot run are left out; the report says why)."""
    import shutil
    import tempfile

    methods = os.environ.get("JHASH_BENCH_SHALLOW", "itq" if quick else SHALLOW_METHODS).split(",")
    code = os.environ.get("JHASH_BENCH_OCTAVE_CODE") or None
    data_dir = str(sf.ROOT.parent / "shared" / "data")
    out, octave = {}, {}
    for m in methods:
        if who == "octave":  # METHOD@authors runs the same driver as METHOD: once
            base = sf.base_method(m)
            if base not in octave:
                octave[base] = sf.run_octave(m, 32, code, data_dir)
            t = octave[base]
            if isinstance(t, float):
                out[m] = [t, t]
            continue
        cache = tempfile.mkdtemp(prefix="jhash-xla-cache-") if who == "warm" else None
        try:
            if cache:
                sf.jhash_run(m, 32, data_dir, 0, cache, first_only=True)
            r = sf.jhash_run(m, 32, data_dir, 0, cache, first_only=sf.base_method(m) in SHALLOW_FIRST_ONLY)
        finally:
            if cache:
                shutil.rmtree(cache, ignore_errors=True)
        if not isinstance(r, dict):
            raise RuntimeError(f"shallow fit {m} ({who}) {r}")
        f = r["first"]
        out[m] = [f["seconds"], (r["second"] or f)["seconds"], f["backend_s"], f["programs"], r["map"]]
    return out


def worker(args):
    numba.set_num_threads(args.threads)
    if args.worker not in FAISS_FREE:
        import faiss

        faiss.omp_set_num_threads(args.threads)
    res = globals()[f"run_{args.section}"](args.worker, args.quick)
    print("RESULT " + json.dumps(res))


# ------------------------------------------------------------------ driver
def spawn(section, who, threads, quick):
    if section in train_step.SECTIONS:  # its own worker script: torch's runs in torch's interpreter
        return train_step.spawn(section, who, threads, quick)
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               OMP_WAIT_POLICY="PASSIVE")
    cmd = [sys.executable, __file__, "--worker", who, "--section", section, "--threads", str(threads)]
    out = subprocess.run(cmd + (["--quick"] if quick else []), env=env, capture_output=True, text=True)
    lines = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
    if out.returncode or not lines:
        raise RuntimeError(f"worker {section}/{who}/{threads} failed:\n{out.stderr[-3000:]}")
    return json.loads(lines[-1][7:])


def machine_line():
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    try:
        import faiss

        fv = faiss.__version__
    except ImportError:
        fv = "not installed"
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"machine: {cpu}, {os.cpu_count()} cores, {mem:.0f} GiB; Python {platform.python_version()}, "
            f"numpy {np.__version__}, numba {numba.__version__}, faiss {fv}; load average at start "
            f"{os.getloadavg()[0]:.1f}")


def collect(sections, rounds, quick, has_faiss):
    """{(section, who, threads): {case: [first, best, ...]}} with the minimum over rounds."""
    jobs = [(sec, who, th) for sec in sections for who in CASES[sec] for th in THREADS.get(sec, (1, 2))
            if has_faiss or who in FAISS_FREE]
    best = {}
    for r in range(rounds):
        t0 = time.perf_counter()
        for sec, who, th in jobs[r % len(jobs):] + jobs[:r % len(jobs)]:  # rotated order each round
            for case, vals in spawn(sec, who, th, quick).items():
                old = best.setdefault((sec, who, th), {}).get(case)
                vals = list(vals)
                if old is not None:
                    vals[0], vals[1] = min(old[0], vals[0]), min(old[1], vals[1])
                best[(sec, who, th)][case] = vals
        print(f"round {r + 1}/{rounds}: {time.perf_counter() - t0:.0f} s, load average {os.getloadavg()[0]:.1f}",
              flush=True)
    return best


def report(best, sections, has_faiss, quick):
    get = lambda sec, who, th: best.get((sec, who, th), {})  # noqa: E731
    if "eval" in sections:
        print("\n## mAP@ALL + tie-aware mAP + P/R@r2 (one pass) vs the distance-matrix floor")
        print("| bits | threads | floor (s) | jhash (s) | jhash / floor (goal <= 3) | first call jhash (s) | mAP@ALL |")
        print("|---|---|---|---|---|---|---|")
        for th in (1, 2):
            for bits, (fl, jh) in ((b, (get("eval", "floor", th)[b], get("eval", "jhash", th)[b])) for b in ("32", "64")):
                print(f"| {bits} | {th} | {fl[1]:.4f} | {jh[1]:.4f} | **{jh[1] / fl[1]:.2f}x** | {jh[0]:.2f} | "
                      f"{jh[2]['map@all']:.6f} |")
    if "hamming" in sections:
        print("\n## jhash.codes.hamming_distance vs numba (allocating) and faiss.hammings")
        print("| bits | threads | numba (s) | faiss (s) | jhash (s) | jhash / fastest (goal <= 1.5) | first call jhash (s) |")
        print("|---|---|---|---|---|---|---|")
        for th in (1, 2):
            for bits in ("32", "64", "128"):
                nb, jh = get("hamming", "numba", th)[bits], get("hamming", "jhash", th)[bits]
                fa = get("hamming", "faiss", th).get(bits)
                assert fa is None or fa[2] == nb[2] == jh[2], "distance matrices differ"
                fastest = min(nb[1], fa[1] if fa else float("inf"))
                print(f"| {bits} | {th} | {nb[1]:.4f} | {f'{fa[1]:.4f}' if fa else '-'} | {jh[1]:.4f} | "
                      f"**{jh[1] / fastest:.2f}x** | {jh[0]:.2f} |")
    if "topk" in sections and has_faiss:
        print("\n## HammingIndex.search vs faiss IndexBinaryFlat (speed ratio = faiss time / jhash time; goal >= 1)")
        print("| codes | bits | k | 1 thread: jhash (s) | faiss (s) | ratio | 2 threads: jhash (s) | faiss (s) | ratio |")
        print("|---|---|---|---|---|---|---|---|---|")
        for case, j1 in get("topk", "jhash", 1).items():
            n, bits, k = case.split("/")
            f1, j2, f2 = get("topk", "faiss", 1)[case], get("topk", "jhash", 2)[case], get("topk", "faiss", 2)[case]
            assert j1[2] == f1[2] == j2[2] == f2[2], f"top-k distances differ at {case}"
            print(f"| {int(n):,} | {bits} | {k} | {j1[1]:.4f} | {f1[1]:.4f} | **{f1[1] / j1[1]:.2f}** | "
                  f"{j2[1]:.4f} | {f2[1]:.4f} | **{f2[1] / j2[1]:.2f}** |")
    if "radius" in sections and has_faiss:
        print("\n## range_search, radius 2, planted near duplicates, vs faiss IndexBinaryHash (ratio = faiss / jhash)")
        print("| codes | bits | threads | jhash (ms/query) | faiss (ms/query) | ratio | mean hits/query | "
              "build jhash / faiss (s) |")
        print("|---|---|---|---|---|---|---|---|")
        for th in (1, 2):
            for case, jh in get("radius", "jhash", th).items():
                fa = get("radius", "faiss", th)[case]
                assert jh[2] == fa[2], f"radius counts differ at {case}"
                n, bits = case.split("/")
                nq = sizes(quick)["rq"]
                print(f"| {int(n):,} | {bits} | {th} | {1e3 * jh[1] / nq:.4f} | {1e3 * fa[1] / nq:.4f} | "
                      f"**{fa[1] / jh[1]:.2f}** | {jh[2] / nq:.1f} | {jh[3]:.2f} / {fa[3]:.2f} |")
    if "compile" in sections:
        print("\n## First call in a fresh process (tiny inputs): empty numba cache vs filled cache (s)")
        print("| call | cold (compiles) | warm (loads the cache) |")
        print("|---|---|---|")
        for name, cold in get("compile", "cold", 2).items():
            print(f"| {name} | {cold[0]:.2f} | {get('compile', 'warm', 2)[name][0]:.2f} |")
    if "shallow" in sections:
        code = os.environ.get("JHASH_BENCH_OCTAVE_CODE") or None
        print("\n## Shallow fits, mnist, 32 bits: jhash vs the authors' code under Octave (ratio = Octave / jhash; "
              "goal >= 10)")
        print("| method | jhash 1st call, cold (s) | compile (s, programs) | 1st call, warm cache (s) | 2nd call (s) | "
              "Octave (s) | Octave / 1st cold | Octave / 1st warm | Octave / 2nd | jhash mAP@ALL |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for m, cold in get("shallow", "cold", 2).items():
            warm, octave = get("shallow", "warm", 2).get(m), get("shallow", "octave", 2).get(m)
            second = None if sf.base_method(m) in SHALLOW_FIRST_ONLY else cold[1]
            o = octave[0] if octave else None
            r = lambda j: f"**{o / j:.1f}x**" if o and j else "-"  # noqa: E731
            print(f"| {m} | {cold[0]:.2f} | {cold[2]:.2f}, {cold[3]} | {f'{warm[0]:.2f}' if warm else '-'} | "
                  f"{f'{second:.2f}' if second else 'not run'} | {f'{o:.2f}' if o else (sf.octave_missing(m, code) or 'octave failed')} | "
                  f"{r(cold[0])} | {r(warm[0] if warm else None)} | {r(second)} | {cold[4]:.4f} |")
    if "profile" in sections:
        print("\n## Where the eval pass's time goes, 1 thread (s; ns per query-item pair)")
        print("| bits | step | seconds | ns / pair |")
        print("|---|---|---|---|")
        n_pairs = np.prod(sizes(quick)["eval"])
        for case, (_, t) in get("profile", "jhash", 1).items():
            bits, step = case.split("/", 1)
            print(f"| {bits} | {step} | {t:.4f} | {1e9 * t / n_pairs:.2f} |")
    train_step.report(best, sections, quick)
    if not has_faiss:
        print("\nfaiss is not installed (pip install faiss-cpu): the faiss columns and sections are skipped")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sections", default=",".join(c for c in CASES if c not in NOT_DEFAULT),
                    help="comma-separated: " + ",".join(CASES))
    ap.add_argument("--octave-code", default=None, help="shallow: a local copy of the authors' code "
                    "(experiments/bench/shallow_fit.py's docstring)")
    ap.add_argument("--shallow-methods", default=None, help=f"shallow: comma-separated (default {SHALLOW_METHODS})")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--torch-python", help="the interpreter of the torch contender (default: $JHASH_TORCH_PYTHON, "
                    "else this one if it imports torch)")
    ap.add_argument("--quick", action="store_true", help="small sizes, 2 rounds")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--section", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    if args.octave_code:
        os.environ["JHASH_BENCH_OCTAVE_CODE"] = args.octave_code
    if args.shallow_methods:
        if set(args.shallow_methods.split(",")) - set(sf.DEFAULT):
            ap.error(f"--shallow-methods must be a comma-separated subset of {SHALLOW_METHODS}; "
                     f"got {args.shallow_methods!r}")
        os.environ["JHASH_BENCH_SHALLOW"] = args.shallow_methods
    if args.torch_python:
        os.environ["JHASH_TORCH_PYTHON"] = train_step.TORCH_PYTHON = args.torch_python
    sections = [s for s in args.sections.split(",") if s]
    unknown = set(sections) - set(CASES)
    if unknown:
        ap.error(f"unknown sections {sorted(unknown)}")
    try:
        import faiss  # noqa: F401

        has_faiss = True
    except ImportError:
        has_faiss = False
    print(machine_line())
    rounds = 2 if args.quick and args.rounds == 5 else args.rounds
    print(f"{rounds} rounds, each contender in its own process, alternated; minimum times"
          f"{' (--quick sizes)' if args.quick else ''}", flush=True)
    report(collect(sections, rounds, args.quick, has_faiss), sections, has_faiss, args.quick)


if __name__ == "__main__":
    main()
