"""Scale-out on host devices: do the codes depend on the device count, and what do canonical reductions cost?

  python experiments/bench/scaleout.py codes [--devices 1,2,4,8,2x2] [--set FIELD=VALUE ...]
      trains the default job (bare `jhash train`: DPSH on digits, 32 bits) once per device count
      (``PxD``: P processes of D host devices each, on jax.distributed with gloo) and counts the code
      bits that differ from the first run (query and database codes).
  python experiments/bench/scaleout.py time [--devices 1,2,4,8] [--repeats 3] [--steps 40] [--dtypes float32,bfloat16]
      step time of the jitted training step with and without ``config.deterministic_reductions`` (and
      in each ``config.dtype``), for the default job (MLP on digits, batch 64) and DPSH's CNN on 28x28
      inputs (batch 128).
  python experiments/bench/scaleout.py precision [--methods dpsh,hashnet,adsh] [--seeds 0,1,2] [--data-dir DIR]
                                              [--arg dataset=mnist,bits=32,cpu=true]
      mAP@ALL of float32 and bfloat16 (``config.dtype``) runs of each method's config with ``--arg``
      (default: mnist, 32 bits, the CPU-sized 3 epochs of experiments/results/deep_mnist.md), per seed.

Every measurement runs in its own subprocess (``XLA_FLAGS=--xla_force_host_platform_device_count=N``
is read once per process); the contenders alternate (round-robin over repeats) so that load on a
shared machine hits them alike, and the report gives the minimum time per step over the repeats.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[2]


def _env(devices: int) -> dict:
    return {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", "JAX_PLATFORMS": "cpu",
            "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _bits(workdir: pathlib.Path):
    import numpy as np

    with np.load(workdir / "codes.npz") as z:
        return np.unpackbits(z["query_codes"]), np.unpackbits(z["database_codes"])


def _train_processes(workdir, processes: int, devices: int, overrides: list[str]) -> None:
    """``jhash train`` as ``processes`` processes of ``devices`` host devices each (jax.distributed, gloo)."""
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "jhash.cli", "train", "--workdir", str(workdir), "--config.progress=false",
           *[f"--config.{o}" for o in overrides]]
    dist = (lambda i: ["--coordinator", f"localhost:{port}", "--num_processes", str(processes), "--process_id", str(i)]
            ) if processes > 1 else (lambda i: [])
    procs = [subprocess.Popen(cmd + dist(i), env=_env(devices), cwd=REPO, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for i in range(processes)]
    for i, p in enumerate(procs):
        err = p.communicate()[1]
        if p.returncode:
            sys.exit(f"{processes} x {devices} devices, process {i} failed:\n{err[-3000:]}")


def codes(devices: list[str], overrides: list[str]) -> None:
    """Default job at each device count (``N`` devices, or ``PxD``: P processes of D devices each);
    differing code bits against the first."""
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for n in devices:
            workdir = pathlib.Path(tmp) / f"dev{n}"
            processes, per_process = (int(v) for v in n.split("x")) if "x" in n else (1, int(n))
            _train_processes(workdir, processes, per_process, overrides)
            metrics = json.loads((workdir / "metrics.json").read_text())
            rows.append((n, workdir, metrics["map@all"]))
        q0, d0 = _bits(rows[0][1])
        print(f"| devices | query bits differing (of {q0.size}) | database bits differing (of {d0.size}) | mAP@ALL |")
        print("|---|---|---|---|")
        for n, workdir, map_all in rows:
            q, d = _bits(workdir)
            print(f"| {n} | {int((q != q0).sum())} | {int((d != d0).sum())} | {map_all:.5f} |")


# The jobs timed: (name, config file argument, overrides, input shape)
JOBS = {
    "mlp-digits": ("dataset=digits,bits=32", [], (64,)),
    "cnn-28px": ("dataset=mnist,bits=32", [], (28, 28, 1)),
}


def _time_child(job: str, deterministic: bool, steps: int, dtype: str = "float32") -> None:
    """In a subprocess: seconds per step of the jitted step (after 3 warm-up steps) on random inputs."""
    import jax
    import numpy as np

    from jhash import methods
    from jhash.config import apply_overrides, load_config
    from jhash.train.state import data_sharded, make_mesh
    from jhash.train.trainer import training_setup

    arg, overrides, shape = JOBS[job]
    c = load_config(str(REPO / "experiments/configs/dpsh.py") + ":" + arg)
    c = apply_overrides(c, [*overrides, f"deterministic_reductions={deterministic}", f"dtype={dtype}"])
    n_train = 512
    rng = np.random.default_rng(0)
    x = rng.random((n_train, *shape), dtype=np.float32)
    y = rng.integers(0, 10, n_train).astype(np.int32)
    method = methods.build(c, train_labels=y)
    mesh = make_mesh(0)
    state, step_fn = training_setup(method, c, mesh, x[:1], steps_per_epoch=n_train // c.batch_size,
                                    num_steps=steps + 3)
    sharding = data_sharded(mesh)
    batches = []
    for s in range(4):
        idx = rng.permutation(n_train)[: c.batch_size].astype(np.int32)
        batches.append(jax.device_put({"x": x[idx], "y": y[idx], "index": idx}, sharding))
    for s in range(3):
        state, _ = step_fn(state, batches[s % 4])
    jax.block_until_ready(state)
    start = time.perf_counter()
    for s in range(steps):
        state, _ = step_fn(state, batches[s % 4])
    jax.block_until_ready(state)
    print(json.dumps({"step_s": (time.perf_counter() - start) / steps, "devices": len(mesh.devices)}))


def timing(devices: list[int], repeats: int, steps: int, jobs: list[str], dtypes: list[str]) -> None:
    contenders = [(job, n, det, dt) for job in jobs for n in devices for det in (False, True) for dt in dtypes]
    best: dict = {}
    for r in range(repeats):
        for key in contenders:
            job, n, det, dt = key
            cmd = [sys.executable, __file__, "_child", job, str(det), str(steps), dt]
            out = subprocess.run(cmd, env=_env(n), cwd=REPO, capture_output=True, text=True)
            if out.returncode:
                sys.exit(f"{job} on {n} devices (deterministic={det}, {dt}) failed:\n{out.stderr[-3000:]}")
            step_s = json.loads(out.stdout.strip().splitlines()[-1])["step_s"]
            best[key] = min(best.get(key, float("inf")), step_s)
            print(f"repeat {r}: {job} devices={n} deterministic={det} {dt}: {1e3 * step_s:.2f} ms/step",
                  file=sys.stderr)
    print(f"min over {repeats} repeats of {steps} steps each")
    print("| job | dtype | devices | psum (ms/step) | canonical (ms/step) | canonical / psum |")
    print("|---|---|---|---|---|---|")
    for job in jobs:
        for dt in dtypes:
            for n in devices:
                off, on = best[job, n, False, dt], best[job, n, True, dt]
                print(f"| {job} | {dt} | {n} | {1e3 * off:.2f} | {1e3 * on:.2f} | {on / off:.3f} |")
    if len(dtypes) > 1:
        print(f"\n| job | devices | canonical step, {' / '.join(dtypes[1:])} / {dtypes[0]} |\n|---|---|---|")
        for job in jobs:
            for n in devices:
                ratios = [best[job, n, True, dt] / best[job, n, True, dtypes[0]] for dt in dtypes[1:]]
                print(f"| {job} | {n} | {' / '.join(f'{r:.3f}' for r in ratios)} |")


def precision(methods: list[str], seeds: list[int], data_dir: str, arg: str) -> None:
    """Each method's config with ``arg``; float32 and bfloat16 runs alternate, one process each (1 device)."""
    import numpy as np

    maps: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in methods:
            for seed in seeds:
                for dt in ("float32", "bfloat16"):
                    workdir = pathlib.Path(tmp) / f"{method}-{seed}-{dt}"
                    cmd = [sys.executable, "-m", "jhash.cli", "train", "--workdir", str(workdir),
                           "--config", str(REPO / f"experiments/configs/{method}.py") + ":" + arg,
                           f"--config.data_dir={data_dir}", f"--config.seed={seed}", f"--config.split_seed={seed}",
                           f"--config.dtype={dt}", "--config.progress=false"]
                    out = subprocess.run(cmd, env=_env(1), cwd=REPO, capture_output=True, text=True)
                    if out.returncode:
                        sys.exit(f"{method} seed {seed} {dt} failed:\n{out.stderr[-3000:]}")
                    maps[method, seed, dt] = json.loads((workdir / "metrics.json").read_text())["map@all"]
                    epoch_s = json.loads((workdir / "timing.json").read_text()).get("epoch_s", float("nan"))
                    print(f"{method} seed {seed} {dt}: mAP@ALL {maps[method, seed, dt]:.4f}, {epoch_s:.2f} s/epoch",
                          file=sys.stderr)
    print(f"config argument {arg}, seeds {seeds} (split, initialisation and data order), each method's config")
    print("| method | float32 mAP@ALL | bfloat16 mAP@ALL | bf16 - f32 (mean) | largest abs difference of a seed |")
    print("|---|---|---|---|---|")
    for method in methods:
        f32 = np.array([maps[method, s, "float32"] for s in seeds])
        b16 = np.array([maps[method, s, "bfloat16"] for s in seeds])
        print(f"| {method} | {f32.mean():.4f} ± {f32.std():.4f} | {b16.mean():.4f} ± {b16.std():.4f} | "
              f"{(b16 - f32).mean():+.4f} | {np.abs(b16 - f32).max():.4f} |")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        _time_child(sys.argv[2], sys.argv[3] == "True", int(sys.argv[4]), sys.argv[5])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("codes", "time", "precision"))
    parser.add_argument("--devices", default="1,2,4,8")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--jobs", default=",".join(JOBS))
    parser.add_argument("--dtypes", default="float32", help="config.dtype values to time (time)")
    parser.add_argument("--methods", default="dpsh,hashnet,adsh", help="methods (precision)")
    parser.add_argument("--seeds", default="0,1,2", help="seeds (precision)")
    parser.add_argument("--arg", default="dataset=mnist,bits=32,cpu=true", help="config file argument (precision)")
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"), help="where mnist is (precision)")
    parser.add_argument("--set", action="append", default=[], help="FIELD=VALUE config override (codes)")
    args = parser.parse_args()
    if args.what == "codes":
        codes(args.devices.split(","), args.set)
    elif args.what == "precision":
        precision(args.methods.split(","), [int(s) for s in args.seeds.split(",")], args.data_dir, args.arg)
    else:
        timing([int(d) for d in args.devices.split(",")], args.repeats, args.steps, args.jobs.split(","),
               args.dtypes.split(","))


if __name__ == "__main__":
    main()
