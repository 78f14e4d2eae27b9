"""ADSH through the one trainer: its own sample schedule, V learned in the step and used as the database codes,
exact resume and 8 devices = 1 device."""
import pathlib

import jax
import numpy as np
import pytest

from jhash import codes as jcodes
from jhash.config import apply_overrides, load_config
from jhash.run import restore_run
from jhash.train import train
from jhash.train.trainer import read_config

REPO = pathlib.Path(__file__).resolve().parents[1]


def adsh_config(*overrides):
    c = load_config(str(REPO / "experiments/configs/adsh.py") + ":dataset=digits,bits=16")
    return apply_overrides(c, ["model.hidden=(64,)", "num_epochs=20", "adsh.num_samples=256", "checkpoint_every=30",
                               "log_every=30", "progress=false", "num_devices=1", *overrides])


def _restore(workdir):
    return restore_run(read_config(workdir), workdir)


@pytest.fixture(scope="module")
def adsh_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("adsh")
    return workdir, train(adsh_config(), workdir)


def test_schedule_is_adshs_own(adsh_run):
    workdir, results = adsh_run
    method, _, data = _restore(workdir)
    # outer iterations to match 20 epochs of the 500 training items: ceil(20 * 500 / (3 * 256)) = 14, 3 x 4 steps each
    assert method.num_steps == 14 * 3 * 4
    first = [set(method.batches(s).tolist()) for s in range(12)]
    omega = set().union(*first)
    assert len(omega) == 256  # one outer iteration sees exactly its sample, each epoch once
    assert set().union(*first[:4]) == set().union(*first[4:8]) == omega
    assert omega != set().union(*[set(method.batches(s).tolist()) for s in range(12, 24)])
    np.testing.assert_array_equal(method.batches(17), method.batches(17))  # a pure function of the step
    assert results["map@all"] > 0.5


def test_database_codes_are_the_learned_v(adsh_run):
    workdir, _ = adsh_run
    _, state, data = _restore(workdir)
    v = np.asarray(jax.device_get(state.method_state["v"]))
    assert set(np.unique(v)) == {-1.0, 1.0}  # V was updated: no 0 left from its initialisation
    z = np.load(workdir / "codes.npz")
    db = jcodes.unpack(z["database_codes"], 16)
    position = {int(d): p for p, d in enumerate(data.train_index)}
    rows = [(r, position[int(d)]) for r, d in enumerate(z["database_index"]) if int(d) in position]
    assert len(rows) == len(data.train_index)
    r, p = np.array(rows).T
    np.testing.assert_array_equal(db[r], np.where(v[p] >= 0, 1, -1))


def test_resume_and_eight_devices_give_the_same_codes(adsh_run, tmp_path):
    workdir, _ = adsh_run
    want = np.load(workdir / "codes.npz")

    def crash(step, _):
        if step == 90:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(adsh_config(), tmp_path / "resumed", on_step=crash)
    train(adsh_config(), tmp_path / "resumed")
    train(adsh_config("num_devices=8"), tmp_path / "eight")
    for other in ("resumed", "eight"):
        got = np.load(tmp_path / other / "codes.npz")
        for name in ("query_codes", "database_codes"):
            np.testing.assert_array_equal(got[name], want[name], err_msg=f"{other} {name}")


def test_bad_sample_size_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"adsh.num_samples \(32\) must be at least config.batch_size \(64\)"):
        train(adsh_config("adsh.num_samples=32"), tmp_path)


def test_database_axis_is_sharded_over_eight_devices(tmp_path):
    """V and U split over 8 devices (512 training items: 64 rows each) give the codes of one device."""
    sharded = ["protocol=custom:n_query=100,n_train=512,query_per_class=10", "num_epochs=6", "adsh.database=train"]
    train(adsh_config(*sharded), tmp_path / "one")
    train(adsh_config(*sharded, "num_devices=8"), tmp_path / "eight")
    _, state, _ = _restore(tmp_path / "eight")
    for key in ("v", "u"):
        shards = state.method_state[key].addressable_shards
        assert len(shards) == 8 and {s.data.shape for s in shards} == {(64, 16)}, key
    assert len(state.method_state["labels"].addressable_shards[0].data) == 512  # the rest stays replicated
    one, eight = np.load(tmp_path / "one" / "codes.npz"), np.load(tmp_path / "eight" / "codes.npz")
    for name in ("query_codes", "database_codes"):
        np.testing.assert_array_equal(eight[name], one[name], err_msg=name)
    np.testing.assert_array_equal(np.asarray(state.method_state["v"]),
                                  np.asarray(_restore(tmp_path / "one")[1].method_state["v"]))


def test_whole_database_v_covers_every_database_item(adsh_run, tmp_path):
    """The default (the authors' setting): Omega is drawn from the whole database, V has a row per
    database item, and every database code the evaluator ranks is V's; 'train' learns V only for
    the training set and encodes the rest with the network, at the same number of network updates."""
    workdir, results = adsh_run
    method, state, data = _restore(workdir)
    np.testing.assert_array_equal(np.sort(data.train_index), np.sort(data.split.database))
    v = np.asarray(jax.device_get(state.method_state["v"]))
    assert v.shape == (len(data.split.database), 16)
    z = np.load(workdir / "codes.npz")
    db = jcodes.unpack(z["database_codes"], 16)
    position = {int(d): p for p, d in enumerate(data.train_index)}
    rows = np.array([position[int(d)] for d in z["database_index"]])
    np.testing.assert_array_equal(db, np.where(v[rows] >= 0, 1, -1))
    sampled = set().union(*[set(method.batches(s).tolist()) for s in range(method.num_steps)])
    assert max(sampled) >= 500  # beyond the first 500 rows: Omega is drawn from the whole database

    train_mode = train(adsh_config("adsh.database=train"), tmp_path / "train")
    method_t, state_t, data_t = _restore(tmp_path / "train")
    np.testing.assert_array_equal(data_t.train_index, data_t.split.train)
    assert state_t.method_state["v"].shape == (len(data_t.split.train), 16)
    assert method_t.num_steps == method.num_steps  # the same budget of network updates
    assert results["map@all"] > 0.5 and train_mode["map@all"] > 0.5


def test_database_option_is_checked_and_old_configs_keep_the_training_set():
    from jhash.methods import adsh

    assert adsh.trains_on_database(adsh_config())
    assert not adsh.trains_on_database(adsh_config("adsh.database=train"))
    old = adsh_config()
    del old.adsh["database"]  # a config.json saved before the option existed
    assert not adsh.trains_on_database(old)
    with pytest.raises(ValueError, match="adsh.database must be one of whole, train"):
        adsh.trains_on_database(adsh_config("adsh.database=all"))
