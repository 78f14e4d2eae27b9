"""One run path (jhash.run): shallow and online methods through `jhash train --config method:NAME`, the same
work dir, evaluator, sweep and reproduce as the deep methods; the trainer and the evaluator do not import
each other."""
import functools
import json
import pathlib
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import jhash.data as jdata
from jhash import cli, run, shallow, sweep
from jhash.codes import unpack
from jhash.config import apply_overrides, load_config
from jhash.reproduce import reproduce
from jhash.shallow.settings import method_names
from jhash.train.manifest import result_problem

REPO = pathlib.Path(__file__).resolve().parents[1]

# Fewer iterations for the slow fits (the test checks the run path, not the methods' quality).
TINY = {"fasth": ["fasth.trees=4", "fasth.features_per_node=16"], "oph": ["oph.steps=100"],
        "toprsbc": ["toprsbc.steps=100"], "mlh": ["mlh.steps=100"], "hdml": ["hdml.steps=100"],
        "rph": ["rph.steps=30"], "dserh": ["dserh.outer_iterations=2"], "rsh": ["rsh.outer_iterations=3"],
        "tsh": ["tsh.box_iterations=10", "tsh.spectral_iterations=10"], "affhash": ["affhash.mu_steps=2"],
        "cgh": ["cgh.master_iters=20"]}


def _config(method, arg="dataset=digits,bits=8", extra=()):
    return apply_overrides(load_config(f"method:{method}:{arg}"), ["progress=false", *TINY.get(method, []), *extra])


def _codes(workdir):
    with np.load(pathlib.Path(workdir) / "codes.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("method", method_names())
def test_every_shallow_method_trains_through_the_run_path(method, tmp_path):
    config = _config(method)
    results = run.train(config, tmp_path)
    assert result_problem(tmp_path) is None  # finished manifest, metrics, timing, codes and curves intact
    assert {"config.json", "split.npz", "hasher.npz", "manifest.json"} <= {p.name for p in tmp_path.iterdir()}
    assert json.loads((tmp_path / "metrics.json").read_text()) == results
    timing = json.loads((tmp_path / "timing.json").read_text())
    assert timing["train_s"] == timing["fit_s"] > 0 and timing["encode_s"] > 0
    codes = _codes(tmp_path)
    assert int(codes["bits"]) == 8 and len(codes["query_index"]) == len(codes["query_codes"])
    assert results["map@all"] > 0.12, results  # random 8-bit codes on digits: about 0.10


def _direct_codes(method, bits, seed, center=False):
    """What experiments/shallow_mnist.py's run_one computed before it became a sweep: the protocol's split with
    the seed, pixels flattened / scale (less the training mean with center), fit with jax.random.key(seed)."""
    sys.path.insert(0, str(REPO / "experiments" / "configs"))
    import shallow as shallow_config

    cfg = shallow_config.get_config(f"method={method},dataset=digits,bits={bits},center={center}")
    ds = jdata.load("digits")
    split = jdata.make_split(ds, jdata.get_protocol(cfg.protocol), seed)
    flat = lambda idx: ds.x[idx].reshape(len(idx), -1).astype(np.float32) / cfg.scale  # noqa: E731
    xtr, xq, xdb = flat(split.train), flat(split.query), flat(split.database)
    if center:
        mu = xtr.mean(0)
        xtr, xq, xdb = xtr - mu, xq - mu, xdb - mu
    hasher = shallow.get_method(cfg.fit_method)(xtr, ds.y[split.train], bits=bits, key=jax.random.key(seed),
                                                **cfg.hyper)
    return np.asarray(hasher.encode(xq)), np.asarray(hasher.encode(xdb))


@pytest.mark.parametrize("method,seed,center", [("itq", 1, False), ("sdh", 0, False), ("ksh", 2, False),
                                                ("agh2", 0, False), ("lsh", 0, True)])
def test_shallow_run_codes_equal_the_direct_fit(method, seed, center, tmp_path):
    config = apply_overrides(load_config(f"method:{method}:dataset=digits,bits=16,seed={seed},center={center}"),
                             ["progress=false"])
    run.train(config, tmp_path)
    codes = _codes(tmp_path)
    qc, dc = _direct_codes(method, 16, seed, center)
    assert np.array_equal(np.asarray(unpack(codes["query_codes"], 16)), qc)
    assert np.array_equal(np.asarray(unpack(codes["database_codes"], 16)), dc)


def test_eval_rescores_a_shallow_run_without_refitting_and_reproduce_is_exact(tmp_path, monkeypatch, capsys):
    workdir = tmp_path / "run"
    assert cli.main(["train", "--config", "method:sdh:dataset=digits,bits=16", "--workdir", str(workdir),
                     "--config.progress=false"]) == 0
    before = json.loads((workdir / "metrics.json").read_text())
    codes = _codes(workdir)

    from jhash.shallow import sdh

    @functools.wraps(sdh.fit)  # the same signature (the config's arguments are checked against it)
    def no_fit(*args, **kwargs):
        raise AssertionError("jhash eval refitted sdh")

    monkeypatch.setattr(sdh, "fit", no_fit)
    (workdir / "metrics.json").unlink()
    assert cli.main(["eval", "--workdir", str(workdir)]) == 0
    assert json.loads((workdir / "metrics.json").read_text()) == before
    assert all(np.array_equal(codes[k], v) for k, v in _codes(workdir).items())
    monkeypatch.undo()
    report = reproduce(workdir, tmp_path / "again")
    assert report["identical"], report
    # a finished run is not overwritten by another config's run: one line, exit 2, its results kept
    assert cli.main(["train", "--config", "method:itq:dataset=digits,bits=16", "--workdir", str(workdir)]) == 2
    assert "holds a run with a different config (fields ['itq', 'method', 'sdh', 'shallow'])" in capsys.readouterr().err
    assert json.loads((workdir / "metrics.json").read_text()) == before
    assert all(np.array_equal(codes[k], v) for k, v in _codes(workdir).items())


@pytest.mark.slow
def test_a_shallow_run_killed_mid_fit_reruns_to_the_same_codes(tmp_path):
    args = [sys.executable, "-m", "jhash.cli", "train", "--config", "method:sdh:dataset=digits,bits=16",
            "--config.progress=false", "--workdir"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen(args + [str(killed)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while proc.poll() is None and not (killed / "split.npz").exists():  # the fit starts after the split
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    assert not (killed / "metrics.json").exists()
    for workdir in (killed, tmp_path / "whole"):
        done = subprocess.run(args + [str(workdir)], cwd=REPO, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
    assert result_problem(killed) is None
    whole = _codes(tmp_path / "whole")
    assert all(np.array_equal(whole[k], v) for k, v in _codes(killed).items())


def test_a_typo_in_a_fit_argument_is_a_clear_error(tmp_path, capsys):
    config = load_config("method:itq:dataset=digits,bits=8")
    config.itq.iterations = 10  # itq's fit takes iters
    with pytest.raises(ValueError, match="does not take"):
        run.train(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    assert cli.main(["train", "--config", "method:nosuch", "--workdir", str(tmp_path / "x")]) == 2
    assert "online_mihash" in capsys.readouterr().err  # the error lists every kind's names


@pytest.mark.parametrize("method,extra", [
    ("online_mihash", []),
    ("dihn", ["model.hidden=(32,)", "num_epochs=2", "dihn.num_samples=128", "dihn.inner_epochs=1"]),
])
def test_online_methods_train_through_the_run_path(method, extra, tmp_path):
    config = _config(method, "dataset=digits,bits=16", ["stages.per_stage=5", *extra])
    results = run.train(config, tmp_path)
    assert result_problem(tmp_path) is None
    stages = json.loads((tmp_path / "stages.json").read_text())
    assert [s["classes"] for s in stages] == [5, 10]
    assert results["map@all"] == pytest.approx(stages[-1]["map"], abs=1e-9)  # the final stage, by the evaluator
    codes = _codes(tmp_path)
    split = jdata.load_split(tmp_path / "split.npz")
    assert sorted(codes["database_index"]) == sorted(split.train)  # every class seen: the whole training set
    assert np.array_equal(codes["query_index"], split.query)
    assert run.evaluate(config, tmp_path) == results  # scores the saved final codes again


def test_a_sweep_over_deep_and_shallow_methods_writes_one_table(tmp_path):
    workdir = tmp_path / "sweep"
    assert cli.main(["sweep", "--config", "method:{method}:dataset=digits,bits=8", "--grid", "method=dpsh,itq,sdh",
                     "--workdir", str(workdir), "--config.num_epochs=3", "--config.num_devices=1",
                     "--no-aggregate"]) == 0
    out = sweep.aggregate(workdir, plots=False)
    rows = [line for line in out["markdown"].read_text().splitlines() if line.startswith("| ")][1:]
    assert [r.split("|")[1].strip() for r in rows] == ["dpsh", "itq", "sdh"]
    assert all("—" not in r.split("|")[3] for r in rows)  # every row has its map@all


def test_the_trainer_and_the_evaluator_do_not_import_each_other():
    code = ("import sys, jhash.evaluate\n"
            "assert 'jhash.train.trainer' not in sys.modules, 'evaluate imported the trainer'\n"
            "import jhash.train.trainer\nimport jhash.run\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("trainer.py",):
        source = (REPO / "jhash" / "train" / name).read_text()
        assert "jhash.run" not in source
    assert "jhash.train.trainer" not in (REPO / "jhash" / "evaluate.py").read_text()
