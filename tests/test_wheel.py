"""A wheel (not an editable install) carries the config files, and ``jhash train`` with no --config runs from it
with no checkout in sight."""
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import pytest

from jhash import methods

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_wheel_install_runs_jhash_train_with_its_own_default_config(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # no checkout on the path
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"
    source = tmp_path / "source"  # a clean copy: setuptools would reuse the checkout's build/ folder
    shutil.copytree(REPO, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "runs", "workdir*", "*.log"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(source), "-w",
                            str(tmp_path / "dist")], cwd=tmp_path, env=env, capture_output=True, text=True)
    if build.returncode and "satisfies the requirement" in build.stderr:  # pip could not get setuptools (offline)
        pytest.skip(f"pip could not install the build requirements: {build.stderr.strip().splitlines()[-1]}")
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("jhash-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"jhash/configs/{m}.py" for m in methods.available()} | {"jhash/configs/common.py"} <= names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin/python"
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True, env=env)
    # the dependencies are this interpreter's (a .pth after the install, so that pip sees none of them)
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True, env=env).stdout.strip()
    pathlib.Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    where = subprocess.run([python, "-c", "import jhash.configs; print(jhash.configs.__file__)"], cwd=tmp_path,
                           env=env, check=True, capture_output=True, text=True).stdout
    assert where.startswith(site), where
    loaded = subprocess.run([python, "-c", "from jhash.config import load_config as c; print(c('method:dch:dataset=cifar10')"
                             ".model.name, c('features:features=f.npz,protocol=cifar10').model.name)"],
                            cwd=tmp_path, env=env, check=True, capture_output=True, text=True).stdout
    assert loaded.split() == ["cnn", "mlp"], loaded
    run = subprocess.run([venv / "bin/jhash", "train", "--workdir", "w", "--config.num_epochs=2",
                          "--config.progress=false"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "dpsh on digits, 32 bits" in run.stdout
    assert '"method": "dpsh"' in (tmp_path / "w/config.json").read_text()
