"""Configs (files, arguments, overrides) and the CLI's argument handling."""
import pytest

from jhash import cli
from jhash.config import apply_overrides, base_config, load_config, parse_arg


def test_parse_arg_types():
    a = parse_arg("dataset=mnist,bits=64,cpu=true", dataset="digits", bits=32, cpu=False)
    assert (a.dataset, a.bits, a.cpu) == ("mnist", 64, True)
    with pytest.raises(ValueError, match="bits expects"):
        parse_arg("bits=many", bits=32)
    with pytest.raises(ValueError, match="key=value"):
        parse_arg("bits", bits=32)


def test_dpsh_config_file_and_overrides():
    c = load_config("experiments/configs/dpsh.py:dataset=mnist,bits=16")
    assert (c.method, c.dataset, c.bits, c.model.name) == ("dpsh", "mnist", 16, "cnn")
    c2 = apply_overrides(c, ["optimizer.learning_rate=0.01", "model.channels=(8, 16)", "dpsh.memory_bank=false"])
    assert c2.optimizer.learning_rate == 0.01 and tuple(c2.model.channels) == (8, 16) and not c2.dpsh.memory_bank
    assert c.optimizer.learning_rate == 1e-3  # the original is not changed
    with pytest.raises(ValueError, match="unknown config field"):
        apply_overrides(c, ["optimizer.lr=0.1"])
    with pytest.raises(ValueError, match="learning_rate expects a value like 0.001"):
        apply_overrides(c, ["optimizer.learning_rate=fast"])


def test_unknown_dataset_in_config_and_missing_file():
    with pytest.raises(ValueError, match="no experiment settings for dataset 'imagenet'"):
        load_config("experiments/configs/dpsh.py:dataset=imagenet")
    with pytest.raises(FileNotFoundError, match="not found"):
        load_config("experiments/configs/nope.py")


def test_cli_override_flags():
    assert cli._split_overrides(["--config.bits=64", "--config.optimizer.name", "sgd"]) == ["bits=64", "optimizer.name=sgd"]
    with pytest.raises(SystemExit, match="unknown argument"):
        cli._split_overrides(["--bits=64"])


def test_base_config_has_every_trainer_field():
    c = base_config()
    for field in ("method", "dataset", "bits", "model", "optimizer", "batch_size", "num_epochs", "seed",
                  "num_devices", "checkpoint_every", "eval"):
        assert field in c


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    assert cli.main(["train", "--config", "experiments/configs/dpsh.py:dataset=digits", "--config.bits=0",
                     "--workdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jhash: error: config.bits must be a positive integer") and "Traceback" not in err
    assert cli.main(["eval", "--workdir", str(tmp_path / "nothing")]) == 2
    assert "a jhash work dir (made by `jhash train`)" in capsys.readouterr().err


def test_builtin_method_configs_equal_the_config_files():
    from jhash import methods

    for name in methods.available():
        for arg in ("", ":dataset=cifar10,bits=64,cpu=true"):
            assert load_config(f"method:{name}{arg}").to_dict() == \
                load_config(f"experiments/configs/{name}.py{arg}").to_dict()
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        load_config("method:nope")


def test_config_flags_errors_are_one_line_with_a_hint(tmp_path, capsys):
    """--config and --config.FIELD go through ml_collections.config_flags: a typo in a field gets its "did you
    mean"; a typo in the file's argument, a value of the wrong type or a file without get_config is one line."""
    for argv, message in [
        (["--config.optimizer.learning_rat=0.1"], "unknown config field 'optimizer.learning_rat'; did you mean \"learning_rate\""),
        (["--config", "method:dsh:dataset=digits,bitz=3"], "unknown key 'bitz' in the config argument"),
        (["--config", "features:protocl=cifar10"], "unknown key 'protocl'"),
        (["--config.num_epochs", "many"], "num_epochs expects a value like 300, got 'many'"),
        (["--config", "jhash/cli.py"], "config file 'jhash/cli.py' defines no get_config()"),
    ]:
        assert cli.main(["train", *argv, "--workdir", str(tmp_path / "run")]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("jhash: error: ") and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run").exists()
    assert apply_overrides(load_config("method:dpsh"), ["bits=64", "model.hidden=[8]", "dpsh.memory_bank=false",
                                                        "optimizer.learning_rate=1"]).to_dict() == {
        **load_config("method:dpsh:bits=64").to_dict(), "model": {"name": "mlp", "hidden": (8,)},
        "dpsh": {"eta": 10.0, "memory_bank": False}, "optimizer": {**base_config().optimizer.to_dict(), "learning_rate": 1.0}}


def test_a_config_file_without_get_config_does_not_borrow_the_last_one(tmp_path):
    (tmp_path / "empty.py").write_text("x = 1\n")
    load_config("method:dpsh")
    with pytest.raises(ValueError, match="defines no get_config"):
        load_config(str(tmp_path / "empty.py"))


def test_a_ctrl_c_inside_a_gc_callback_only_sets_the_flag():
    """Python prints and drops an exception raised in a gc callback (JAX registers one): there the SIGINT handler
    only sets the flag that the training loop checks; anywhere else it raises KeyboardInterrupt."""
    import gc
    import sys

    from jhash.train import trainer

    seen = []

    def callback(phase, info):
        if phase == "start" and not seen:
            try:
                cli._interrupted(2, sys._getframe())  # as if the signal arrived here
                seen.append("returned")
            except KeyboardInterrupt:
                seen.append("raised")  # Python would print this one and drop it

    trainer.INTERRUPTED.clear()
    gc.callbacks.append(callback)
    try:
        gc.collect()
    finally:
        gc.callbacks.remove(callback)
    assert seen == ["returned"] and trainer.INTERRUPTED.is_set()
    trainer.INTERRUPTED.clear()
    with pytest.raises(KeyboardInterrupt):
        cli._interrupted(2, sys._getframe())
    trainer.INTERRUPTED.clear()
