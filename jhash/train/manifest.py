"""The manifest of a run: everything needed to tell what produced its results, and to produce them again.

``manifest.json`` in the work dir holds the full config, the jhash version and git commit
(with a flag for uncommitted changes), the versions of the packages that compute the
results, the devices (kind, platform, count used), the dataset's fingerprint and the
split's checksum, the path, architecture and SHA-256 of each pretrained weights file the
model started from (``pretrained``), and one entry per ``train`` call (start time, steps,
wall seconds, status), so a resumed run shows its history.
"""
from __future__ import annotations

import datetime
import importlib.metadata
import json
import pathlib
import platform
import subprocess
import sys
import zipfile

import jax

import jhash
from jhash import io as jio

PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "chex", "numpy", "numba", "ml-collections",
            "tensorflow-datasets")


def git_commit(path=None) -> dict | None:
    """``{"commit": sha, "dirty": bool}`` of the git checkout holding ``path`` (jhash itself by default), or None."""
    root = pathlib.Path(path or pathlib.Path(jhash.__file__).resolve().parents[1])
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return None
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, timeout=10)
        return {"commit": sha.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions() -> dict:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def describe(config, *, dataset, split, mesh, pretrained=()) -> dict:
    """The fixed part of the manifest (what a rerun must match). ``pretrained``: the record of the
    model's pretrained weights files (:func:`jhash.models.pretrained.record`: path, arch, sha256)."""
    device = mesh.devices.flat[0]
    return {
        "config": json.loads(config.to_json()),
        "jhash_version": jhash.__version__,
        "git": git_commit(),
        "packages": package_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "devices": {"platform": device.platform, "kind": device.device_kind, "count": int(mesh.size),
                    "local_count": jax.local_device_count(), "processes": jax.process_count()},
        "dataset": {"name": config.dataset, "fingerprint": dataset.fingerprint, "size": len(dataset)},
        "split": {"protocol": split.protocol, "seed": int(split.seed), "checksum": split.checksum},
        "pretrained": list(pretrained),
    }


class Manifest:
    """``workdir/manifest.json``: :func:`describe` plus one entry per training call, rewritten atomically."""

    def __init__(self, workdir, fixed: dict, *, write: bool = True):
        self.path, self.write = pathlib.Path(workdir) / "manifest.json", write  # write: False in processes other than 0
        previous = jio.read_json(self.path, "delete it to start the run's history afresh") if self.path.exists() else {}
        self.data = {**fixed, "calls": previous.get("calls", []), "status": "running"}
        self.data["calls"].append({"started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                                   "status": "running"})
        self._write()

    def earlier_train_s(self) -> tuple[float, bool]:
        """Training seconds recorded by the earlier calls of this run, and whether every
        earlier call recorded them (a killed call cannot)."""
        earlier = self.data["calls"][:-1]
        return sum(c.get("train_s", 0.0) for c in earlier), all("train_s" in c for c in earlier)

    def finish(self, *, status: str, **fields) -> None:
        self.data["calls"][-1].update(status=status, **fields)
        self.data["status"] = status
        self.data["wall_s"] = sum(c.get("wall_s", 0.0) for c in self.data["calls"])
        self._write()

    def _write(self) -> None:
        if self.write:
            jio.write_json(self.path, self.data, sort_keys=True)


def read(workdir) -> dict:
    path = pathlib.Path(workdir) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: is {workdir} a jhash run (made by `jhash train`)?")
    return jio.read_json(path)


def recorded_pretrained(workdir) -> list[dict] | None:
    """The ``pretrained`` record of the run's manifest; None for a run without a manifest or one made
    before the record existed."""
    path = pathlib.Path(workdir) / "manifest.json"
    return jio.read_json(path).get("pretrained") if path.exists() else None


def result_problem(workdir) -> str | None:
    """None when ``workdir`` holds a finished run whose result files are complete and parse
    (manifest.json says finished; metrics.json maps names to numbers; timing.json parses;
    codes.npz and curves.npz, when present, are intact zip files); otherwise what is wrong."""
    workdir = pathlib.Path(workdir)
    try:
        if read(workdir).get("status") != "finished":
            return f"{workdir} is not finished"
        metrics = jio.read_json(workdir / "metrics.json")
        if not isinstance(metrics, dict) or not all(
                v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in metrics.values()):
            return f"{workdir / 'metrics.json'} is damaged (not a mapping of metric names to numbers)"
        jio.read_json(workdir / "timing.json")
    except (OSError, ValueError) as e:
        return str(e)
    for name in ("codes.npz", "curves.npz"):
        path = workdir / name
        if name == "curves.npz" and not path.exists():  # quantization methods write no curves
            continue
        try:
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
        except (OSError, zipfile.BadZipFile) as e:
            return f"{path} is damaged or missing ({e})"
        if bad is not None:
            return f"{path} is damaged ({bad} fails its checksum)"
    return None
