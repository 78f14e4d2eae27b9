"""Models: output shapes, batch-norm state in training vs evaluation, clear errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jhash.models import apply_model, get_model, init_model


@pytest.mark.parametrize("name, shape", [("mlp", (5, 64)), ("mlp", (5, 8, 8, 1)), ("cnn", (5, 28, 28, 1)), ("cnn", (5, 32, 32, 3))])
@pytest.mark.parametrize("bits", [1, 12, 64])
def test_outputs_have_bits_columns(name, shape, bits):
    model = get_model(name, bits=bits)
    x = jnp.asarray(np.random.default_rng(0).random(shape), jnp.float32)
    params, state = init_model(model, jax.random.PRNGKey(0), x[:1])
    u, _ = apply_model(model, params, state, x, train=False)
    assert u.shape == (5, bits) and u.dtype == jnp.float32


def test_batch_norm_statistics_update_in_training_only():
    model = get_model("cnn", bits=8, channels=(4,), dense=16)
    x = jnp.asarray(np.random.default_rng(1).random((6, 28, 28, 1)), jnp.float32)
    params, state = init_model(model, jax.random.PRNGKey(0), x[:1])
    assert "batch_stats" in state
    _, same = apply_model(model, params, state, x, train=False)
    assert same is state
    _, new = apply_model(model, params, state, x, train=True)
    before = jax.tree_util.tree_leaves(state)
    after = jax.tree_util.tree_leaves(new)
    assert any(not np.allclose(a, b) for a, b in zip(before, after))
    # In training, batch norm uses the batch's own statistics: the output depends on the batch.
    u_full, _ = apply_model(model, params, state, x, train=True)
    u_half, _ = apply_model(model, params, state, x[:3], train=True)
    assert not np.allclose(u_full[:3], u_half)


def test_mlp_has_no_state_and_no_batch_dependence():
    model = get_model("mlp", bits=8, hidden=(16,))
    x = jnp.ones((4, 10))
    params, state = init_model(model, jax.random.PRNGKey(0), x[:1])
    assert state == {}
    u, _ = apply_model(model, params, state, x, train=True)
    np.testing.assert_allclose(u[:2], apply_model(model, params, state, x[:2], train=True)[0], rtol=1e-6)


def test_tanh_head_is_bounded():
    model = get_model("mlp", bits=4, head_activation="tanh")
    x = 100 * jnp.ones((3, 5))
    params, state = init_model(model, jax.random.PRNGKey(0), x[:1])
    u, _ = apply_model(model, params, state, x, train=False)
    assert float(jnp.max(jnp.abs(u))) <= 1.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"name": "resnet", "bits": 8}, "unknown model 'resnet'"),
        ({"name": "mlp", "bits": 0}, "bits must be a positive integer"),
        ({"name": "mlp", "bits": 8, "channels": (4,)}, r"takes no argument\(s\) \['channels'\]"),
        ({"name": "cnn", "bits": 8, "head_activation": "relu"}, "head_activation"),
    ],
)
def test_bad_model_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        get_model(**kwargs)


def test_cnn_rejects_flat_input():
    model = get_model("cnn", bits=4)
    with pytest.raises(ValueError, match="images of shape"):
        init_model(model, jax.random.PRNGKey(0), jnp.ones((1, 784)))


def test_code_classifier_reads_the_binary_codes():
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jhash.models import CodeClassifier, apply_model, get_model, hash_network, init_model

    model = CodeClassifier(get_model("mlp", bits=6, hidden=(8,)), num_classes=3, on="sign_ste", use_bias=False)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(5, 4)), jnp.float32)
    params, state = init_model(model, jax.random.PRNGKey(0), x)
    out, _ = apply_model(model, params, state, x, train=False)
    assert hash_network(model).outputs == 6 and out["u"].shape == (5, 6) and out["logits"].shape == (5, 3)
    # the parameter tree of checkpoints written before HashNetwork existed
    assert set(params) == {"backbone", "classifier"} and set(params["backbone"]) == {"dense0", "HashHead_0"}
    w = np.asarray(params["classifier"]["kernel"])
    b = np.where(np.asarray(out["u"]) >= 0, 1.0, -1.0)
    np.testing.assert_allclose(out["logits"], b @ w, rtol=1e-5, atol=1e-6)
    assert "bias" not in params["classifier"]


def test_extract_features_is_the_layer_before_the_hash_head():
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jhash.evaluate import extract_features
    from jhash.methods.base import Method
    from jhash.models import get_model, init_model
    from jhash.train.state import TrainState

    model = get_model("mlp", bits=4, hidden=(7,))
    x = np.random.default_rng(1).normal(size=(11, 3)).astype(np.float32)
    params, model_state = init_model(model, jax.random.PRNGKey(1), jnp.asarray(x[:1]))
    state = TrainState(step=0, params=params, model_state=model_state, opt_state=None, method_state={}, key=None)
    method = Method(name="m", model=model, loss=None)
    got = extract_features(method, state, x, batch_size=4)
    d = params["dense0"]
    want = np.maximum(x @ np.asarray(d["kernel"]) + np.asarray(d["bias"]), 0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(3, 8, 8, 5), (2, 7, 9, 3)])
def test_cnn_max_pool_matches_flax_bit_for_bit(shape):
    """The CNN's 2x2 max-pool (written out for speed) gives nn.max_pool's values and gradient exactly,
    with ties (ReLU zeros, equal maxima: the first in row-major order takes the gradient) and odd sizes."""
    import flax.linen as nn

    from jhash.models.nets import max_pool_2x2

    rng = np.random.default_rng(0)
    x = np.maximum(rng.integers(-2, 3, shape), 0).astype(np.float32)
    x[0, 0, 0, 0] = x[0, 1, 1, 0] = 5.0  # a tie at the window's maximum, first and last position
    g = rng.standard_normal((shape[0], shape[1] // 2, shape[2] // 2, shape[3])).astype(np.float32)
    y_ref, pull_ref = jax.vjp(lambda a: nn.max_pool(a, (2, 2), strides=(2, 2)), jnp.asarray(x))
    y, pull = jax.vjp(max_pool_2x2, jnp.asarray(x))
    np.testing.assert_array_equal(np.asarray(y), np.asarray(y_ref))
    d_ref, d = np.asarray(pull_ref(jnp.asarray(g))[0]), np.asarray(pull(jnp.asarray(g))[0])
    np.testing.assert_array_equal(d.view(np.int32), d_ref.view(np.int32))
    assert d[0, 0, 0, 0] == g[0, 0, 0, 0] and d[0, 1, 1, 0] == 0.0


def test_cnn_max_pool_signed_zeros_and_nan_follow_the_first_maximum():
    """Equal maxima keep the first in row-major order, -0.0 and +0.0 included (its sign and its gradient),
    and NaN propagates (the first NaN takes the gradient): checked against a loop over the windows,
    jitted and not."""
    from jhash.models.nets import max_pool_2x2

    rng = np.random.default_rng(3)
    pool = np.array([0.0, -0.0, 1.0, -np.inf, np.nan], np.float32)
    x = rng.choice(pool, (4, 6, 6, 3)).astype(np.float32)
    x[0, 0:2, 0:2, 0] = [[-0.0, 0.0], [0.0, -0.0]]
    x[0, 0:2, 0:2, 1] = [[0.0, -0.0], [-0.0, -0.0]]
    x[0, 0:2, 0:2, 2] = [[1.0, np.nan], [2.0, np.nan]]
    g = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    want_y, want_d = np.zeros_like(g), np.zeros_like(x)
    for n, i, j, c in np.ndindex(*g.shape):
        window = x[n, 2 * i:2 * i + 2, 2 * j:2 * j + 2, c].ravel()
        nan = np.flatnonzero(np.isnan(window))
        first = nan[0] if nan.size else int(np.flatnonzero(window == window.max())[0])
        want_y[n, i, j, c] = window[first]
        want_d[n, 2 * i + first // 2, 2 * j + first % 2, c] = g[n, i, j, c]
    assert np.signbit(want_y[0, 0, 0, 0]) and not np.signbit(want_y[0, 0, 0, 1])  # the cases are there
    for fn in (max_pool_2x2, jax.jit(max_pool_2x2)):
        y, pull = jax.vjp(fn, jnp.asarray(x))
        np.testing.assert_array_equal(np.asarray(y).view(np.int32), want_y.view(np.int32))
        np.testing.assert_array_equal(np.asarray(pull(jnp.asarray(g))[0]).view(np.int32), want_d.view(np.int32))


def test_cnn_gradient_with_its_max_pool_is_flax_max_pool_s_bit_for_bit(monkeypatch):
    """In the jitted gradient of the whole CNN (batch norm and ReLU before each pooling, which XLA fuses)
    the written-out pooling gives the same parameter gradients as nn.max_pool, bit for bit."""
    import flax.linen as nn

    from jhash.models import nets

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.random((16, 28, 28, 1), np.float32))
    r = jnp.asarray(rng.standard_normal((16, 32), np.float32))

    def grads():
        model = get_model("cnn", bits=32, channels=(8, 16), dense=32)
        params, state = init_model(model, jax.random.PRNGKey(0), x[:1])
        loss = lambda p: jnp.sum(apply_model(model, p, state, x, train=True)[0] * r)  # noqa: E731
        return [np.asarray(g) for g in jax.tree.leaves(jax.jit(jax.grad(loss))(params))]

    ours = grads()
    monkeypatch.setattr(nets, "max_pool_2x2", lambda h: nn.max_pool(h, (2, 2), strides=(2, 2)))
    for a, b in zip(ours, grads(), strict=True):
        np.testing.assert_array_equal(a.view(np.int32), b.view(np.int32))
