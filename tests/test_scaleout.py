"""Device-count-invariant training: the same codes (and training logs) on 1, 2, 4 and 8 devices.

The trainer's canonical reductions (``config.deterministic_reductions``, on by default; see
:func:`jhash.train.trainer.make_train_step`) make a run a function of its config alone, not of
the number of devices that trains it.
"""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from test_methods import DEEP, method_config

from jhash.train import train

REPO = pathlib.Path(__file__).resolve().parents[1]

# Methods whose codes may differ between 1 device and several, with the documented tolerance
# (the method's docstring says why): the largest relative difference of any logged training
# metric, and the share of code bits that may differ.
TOLERANCE = {"mihash": {"metrics_rtol": 1e-4, "bits": 0.01}}


def _codes(workdir):
    with np.load(pathlib.Path(workdir) / "codes.npz") as f:
        return {k: f[k] for k in f.files}


def _logs(workdir):
    """metrics.jsonl without the wall-clock times."""
    rows = [json.loads(line) for line in (pathlib.Path(workdir) / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "time_s"} for row in rows]


@pytest.mark.slow
def test_default_job_gives_identical_codes_on_1_2_4_and_8_devices(tmp_path):
    """Bare `jhash train` (DPSH on digits, 32 bits, 2,100 steps) in a process with 1, 2, 4 and 8 host devices."""
    runs = {}
    for n in (1, 2, 4, 8):
        runs[n] = tmp_path / f"dev{n}"
        env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={n}"}
        subprocess.run([sys.executable, "-m", "jhash.cli", "train", "--workdir", str(runs[n]),
                        "--config.progress=false"], cwd=REPO, env=env, check=True, capture_output=True)
        assert json.loads((runs[n] / "manifest.json").read_text())["devices"]["count"] == n
    reference = _codes(runs[1])
    assert reference["database_codes"].shape == (1697, 4)
    for n in (2, 4, 8):
        codes = _codes(runs[n])
        assert sorted(codes) == sorted(reference)
        for key in reference:
            np.testing.assert_array_equal(codes[key], reference[key], err_msg=f"{key} on {n} devices")
        assert _logs(runs[n]) == _logs(runs[1])
        assert (runs[n] / "metrics.json").read_text() == (runs[1] / "metrics.json").read_text()


EXTRA = {"mmhh": ["mmhh.memory_after=7"], "dseh": ["dseh.label_epochs=1"]}  # reach their mechanisms in 14 steps


@pytest.mark.parametrize("method", ["dpsh", *DEEP])
def test_digits_methods_train_alike_on_1_and_4_devices(method, tmp_path):
    """Every deep method of tests/test_methods.py, 14 steps logged at each: same logs and codes on 1 and 4 devices."""
    overrides = ["num_epochs=2", "log_every=1", "checkpoint_every=14", *EXTRA.get(method, [])]
    train(method_config(method, *overrides, "num_devices=1"), tmp_path / "one")
    train(method_config(method, *overrides, "num_devices=4"), tmp_path / "four")
    one, four = _codes(tmp_path / "one"), _codes(tmp_path / "four")
    if method not in TOLERANCE:
        assert _logs(tmp_path / "four") == _logs(tmp_path / "one")
        for key in one:
            np.testing.assert_array_equal(four[key], one[key], err_msg=key)
        return
    tol = TOLERANCE[method]
    for a, b in zip(_logs(tmp_path / "one"), _logs(tmp_path / "four"), strict=True):
        assert a.keys() == b.keys()
        for k in a:
            assert b[k] == pytest.approx(a[k], rel=tol["metrics_rtol"], abs=1e-7), (k, a["step"])
    for key in ("query_codes", "database_codes"):
        differ = np.unpackbits(one[key]) != np.unpackbits(four[key])
        assert differ.mean() <= tol["bits"], (key, differ.sum())


def test_reduction_groups_must_fit_the_batch_and_the_devices(tmp_path):
    with pytest.raises(ValueError, match=r"config.reduction_groups \(6\) must divide config.batch_size \(64\)"):
        train(method_config("dch", "reduction_groups=6"), tmp_path)
    with pytest.raises(ValueError, match=r"config.reduction_groups \(2\) must be a multiple of the number of devices \(4\)"):
        train(method_config("dch", "reduction_groups=2", "num_devices=4"), tmp_path)
    assert not (tmp_path / "split.npz").exists()  # refused before any work
    with pytest.raises(ValueError, match="config.reduction_groups must be a positive integer"):
        train(method_config("dch", "reduction_groups=0"), tmp_path)
