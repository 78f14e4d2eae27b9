"""Evaluation at 10^5-10^7 database codes in bounded memory: time and peak memory of
``jhash.evaluate.retrieval_metrics`` (what ``jhash eval`` and the trainer compute: mAP@ALL,
mAP@k, tie-aware mAP, precision/recall within radius 2 by the ranking pass and by hash lookup
in the index, bit balance, distinct codes).

Run:  python experiments/bench/eval_scale.py                 (1,000 queries; 10^5, 10^6, 10^7 codes of 64 bits)
      python experiments/bench/eval_scale.py --sizes 100000 --queries 200     (seconds)

Each size runs in a fresh process. The codes are noisy copies of 10 class centres (so the
metrics are not trivial), int8 +-1 as the evaluator receives them. Printed per size: the
evaluation's wall time and its ratio to one exhaustive top-100 scan of the same queries by
``jhash.index.HammingIndex.search`` (the floor: one pass over the database), the peak resident
memory above what the data itself holds, and that extra memory as a fraction of the int8
codes and of the (queries x database) int32 distance matrix that a dense evaluator builds.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def make_codes(n, bits, labels, centres, rng, chunk=1 << 20):
    out = np.empty((n, bits), np.int8)
    for s in range(0, n, chunk):
        lab = labels[s:s + chunk]
        flip = rng.random((len(lab), bits), np.float32) < 0.1  # each bit of the class centre flipped w.p. 0.1
        out[s:s + chunk] = np.where(flip, -centres[lab], centres[lab])
    return out


def one_size(n_db: int, n_q: int, bits: int, map_k: int) -> dict:
    from jhash import codes, evaluate, index

    rng = np.random.default_rng(n_db)
    centres = np.where(rng.standard_normal((10, bits)) >= 0, 1, -1).astype(np.int8)
    ql, dl = rng.integers(0, 10, n_q), rng.integers(0, 10, n_db)
    q_codes, db_codes = make_codes(n_q, bits, ql, centres, rng), make_codes(n_db, bits, dl, centres, rng)
    # the floor: one exhaustive top-100 scan (also compiles the kernels the evaluator shares)
    idx = index.HammingIndex(bits, db_codes)
    qp = np.asarray(codes.pack(q_codes))
    idx.search(qp[:2], 100)
    started = time.perf_counter()
    idx.search(qp, 100)
    scan_s = time.perf_counter() - started
    del idx
    evaluate.retrieval_metrics(q_codes[:2], db_codes[:1000], ql[:2], dl[:1000], map_k=map_k)  # compile
    data_rss = rss_bytes()
    before_peak = peak_bytes()
    started = time.perf_counter()
    m = evaluate.retrieval_metrics(q_codes, db_codes, ql, dl, map_k=map_k)
    eval_s = time.perf_counter() - started
    extra = max(0, peak_bytes() - max(data_rss, before_peak))
    return {"n_db": n_db, "n_q": n_q, "bits": bits, "eval_s": eval_s, "scan_s": scan_s, "extra_bytes": extra,
            "codes_bytes": db_codes.nbytes, "dense_bytes": 4 * n_q * n_db,
            "map@all": m["map@all"], f"map@{map_k}": m[f"map@{map_k}"], "precision@r2": m["precision@r2"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="100000,1000000,10000000")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--bits", type=int, default=64)
    ap.add_argument("--map-k", type=int, default=1000)
    ap.add_argument("--one", type=int, default=0, help=argparse.SUPPRESS)  # the child process's size
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one_size(a.one, a.queries, a.bits, a.map_k)))
        return
    import jax

    print(f"jax {jax.__version__} backend={jax.default_backend()}; {a.queries} queries, {a.bits} bits, 10 classes")
    print(f"{'database':>10} {'eval s':>8} {'scan s':>7} {'eval/scan':>9} {'extra MiB':>9} {'/codes':>7} "
          f"{'/dense':>8} {'mAP@all':>8} {'P@r2':>7}")
    for n in (int(s) for s in a.sizes.split(",")):
        cmd = [sys.executable, __file__, "--one", str(n), "--queries", str(a.queries), "--bits", str(a.bits),
               "--map-k", str(a.map_k)]
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        print(f"{n:>10,} {r['eval_s']:8.1f} {r['scan_s']:7.2f} {r['eval_s'] / r['scan_s']:9.1f} "
              f"{r['extra_bytes'] / 2**20:9.0f} {r['extra_bytes'] / r['codes_bytes']:7.2f} "
              f"{r['extra_bytes'] / r['dense_bytes']:8.4f} {r['map@all']:8.4f} {r['precision@r2']:7.4f}", flush=True)


if __name__ == "__main__":
    main()
