"""Sweeps: one command runs a grid, a killed sweep resumes to the table of an uninterrupted one; aggregation,
plots and `jhash reproduce`."""
import csv
import io
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from jhash import cli, sweep
from jhash.reproduce import compare_runs

REPO = pathlib.Path(__file__).resolve().parents[1]
ARGS = ["--config", str(REPO / "experiments/configs") + "/{method}.py:dataset=digits,bits=8",
        "--grid", "method=dpsh,dch", "--grid", "seed=0,1",
        "--config.num_epochs=12", "--config.model.hidden=(32,)", "--config.num_devices=1",
        "--config.validation=100", "--config.checkpoint_every=20"]


def _metric_columns(csv_text):
    """The CSV without the train-time columns (wall-clock seconds differ from run to run)."""
    rows = list(csv.reader(io.StringIO(csv_text)))
    keep = [i for i, name in enumerate(rows[0]) if not name.startswith("train_s")]
    return [[row[i] for i in keep] for row in rows]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("sweep")
    assert cli.main(["sweep", *ARGS, "--workdir", str(workdir)]) == 0
    return workdir


def test_sweep_runs_every_point_with_a_manifest(uninterrupted):
    names = sorted(p.name for p in uninterrupted.iterdir() if p.is_dir() and p.name != "plots")
    assert names == ["method=dch,seed=0", "method=dch,seed=1", "method=dpsh,seed=0", "method=dpsh,seed=1"]
    for name in names:
        manifest = json.loads((uninterrupted / name / "manifest.json").read_text())
        assert manifest["status"] == "finished" and manifest["config"]["bits"] == 8
    table = (uninterrupted / "results.md").read_text()
    assert "| dpsh | 2 |" in table and "| dch | 2 |" in table and "4 of 4 runs finished" in table
    rows = _metric_columns((uninterrupted / "results.csv").read_text())
    by_method = {r[0]: r for r in rows[1:]}
    m = [json.loads((uninterrupted / f"method=dch,seed={s}" / "metrics.json").read_text())["map@all"] for s in (0, 1)]
    col = rows[0].index("map@all_mean")
    np.testing.assert_allclose(float(by_method["dch"][col]), np.mean(m), rtol=1e-5)
    for plot in ("precision_recall", "precision_at_k", "precision_vs_radius", "bit_balance", "training_curves"):
        assert (uninterrupted / "plots" / f"{plot}.png").stat().st_size > 10_000


def test_killed_sweep_resumes_to_the_same_table(uninterrupted, tmp_path):
    cmd = [sys.executable, "-m", "jhash.cli", "sweep", *ARGS, "--workdir", str(tmp_path), "--no-aggregate"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    second = tmp_path / "method=dpsh,seed=1" / "checkpoints"
    deadline = time.time() + 240
    while not second.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)  # in the middle of the second run
    proc.wait()
    assert not (tmp_path / "method=dch,seed=0").exists()
    assert cli.main(["sweep", *ARGS, "--workdir", str(tmp_path)]) == 0
    assert _metric_columns((tmp_path / "results.csv").read_text()) == \
        _metric_columns((uninterrupted / "results.csv").read_text())
    for name in ("method=dpsh,seed=1", "method=dch,seed=1"):
        assert compare_runs(uninterrupted / name, tmp_path / name)["identical"]


def test_another_spec_in_the_same_folder_is_refused(uninterrupted):
    other = [a.replace("seed=0,1", "seed=0,1,2") for a in ARGS]
    assert cli.main(["sweep", *other, "--workdir", str(uninterrupted)]) == 2
    with pytest.raises(ValueError, match="holds another sweep"):
        sweep.run_sweep({"config": ARGS[1], "grid": {"method": ["dpsh"]}}, uninterrupted)


def test_reproduce_reports_identical_codes(uninterrupted, tmp_path, capsys):
    assert cli.main(["reproduce", str(uninterrupted / "method=dch,seed=0"), "--workdir", str(tmp_path / "re")]) == 0
    assert "IDENTICAL" in capsys.readouterr().out
    # a run whose codes were changed is reported as different
    changed = tmp_path / "changed"
    changed.mkdir()
    (changed / "metrics.json").write_text((uninterrupted / "method=dch,seed=0" / "metrics.json").read_text())
    manifest = json.loads((uninterrupted / "method=dch,seed=0" / "manifest.json").read_text())
    recorded = [{"path": "w.npz", "arch": "resnet18", "sha256": "0" * 64}]  # as if made with another weights file
    (changed / "manifest.json").write_text(json.dumps({**manifest, "pretrained": recorded}))
    z = dict(np.load(uninterrupted / "method=dch,seed=0" / "codes.npz"))
    z["database_codes"] = z["database_codes"].copy()
    z["database_codes"][0, 0] ^= 1
    np.savez(changed / "codes.npz", **z)
    report = compare_runs(changed, tmp_path / "re")
    assert not report["identical"] and report["codes"]["database_codes"] is False
    assert report["environment"]["pretrained"] == (recorded, [])  # the rerun's manifest: no weights file


def test_grid_parsing_and_errors(tmp_path):
    assert sweep.parse_grid(["method=dpsh,dch", "bits=16,32", "dch.gamma=2.5"]) == {
        "method": ["dpsh", "dch"], "bits": [16, 32], "dch.gamma": [2.5]}
    with pytest.raises(ValueError, match="key=value"):
        sweep.parse_grid(["bits"])
    with pytest.raises(ValueError, match="given twice"):
        sweep.parse_grid(["bits=8", "bits=16"])
    with pytest.raises(ValueError, match=r"uses \['method'\] but the grid"):
        sweep.expand({"config": ARGS[1], "grid": {"seed": [0]}})
    with pytest.raises(FileNotFoundError, match="sweep folder"):
        sweep.aggregate(tmp_path)


def test_aggregate_with_a_quantization_method(tmp_path):
    """A sweep mixing a quantization method (no curves.npz, codeword indices in codes.npz) with a binary
    one: the table holds both, and the Hamming plots show the binary one instead of failing."""
    args = ARGS[:2] + ["--grid", "method=dqn,dpsh", "--grid", "seed=0", *ARGS[6:]]
    assert cli.main(["sweep", *args, "--workdir", str(tmp_path)]) == 0
    assert not (tmp_path / "method=dqn,seed=0" / "curves.npz").exists()
    table = (tmp_path / "results.md").read_text()
    assert "| dqn | 1 |" in table and "| dpsh | 1 |" in table
    for plot in ("precision_recall", "bit_balance", "training_curves"):
        assert (tmp_path / "plots" / f"{plot}.png").stat().st_size > 10_000
