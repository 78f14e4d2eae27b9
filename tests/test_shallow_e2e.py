"""End to end on scikit-learn's bundled digits: every method beats random codes, the
supervised ones beat LSH."""
import json

import jax
import numpy as np
import pytest

from jhash import metrics, shallow

BITS = 16
HYPER = {"agh": {"anchors": 100}, "agh2": {"anchors": 100, "layers": 2}, "sgh": {"anchors": 100},
         "dgh": {"anchors": 100}, "fth": {"anchors": 200, "triplets_per_point": 20}, "sdh": {"anchors": 200}, "ksh": {"anchors": 100}, "cosdish": {"anchors": 200, "num_samples": 200},
         "fsdh": {"anchors": 200}, "tsh": {"anchors": 100, "box_iterations": 20, "svm_iterations": 3},
         "fasth": {"trees": 10}, "mlh": {"steps": 1000}, "hdml": {"steps": 1000}, "toprsbc": {"steps": 1000},
         "cgh": {"master_iters": 100, "power_iters": 30, "ascent_iters": 30}, "rph": {"lr": 0.03},
         "dserh": {"triplets_per_point": 20, "outer_iterations": 5}, "affhash": {"mu_steps": 6, "svm_epochs": 5}}


# `digits` (pixels in [0, 1] of the digits protocol's split 0) is a fixture of conftest.py


def score(name, digits):
    fit = shallow.get_method("agh" if name == "agh2" else name)
    (xt, yt), (xq, yq), (xd, yd) = digits["train"], digits["query"], digits["database"]
    h = fit(xt, yt, bits=BITS, key=jax.random.key(0), **HYPER.get(name, {}))
    qc, dc = h.encode(xq), h.encode(xd)
    assert qc.shape == (len(xq), BITS) and qc.dtype == np.int8
    return metrics.mean_average_precision(qc, dc, yq, yd)


@pytest.fixture(scope="module")
def random_map(digits):
    (_, yq), (_, yd) = digits["query"], digits["database"]
    r = np.random.default_rng(0)
    return metrics.mean_average_precision(np.where(r.random((len(yq), BITS)) < .5, -1, 1),
                                          np.where(r.random((len(yd), BITS)) < .5, -1, 1), yq, yd)


@pytest.mark.parametrize("name", list(shallow.UNSUPERVISED) + ["agh2"])
def test_unsupervised_beats_random_codes(name, digits, random_map):
    assert score(name, digits) > random_map + 0.15


@pytest.mark.parametrize("name", [m for m in shallow.SUPERVISED if m != "rsh"])  # RSH: see test_shallow_list.py
def test_supervised_beats_lsh(name, digits, random_map):
    lsh = score("lsh", digits)
    m = score(name, digits)
    assert m > random_map + 0.15 and m > lsh + 0.2


def test_shallow_runner_on_feature_files(tmp_path):
    """experiments/shallow_mnist.py with --features: one file per seed ('{seed}' in the name), the
    dataset's split, rows cached apart from pixel rows; a file of another dataset is refused."""
    import importlib.util
    import pathlib
    import sys

    from jhash import data as jdata

    root = pathlib.Path(__file__).resolve().parents[1] / "experiments"
    sys.path.insert(0, str(root / "configs"))
    spec = importlib.util.spec_from_file_location("shallow_mnist_runner", root / "shallow_mnist.py")
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    ds = jdata.load("digits")
    for seed in (0, 1):  # a stand-in for CNN features: a fixed random projection of the pixels per seed
        w = np.random.default_rng(seed).standard_normal((ds.x.shape[1], 32)).astype(np.float32)
        np.savez(tmp_path / f"f-{seed}.npz", x=np.maximum(ds.x @ w, 0), y=ds.y)
    cache, out = tmp_path / "cache.jsonl", tmp_path / "table.md"
    common = ["--dataset", "digits", "--methods", "lsh,itq", "--bits", "8", "--cache", str(cache)]
    runner.main(common + ["--seeds", "1", "--out", str(tmp_path / "pixels.md")])
    runner.main(common + ["--seeds", "2", "--features", str(tmp_path / "f-{seed}.npz"), "--out", str(out)])
    rows = [json.loads(line) for line in cache.read_text().splitlines()]
    assert [(r["method"], r["seed"], r.get("features", "")) for r in rows] == [
        ("lsh", 0, ""), ("itq", 0, ""), *[(m, s, str(tmp_path / "f-{seed}.npz")) for m in ("lsh", "itq") for s in (0, 1)]]
    # the feature runs saw other inputs than the pixel runs (same split, same key)
    assert rows[2]["map"] != rows[0]["map"]
    table = out.read_text()
    assert "f-{seed}.npz" in table and "| ITQ |" in table and "(n=" not in table.split("### Precision")[0]
    np.savez(tmp_path / "bad-0.npz", x=ds.x[:100], y=ds.y[:100])
    with pytest.raises(ValueError, match="--features .*bad-0.npz"):
        runner.main(common + ["--seeds", "1", "--features", str(tmp_path / "bad-{seed}.npz"), "--out", str(out)])
