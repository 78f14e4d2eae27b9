"""Issue 16 part 3: config.dtype=bfloat16 computes the network in bf16 with f32 parameters, optimizer
state, batch-norm statistics and losses; bfloat16 codes are accepted by the metrics and the index."""
import re

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

from jhash import codes, evaluate, index, metrics
from jhash.models import apply_model, compute_dtype, get_model, init_model
from jhash.train import train
from test_train import tiny_config


def _matmul_dtypes(fn, *args) -> list[str]:
    text = str(jax.make_jaxpr(fn)(*args))
    return re.findall(r"(\w+)\[[\d,]*\] = (?:conv_general_dilated|dot_general)\[", text)


@pytest.mark.parametrize("name, shape", [("cnn", (4, 28, 28, 1)), ("resnet18", (4, 32, 32, 3)), ("mlp", (4, 64))])
def test_bfloat16_runs_the_network_in_bf16_and_returns_float32(name, shape):
    model = get_model(name, bits=16)
    x = jax.random.uniform(jax.random.PRNGKey(1), shape)
    params, state = init_model(model, jax.random.PRNGKey(0), x)
    for train_mode in (True, False):
        run = lambda p, xb: apply_model(model, p, state, xb, train=train_mode, dtype=jnp.bfloat16)  # noqa: E731
        dtypes = _matmul_dtypes(run, params, x)
        assert dtypes and set(dtypes) == {"bf16"}, dtypes  # every convolution and matmul
        u, new_state = run(params, x)
        u32, _ = apply_model(model, params, state, x, train=train_mode)
        assert u.dtype == jnp.float32
        assert {a.dtype for a in jax.tree.leaves(new_state)} <= {jnp.dtype(jnp.float32)}  # batch norm statistics
        if not train_mode:  # (batch norm over the 4 items of a 1x1 map in training is ill-conditioned in bf16)
            np.testing.assert_allclose(u, u32, atol=0.05 * float(jnp.abs(u32).max()) + 1e-3)
    # gradients reach the float32 parameters as float32
    grads = jax.grad(lambda p: jnp.sum(apply_model(model, p, state, x, train=True, dtype=jnp.bfloat16)[0] ** 2))(params)
    assert {g.dtype for g in jax.tree.leaves(grads)} == {jnp.dtype(jnp.float32)}
    assert any(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(grads))


def test_float32_compute_dtype_is_the_plain_network():
    model = get_model("cnn", bits=16)
    x = jax.random.uniform(jax.random.PRNGKey(1), (4, 28, 28, 1))
    params, state = init_model(model, jax.random.PRNGKey(0), x)
    a = apply_model(model, params, state, x, train=True)
    b = apply_model(model, params, state, x, train=True, dtype=compute_dtype("float32"))
    jax.tree.map(np.testing.assert_array_equal, a, b)
    with pytest.raises(ValueError, match="config.dtype must be one of float32, bfloat16"):
        compute_dtype("float16")


def test_a_bfloat16_run_keeps_float32_state_and_learns(tmp_path):
    c = tiny_config("dtype=bfloat16")
    result = train(c, tmp_path / "bf16")
    from jhash.run import restore_run
    from jhash.train import read_config

    _, state, _ = restore_run(read_config(tmp_path / "bf16"), tmp_path / "bf16")
    kinds = {a.dtype for a in jax.tree.leaves((state.params, state.opt_state, state.model_state))
             if jnp.issubdtype(a.dtype, jnp.floating)}
    assert kinds == {jnp.dtype(jnp.float32)}
    assert result["map@all"] > 0.45  # float32 gives 0.496 on this tiny run (16 bits, 140 steps); chance is about 0.1


def test_metrics_and_index_take_bfloat16_codes():
    rng = np.random.default_rng(0)
    q = np.where(rng.random((30, 24)) < 0.5, -1, 1).astype(np.int8)
    d = np.where(rng.random((200, 24)) < 0.5, -1, 1).astype(np.int8)
    yq, yd = rng.integers(0, 4, 30), rng.integers(0, 4, 200)
    qb, db = q.astype(ml_dtypes.bfloat16), d.astype(ml_dtypes.bfloat16)
    assert metrics.mean_average_precision(qb, db, yq, yd) == metrics.mean_average_precision(q, d, yq, yd)
    assert metrics.mean_average_precision(jnp.asarray(qb), jnp.asarray(db), yq, yd) == \
        metrics.mean_average_precision(q, d, yq, yd)
    assert evaluate.retrieval_metrics(qb, db, yq, yd, map_k=50) == evaluate.retrieval_metrics(q, d, yq, yd, map_k=50)
    np.testing.assert_array_equal(codes.pack(qb), codes.pack(q))
    for a, b in zip(index.HammingIndex(24, db).search(qb, 7), index.HammingIndex(24, d).search(q, 7)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="only -1 and \\+1"):
        metrics.mean_average_precision(qb * 0.5, db, yq, yd)
