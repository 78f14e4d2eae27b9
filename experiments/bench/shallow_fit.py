"""Shallow fits: first call (cold and warm compile cache), compile time by program, second call,
and the authors' MATLAB code under GNU Octave (issue 18).

Run:  python experiments/bench/shallow_fit.py                    (sdh, cosdish, ksh, itq, agh; mnist, 32 bits)
      python experiments/bench/shallow_fit.py --methods sdh,itq,agh --rounds 3 --octave-code DIR
      python experiments/bench/shallow_fit.py --modes cold --detail   (no persistent cache, no Octave)

Each jhash measurement is a fresh process (``--worker``) that fits ``method`` with the settings
the experiments use (:func:`jhash.shallow.settings.fit_settings`) on the seed-0 protocol split of
mnist (5,000 training items, pixels / 255), twice with the same key (``--first-only``: once):
the first call is what a user waits for (tracing and XLA compilation included), the second
reuses the compiled programs. JAX's ``jax.monitoring`` duration events give the compile time:
``compile`` is XLA's backend compilation (``/jax/core/compile/backend_compile_duration``),
``trace`` tracing and lowering to MLIR; ``programs`` counts the backend compilations (``--detail``:
the programs that took longest). The worker then encodes the query and database items
(untimed) and prints mAP@ALL.

Modes, alternated in a rotated order for ``--rounds`` rounds (minimum times over rounds):
``cold``: no persistent compilation cache (a first run); ``warm``: JAX's persistent
compilation cache (``jax_compilation_cache_dir``, every program cached) in a folder that one
earlier, untimed process filled (``--cache DIR`` to keep it; default a temporary folder);
``octave``: the authors' code.

``--octave-code DIR``: when ``octave`` is on PATH, the driver experiments/bench/octave/
jhash_bench_<method>.m (ours: loads ``train.mat`` - the same training items as float64 ``X``,
class ids ``Y``, ``bits`` - adds the authors' folder to the path and times their training code,
setting ``fit_seconds``) runs with ``code_dir`` = DIR. Nothing of the authors' code is in this
repository; DIR holds copies of their public repositories:

* ``DIR/sshbir``: github Eddie-Wang1120/single-modal-supervised-hashing-baseline-for-image-retrieval
  (its folder ``SSHBIR Toolkit``: ``SDH/SDH.m``, ``COSDISH/``, ``KSH/OptProjectionFast.m`` - Wei
  Liu's, as in ColumbiaDVMM/Supervised-Hashing-with-Kernels - and ``utils/``) for SDH, COSDISH, KSH;
* ``DIR/hbir``: github willard-yuan/hashing-baseline-for-image-retrieval (its folder
  ``Method-ITQ``: ``trainITQ.m``) for ITQ;
* ``DIR/agh``: github ColumbiaDVMM/Anchor-Graph-Hashing (``OneLayerAGH_Train.m``, ``sqdist.m``)
  for AGH.

``METHOD@authors`` (COSDISH, KSH) fits jhash with the settings of the authors' demo that the driver
runs, where the experiments' differ (``AUTHORS_SETTINGS``): the same work on both sides.

Without Octave, DIR or a method's folder, the Octave column says why in one line and the bench
goes on. The drivers use each paper's demo settings (SDH: 1,000 anchors, sigma 0.4, 5 iterations;
KSH: 300 anchors, 2,000 labelled points; AGH: 300 anchors from 10 Lloyd iterations, s = 2), which
are not all jhash's (KSH: 1,000 anchors in the mnist config).
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

DEFAULT = ["sdh", "cosdish", "ksh", "itq", "agh", "cosdish@authors", "ksh@authors"]
# ``METHOD@authors``: jhash's fit with the settings of the authors' demo that the Octave driver runs, where
# the experiments' differ (COSDISH: 32 sampled columns, 10 iterations, their partition-only solver on the
# previous codes' residual; KSH: 300 anchors); the Octave column is the same driver as for METHOD.
AUTHORS_SETTINGS = {"cosdish": {"num_samples": 32, "iterations": 10, "solver": "partition", "residual": "previous"},
                    "ksh": {"anchors": 300}}


def base_method(spec):
    """``"ksh@authors"`` -> ``"ksh"``."""
    return spec.partition("@")[0]
ROOT = pathlib.Path(__file__).resolve().parents[2]


def training_data(data_dir):
    """The mnist seed-0 protocol training items as (features float32 / 255, labels)."""
    import numpy as np
    import jhash.data as jd
    ds = jd.load("mnist", data_dir=data_dir)
    split = jd.make_split(ds, jd.get_protocol("mnist"), 0)
    x = np.asarray(ds.x[split.train], np.float32).reshape(len(split.train), -1)
    return x, np.asarray(ds.y[split.train])


def worker(method, bits, data_dir, seed, cache=None, first_only=False):
    """Fits ``method`` twice (``first_only``: once) in this process; prints one JSON line of timings
    and the fit's mAP@ALL. ``cache``: a folder for JAX's persistent compilation cache (every program
    cached), None for none."""
    import jax
    if cache:
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    import jax.monitoring as mon
    import numpy as np

    events = []  # (name, seconds)
    mon.register_event_duration_secs_listener(
        lambda name, secs, **kw: events.append((name, secs, kw.get("fun_name", "?"))))

    from jhash import shallow
    from jhash.shallow.settings import fit_settings

    base, _, variant = method.partition("@")
    settings = fit_settings(base, dataset="mnist", bits=bits)
    if variant:
        settings["hyper"] = {**settings["hyper"], **AUTHORS_SETTINGS[base]}
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
    second = None if first_only else call()[0]
    codes = np.asarray(hasher.encode(x))
    print(json.dumps({"method": method, "bits": bits, "first": first, "second": second,
                      "codes_sum": int(codes.astype(np.int64).sum()), "map": test_map(hasher, data_dir, settings)}))


def test_map(hasher, data_dir, settings):
    """mAP@ALL of the fitted hash functions on the split's queries against its database."""
    import numpy as np
    import jhash.data as jd
    from jhash.metrics import mean_average_precision
    ds = jd.load("mnist", data_dir=data_dir)
    split = jd.make_split(ds, jd.get_protocol("mnist"), 0)
    feats = lambda idx: (np.asarray(ds.x[idx], np.float32).reshape(len(idx), -1)  # noqa: E731
                         / np.float32(settings["scale"]))
    y = np.asarray(ds.y)
    return mean_average_precision(hasher.encode(feats(split.query)), hasher.encode(feats(split.database)),
                                  y[split.query], y[split.database])


OCTAVE_DRIVERS = pathlib.Path(__file__).resolve().parent / "octave"
# the folder of the authors' code each driver needs under --octave-code DIR (see the module docstring)
OCTAVE_CODE = {"sdh": "sshbir", "cosdish": "sshbir", "ksh": "sshbir", "itq": "hbir", "agh": "agh"}


def octave_missing(method, code_dir):
    """Why the authors' code cannot run for ``method`` (one line), or None when it can."""
    method = base_method(method)
    if shutil.which("octave") is None:
        return "no octave"
    if code_dir is None:
        return "no --octave-code"
    if not (OCTAVE_DRIVERS / f"jhash_bench_{method}.m").exists():
        return f"no driver for {method}"
    if not (pathlib.Path(code_dir) / OCTAVE_CODE[method]).is_dir():
        return f"no {OCTAVE_CODE[method]}/ in {code_dir}"
    return None


def run_octave(method, bits, code_dir, data_dir):
    """Seconds of the authors' code on the same training data (``fit_seconds`` of the driver
    experiments/bench/octave/jhash_bench_<method>.m), or a one-line reason it was not run."""
    method = base_method(method)
    missing = octave_missing(method, code_dir)
    if missing:
        return missing
    import numpy as np
    import scipy.io
    x, y = training_data(data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        scipy.io.savemat(pathlib.Path(tmp) / "train.mat", {"X": x.astype(np.float64) / 255.0,
                                                           "Y": y.astype(np.float64), "bits": float(bits)})
        quote = lambda path: str(pathlib.Path(path).resolve()).replace("'", "''")  # noqa: E731
        cmd = ["octave", "--no-gui", "--quiet", "--eval",
               f"code_dir = '{quote(code_dir)}'; addpath('{quote(OCTAVE_DRIVERS)}'); cd('{tmp}'); "
               f"jhash_bench_{method}; printf('%f\\n', fit_seconds);"]
        out = subprocess.run(cmd, capture_output=True, text=True)
        try:
            return float(out.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            return "octave failed: " + (out.stderr.strip().splitlines() or ["?"])[-1]


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


def jhash_run(method, bits, data_dir, seed, cache=None, first_only=False):
    """One fresh worker process: its JSON record, or a one-line reason it failed."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, __file__, "--worker", method, "--bits", str(bits), "--seed", str(seed),
                          "--data-dir", str(data_dir)] + (["--cache", str(cache)] if cache else [])
                         + (["--first-only", method] if first_only else []), capture_output=True, text=True, env=env)
    if out.returncode:
        return "failed: " + (out.stderr.strip().splitlines() or ["?"])[-1]
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(methods, bits, data_dir, seed, rounds, modes, octave_code, cache=None, first_only=(), log=print):
    """{method: {mode: best record}} over ``rounds`` rounds, the modes of a method in a rotated order
    each round. jhash records are the worker's JSON (minimum first and second call over rounds),
    ``octave`` the driver's seconds (minimum) or its one-line reason."""
    caches = {}
    if "warm" in modes:
        root = pathlib.Path(cache) if cache else pathlib.Path(tempfile.mkdtemp(prefix="jhash-xla-cache-"))
        for m in methods:  # one untimed process fills each method's cache
            caches[m] = root / m
            jhash_run(m, bits, data_dir, seed, caches[m], first_only=True)
    runs = {(m, mode): [] for m in methods for mode in modes}
    try:
        for r in range(rounds):
            octave = {}  # one Octave run per round for METHOD and METHOD@authors (the same driver)
            for m in methods:
                for mode in modes[r % len(modes):] + modes[:r % len(modes)]:
                    if mode == "octave":
                        if base_method(m) not in octave:
                            octave[base_method(m)] = run_octave(m, bits, octave_code, data_dir)
                        runs[m, mode].append(octave[base_method(m)])
                    else:
                        runs[m, mode].append(jhash_run(m, bits, data_dir, seed, caches.get(m) if mode == "warm" else
                                                       None, first_only=m in first_only))
            log(f"round {r + 1}/{rounds} done, load average {os.getloadavg()[0]:.1f}")
    finally:
        if "warm" in modes and not cache:
            shutil.rmtree(root, ignore_errors=True)
    return {m: {mode: best_of(runs[m, mode]) for mode in modes} for m in methods}


def best_of(records):
    """The minimum over rounds: seconds for Octave; for jhash the record of the fastest first call,
    with the fastest second call of any round. A reason (str) when no round succeeded."""
    numbers = [r for r in records if isinstance(r, float)]
    if numbers:
        return min(numbers)
    ok = [r for r in records if isinstance(r, dict)]
    if not ok:
        return records[-1] if records else None
    best = dict(min(ok, key=lambda r: r["first"]["seconds"]))
    seconds = [r["second"] for r in ok if r["second"]]
    best["second"] = min(seconds, key=lambda c: c["seconds"]) if seconds else None
    return best


def table(best, bits, detail=False):
    """The report lines: one row per method (seconds; ratios Octave / jhash)."""
    num = lambda v: f"{v:.2f}" if isinstance(v, float) else (v or "-")  # noqa: E731
    ratio = lambda o, j: f"{o / j:.1f}x" if isinstance(o, float) and isinstance(j, float) and j > 0 else "-"  # noqa: E731
    lines = [f"| method | jhash 1st call, cold (compile s, programs) | 1st call, warm cache | 2nd call | "
             f"Octave | Octave / 1st cold | Octave / 1st warm | Octave / 2nd | jhash mAP@ALL |",
             "|---|---|---|---|---|---|---|---|---|"]
    for m, rec in best.items():
        cold, warm, octave = rec.get("cold"), rec.get("warm"), rec.get("octave")
        get = lambda r, call: r[call]["seconds"] if isinstance(r, dict) and r.get(call) else None  # noqa: E731
        c1, w1 = get(cold, "first"), get(warm, "first")
        c2 = min((v for v in (get(cold, "second"), get(warm, "second")) if v is not None), default=None)
        comp = (f" ({cold['first']['backend_s']:.1f}, {cold['first']['programs']})" if isinstance(cold, dict) else
                (f" ({cold})" if cold else ""))
        mp = next((r["map"] for r in (cold, warm) if isinstance(r, dict)), None)
        lines.append(f"| {m} | {num(c1)}{comp} | {num(w1) if warm else '-'} | {num(c2)} | {num(octave)} | "
                     f"{ratio(octave, c1)} | {ratio(octave, w1)} | {ratio(octave, c2)} | "
                     f"{f'{mp:.4f}' if mp is not None else '-'} |")
        if detail and isinstance(cold, dict):
            lines.append(f"|  | compile by program, cold first call: " + ", ".join(
                f"{n} {t:.2f}" for n, t in cold["first"]["top"]) + f"; codes sum {cold['codes_sum']} |||||||| ")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", default=",".join(DEFAULT))
    ap.add_argument("--bits", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--modes", default="cold,warm,octave", help="comma-separated: cold, warm, octave")
    ap.add_argument("--octave-code", default=None, help="a local copy of the authors' code (see the docstring)")
    ap.add_argument("--cache", default=None, help="keep the persistent compilation caches of the warm mode here")
    ap.add_argument("--first-only", default="", help="methods fitted once per process (no second call)")
    ap.add_argument("--detail", action="store_true", help="also the programs that took the most compile time")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.bits, args.data_dir, args.seed, args.cache, args.worker in args.first_only.split(","))
        return
    modes = [m for m in args.modes.split(",") if m]
    if set(modes) - {"cold", "warm", "octave"} or not modes:
        ap.error(f"--modes must be a comma-separated subset of cold, warm, octave; got {args.modes!r}")
    if set(args.methods.split(",")) - set(DEFAULT):
        ap.error(f"--methods must be a comma-separated subset of {','.join(DEFAULT)}; got {args.methods!r}")
    print(f"machine: {machine_line()}")
    print(f"mnist, {args.bits} bits, seed {args.seed}; seconds, minimum over {args.rounds} round(s)", flush=True)
    best = measure(args.methods.split(","), args.bits, args.data_dir, args.seed, args.rounds, modes, args.octave_code,
                   args.cache, tuple(m for m in args.first_only.split(",") if m))
    print(f"load average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print("\n".join(table(best, args.bits, args.detail)))


if __name__ == "__main__":
    main()
