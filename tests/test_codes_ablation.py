"""experiments/codes_ablation.py: the runs it asks for (images or cached features) and the table it writes."""
import json
import pathlib
import runpy

import numpy as np
import pytest

from jhash import data as jdata
from jhash import features, sweep

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ablation():
    return runpy.run_path(str(REPO / "experiments/codes_ablation.py"))


def _args(ablation, *argv):
    return ablation["parse_args"](list(argv))


def test_image_runs_are_the_method_configs_with_each_head(ablation):
    args = _args(ablation, "--dataset", "mnist", "--data-dir", "data")
    runs = sweep.expand(ablation["spec_for"](args, 16))
    assert len(runs) == 3 * 4 * 3  # seeds x regularizers x heads
    by_head = {}
    for _, point, config in runs:
        assert (config.method, config.dataset, config.bits, config.data_dir) == ("dpsh", "mnist", 16, "data")
        assert config.model.name == "cnn" and config.seed == point["seed"]
        assert config.regularize.balance == point["regularize.balance"]
        by_head[point["head"]] = config.model.get("head", "fc")
    assert by_head == {"fc": "fc", "ninh": "ninh", "grouped": "grouped"}
    # The quantization sweep keeps the configs' own head (the spec of sweeps run before heads were
    # an argument of config_spec, so that they resume).
    spec = ablation["quant_spec"](args, 16)
    assert spec["config"] == "method:{method}:dataset=mnist,bits=16,cpu=true"
    assert spec["grid"]["method"] == ["dpsh", "hashnet", "dqn", "depq", "dsq", "spdaq"]


def test_feature_runs_train_the_head_alone_on_the_file(ablation, tmp_path):
    out = tmp_path / "f.npz"
    features.extract(out, model_config={"name": "mlp", "hidden": (64,)}, dataset="digits")
    args = _args(ablation, "--features", str(out), "--dataset", "digits", "--binary-reference", "dch")
    for _, point, config in sweep.expand(ablation["spec_for"](args, 8)):
        assert (config.dataset, config.protocol, config.bits) == (str(out), "digits", 8)
        assert config.model.hidden == () and config.model.get("head", "fc") == point["head"]
    quant = sweep.expand(ablation["quant_spec"](args, 8))
    assert sorted({c.method for _, _, c in quant}) == ["dch", "depq", "dpsh", "dqn", "dsq", "spdaq"]
    assert all(c.dataset == str(out) and c.model.hidden == () for _, _, c in quant)
    scalable = sweep.expand(ablation["scalable_spec"](args))
    assert {c.model.head for _, _, c in scalable} == {"weighted"}


def test_a_small_feature_ablation_end_to_end(ablation, tmp_path):
    """Grouped head x the four regularizers on random-MLP features of digits: four runs and their table rows."""
    out = tmp_path / "f.npz"
    features.extract(out, model_config={"name": "mlp", "hidden": (64,)}, dataset="digits")
    table = tmp_path / "t.md"
    ablation["main"](["--features", str(out), "--dataset", "digits", "--bits", "8", "--seeds", "0", "--epochs", "2",
                      "--heads", "grouped", "--parts", "main", "--workdir", str(tmp_path / "w"), "--out", str(table)])
    text = table.read_text()
    assert text.startswith("# Hash heads and code regularizers on digits (cached features)")
    assert "64-d features of digits cached from `mlp` with random weights" in text
    rows = [line for line in text.splitlines() if line.startswith("| grouped |")]
    assert [r.split(" | ")[1] for r in rows] == ["none", "balance", "decorrelation", "both"]
    # The balance and correlation cells are those of the database codes, recomputed here by NumPy.
    run = tmp_path / "w" / "bits=8" / "seed=0,regularize.balance=0.0,regularize.decorrelation=0.0,head=grouped"
    z = np.load(run / "codes.npz")
    b = np.unpackbits(z["database_codes"], axis=1)[:, :8].astype(float) * 2 - 1
    balance = np.abs(b.mean(0)).mean()
    with np.errstate(invalid="ignore", divide="ignore"):  # a constant bit: its correlations count 0
        c = np.corrcoef(b, rowvar=False)
    off = ~np.eye(8, dtype=bool)
    corr = np.abs(np.nan_to_num(c[off])).mean()
    cells = rows[0].split(" | ")
    assert cells[4] == f"{balance:.3f} ± 0.000" and cells[5] == f"{corr:.3f} ± 0.000"


def test_unknown_heads_and_parts_are_refused(ablation):
    with pytest.raises(ValueError, match="--heads takes fc, ninh, grouped"):
        ablation["main"](["--heads", "fc,dense", "--table-only"])
    with pytest.raises(ValueError, match="--parts takes main, scalable and/or quant"):
        ablation["main"](["--parts", "all", "--table-only"])


def test_the_table_says_which_backbone_made_the_features(ablation, tmp_path):
    """A feature file from a run trained here names the run, its epochs and its own mAP when the run is at hand."""
    ds = jdata.load("digits")
    run = tmp_path / "backbone"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"num_epochs": 30, "bits": 32}))
    (run / "metrics.json").write_text(json.dumps({"map@all": 0.28501}))
    meta = {"from": "run", "workdir": str(run), "model": {"name": "cnn"}, "method": "dpsh",
            "trained_on": "digits split, split_seed 0"}
    features.save(tmp_path / "f.npz", np.zeros((len(ds), 5), np.float32), ds, meta)
    text, dim = ablation["setting"](_args(ablation, "--features", str(tmp_path / "f.npz"), "--dataset", "digits"))
    assert dim == 5
    assert ("the 5-d features of digits cached from the `cnn` network trained by DPSH on the digits split, "
            "split_seed 0 (its queries unseen; run `backbone`: 30 epochs, its own 32-bit codes mAP@ALL 0.2850)") in text
    (run / "metrics.json").unlink()  # the run moved away: the table still names it
    text, _ = ablation["setting"](_args(ablation, "--features", str(tmp_path / "f.npz"), "--dataset", "digits"))
    assert "(its queries unseen; run `backbone`)" in text
    # Images: the trunk's width is the dataset's network's (mnist: dense 256).
    assert ablation["setting"](_args(ablation, "--dataset", "mnist"))[1] == 256
