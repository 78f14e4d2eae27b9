"""The trainer end to end: learning, bit-identical reruns, exact resume, 1 vs 8 devices, bad inputs."""
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from jhash import cli
from jhash.config import apply_overrides, load_config
from jhash.metrics import mean_average_precision
from jhash.train import CheckpointError, train

REPO = pathlib.Path(__file__).resolve().parents[1]


def tiny_config(*overrides):
    """DPSH on digits, small enough for a test: 500 training items, 7 steps an epoch, 140 steps."""
    c = load_config(str(REPO / "experiments/configs/dpsh.py") + ":dataset=digits,bits=16")
    c = apply_overrides(c, ["model.hidden=(64,)", "num_epochs=20", "checkpoint_every=35", "log_every=35",
                            "progress=false", "num_devices=1", *overrides])
    return c


def _codes(workdir):
    with np.load(pathlib.Path(workdir) / "codes.npz") as f:
        return {k: f[k] for k in f.files}


def _assert_same_codes(a, b):
    for key in ("query_codes", "database_codes", "query_labels", "database_labels", "database_index"):
        np.testing.assert_array_equal(_codes(a)[key], _codes(b)[key], err_msg=key)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("ref")
    metrics = train(tiny_config(), workdir)
    return workdir, metrics


def test_main_job_dpsh_digits_32_bits(tmp_path):
    """The default `jhash train` (one CPU device, as on a user's machine): DPSH on digits at 32 bits gives
    mAP@ALL about 0.96 (README: 0.9615 measured)."""
    c = load_config(str(REPO / "experiments/configs/dpsh.py"))
    c.progress = False
    c.num_devices = 1
    metrics = train(c, tmp_path)
    assert metrics["map@all"] >= 0.955, metrics
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["map@all"] == metrics["map@all"]
    codes = _codes(tmp_path)
    assert codes["query_codes"].dtype == np.uint8 and codes["query_codes"].shape == (100, 4)
    assert codes["database_codes"].shape == (1697, 4) and int(codes["bits"]) == 32


def test_curves_agree_with_the_metrics(reference_run):
    workdir, metrics = reference_run
    with np.load(workdir / "curves.npz") as f:
        curves = {k: f[k] for k in f.files}
    assert curves["precision_at_radius"].shape == (17,)
    assert curves["precision_at_radius"][2] == pytest.approx(metrics["precision@r2"], abs=1e-12)
    assert curves["recall_at_radius"][2] == pytest.approx(metrics["recall@r2"], abs=1e-12)
    # DCH's radius-2 hash lookup through jhash.index agrees with the ranking metrics.
    assert metrics["lookup_precision@r2"] == pytest.approx(metrics["precision@r2"], abs=1e-12)
    assert metrics["lookup_recall@r2"] == pytest.approx(metrics["recall@r2"], abs=1e-12)
    assert json.loads((workdir / "timing.json").read_text())["lookup_s"] >= 0
    assert curves["recall_at_radius"][-1] == pytest.approx(1.0)  # radius = bits retrieves everything
    assert curves["k"][-1] == 1697 and curves["pr_recall"][-1] == pytest.approx(1.0)
    assert np.all(np.diff(curves["pr_recall"]) >= 0)


def test_learns_beyond_random_codes(reference_run):
    workdir, metrics = reference_run
    codes = _codes(workdir)
    rng = np.random.default_rng(0)
    random_map = mean_average_precision(
        np.where(rng.random((100, 16)) < 0.5, -1, 1), np.where(rng.random((1697, 16)) < 0.5, -1, 1),
        codes["query_labels"], codes["database_labels"])
    assert metrics["map@all"] > 3 * random_map, (metrics, random_map)
    log = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log] == [35, 70, 105, 140]
    assert log[-1]["loss"] < log[0]["loss"]


def test_same_seed_gives_bit_identical_codes(reference_run, tmp_path):
    workdir, metrics = reference_run
    assert train(tiny_config(), tmp_path) == metrics
    _assert_same_codes(workdir, tmp_path)


def test_resume_after_a_crash_equals_uninterrupted_run(reference_run, tmp_path):
    workdir, metrics = reference_run

    def crash(step, _):
        if step == 105:  # logged, but the last checkpoint is step 70
            raise KeyboardInterrupt("simulated crash")

    with pytest.raises(KeyboardInterrupt):
        train(tiny_config("checkpoint_every=70"), tmp_path, on_step=crash)
    assert not (tmp_path / "codes.npz").exists()
    assert train(tiny_config("checkpoint_every=70"), tmp_path) == metrics
    _assert_same_codes(workdir, tmp_path)
    steps = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [35, 70, 105, 140]
    # the train time covers both calls: the crashed one's (recorded when it stopped) and the resumed one's
    timing = json.loads((tmp_path / "timing.json").read_text())
    calls = json.loads((tmp_path / "manifest.json").read_text())["calls"]
    assert [c["status"] for c in calls] == ["stopped: KeyboardInterrupt", "finished"]
    assert timing["train_s"] == pytest.approx(calls[0]["train_s"] + timing["train_s_this_call"])
    assert timing["train_s_complete"] and timing["steps"] == 140 - 70


def test_eight_devices_give_the_codes_of_one_device(reference_run, tmp_path):
    assert len(jax.devices()) == 8
    workdir, metrics = reference_run
    metrics8 = train(tiny_config("num_devices=8"), tmp_path)
    _assert_same_codes(workdir, tmp_path)
    assert metrics8["map@all"] == pytest.approx(metrics["map@all"], abs=1e-6)


def test_killed_process_resumes_to_the_same_codes(tmp_path):
    """SIGKILL a real `jhash train` process after its first checkpoint, run it again, compare."""
    overrides = ["num_epochs=300", "checkpoint_every=100", "log_every=100"]  # 2,100 steps
    config = tmp_path / "config.py"
    config.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(REPO / 'tests')!r})\n"
        "from test_train import tiny_config\n"
        f"def get_config():\n    return tiny_config(*{overrides!r})\n"
    )
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "jhash.cli", "train", "--config", str(config), "--workdir", str(run)]
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not any((run / "checkpoints").glob("[0-9]*")):
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert any((run / "checkpoints").glob("[0-9]*")), proc.stderr.read().decode()[-2000:]
    assert not (run / "codes.npz").exists(), "the run finished before it could be killed"
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    assert not json.loads((run / "timing.json").read_text())["train_s_complete"]  # the killed call's time is lost
    reference = tmp_path / "reference"
    train(tiny_config(*overrides), reference)
    _assert_same_codes(reference, run)


def test_eval_command_reproduces_the_metrics(reference_run, capsys):
    workdir, metrics = reference_run
    assert cli.main(["eval", "--workdir", str(workdir)]) == 0
    assert "map@all" in capsys.readouterr().out
    assert json.loads((workdir / "metrics.json").read_text())["map@all"] == pytest.approx(metrics["map@all"])


def test_resuming_with_another_config_is_refused(reference_run):
    workdir, _ = reference_run
    with pytest.raises(ValueError, match="different config.*bits"):
        train(tiny_config("bits=8"), workdir)


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    train(tiny_config("num_epochs=5"), tmp_path, evaluate=False)
    files = [p for p in (tmp_path / "checkpoints").rglob("*") if p.is_file() and p.parent.name == "d"]
    for f in files:
        f.write_bytes(b"\0" * 16)
    with pytest.raises(CheckpointError, match="checkpoint at step 35"):
        train(tiny_config("num_epochs=5"), tmp_path)


@pytest.mark.parametrize(
    "override, error, match",
    [
        ("bits=0", ValueError, "bits must be a positive integer"),
        ("method=nope", ValueError, "unknown method 'nope'"),
        ("dataset=nope", ValueError, "nope"),
        ("batch_size=60", ValueError, "divisible by the number of devices"),
        ("batch_size=10000", ValueError, "larger than the training set"),
        ("optimizer.name=rmsprop", ValueError, "optimizer.name"),
        ("num_devices=9", ValueError, "num_devices"),
    ],
)
def test_bad_config_values_are_clear_errors(tmp_path, override, error, match):
    overrides = [override] + (["num_devices=8", "reduction_groups=4"] if override == "batch_size=60" else [])
    with pytest.raises(error, match=match):
        train(tiny_config(*overrides), tmp_path)


def test_dpsh_mnist_cnn_cpu_variant(shared_data, tmp_path):
    """DPSH on real MNIST (mnist protocol: 1,000 queries, 5,000 train, 69,000 database), small CNN, 3 epochs."""
    c = load_config(str(REPO / "experiments/configs/dpsh.py") + ":dataset=mnist,bits=32,cpu=true")
    c = apply_overrides(c, [f"data_dir={shared_data}", "progress=false", "num_devices=1"])  # see conftest.py
    metrics = train(c, tmp_path)
    assert metrics["map@all"] >= 0.90, metrics
    codes = _codes(tmp_path)
    assert codes["query_codes"].shape == (1000, 4) and codes["database_codes"].shape == (69000, 4)


def test_a_start_that_failed_does_not_block_the_work_dir(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset|nope"):
        train(tiny_config("dataset=nope"), tmp_path)
    with pytest.raises(ValueError, match="bits"):
        train(tiny_config("bits=0"), tmp_path)
    # a different config in the same folder now trains: nothing was checkpointed before
    assert train(tiny_config("num_epochs=2"), tmp_path)["map@all"] > 0
    assert json.loads((tmp_path / "config.json").read_text())["num_epochs"] == 2


def test_multilabel_npz_with_a_custom_protocol(tmp_path):
    """Multi-hot labels end to end: features brought as .npz, a protocol written in the config."""
    rng = np.random.default_rng(0)
    n, c, d = 800, 6, 32
    y = np.zeros((n, c), np.uint8)
    for i in range(n):
        y[i, rng.choice(c, size=rng.integers(1, 3), replace=False)] = 1
    prototypes = rng.normal(size=(c, d))
    x = (y @ prototypes + 0.5 * rng.normal(size=(n, d))).astype(np.float32)
    path = tmp_path / "toy_multilabel.npz"
    np.savez(path, x=x, y=y)
    c_ = tiny_config(f"dataset={path}", "protocol=custom:n_query=100,n_train=400,map_k=200",
                     "num_epochs=30", "batch_size=40")
    metrics = train(c_, tmp_path / "run")
    codes = _codes(tmp_path / "run")
    assert codes["query_labels"].shape == (100, 6) and codes["database_codes"].shape == (700, 2)
    random_map = mean_average_precision(
        np.where(rng.random((100, 16)) < 0.5, -1, 1), np.where(rng.random((700, 16)) < 0.5, -1, 1),
        codes["query_labels"], codes["database_labels"])
    assert "map@200" in metrics
    assert metrics["map@all"] > random_map + 0.2, (metrics, random_map)


def test_custom_protocol_errors():
    from jhash.data import get_protocol

    assert get_protocol("custom:n_query=10,n_train=20,map_k=5").map_k == 5
    with pytest.raises(ValueError, match="must set n_train"):
        get_protocol("custom:n_query=10")
    with pytest.raises(ValueError, match="FIELD=VALUE"):
        get_protocol("custom:n_query=10,size=3")
    with pytest.raises(ValueError, match="n_query must be an integer"):
        get_protocol("custom:n_query=ten,n_train=3")


def _tensorboard_scalars(logdir):
    """{tag: [(step, value)]} read from the TFRecord-framed event files (independent of the writer)."""
    import struct

    from tensorboardX.proto import event_pb2

    out = {}
    for path in sorted(pathlib.Path(logdir).glob("events.out.tfevents.*")):
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
            pos += 12 + length + 4
            for v in event.summary.value:
                out.setdefault(v.tag, []).append((event.step, v.simple_value))
    return out


def test_manifest_and_tensorboard_logs(reference_run):
    from jhash.data import load_split

    reference_run, _ = reference_run
    manifest = json.loads((reference_run / "manifest.json").read_text())
    split = load_split(reference_run / "split.npz")
    assert manifest["status"] == "finished" and manifest["calls"][-1]["steps"] == 140
    assert manifest["split"]["checksum"] == split.checksum
    assert manifest["config"] == json.loads((reference_run / "config.json").read_text())
    assert manifest["packages"]["jax"] == jax.__version__
    assert manifest["devices"]["count"] == 1 and manifest["devices"]["platform"] == "cpu"
    assert len(manifest["dataset"]["fingerprint"]) == 64
    logged = [json.loads(line) for line in (reference_run / "metrics.jsonl").read_text().splitlines()]
    board = _tensorboard_scalars(reference_run / "tensorboard")
    assert [s for s, _ in board["loss"]] == [row["step"] for row in logged]
    np.testing.assert_allclose([v for _, v in board["loss"]], [row["loss"] for row in logged], rtol=1e-6)


def test_validation_items_are_held_out_of_training_and_scored(tmp_path):
    from jhash.train.trainer import load_experiment_data, validation_split

    c = tiny_config("validation=100", "num_epochs=5")
    metrics = train(c, tmp_path)
    assert 0.1 < metrics["val_map@all"] <= 1 and "val_precision@r2" in metrics
    exp = load_experiment_data(c, tmp_path)
    assert len(exp.validation_index) == 100 and len(exp.x_train) == len(exp.split.train) - 100
    assert not set(exp.validation_index) & set(exp.train_index)
    assert not set(exp.validation_index) & set(exp.split.query)  # never the query set
    again = validation_split(exp.split, 100)[1]
    np.testing.assert_array_equal(again, exp.validation_index)  # the same items every time
    with pytest.raises(ValueError, match="config.validation must be"):
        validation_split(exp.split, len(exp.split.train))


def test_state_shardings_split_the_named_method_state_rows():
    import jax.numpy as jnp
    from jhash.train.state import TrainState, make_mesh, state_shardings

    state = TrainState(step=jnp.zeros((), jnp.int32), params={"w": jnp.zeros((3, 2))}, model_state={}, opt_state=(),
                       method_state={"v": jnp.zeros((16, 4)), "odd": jnp.zeros((10, 4)), "labels": jnp.zeros(16)},
                       key=jax.random.PRNGKey(0))
    mesh = make_mesh(8)
    s = state_shardings(state, mesh, ("v", "odd"))
    assert s.method_state["v"].spec == jax.sharding.PartitionSpec("data")
    assert s.method_state["odd"].spec == s.method_state["labels"].spec == s.params["w"].spec == jax.sharding.PartitionSpec()
    with pytest.raises(ValueError, match=r"sharded_state names \['bank'\]"):
        state_shardings(state, mesh, ("bank",))
