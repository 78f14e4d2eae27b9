"""Speed of mAP@ALL: jhash.metrics against the per-query NumPy loop of the DeepHash collections.

Run:  python experiments/bench/eval_speed.py          (1,000 queries x 59,000 codes, 32 and 64 bits)
      python experiments/bench/eval_speed.py --quick  (small sizes, seconds)

Codes are noisy copies of per-class centre codes (10 classes), so mAP is far from trivial.
Prints: jhash time, baseline time, their ratio, the time of the Hamming distance matrix
alone with jhash.codes (the floor), and the mAP values.  The baseline's default quicksort
is not stable, so on ties its value can differ slightly from the (index-stable) jhash value;
a stable-argsort variant of the same loop is also computed to show exact agreement.
"""
import argparse
import time

import numpy as np


def make_data(n_q, n_db, q, n_classes=10, noise=1.5, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.where(rng.standard_normal((n_classes, q)) >= 0, 1, -1)
    ql = rng.integers(0, n_classes, n_q)
    dl = rng.integers(0, n_classes, n_db)

    def gen(lab):
        x = centres[lab] + noise * rng.standard_normal((len(lab), q))
        return np.where(x >= 0, 1, -1).astype(np.int8)

    return gen(ql), gen(dl), ql, dl


def deephash_map(qB, rB, query_L, retrieval_L, kind="quicksort"):
    """The usual per-query NumPy mAP@ALL loop (DeepHash collections), written here."""
    num_query = query_L.shape[0]
    q = qB.shape[1]
    rBf = rB.astype(np.float64)
    APx = []
    for i in range(num_query):
        gnd = (retrieval_L == query_L[i]).astype(np.float64)
        tsum = np.sum(gnd)
        if tsum == 0:
            APx.append(0.0)
            continue
        hamm = 0.5 * (q - np.dot(rBf, qB[i]))
        ind = np.argsort(hamm, kind=kind)
        gnd = gnd[ind]
        count = np.linspace(1, tsum, int(tsum))
        tindex = np.asarray(np.where(gnd == 1)) + 1.0
        APx.append(np.mean(count / tindex))
    return float(np.mean(APx))


def best_of(fn, repeat):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    ap.add_argument("--repeat", type=int, default=3, help="timed repetitions (best is kept)")
    ap.add_argument("--jax", action="store_true",
                    help='also time backend="jax" (the jitted XLA counting sort, meant for GPU / TPU)')
    args = ap.parse_args()

    import jax
    from jhash import codes, metrics

    n_q, n_db = (200, 10000) if args.quick else (1000, 59000)
    print(f"jax {jax.__version__} backend={jax.default_backend()} devices={jax.device_count()}")
    print(f"mAP@ALL, {n_q} queries x {n_db} database codes, 10 classes")
    for q in (32, 64):
        Q, B, ql, dl = make_data(n_q, n_db, q, seed=q)
        qp, bp = codes.pack(Q, np.uint32), codes.pack(B, np.uint32)

        def floor():
            return codes.hamming_distance(qp, bp).block_until_ready()

        def ours():
            return metrics.mean_average_precision(Q, B, ql, dl)

        floor(), ours()                                   # compile / warm up
        t_floor, _ = best_of(floor, args.repeat)
        t_ours, m_ours = best_of(ours, args.repeat)
        t_base, m_base = best_of(lambda: deephash_map(Q, B, ql, dl), 1)
        m_stable = deephash_map(Q, B, ql, dl, kind="stable")
        print(f"\nq={q} bits")
        print(f"  jhash mAP            {t_ours:8.3f} s   mAP={m_ours:.10f}")
        print(f"  numpy loop (qsort)   {t_base:8.3f} s   mAP={m_base:.10f}  (|diff|={abs(m_base - m_ours):.2e}, unstable ties)")
        print(f"  numpy loop (stable)            mAP={m_stable:.10f}  (|diff|={abs(m_stable - m_ours):.2e})")
        print(f"  distance floor       {t_floor:8.3f} s   (jhash.codes.hamming_distance, int32 {n_q}x{n_db})")
        print(f"  speed-up vs loop     {t_base / t_ours:8.2f} x   (target >= 4)")
        print(f"  jhash / floor        {t_ours / t_floor:8.2f} x   (target <= 3)")
        print(f"  agree with stable loop: {abs(m_stable - m_ours) < 1e-9}")
        if args.jax:
            def ours_jax():
                return metrics.mean_average_precision(Q, B, ql, dl, backend="jax")

            ours_jax()
            t_jax, m_jax = best_of(ours_jax, args.repeat)
            print(f"  jhash mAP, jax       {t_jax:8.3f} s   mAP={m_jax:.10f}  ({jax.default_backend()}; "
                  f"{t_base / t_jax:.2f} x the loop)")


if __name__ == "__main__":
    main()
