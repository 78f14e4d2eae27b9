"""Shallow fits: first-call time, JIT compile time and count, second-call time (issue 18).

Run:  python experiments/bench/shallow_fit.py                       (sdh, cosdish, ksh, itq, agh; mnist, 32 bits)
      python experiments/bench/shallow_fit.py --methods sdh,itq --bits 16
      python experiments/bench/shallow_fit.py --octave-code DIR      (also the authors' MATLAB code under Octave)
      python experiments/bench/shallow_fit.py --cache DIR            (JAX's persistent compilation cache; run twice)

Each method is fitted in a fresh process (``--worker``) with the settings the experiments use
(:func:`jhash.shallow.settings.fit_settings`) on the seed-0 protocol split of mnist (5,000
training items, pixels / 255), twice with the same key: the first call is what a user waits
for (tracing and XLA compilation included), the second reuses the compiled programs. JAX's
``jax.monitoring`` duration events give the compile time: ``backend`` is XLA's compilation
(``/jax/core/compile/backend_compile_duration``), ``trace`` tracing and lowering to MLIR (the
jaxpr-trace and jaxpr-to-MLIR events); ``programs`` counts the backend compilations. A second
call that compiles again shows up as a non-zero ``2nd compiles``.

``--octave-code DIR``: when ``octave`` is on PATH and DIR holds a local copy of the authors' code
(nothing of it is in this repository), each method's Octave time is the ``fit_seconds`` that
``DIR/jhash_bench_<method>.m`` sets, run with ``code_dir`` = DIR (on the path) in a folder holding
``train.mat`` (``X`` the same training features, float64, ``Y`` the class ids, ``bits``); the
script adds the authors' folders it needs and times their training code. Without Octave, the
directory or a method's script, that column says so (the bench goes on).
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tempfile
import time

DEFAULT = ["sdh", "cosdish", "ksh", "itq", "agh"]
ROOT = pathlib.Path(__file__).resolve().parents[2]


def training_data(data_dir):
    """The mnist seed-0 protocol training items as (features float32 / 255, labels)."""
    import numpy as np
    import jhash.data as jd
    ds = jd.load("mnist", data_dir=data_dir)
    split = jd.make_split(ds, jd.get_protocol("mnist"), 0)
    x = np.asarray(ds.x[split.train], np.float32).reshape(len(split.train), -1)
    return x, np.asarray(ds.y[split.train])


def worker(method, bits, data_dir, seed, cache=None):
    """Fits ``method`` twice in this process; prints one JSON line of timings. ``cache``: a folder for
    JAX's persistent compilation cache (every program cached), None for none."""
    import jax
    if cache:
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    import jax.monitoring as mon
    import numpy as np

    events = []  # (name, seconds)
    mon.register_event_duration_secs_listener(
        lambda name, secs, **kw: events.append((name, secs, kw.get("fun_name", "?"))))

    from jhash import shallow
    from jhash.shallow.settings import fit_settings

    settings = fit_settings(method, dataset="mnist", bits=bits)
    x, y = training_data(data_dir)
    x = x / np.float32(settings["scale"])
    fit = shallow.get_method(settings["fit"])

    def call():
        start = len(events)
        t0 = time.perf_counter()
        hasher = fit(x, y, bits=bits, key=jax.random.key(seed), **settings["hyper"])
        jax.block_until_ready(hasher.params)
        seconds = time.perf_counter() - t0
        ev = events[start:]
        backend = [(s, f) for n, s, f in ev if n.endswith("backend_compile_duration")]
        trace = sum(s for n, s, _ in ev if n.endswith(("jaxpr_trace_duration", "jaxpr_to_mlir_module_duration")))
        by_name = {}
        for s, f in backend:
            by_name[f] = by_name.get(f, 0.0) + s
        top = sorted(by_name.items(), key=lambda kv: -kv[1])[:6]
        return {"seconds": seconds, "backend_s": sum(s for s, _ in backend), "trace_s": trace,
                "programs": len(backend), "largest_s": max((s for s, _ in backend), default=0.0),
                "top": [[f, round(s, 2)] for f, s in top]}, hasher

    first, hasher = call()
    second, _ = call()
    codes = np.asarray(hasher.encode(x))
    print(json.dumps({"method": method, "bits": bits, "first": first, "second": second,
                      "codes_sum": int(codes.astype(np.int64).sum())}))


def run_octave(method, bits, code_dir, data_dir):
    """Seconds of the authors' code on the same training data, or a reason it was not run."""
    if shutil.which("octave") is None:
        return "no octave"
    if code_dir is None:
        return "no code dir"
    script = pathlib.Path(code_dir) / f"jhash_bench_{method}.m"
    if not script.exists():
        return f"no {script.name}"
    import numpy as np
    import scipy.io
    x, y = training_data(data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        scipy.io.savemat(pathlib.Path(tmp) / "train.mat", {"X": x.astype(np.float64) / 255.0,
                                                           "Y": y.astype(np.float64), "bits": float(bits)})
        code = str(pathlib.Path(code_dir).resolve()).replace("'", "''")
        cmd = ["octave", "--no-gui", "--quiet", "--eval",
               f"code_dir = '{code}'; addpath(code_dir); cd('{tmp}'); jhash_bench_{method}; "
               "printf('%f\\n', fit_seconds);"]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode:
            return "octave failed: " + (out.stderr.strip().splitlines() or ["?"])[-1]
        return float(out.stdout.strip().splitlines()[-1])


def machine_line():
    """CPU model, core count, load average and the JAX version."""
    import jax
    cpu = platform.processor() or platform.machine()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return f"{cpu}, {os.cpu_count()} cores, load average {load}, jax {jax.__version__}, {platform.python_version()}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", default=",".join(DEFAULT))
    ap.add_argument("--bits", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--octave-code", default=None, help="a local copy of the authors' code (see the docstring)")
    ap.add_argument("--cache", default=None, help="JAX's persistent compilation cache in this folder: a second "
                    "run of the bench shows the first call of a process whose programs are on disk")
    ap.add_argument("--detail", action="store_true", help="also the programs that took the most compile time")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.bits, args.data_dir, args.seed, args.cache)
        return
    print(f"machine: {machine_line()}")
    print(f"mnist, {args.bits} bits, seed {args.seed}; seconds (compile = XLA backend; trace = tracing + lowering)")
    print(f"{'method':8} {'1st call':>9} {'compile':>8} {'programs':>8} {'largest':>8} {'trace':>6} "
          f"{'2nd call':>9} {'2nd compile':>11} {'programs':>8} {'octave':>10}")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    for method in args.methods.split(","):
        out = subprocess.run([sys.executable, __file__, "--worker", method, "--bits", str(args.bits),
                              "--seed", str(args.seed), "--data-dir", args.data_dir]
                             + (["--cache", args.cache] if args.cache else []),
                             capture_output=True, text=True, env=env)
        if out.returncode:
            print(f"{method:8} failed: {(out.stderr.strip().splitlines() or ['?'])[-1]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        f, s = r["first"], r["second"]
        octave = run_octave(method, args.bits, args.octave_code, args.data_dir)
        octave = f"{octave:.1f}" if isinstance(octave, float) else octave
        print(f"{method:8} {f['seconds']:9.2f} {f['backend_s']:8.2f} {f['programs']:8d} {f['largest_s']:8.2f} "
              f"{f['trace_s']:6.2f} {s['seconds']:9.2f} {s['backend_s']:11.2f} {s['programs']:8d} {octave:>10}", flush=True)
        if args.detail:
            print("         compile by program, first call: " + ", ".join(f"{n} {t:.2f}" for n, t in f["top"])
                  + f"; codes sum {r['codes_sum']}", flush=True)


if __name__ == "__main__":
    main()
