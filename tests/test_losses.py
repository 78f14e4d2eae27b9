"""DPSH loss terms against straightforward NumPy formulas."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jhash.losses import dpsh_loss, pairwise_likelihood, pairwise_similarity, quantization_error


def _np_similarity(a, b):
    if a.ndim == 1:
        return np.array([[float(x == y) for y in b] for x in a])
    return np.array([[float(np.any(np.logical_and(x > 0, y > 0))) for y in b] for x in a])


def _np_dpsh(u, labels, eta, v=None, labels_v=None):
    """Li et al. IJCAI 2016 eq. (3), summed by explicit loops, divided by the number of pairs."""
    v = u if v is None else v
    labels_v = labels if labels_v is None else labels_v
    s = _np_similarity(labels, labels_v)
    total = 0.0
    for i in range(len(u)):
        for j in range(len(v)):
            theta = 0.5 * float(np.dot(u[i], v[j]))
            total += -(s[i, j] * theta - np.log1p(np.exp(theta)))
    b = np.where(u >= 0, 1.0, -1.0)
    total += eta * float(np.sum((b - u) ** 2))
    return total / (len(u) * len(v))


@pytest.mark.parametrize("multilabel", [False, True])
@pytest.mark.parametrize("bank", [False, True])
def test_dpsh_loss_matches_numpy(multilabel, bank):
    rng = np.random.default_rng(0)
    n, m, q, c = 7, 11, 12, 5
    u = rng.normal(size=(n, q)).astype(np.float32)
    if multilabel:
        labels = (rng.random((n, c)) < 0.3).astype(np.uint8)
        labels_v = (rng.random((m, c)) < 0.3).astype(np.uint8)
    else:
        labels = rng.integers(0, c, n).astype(np.int32)
        labels_v = rng.integers(0, c, m).astype(np.int32)
    v = rng.normal(size=(m, q)).astype(np.float32)
    kwargs = dict(bank_u=jnp.asarray(v), bank_labels=jnp.asarray(labels_v)) if bank else {}
    got = jax.jit(lambda u: dpsh_loss(u, labels=jnp.asarray(labels), eta=3.0, **kwargs))(jnp.asarray(u))
    want = _np_dpsh(u, labels, 3.0, v if bank else None, labels_v if bank else None)
    np.testing.assert_allclose(float(got), want, rtol=1e-5)


def test_similarity_and_likelihood_match_numpy():
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 3, 6).astype(np.int32), rng.integers(0, 3, 4).astype(np.int32)
    np.testing.assert_array_equal(pairwise_similarity(jnp.asarray(a), jnp.asarray(b)), _np_similarity(a, b))
    u, v = rng.normal(size=(6, 5)) * 4, rng.normal(size=(4, 5)) * 4
    s = _np_similarity(a, b)
    theta = 0.5 * u @ v.T
    want = np.sum(np.log1p(np.exp(theta)) - s * theta)
    got = pairwise_likelihood(jnp.asarray(u, jnp.float32), jnp.asarray(v, jnp.float32), jnp.asarray(s))
    np.testing.assert_allclose(float(got), want, rtol=1e-5)


def test_likelihood_is_stable_for_large_inner_products():
    u = jnp.full((2, 64), 30.0)
    value = pairwise_likelihood(u, u, jnp.ones((2, 2)))
    assert np.isfinite(float(value)) and float(value) >= 0


def test_quantization_error_and_its_gradient():
    u = jnp.array([[0.5, -2.0, 0.0]])
    # b = (1, -1, 1): (0.5)^2 + 1^2 + 1^2
    np.testing.assert_allclose(float(quantization_error(u)), 2.25)
    grad = jax.grad(quantization_error)(u)  # d/du (b - u)^2 with b constant = 2 (u - b)
    np.testing.assert_allclose(np.asarray(grad), [[-1.0, -2.0, -2.0]])


def test_dpsh_gradients_are_correct():
    rng = np.random.default_rng(2)
    u = rng.normal(size=(5, 6))
    u = jnp.asarray(np.where(np.abs(u) < 0.1, 0.5, u), jnp.float32)  # sign(u) constant within eps of u
    labels = jnp.asarray(rng.integers(0, 2, 5), jnp.int32)
    f = lambda x: dpsh_loss(x, labels=labels, eta=0.7)
    check_grads(f, (u,), order=1, modes=["rev"], eps=1e-2, atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: dpsh_loss(jnp.zeros((3,)), labels=jnp.zeros(3, jnp.int32), eta=1.0), "u must have shape"),
        (lambda: dpsh_loss(jnp.zeros((3, 4)), labels=jnp.zeros(2, jnp.int32), eta=1.0), "labels must be"),
        (lambda: dpsh_loss(jnp.zeros((3, 4), jnp.int32), labels=jnp.zeros(3, jnp.int32), eta=1.0), "floating"),
        (lambda: dpsh_loss(jnp.zeros((3, 4)), labels=jnp.zeros(3), eta=1.0), "integer dtype"),
        (lambda: dpsh_loss(jnp.zeros((3, 4)), labels=jnp.zeros(3, jnp.int32), eta=1.0, bank_u=jnp.zeros((5, 4))), "together"),
        (lambda: dpsh_loss(jnp.zeros((3, 4)), labels=jnp.zeros(3, jnp.int32), eta=1.0,
                           bank_u=jnp.zeros((5, 3)), bank_labels=jnp.zeros(5, jnp.int32)), "bank_u must have 4 columns"),
    ],
)
def test_bad_shapes_raise_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
