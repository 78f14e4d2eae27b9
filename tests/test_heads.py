"""Hash heads (jhash.models.heads) and the code regularizers (jhash.methods.base.regularized).

References are independent: NumPy formulas and loops, Jacobians for which output depends on
what, brute-force sorting for the bit-scalable truncation, and trained codes on digits for the
direction of the regularizers' effect.
"""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jhash import codes as jcodes
from jhash.config import apply_overrides, experiment_config, method_config
from jhash.methods import get_method
from jhash.methods.base import Method, Schedule, regularized
from jhash.models import (CodeClassifier, DivideEncodeHead, GroupedHead, WeightedBitsHead, apply_model, bit_weights,
                          get_model, init_model, make_head, truncate_codes, weighted_hamming_distance)
from jhash.models.heads import ninh_threshold, top_bits

HEADS = ("fc", "ninh", "weighted", "grouped")


def _init(module, h, seed=0):
    return module.init(jax.random.PRNGKey(seed), h)["params"]


# ------------------------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("name, shape", [("mlp", (5, 20)), ("cnn", (5, 28, 28, 1))])
def test_every_head_on_every_backbone_gives_bits_outputs(head, name, shape):
    kwargs = {"hidden": (24,)} if name == "mlp" else {"channels": (4,), "dense": 24}
    model = get_model(name, bits=12, head=head, **kwargs)
    x = jnp.asarray(np.random.default_rng(0).random(shape), jnp.float32)
    params, state = init_model(model, jax.random.PRNGKey(0), x[:1])
    u, _ = apply_model(model, params, state, x, train=True)
    assert u.shape == (5, 12) and u.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(u)))


@pytest.mark.parametrize("head", HEADS)
def test_heads_work_inside_the_code_classifier(head):
    model = CodeClassifier(get_model("mlp", bits=8, hidden=(16,), head=head), num_classes=3)
    x = jnp.ones((4, 6))
    params, state = init_model(model, jax.random.PRNGKey(1), x[:1])
    out, _ = apply_model(model, params, state, x, train=False)
    assert out["u"].shape == (4, 8) and out["logits"].shape == (4, 3)


def test_fc_head_keeps_its_parameter_names():
    """Checkpoints of runs made before heads existed still restore: the FC head is HashHead_0/hash."""
    model = get_model("mlp", bits=4, hidden=(8,))
    params, _ = init_model(model, jax.random.PRNGKey(0), jnp.ones((1, 3)))
    assert set(params) == {"dense0", "HashHead_0"} and set(params["HashHead_0"]) == {"hash"}


# ---------------------------------------------------------------------------------------------- NINH


@pytest.mark.parametrize("d, q", [(12, 4), (10, 4), (7, 7), (33, 8)])
def test_ninh_bit_i_is_a_linear_function_of_slice_i_only(d, q):
    h = jnp.asarray(np.random.default_rng(d).normal(size=(3, d)), jnp.float32)
    head = DivideEncodeHead(q)
    params = _init(head, h)
    slices = np.array_split(np.arange(d), q)
    # The Jacobian du_i / dh_j is non-zero exactly when feature j is in slice i.
    jac = np.asarray(jax.jacrev(lambda v: head.apply({"params": params}, v[None])[0])(h[0]))
    expected = np.zeros((q, d), bool)
    for i, s in enumerate(slices):
        expected[i, s] = True
    assert ((jac != 0) == expected).all()
    # The outputs equal a NumPy loop over the slices.
    w, c = np.asarray(params["kernel"]), np.asarray(params["bias"])
    ref = np.array([[sum(float(h[n, j]) * w[j] for j in s) + c[i] for i, s in enumerate(slices)] for n in range(3)])
    np.testing.assert_allclose(np.asarray(head.apply({"params": params}, h)), ref, rtol=1e-5, atol=1e-6)


def test_ninh_perturbing_other_slices_leaves_a_bit_unchanged():
    d, q = 16, 4
    rng = np.random.default_rng(3)
    h = rng.normal(size=(1, d)).astype(np.float32)
    head = DivideEncodeHead(q)
    params = _init(head, jnp.asarray(h))
    u0 = np.asarray(head.apply({"params": params}, h))[0]
    for i in range(q):
        g = h.copy()
        g[0, [j for j in range(d) if j // (d // q) != i]] += rng.normal(size=d - d // q)
        u1 = np.asarray(head.apply({"params": params}, g))[0]
        assert u1[i] == u0[i] and np.all(np.delete(u1, i) != np.delete(u0, i))


def test_ninh_threshold_matches_the_piecewise_formula():
    u = np.linspace(-3, 3, 61).astype(np.float32)
    s = 1 / (1 + np.exp(-u.astype(np.float64)))
    g = np.where(s < 0.4, 0.0, np.where(s > 0.6, 1.0, s))
    np.testing.assert_allclose(np.asarray(ninh_threshold(jnp.asarray(u))), 2 * g - 1, atol=1e-6)
    model = get_model("mlp", bits=4, hidden=(8,), head="ninh", head_activation="ninh_threshold")
    out, _ = apply_model(model, *init_model(model, jax.random.PRNGKey(0), jnp.ones((1, 3))), 50 * jnp.ones((2, 3)),
                         train=False)
    assert np.all(np.abs(np.asarray(out)) <= 1)


# ------------------------------------------------------------------------------------------- grouped


def test_grouped_heads_are_independent_given_the_trunk():
    d, q, m, width = 10, 12, 3, 5
    h = jnp.asarray(np.random.default_rng(0).normal(size=(4, d)), jnp.float32)
    head = GroupedHead(q, groups=m, hidden=width)
    params = _init(head, h)
    assert sorted(params) == sorted([f"group{g}_{k}" for g in range(m) for k in ("hidden", "hash")])
    grads = jax.jacrev(lambda p: head.apply({"params": p}, h))(params)  # d u / d params, per leaf
    per = q // m
    for g in range(m):
        for name in (f"group{g}_hidden", f"group{g}_hash"):
            for leaf in jax.tree_util.tree_leaves(grads[name]):  # shape (4, q) + parameter shape
                leaf = np.asarray(leaf).reshape(4, q, -1)
                others = np.delete(leaf, np.s_[g * per:(g + 1) * per], axis=1)
                assert not others.any()  # group g's parameters move no other group's bits
                assert leaf[:, g * per:(g + 1) * per].any()
    # Each group equals its own two-layer NumPy network on the shared features.
    hn = np.asarray(h, np.float64)
    for g in range(m):
        p1, p2 = params[f"group{g}_hidden"], params[f"group{g}_hash"]
        ref = np.maximum(hn @ np.asarray(p1["kernel"]) + np.asarray(p1["bias"]), 0) @ np.asarray(p2["kernel"])
        ref += np.asarray(p2["bias"])
        np.testing.assert_allclose(np.asarray(head.apply({"params": params}, h))[:, g * per:(g + 1) * per], ref,
                                   rtol=1e-5, atol=1e-5)


def test_grouped_default_width_splits_the_trunk():
    params = _init(GroupedHead(8, groups=4), jnp.ones((2, 20)))
    assert params["group0_hidden"]["kernel"].shape == (20, 5) and params["group3_hash"]["kernel"].shape == (5, 2)


# ------------------------------------------------------------------------------------ weighted bits


def test_weighted_head_multiplies_the_hash_layer_by_learned_bit_weights():
    h = jnp.asarray(np.random.default_rng(0).normal(size=(3, 6)), jnp.float32)
    head = WeightedBitsHead(4, activation="tanh")
    params = _init(head, h)
    np.testing.assert_array_equal(bit_weights(params), np.ones(4))
    params = {**params, "bit_weights": jnp.asarray([2.0, -0.5, 1.0, 0.0])}
    k, b = np.asarray(params["hash"]["kernel"]), np.asarray(params["hash"]["bias"])
    ref = np.tanh(np.asarray(h) @ k + b) * np.array([2.0, -0.5, 1.0, 0.0])
    np.testing.assert_allclose(np.asarray(head.apply({"params": params}, h)), ref, rtol=1e-5, atol=1e-6)
    # bit_weights finds the weights inside a whole model's parameter tree.
    model = get_model("mlp", bits=5, hidden=(7,), head="weighted")
    full, _ = init_model(model, jax.random.PRNGKey(0), jnp.ones((1, 3)))
    assert bit_weights(full).shape == (5,)
    with pytest.raises(ValueError, match="bit_weights"):
        bit_weights(init_model(get_model("mlp", bits=5, hidden=(7,)), jax.random.PRNGKey(0), jnp.ones((1, 3)))[0])


def test_weighted_hamming_distance_equals_a_numpy_loop():
    rng = np.random.default_rng(1)
    a, b = np.where(rng.random((5, 9)) < 0.5, -1, 1), np.where(rng.random((7, 9)) < 0.5, -1, 1)
    w = rng.normal(size=9)
    ref = np.array([[sum(w[k] ** 2 for k in range(9) if a[i, k] != b[j, k]) for j in range(7)] for i in range(5)])
    np.testing.assert_allclose(weighted_hamming_distance(a, b, w), ref, rtol=1e-12, atol=1e-12)
    # Unit weights give the Hamming distance.
    np.testing.assert_array_equal(weighted_hamming_distance(a, b, np.ones(9)),
                                  jcodes.hamming_distance(jcodes.pack(a), jcodes.pack(b)))
    with pytest.raises(ValueError, match="weights must have shape"):
        weighted_hamming_distance(a, b, w[:4])


def test_truncation_keeps_the_top_weighted_bits():
    rng = np.random.default_rng(2)
    w = np.array([0.3, -2.0, 0.3, 1.5, 0.0, -0.3, 0.9])
    codes = np.where(rng.random((6, 7)) < 0.5, -1, 1)
    # Brute force: pick the largest |w| one at a time, the lowest index among equals.
    left, order = list(range(7)), []
    while left:
        best = max(left, key=lambda k: (abs(w[k]), -k))
        order.append(best)
        left.remove(best)
    for length in range(1, 8):
        np.testing.assert_array_equal(top_bits(w, length), order[:length])
        np.testing.assert_array_equal(truncate_codes(codes, w, length), codes[:, order[:length]])
    # Dropping the bits of weight 0 leaves the weighted Hamming distance unchanged.
    short = truncate_codes(codes, w, 6)
    np.testing.assert_allclose(weighted_hamming_distance(short, short, w[order[:6]]),
                               weighted_hamming_distance(codes, codes, w))
    for bad in (0, 8, 2.5):
        with pytest.raises(ValueError, match="length"):
            truncate_codes(codes, w, bad)


# ----------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("kwargs, match", [
    ({"head": "attention"}, "head must be one of"),
    ({"head": "grouped", "head_groups": 5}, "head_groups must be a positive integer dividing bits"),
    ({"head": "grouped", "head_groups": 0}, "head_groups"),
    ({"head": "grouped", "head_hidden": -1}, "head_hidden"),
    ({"head_activation": "relu"}, "head_activation"),
])
def test_bad_head_settings_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        get_model("mlp", bits=8, **kwargs)


def test_ninh_needs_a_feature_per_bit():
    with pytest.raises(ValueError, match="at least one feature per bit"):
        _init(make_head("ninh", bits=8), jnp.ones((2, 5)))


def test_config_argument_selects_the_head():
    c = method_config("dpsh", dataset="digits")("bits=16,head=ninh")
    assert c.model.head == "ninh" and c.model.head_groups == 4
    assert "head" not in method_config("dpsh", dataset="digits")("bits=16").model  # FC: config unchanged


# ------------------------------------------------------------------------------------- regularizers


def _toy_method(bits=6):
    def loss(u, batch, state, *, step, key):
        value = jnp.mean((u - 0.3) ** 2)
        return value, {"loss": value}

    return Method(name="toy", model=get_model("mlp", bits=bits, hidden=(4,)), loss=loss)


def _reg_config(**regularize):
    c = experiment_config("dpsh", dataset="digits", bits=6)
    return apply_overrides(c, [f"regularize.{k}={v}" for k, v in regularize.items()])


@pytest.mark.parametrize("on", ["tanh", "identity", "sign_ste"])
def test_regularized_loss_equals_numpy_formula(on):
    rng = np.random.default_rng(0)
    u = rng.normal(size=(9, 6)).astype(np.float32)
    method = regularized(_toy_method(), _reg_config(balance=0.7, decorrelation=2.5, on=on))
    value, metrics = jax.jit(lambda v: method.loss(v, {}, {}, step=0, key=None))(jnp.asarray(u))
    t = {"tanh": np.tanh, "identity": lambda x: x, "sign_ste": lambda x: np.where(x >= 0, 1.0, -1.0)}[on](
        u.astype(np.float64))
    n, q = t.shape
    balance = sum(t[:, k].mean() ** 2 for k in range(q)) / q
    decor = sum((sum(t[i, k] * t[i, l] for i in range(n)) / n - (k == l)) ** 2 for k in range(q) for l in range(q))
    decor /= q * q
    base = np.mean((u.astype(np.float64) - 0.3) ** 2)
    np.testing.assert_allclose(float(metrics["balance_penalty"]), balance, rtol=1e-5)
    np.testing.assert_allclose(float(metrics["decorrelation_penalty"]), decor, rtol=1e-5)
    np.testing.assert_allclose(float(metrics["method_loss"]), base, rtol=1e-5)
    np.testing.assert_allclose(float(value), base + 0.7 * balance + 2.5 * decor, rtol=1e-5)
    assert float(metrics["loss"]) == float(value)


def test_regularizers_off_return_the_method_itself_and_bad_weights_fail():
    method = _toy_method()
    assert regularized(method, _reg_config()) is method
    old_run = experiment_config("dpsh", dataset="digits", bits=6)
    del old_run["regularize"]  # a config saved before the regularizers existed
    assert regularized(method, old_run) is method
    for bad, match in (({"balance": -1.0}, "regularize.balance must be a number >= 0"),
                       ({"decorrelation": "x"}, "regularize.decorrelation must be a number"),
                       ({"on": "round"}, "unknown discretizer"),
                       ({"bogus": 1.0}, "unknown key")):
        c = experiment_config("dpsh", dataset="digits", bits=6).to_dict()
        c["regularize"] = {**c["regularize"], **bad}
        with pytest.raises(ValueError, match=match):
            regularized(method, c)


def test_regularizer_reads_u_of_a_dict_output():
    config = _reg_config(balance=1.0)
    method = get_method("greedyhash").build(config, train_labels=np.arange(8) % 3, schedule=Schedule.of(config, 8))
    reg = regularized(method, _reg_config(balance=1.0))
    u = jnp.asarray(np.random.default_rng(0).normal(size=(8, 6)), jnp.float32)
    out = {"u": u, "logits": jnp.zeros((8, 3))}
    batch = {"y": jnp.asarray(np.arange(8) % 3), "index": jnp.arange(8)}
    _, metrics = reg.loss(out, batch, reg.init_state(), step=0, key=jax.random.PRNGKey(0))
    expected = np.mean(np.tanh(np.asarray(u, np.float64)).mean(axis=0) ** 2)
    np.testing.assert_allclose(float(metrics["balance_penalty"]), expected, rtol=1e-5)


def _code_stats(workdir):
    z = np.load(workdir / "codes.npz")
    b = np.asarray(jcodes.unpack(z["database_codes"], int(z["bits"])), np.float64)
    corr = np.asarray(jcodes.bit_correlation(b, centered=True))
    q = b.shape[1]
    return np.abs(b.mean(axis=0)).mean(), np.abs(corr[~np.eye(q, dtype=bool)]).mean()


def test_regularizers_move_the_trained_codes_the_expected_way(tmp_path):
    """DPSH on digits, 16 bits, a short schedule: the balance penalty makes the database codes more
    balanced, the decorrelation penalty less correlated, than the same run without them."""
    from jhash.train import trainer

    def run(name, **regularize):
        c = method_config("dpsh", dataset="digits")("bits=16")
        c = apply_overrides(c, ["num_epochs=40", "progress=false", "num_devices=1", "checkpoint_every=100000"]
                            + [f"regularize.{k}={v}" for k, v in regularize.items()])
        results = trainer.train(c, tmp_path / name)
        log = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        return results, _code_stats(tmp_path / name), log

    base, (bal0, cor0), _ = run("plain")
    balanced, (bal1, _), log = run("balance", balance=1.0)
    decorrelated, (_, cor2), _ = run("decorrelation", decorrelation=1.0)
    assert "balance_penalty" in log[-1] and "method_loss" in log[-1]
    assert bal1 < bal0
    assert cor2 < cor0
    assert abs(base["bit_balance"] - bal0) < 1e-6  # the evaluator's bit_balance is the same statistic
