"""Every deep method trains through the one trainer on tiny data and learns: mAP well above random codes.

Each method runs its own config (experiments/configs/<method>.py) on the bundled digits
data with a small MLP and 140 steps. The random baseline is the mAP of random +-1 codes
for the same queries and database.
"""
import pathlib

import numpy as np
import pytest
from conftest import random_code_map

from jhash import methods
from jhash.config import apply_overrides, load_config
from jhash.train import train

REPO = pathlib.Path(__file__).resolve().parents[1]
# Covered elsewhere, with the settings their mechanisms need: DPSH by test_train.py, the
# quantization methods by test_quantization.py, the two-step methods by test_twostep_methods.py.
OWN_TESTS = {"dpsh", "dqn", "depq", "dsq", "spdaq", "cnnh", "ftdsh", "hbmp"}
DEEP = sorted(set(methods.available()) - OWN_TESTS)

# Settings a method needs to show its mechanism within 140 steps.
EXTRA = {
    "mmhh": ["mmhh.memory_after=70"],  # switch to batch x memory pairs half-way
    "dseh": ["dseh.label_epochs=3"],
    "ddsh": ["ddsh.num_samples=100"],  # BQP steps over 100 sampled codes
    # V over the training set: over the whole database (the default, tests/test_adsh.py) V holds the
    # label-driven codes of every database item, a few per class, which the collapse check below reads as collapse
    "adsh": ["adsh.num_samples=256", "adsh.database=train"],
    "dsdh": ["dsdh.eta=5.5"],  # eta is relative to the pairs of 5,000 training items (55); digits has 500
}


def method_config(method, *overrides):
    c = load_config(str(REPO / f"experiments/configs/{method}.py") + ":dataset=digits,bits=16")
    return apply_overrides(c, ["model.hidden=(64,)", "num_epochs=20", "checkpoint_every=140", "log_every=35",
                               "progress=false", "num_devices=1", *EXTRA.get(method, []), *overrides])




def test_every_method_has_a_config():
    configs = {p.stem for p in (REPO / "experiments/configs").glob("*.py")}
    assert set(methods.available()) <= configs


@pytest.mark.parametrize("method", DEEP)
def test_method_learns_on_tiny_data(method, tmp_path):
    results = train(method_config(method), tmp_path)
    baseline = random_code_map(tmp_path)
    assert baseline < 0.15
    assert results["map@all"] > baseline + 0.2, (method, results["map@all"], baseline)
    assert results["distinct_db_codes"] > 50  # not collapsed to a few codes


def test_unknown_or_bad_hyperparameters_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match=r"unknown config field 'dch.gama'"):
        method_config("dch", "dch.gama=3.0")
    c = method_config("dch")
    c.dch.gama = 3.0  # a config file with a typo
    with pytest.raises(ValueError, match=r"config.dch has unknown key\(s\) \['gama'\]"):
        methods.build(c, train_labels=np.zeros(10, np.int32))
    with pytest.raises(ValueError, match="talr.objective must be one of"):
        methods.build(method_config("talr", "talr.objective=map"), train_labels=np.zeros(10, np.int32))


def test_a_diverging_loss_stops_with_a_clear_error_and_keeps_the_checkpoint(tmp_path):
    from jhash.train.checkpoint import Checkpointer

    c = method_config("dsh", "optimizer.learning_rate=1e30", "num_epochs=10", "checkpoint_every=1", "log_every=50")
    with pytest.raises(FloatingPointError, match="NaN or infinite by step"):
        train(c, tmp_path)
    last = Checkpointer.latest_step_in(tmp_path / "checkpoints")
    assert last is not None and last < 70  # checkpoints up to the last finite state, none after


def test_results_script_writes_the_table(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("deep_results", REPO / "experiments/deep_results.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "table.md"
    args = ["--dataset", "digits", "--bits", "8", "--seeds", "0", "--methods", "dch", "--epochs", "3",
            "--workdir", str(tmp_path / "runs"), "--out", str(out)]
    script.main(args)
    table = out.read_text()
    for row in ("| dpsh |", "| dch |", "| lsh |", "## mAP@ALL", "## Check"):
        assert row in table
    first = table
    script.main(args)  # finished runs are skipped: the same table
    assert out.read_text() == first
