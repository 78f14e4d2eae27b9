"""Issue 16 part 2: multi-host runs on JAX's distributed runtime (2 local processes x 2 CPU devices, gloo)."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from jhash import data as jdata
from jhash.data.images import ArrayImages, ImageArray
from test_train import REPO

FAST = ["--config.num_epochs=3", "--config.progress=false"]


def _env(devices: int) -> dict:
    return {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", "PYTHONPATH": str(REPO),
            "JAX_PLATFORMS": "cpu"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _start(command, workdir, processes: int, devices: int, extra=()) -> list[subprocess.Popen]:
    """``jhash COMMAND --workdir WORKDIR`` as ``processes`` processes of ``devices`` CPU devices each."""
    port = _free_port()
    dist = (lambda i: ["--coordinator", f"localhost:{port}", "--num_processes", str(processes), "--process_id", str(i)]
            ) if processes > 1 else (lambda i: [])
    return [subprocess.Popen([sys.executable, "-m", "jhash.cli", command, "--workdir", str(workdir), *extra, *dist(i)],
                             env=_env(devices), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for i in range(processes)]


def _finish(procs, timeout=600) -> list[str]:
    outs = [p.communicate(timeout=timeout)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]
    return outs


def _run(command, workdir, processes, devices, extra=FAST) -> list[str]:
    return _finish(_start(command, workdir, processes, devices, extra))


def _results(workdir) -> tuple[dict, dict]:
    z = np.load(workdir / "codes.npz")
    return {k: z[k] for k in z.files}, json.loads((workdir / "metrics.json").read_text())


def _assert_identical(a, b) -> None:
    (ca, ma), (cb, mb) = _results(a), _results(b)
    assert ca.keys() == cb.keys()
    for k in ca:
        np.testing.assert_array_equal(ca[k], cb[k], err_msg=k)
    assert ma == mb


@pytest.mark.slow
def test_two_processes_of_two_devices_give_the_codes_of_one_process(tmp_path):
    _run("train", tmp_path / "p2x2", 2, 2)
    _run("train", tmp_path / "p1x4", 1, 4)
    _run("train", tmp_path / "p1x1", 1, 1)
    _assert_identical(tmp_path / "p2x2", tmp_path / "p1x4")
    _assert_identical(tmp_path / "p2x2", tmp_path / "p1x1")
    manifest = json.loads((tmp_path / "p2x2" / "manifest.json").read_text())
    assert manifest["devices"]["processes"] == 2 and manifest["devices"]["count"] == 4
    assert len((tmp_path / "p2x2" / "metrics.jsonl").read_text().splitlines()) > 0  # written once, by process 0
    # jhash eval over both processes restores the collective checkpoint and encodes across them
    before = (tmp_path / "p2x2" / "metrics.json").read_text()
    (tmp_path / "p2x2" / "metrics.json").unlink()
    outs = _run("eval", tmp_path / "p2x2", 2, 2, extra=())
    assert (tmp_path / "p2x2" / "metrics.json").read_text() == before
    assert "map@all" in outs[0] and "map@all" not in outs[1]  # process 0 prints the table


def _complete_checkpoints(workdir) -> list[int]:
    folder = workdir / "checkpoints"
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit() and (p / "commit_success.txt").exists()
                  ) if folder.is_dir() else []


@pytest.mark.slow
def test_killing_one_process_then_restarting_both_resumes_to_the_same_codes(tmp_path):
    extra = ["--config.num_epochs=12", "--config.checkpoint_every=20", "--config.progress=false"]
    run = tmp_path / "run"
    procs = _start("train", run, 2, 2, extra)
    deadline = time.time() + 300
    while not _complete_checkpoints(run) and time.time() < deadline and procs[0].poll() is None:
        time.sleep(0.2)
    assert _complete_checkpoints(run), procs[0].communicate()[0][-3000:]
    procs[1].send_signal(signal.SIGKILL)
    time.sleep(1.0)
    procs[0].send_signal(signal.SIGKILL)  # a preempted job: the scheduler kills the rest
    for p in procs:
        p.communicate()
    assert not (run / "metrics.json").exists()
    _run("train", run, 2, 2, extra)
    calls = json.loads((run / "manifest.json").read_text())["calls"]
    assert len(calls) == 2 and calls[1]["status"] == "finished"
    _run("train", tmp_path / "uninterrupted", 1, 1, extra)
    _assert_identical(run, tmp_path / "uninterrupted")


@pytest.mark.parametrize("argv, part", [
    (["--coordinator", "localhost:1234"], "needs all of"),
    (["--coordinator", "localhost:1234", "--num_processes", "2", "--process_id", "2"], "--process_id must be in"),
    (["--coordinator", "localhost", "--num_processes", "2", "--process_id", "0"], "HOST:PORT"),
    (["--distributed", "--num_processes", "2"], "alone"),
])
def test_distributed_flags_are_checked_before_anything_runs(tmp_path, argv, part):
    out = subprocess.run([sys.executable, "-m", "jhash.cli", "train", "--workdir", str(tmp_path / "run"), *argv],
                         env=_env(1), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("jhash: error:") and part in out.stderr, out.stderr
    assert not (tmp_path / "run").exists()


def _reader_rows_match(make, n_batch: int, parts: int, steps) -> None:
    full = make(None)
    for step in steps:
        whole = full(step)
        cut = [make((k * n_batch // parts, (k + 1) * n_batch // parts))(step) for k in range(parts)]
        for key in whole:
            if key == "valid":
                assert all(c["valid"] == whole["valid"] for c in cut)
            else:
                np.testing.assert_array_equal(np.concatenate([c[key] for c in cut]), whole[key], err_msg=key)


@pytest.mark.parametrize("crop", ["random", "random_resized"])
def test_each_process_reads_its_rows_of_the_batch_the_one_process_run_reads(crop):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (40, 20, 24, 3), dtype=np.uint8)
    x = ImageArray(ArrayImages(pixels), 16)
    y = np.arange(40) % 7
    train = np.arange(3, 35)
    indices = lambda step: jdata.batch_indices(len(train), 8, 5, step)  # noqa: E731
    make = lambda rows: jdata.BatchReader(x, y, train, indices, seed=5, crop=crop, rows=rows)  # noqa: E731
    _reader_rows_match(make, 8, 2, range(6))
    _reader_rows_match(make, 8, 4, range(6))


def test_evaluation_rows_pad_the_last_batch_per_process():
    x = np.arange(26 * 3, dtype=np.float32).reshape(26, 3)
    chunk = lambda b: np.arange(b * 8, min(26, (b + 1) * 8))  # noqa: E731  the last batch holds 2 items
    make = lambda rows: jdata.BatchReader(x, None, np.arange(26), chunk, pad_to=8, rows=rows)  # noqa: E731
    _reader_rows_match(make, 8, 4, range(4))  # in the last batch three of the four processes hold only padding
    last = make((4, 8))(3)
    assert last["valid"] == 2 and last["x"].shape == (4, 3) and not last["x"].any()


def test_local_rows_of_a_one_process_mesh_are_all_rows():
    from jhash import distributed
    from jhash.train.state import data_sharded, make_mesh

    assert distributed.local_rows(data_sharded(make_mesh(4)), 64) == (0, 64)
    assert distributed.is_primary()
