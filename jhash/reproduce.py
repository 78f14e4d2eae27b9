"""``jhash reproduce RUN_DIR``: run a finished run again from its saved config and say whether it is bit-identical.

The rerun trains from scratch in a new folder with the run's ``config.json`` (its split is
drawn again from the split seed and checked against the original's checksum), then every
array of ``codes.npz`` and every value of ``metrics.json`` is compared exactly. Differences
in the environment recorded by the manifests (package versions, devices, git commit) are
listed, since they are the usual reason a rerun differs.
"""
from __future__ import annotations

import json
import pathlib
import tempfile

import numpy as np

ENVIRONMENT = ("jhash_version", "git", "packages", "python", "devices")


def compare_runs(original, rerun) -> dict:
    """Exact comparison of two finished run folders."""
    original, rerun = pathlib.Path(original), pathlib.Path(rerun)
    a, b = np.load(original / "codes.npz"), np.load(rerun / "codes.npz")
    codes = {name: bool(name in b.files and a[name].shape == b[name].shape and np.array_equal(a[name], b[name]))
             for name in a.files}
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (original, rerun))
    metrics = {k: (ma.get(k), mb.get(k)) for k in sorted(set(ma) | set(mb)) if ma.get(k) != mb.get(k)}
    environment = {}
    if (original / "manifest.json").exists() and (rerun / "manifest.json").exists():
        ea, eb = (json.loads((d / "manifest.json").read_text()) for d in (original, rerun))
        environment = {k: (ea.get(k), eb.get(k)) for k in ENVIRONMENT if ea.get(k) != eb.get(k)}
        if ea["split"]["checksum"] != eb["split"]["checksum"]:
            environment["split"] = (ea["split"], eb["split"])
    return {"identical": all(codes.values()) and not metrics, "codes": codes, "metrics": metrics,
            "environment": environment, "rerun": str(rerun)}


def reproduce(run_dir, workdir=None) -> dict:
    """Trains ``run_dir``'s config again in ``workdir`` (a new temporary folder by default) and compares."""
    from jhash.train import read_config, train

    run_dir = pathlib.Path(run_dir)
    if not (run_dir / "codes.npz").exists() or not (run_dir / "metrics.json").exists():
        raise FileNotFoundError(f"{run_dir} has no codes.npz / metrics.json: is it a finished jhash run?")
    config = read_config(run_dir)
    config.progress = False
    workdir = pathlib.Path(workdir or tempfile.mkdtemp(prefix="jhash-reproduce-"))
    if workdir.exists() and any(workdir.iterdir()):
        raise ValueError(f"--workdir {workdir} is not empty; reproduce needs a fresh folder")
    train(config, workdir)
    return compare_runs(run_dir, workdir)


def format_report(report: dict) -> str:
    lines = [("IDENTICAL: codes and metrics are bit-identical" if report["identical"]
              else "DIFFERENT: the rerun does not reproduce the run") + f" (rerun in {report['rerun']})"]
    lines += [f"  codes.npz {name}: {'same' if same else 'DIFFERENT'}" for name, same in report["codes"].items()]
    lines += [f"  metrics.json {k}: {old} -> {new}" for k, (old, new) in report["metrics"].items()]
    lines += [f"  environment {k}: {old} -> {new}" for k, (old, new) in report["environment"].items()]
    return "\n".join(lines)
