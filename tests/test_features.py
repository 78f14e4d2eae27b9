"""Feature-extraction mode (jhash.features): cache a backbone's features, then train a hash head on them."""
import json
import pathlib
import runpy

import jax
import numpy as np
import pytest

from jhash import data as jdata
from jhash import features
from jhash.config import load_config
from jhash.train import train
from jhash.run import restore_run
from jhash.train import read_config

REPO = pathlib.Path(__file__).resolve().parents[1]


def _mlp_features_numpy(params, x):
    """The MLP's sown features by its definition: ReLU layers dense0, dense1 on the flattened input."""
    h = np.asarray(x, np.float64).reshape(len(x), -1)
    for name in ("dense0", "dense1"):
        h = np.maximum(h @ np.asarray(params[name]["kernel"], np.float64) + np.asarray(params[name]["bias"]), 0)
    return h


def test_features_of_a_trained_run_then_a_hash_head_on_them(tmp_path):
    # A backbone trained briefly on the training split of digits (DPSH, MLP 256-256).
    config = load_config(str(REPO / "experiments/configs/dpsh.py") + ":dataset=digits,bits=16")
    config.num_epochs, config.progress, config.num_devices = 3, False, 1
    train(config, tmp_path / "run", evaluate=False)

    out = tmp_path / "feats.npz"
    meta = json.loads(json.dumps(features.extract(out, workdir=tmp_path / "run", batch_size=512)))
    assert meta["from"] == "run" and meta["dim"] == 256 and meta["source_dataset"] == "digits"
    assert features.read_meta(out) == meta

    ds, cached = jdata.load("digits"), jdata.load(str(out))
    np.testing.assert_array_equal(cached.y, ds.y)
    assert cached.x.shape == (len(ds), 256) and cached.is_test is None
    _, state, _ = restore_run(read_config(tmp_path / "run"), tmp_path / "run")
    np.testing.assert_allclose(cached.x, _mlp_features_numpy(jax.device_get(state.params), ds.x), rtol=1e-4, atol=1e-5)

    # The protocol on the feature file draws the run's split: its queries were never trained on.
    run_split = jdata.load_split(tmp_path / "run" / "split.npz")
    split = jdata.make_split(cached, "digits", seed=config.split_seed)
    for part in ("query", "train", "database"):
        np.testing.assert_array_equal(getattr(split, part), getattr(run_split, part))

    # A hash head (the hash layer alone) trained on the cached features learns: mAP above random codes.
    head = load_config(str(REPO / "experiments/configs/features.py")
                       + f":method=dpsh,features={out},protocol=digits,bits=16,epochs=5")
    head.progress, head.num_devices = False, 1
    assert head.model.to_dict() == {"name": "mlp", "hidden": ()}
    results = train(head, tmp_path / "head")
    labels = cached.y
    chance = float(np.mean(np.bincount(labels) / len(labels)))  # mAP of random codes is about the class prior
    assert results["map@all"] > chance + 0.15


def test_features_of_a_model_by_name_and_the_script(tmp_path, capsys):
    script = runpy.run_path(str(REPO / "experiments/extract_features.py"))
    out = tmp_path / "f.npz"
    assert script["main"](["--model", "mlp", "--dataset", "digits", "--out", str(out), "--seed", "3"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["from"] == "model" and meta["model"] == {"name": "mlp"} and meta["n"] == 1797
    from jhash.models import get_model, init_model

    ds = jdata.load("digits")
    params, _ = init_model(get_model("mlp", bits=1), jax.random.PRNGKey(3), jdata.to_float(ds.x[:1]))
    np.testing.assert_allclose(jdata.load(str(out)).x, _mlp_features_numpy(params, ds.x), rtol=1e-4, atol=1e-5)


def test_bad_requests_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="exactly one of workdir="):
        features.extract(tmp_path / "f.npz", dataset="digits")
    with pytest.raises(ValueError, match="dataset= is needed"):
        features.extract(tmp_path / "f.npz", model_config={"name": "mlp"})
    with pytest.raises(ValueError, match="must name the model"):
        features.extract(tmp_path / "f.npz", model_config={"hidden": (4,)}, dataset="digits")
    ds = jdata.load("digits")
    with pytest.raises(ValueError, match="features must be"):
        features.save(tmp_path / "f.npz", np.zeros((3, 2)), ds, {})
    with pytest.raises(ValueError, match="must end in .npz"):
        features.save(tmp_path / "f.txt", np.zeros((len(ds), 2)), ds, {})
    with pytest.raises(ValueError, match="needs features=PATH"):
        load_config(str(REPO / "experiments/configs/features.py") + ":method=dpsh")


def test_the_features_config_is_built_in_and_takes_a_head():
    arg = "method=dqn,features=f.npz,protocol=cifar10,bits=16,head=ninh,epochs=7"
    built_in, from_file = load_config("features:" + arg), load_config(str(REPO / "experiments/configs/features.py") + ":" + arg)
    assert built_in.to_dict() == from_file.to_dict()
    assert (built_in.method, built_in.dataset, built_in.protocol, built_in.bits, built_in.num_epochs) == (
        "dqn", "f.npz", "cifar10", 16, 7)
    assert built_in.model.to_dict() == {"name": "mlp", "hidden": (), "head": "ninh", "head_groups": 4, "head_hidden": 0}
    assert "dqn" in built_in and load_config("features:features=f.npz,protocol=cifar10").model.to_dict() == {
        "name": "mlp", "hidden": ()}
    with pytest.raises(ValueError, match="needs protocol=NAME"):
        load_config("features:features=f.npz")
