"""``jhash reproduce RUN_DIR``: run a finished run again from its saved config and say whether it is bit-identical.

The rerun trains from scratch in a new folder with the run's ``config.json`` (its split is
drawn again from the split seed and checked against the original's checksum), then every
array of ``codes.npz`` and every value of ``metrics.json`` is compared exactly. Differences
in the environment recorded by the manifests (package versions, devices, git commit) are
listed, since they are the usual reason a rerun differs; so are the pretrained weights files'
SHA-256 digests (``pretrained``: a weights file changed since the run was made; runs made before
digests were recorded have none to compare).
"""
from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import tempfile

import numpy as np

from jhash import io as jio

ENVIRONMENT = ("jhash_version", "git", "packages", "python", "devices", "pretrained")


def compare_runs(original, rerun) -> dict:
    """Exact comparison of two finished run folders."""
    original, rerun = pathlib.Path(original), pathlib.Path(rerun)
    a, b = np.load(original / "codes.npz"), np.load(rerun / "codes.npz")
    codes = {name: bool(name in b.files and a[name].shape == b[name].shape and np.array_equal(a[name], b[name]))
             for name in a.files}
    ma, mb = (jio.read_json(d / "metrics.json") for d in (original, rerun))
    metrics = {k: (ma.get(k), mb.get(k)) for k in sorted(set(ma) | set(mb)) if ma.get(k) != mb.get(k)}
    environment = {}
    if (original / "manifest.json").exists() and (rerun / "manifest.json").exists():
        ea, eb = (jio.read_json(d / "manifest.json") for d in (original, rerun))
        environment = {k: (ea.get(k), eb.get(k)) for k in ENVIRONMENT if ea.get(k) != eb.get(k)}
        if ea["split"]["checksum"] != eb["split"]["checksum"]:
            environment["split"] = (ea["split"], eb["split"])
    return {"identical": all(codes.values()) and not metrics, "codes": codes, "metrics": metrics,
            "environment": environment, "rerun": str(rerun)}


def reproduce(run_dir, workdir=None) -> dict:
    """Trains ``run_dir``'s config again in ``workdir`` (a new temporary folder by default) and compares."""
    from jhash.experiment import read_config
    from jhash.run import train, validate_config
    from jhash.train.manifest import result_problem

    run_dir = pathlib.Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir} not found: give the folder of a finished jhash run")
    # Not while another process writes the run (a run folder we cannot write, nobody here writes either).
    writable = os.access(run_dir, os.W_OK)
    with jio.workdir_lock(run_dir, create=False, cleanup=False) if writable else contextlib.nullcontext():
        problem = result_problem(run_dir)
        if problem is not None:
            raise ValueError(f"{problem}: reproduce needs a finished run with intact results "
                             f"(`jhash eval --workdir {run_dir}` rewrites them)")
        config = read_config(run_dir)
        config.progress = False
        validate_config(config)
        if workdir is not None and pathlib.Path(workdir).is_dir() and set(os.listdir(workdir)) - {jio.LOCK_NAME}:
            raise ValueError(f"--workdir {workdir} is not empty; reproduce needs a fresh folder")
        made = workdir is None
        workdir = pathlib.Path(workdir or tempfile.mkdtemp(prefix="jhash-reproduce-"))
        try:
            train(config, workdir)
            return compare_runs(run_dir, workdir)
        except BaseException:
            if made:  # a failed rerun leaves nothing behind
                shutil.rmtree(workdir, ignore_errors=True)
            raise


def format_report(report: dict) -> str:
    lines = [("IDENTICAL: codes and metrics are bit-identical" if report["identical"]
              else "DIFFERENT: the rerun does not reproduce the run") + f" (rerun in {report['rerun']})"]
    lines += [f"  codes.npz {name}: {'same' if same else 'DIFFERENT'}" for name, same in report["codes"].items()]
    lines += [f"  metrics.json {k}: {old} -> {new}" for k, (old, new) in report["metrics"].items()]
    lines += [f"  environment {k}: {old} -> {new}" for k, (old, new) in report["environment"].items()]
    return "\n".join(lines)
