"""The manifest of a run: everything needed to tell what produced its results, and to produce them again.

``manifest.json`` in the work dir holds the full config, the jhash version and git commit
(with a flag for uncommitted changes), the versions of the packages that compute the
results, the devices (kind, platform, count used), the dataset's fingerprint and the
split's checksum, and one entry per ``train`` call (start time, steps, wall seconds,
status), so a resumed run shows its history.
"""
from __future__ import annotations

import datetime
import importlib.metadata
import json
import pathlib
import platform
import subprocess
import sys

import jax

import jhash

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


def describe(config, *, dataset, split, mesh) -> dict:
    """The fixed part of the manifest (what a rerun must match)."""
    device = mesh.devices.flat[0]
    return {
        "config": json.loads(config.to_json()),
        "jhash_version": jhash.__version__,
        "git": git_commit(),
        "packages": package_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "devices": {"platform": device.platform, "kind": device.device_kind, "count": int(mesh.size),
                    "local_count": jax.local_device_count()},
        "dataset": {"name": config.dataset, "fingerprint": dataset.fingerprint, "size": len(dataset)},
        "split": {"protocol": split.protocol, "seed": int(split.seed), "checksum": split.checksum},
    }


class Manifest:
    """``workdir/manifest.json``: :func:`describe` plus one entry per training call, rewritten atomically."""

    def __init__(self, workdir, fixed: dict):
        self.path = pathlib.Path(workdir) / "manifest.json"
        previous = json.loads(self.path.read_text()) if self.path.exists() else {}
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
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, sort_keys=True))
        tmp.replace(self.path)


def read(workdir) -> dict:
    path = pathlib.Path(workdir) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: is {workdir} a jhash run (made by `jhash train`)?")
    return json.loads(path.read_text())
