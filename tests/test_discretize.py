"""Discretizers: forward values, straight-through gradients, and HashNet's traced continuation schedule."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jhash import discretize


def test_sign_ste_forward_is_sign_and_backward_is_identity():
    u = jnp.array([[-2.0, -0.3, 0.0, 0.4, 3.0]])
    fn = discretize.sign_ste()
    np.testing.assert_array_equal(fn(u, step=0), [[-1, -1, 1, 1, 1]])
    w = jnp.arange(1.0, 6.0)
    grad = jax.grad(lambda u: jnp.sum(fn(u, step=0) * w))(u)
    np.testing.assert_array_equal(grad, [w])  # dL/du := dL/db (GreedyHash eq. 7)


def test_sign_ste_with_clip_zeroes_the_gradient_outside():
    u = jnp.array([-2.0, -0.3, 0.4, 3.0])
    grad = jax.grad(lambda u: jnp.sum(discretize.sign_ste(clip=1.0)(u, step=0)))(u)
    np.testing.assert_array_equal(grad, [0.0, 1.0, 1.0, 0.0])
    with pytest.raises(ValueError, match="clip"):
        discretize.sign_ste(clip=0.0)


@pytest.mark.parametrize("name,ref", [
    ("tanh", lambda u, s: np.tanh(s * u)),
    ("sigmoid", lambda u, s: 2.0 / (1.0 + np.exp(-s * u)) - 1.0),
])
def test_smooth_relaxations_match_numpy(name, ref):
    u = np.linspace(-3, 3, 13).astype(np.float32)
    got = discretize.get_discretizer(name, scale=1.7)(jnp.asarray(u), step=0)
    np.testing.assert_allclose(got, ref(u.astype(np.float64), 1.7), rtol=1e-5, atol=1e-6)


def test_continuation_scale_follows_hashnet_schedule():
    # beta_t = init * (1 + gamma * t)^power with t held constant over blocks of step_size iterations
    for step in [0, 1, 199, 200, 401, 10_000]:
        t = (step // 200) * 200
        want = 2.0 * (1 + 0.005 * t) ** 0.5
        got = discretize.continuation_scale(jnp.int32(step), init_scale=2.0)
        np.testing.assert_allclose(float(got), want, rtol=1e-6)


def test_continuation_beta_is_traced_and_updated_without_recompiling():
    fn = discretize.continuation(step_size=10, gamma=0.5)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def relaxed(u, step):
        return fn(u, step=step)

    u = jnp.full((2, 3), 0.3)
    values = [float(relaxed(u, jnp.int32(s))[0, 0]) for s in (0, 9, 10, 25, 1000)]
    betas = [(1 + 0.5 * (s // 10) * 10) ** 0.5 for s in (0, 9, 10, 25, 1000)]
    np.testing.assert_allclose(values, np.tanh(0.3 * np.array(betas)), rtol=1e-6)
    assert values[0] == values[1] < values[2] < values[3] < values[4]  # beta actually rises with the step


def test_discretizers_work_under_vmap():
    u = jnp.linspace(-1, 1, 12).reshape(3, 4)
    fn = discretize.continuation()
    got = jax.vmap(lambda row, s: fn(row, step=s))(u, jnp.array([0, 200, 400]))
    want = np.stack([np.tanh(np.asarray(u[i]) * (1 + 0.005 * 200 * i) ** 0.5) for i in range(3)])
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_unknown_discretizer_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown discretizer 'round'"):
        discretize.get_discretizer("round")
    with pytest.raises(ValueError, match="step_size"):
        discretize.continuation(step_size=0)
