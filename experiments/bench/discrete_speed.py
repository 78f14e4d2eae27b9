"""Speed of the discrete solvers: jhash (jitted lax loops) against NumPy bit loops written as the authors' code.

Run:  python experiments/bench/discrete_speed.py            (ADSH V update on 69,000 points at
                                                           12/32/64 bits, m = 2,000; SDH's DCC on
                                                           5,000 points, 10 classes, 32 bits; BQP
                                                           restart hit rates)
      python experiments/bench/discrete_speed.py --quick    (small sizes, seconds)

ADSH: one V update (Q = -2 q S^T U - 2 gamma Ubar, then bit by bit
V_k = -sign(2 V_{-k} U_{-k}^T U_k + Q_k)), the baseline being the loop of
jiangqy/ADSH-AAAI2018 ``ADSH_pytorch/ADSH_CIFAR_10.py`` (column deletion by index, one
product per bit). SDH: the B-step by DCC, up to 10 sweeps stopping when a sweep changes
nothing, the baseline being the loop of Fumin Shen's ``SDH.m``. Both sides get the same
float32 inputs (the authors' code mixes float32 S with float64 U; float32 throughout keeps
the comparison like for like) and the codes are asserted equal (ADSH: except after a bit whose
argument is a float32 near-tie, which the two summation orders may round either way; each such
case is checked in float64 and counted). Times are the median of
``--repeat`` runs after a warm-up (jhash's warm-up includes compilation, reported apart).
The ``Q`` product is also timed alone, since both sides spend most of their time there.

BQP: the fraction of random 12-variable problems whose global optimum (by enumeration of
all 4,096 columns) ``bqp_minimize`` finds, by number of random restarts, and how often the
authors' balanced-partition heuristic alone finds it.
"""
import argparse
import functools
import itertools
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from jhash import solvers


def median_time(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def timed_jax(fn, repeat):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    t, out = median_time(lambda: jax.block_until_ready(fn()), repeat)
    return first, t, np.asarray(out)


# ---------------------------------------------------------------- ADSH

def adsh_inputs(n, m, q, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    omega = rng.permutation(n)[:m]
    s = (labels[omega][:, None] == labels[None, :]).astype(np.float32)
    r = s.sum() / (1 - s).sum()
    s = s * (1 + r) - r                                   # the authors' calc_sim rescaling
    u = np.tanh(rng.standard_normal((m, q))).astype(np.float32)
    v = np.where(rng.standard_normal((n, q)) >= 0, 1.0, -1.0).astype(np.float32)
    return v, u, s.astype(np.float32), omega.astype(np.int32)


def adsh_numpy(v, u, s, omega, gamma):
    """The authors' V update (ADSH_CIFAR_10.py), in float32, with sign(0) = +1."""
    v = v.copy()
    q = v.shape[1]
    bar_u = np.zeros_like(v)
    bar_u[omega, :] = u
    big_q = -2 * q * s.T.dot(u) - 2 * gamma * bar_u
    for k in range(q):
        sel = np.setdiff1d(np.arange(q), k)
        arg = -(big_q[:, k] + 2 * v[:, sel].dot(u[:, sel].T.dot(u[:, k])))
        v[:, k] = np.where(arg >= 0, 1.0, -1.0)
    return v


def check_adsh_codes(out, ref, v, u, s, omega, gamma, rel_tol=1e-5):
    """Assert the two V agree except in rows whose first differing bit is a float32 near-tie.

    The two sides sum S^T U in different orders (OpenBLAS vs XLA), so a bit whose argument
    is ~0 can round either way (and the rest of that row then follows a different path).
    Such a bit is accepted only if its float64 argument, from the reference's earlier bits
    of that row, is below ``rel_tol`` times the sum of the magnitudes of all its products. Returns the
    number of differing codes.
    """
    bad_rows = np.flatnonzero(np.any(out != ref, axis=1))
    q = v.shape[1]
    u64 = u.astype(np.float64)
    g = u64.T @ u64
    for i in bad_rows:
        k = int(np.flatnonzero(out[i] != ref[i])[0])
        row = np.concatenate([ref[i, :k], v[i, k:]]).astype(np.float64)
        cross = s[:, i].astype(np.float64) @ u64[:, k]
        own = u64[np.flatnonzero(omega == i), k].sum()
        terms = np.concatenate([[-2 * q * cross, -2 * gamma * own], 2 * np.delete(row * g[:, k], k)])
        scale = np.abs(terms[1:]).sum() + 2 * q * np.abs(s[:, i].astype(np.float64) @ np.abs(u64[:, k]))
        assert abs(terms.sum()) <= rel_tol * scale, (
            f"row {i} bit {k}: argument {terms.sum():.3g} is not a near-tie")
    return int(np.sum(out != ref))


def bench_adsh(n, m, bits_list, repeat, gamma=200.0):
    rows = []
    update = jax.jit(functools.partial(solvers.adsh_update_v, gamma=gamma))
    for q in bits_list:
        v, u, s, omega = adsh_inputs(n, m, q)
        jv, ju, js, jo = (jax.device_put(x) for x in (v, u, s, omega))
        compile_s, t_jax, out = timed_jax(lambda: update(jv, ju, js, jo), repeat)
        t_np, ref = median_time(lambda: adsh_numpy(v, u, s, omega, gamma), repeat)
        mismatches = check_adsh_codes(out, ref, v, u, s, omega, gamma)
        t_q, _ = median_time(lambda: s.T.dot(u), repeat)
        rows.append((q, t_jax, t_np, t_np / t_jax, t_q, compile_s))
        print(f"ADSH V update n={n} m={m} q={q}: jhash {t_jax:.3f} s  numpy {t_np:.3f} s  "
              f"ratio {t_np / t_jax:.1f}x  (numpy S^T U alone {t_q:.3f} s; jhash first call {compile_s:.2f} s; "
              f"{mismatches} of {out.size} codes differ, each after a near-tie)", flush=True)
    return rows


# ---------------------------------------------------------------- SDH's DCC

def sdh_inputs(n, bits, classes, seed=0):
    rng = np.random.default_rng(seed)
    y = np.eye(classes, dtype=np.float32)[rng.integers(0, classes, n)]
    x = rng.standard_normal((n, bits)).astype(np.float32)
    f = (x + 2.0 * y @ rng.standard_normal((classes, bits))).astype(np.float32)   # F(X), label-informed
    b = np.where(rng.standard_normal((n, bits)) >= 0, 1.0, -1.0).astype(np.float32)
    w = np.linalg.solve(b.T @ b + np.eye(bits), b.T @ y).astype(np.float32)          # the G-step's W
    return b, y, f, w


def sdh_numpy(b, y, f, w, nu, max_sweeps=10):
    """SDH.m's B-step loop, in float32, with sign(0) = +1."""
    b = b.copy()
    big_q = nu * f + y.dot(w.T)
    for _ in range(max_sweeps):
        z0 = b.copy()
        for k in range(b.shape[1]):
            sel = np.setdiff1d(np.arange(b.shape[1]), k)
            b[:, k] = np.where(big_q[:, k] - b[:, sel].dot(w[sel]).dot(w[k]) >= 0, 1.0, -1.0)
        if np.linalg.norm(b - z0) < 1e-6 * np.linalg.norm(z0):
            break
    return b


def bench_sdh(n, bits, classes, repeat, nu=1e-5):
    b, y, f, w = sdh_inputs(n, bits, classes)
    dcc = jax.jit(functools.partial(solvers.sdh_dcc, nu=nu))
    compile_s, t_jax, out = timed_jax(lambda: dcc(b, y, f, w), repeat)
    t_np, ref = median_time(lambda: sdh_numpy(b, y, f, w, nu), repeat)
    mismatches = int(np.sum(out != ref))
    assert mismatches == 0, f"DCC: {mismatches} codes differ from the NumPy loop"
    print(f"SDH DCC n={n} classes={classes} q={bits}: jhash {t_jax:.4f} s  numpy {t_np:.4f} s  "
          f"ratio {t_np / t_jax:.1f}x  (jhash first call {compile_s:.2f} s)", flush=True)
    return t_jax, t_np


# ---------------------------------------------------------------- BQP hit rates

def bqp_hit_rates(count, m, restarts_list, seed=0):
    rng = np.random.default_rng(seed)
    every = np.array(list(itertools.product([-1.0, 1.0], repeat=m)))
    a = rng.standard_normal((count, m, m)).astype(np.float32)
    c = rng.standard_normal((count, m)).astype(np.float32)
    b0 = np.where(rng.standard_normal((count, m)) >= 0, 1.0, -1.0).astype(np.float32)

    def value(b):
        b = np.asarray(b, np.float64)
        return np.einsum("...i,...ij,...j->...", b, a.astype(np.float64), b) + np.einsum("...i,...i->...", c, b)

    optimum = np.min(np.einsum("ki,pij,kj->pk", every, a.astype(np.float64), every) + c @ every.T, axis=1)
    hit = lambda b: float(np.mean(value(b) <= optimum + 1e-5 * np.abs(optimum)))
    keys = jax.random.split(jax.random.key(seed), count)
    rates = {}
    for r in restarts_list:
        fn = jax.jit(jax.vmap(functools.partial(solvers.bqp_minimize, restarts=r)))
        rates[f"local search, {r} restarts"] = hit(fn(a, c, b0, key=keys))
    rates["balanced partition (authors' Solve)"] = hit(jax.jit(jax.vmap(solvers.bqp_balanced_partition))(a, c))
    for name, rate in rates.items():
        print(f"BQP m={m}, {count} Gaussian problems: {name}: global optimum in {100 * rate:.1f} %", flush=True)
    return rates


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"jax {jax.__version__}, {jax.devices()[0].platform}, {len(jax.devices())} device(s)")
    if args.quick:
        bench_adsh(5000, 200, [12, 32], args.repeat)
        bench_sdh(1000, 32, 10, args.repeat)
        bqp_hit_rates(50, 10, [0, 8])
    else:
        bench_adsh(69000, 2000, [12, 32, 64], args.repeat)
        bench_sdh(5000, 32, 10, args.repeat)
        bqp_hit_rates(500, 12, [0, 4, 8, 16])


if __name__ == "__main__":
    main()
