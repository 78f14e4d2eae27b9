"""Loss terms (pointwise, pairwise, multiwise, regularizers) against independent NumPy loops.

Each term: its value on random inputs equals a loop over items / pairs / triplets written
from the paper's equation; gradients are checked where the term is smooth; the term works
under jit and vmap; bad shapes are clear errors.
"""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jhash import losses

RNG = np.random.default_rng(0)


def _labels(n, c=4, multilabel=False, rng=RNG):
    if multilabel:
        y = (rng.random((n, c)) < 0.35).astype(np.int32)
        y[np.arange(n), rng.integers(0, c, n)] = 1  # at least one label each
        return y
    return rng.integers(0, c, n).astype(np.int32)


def _sim(a, b):
    if a.ndim == 1:
        return np.array([[float(x == y) for y in b] for x in a])
    return np.array([[float(any(x[k] and y[k] for k in range(len(x)))) for y in b] for x in a])


def _u(n, q, scale=1.0, rng=RNG):
    return (rng.normal(size=(n, q)) * scale).astype(np.float32)


# ---------------------------------------------------------------- regularizers


def _loop_sum(u, f):
    return sum(f(float(x)) for x in np.asarray(u, np.float64).ravel())


@pytest.mark.parametrize("name,f", [
    ("l1_quantization", lambda x: abs(abs(x) - 1)),
    ("log_cosh_quantization", lambda x: np.log(np.cosh(abs(x) - 1))),
    ("cubic_penalty", lambda x: abs(abs(x) - 1) ** 3),
])
def test_entrywise_quantization_terms(name, f):
    u = _u(6, 10, 2.0)
    fn = getattr(losses, name)
    np.testing.assert_allclose(float(jax.jit(fn)(jnp.asarray(u))), _loop_sum(u, f), rtol=1e-5)
    batched = jax.vmap(fn)(jnp.asarray(np.stack([u, -u])))
    np.testing.assert_allclose(batched, [_loop_sum(u, f)] * 2, rtol=1e-5)


def test_smooth_quantization_gradients():
    u = jnp.asarray(_u(4, 5) + 3.0)  # away from the kinks of |.|
    check_grads(losses.log_cosh_quantization, (u,), order=2, modes=["rev"], atol=1e-2, rtol=1e-2)
    check_grads(losses.cubic_penalty, (u,), order=1, modes=["rev"], atol=1e-2, rtol=1e-2)
    # log cosh stays finite for large outputs (the naive formula overflows)
    assert np.isfinite(float(losses.log_cosh_quantization(jnp.full((1, 2), 200.0))))


def test_bit_balance_and_decorrelation_match_numpy():
    u = _u(9, 5)
    n, q = u.shape
    want_balance = sum((sum(u[i, k] for i in range(n)) / n) ** 2 for k in range(q))
    want_decorr = sum((sum(u[i, a] * u[i, b] for i in range(n)) / n - float(a == b)) ** 2
                      for a in range(q) for b in range(q))
    np.testing.assert_allclose(float(losses.bit_balance_penalty(jnp.asarray(u))), want_balance, rtol=1e-5)
    np.testing.assert_allclose(float(losses.bit_decorrelation_penalty(jnp.asarray(u))), want_decorr, rtol=1e-5)
    # balanced codes with orthogonal columns (Hadamard) have zero penalty
    h = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]], np.float32)[:, 1:]
    assert float(losses.bit_balance_penalty(jnp.asarray(h))) == 0
    assert float(losses.bit_decorrelation_penalty(jnp.asarray(h))) == 0
    check_grads(losses.bit_decorrelation_penalty, (jnp.asarray(u),), order=2, modes=["rev"], atol=1e-2, rtol=1e-2)


# ---------------------------------------------------------------- pointwise


@pytest.mark.parametrize("multilabel", [False, True])
def test_classification_loss(multilabel):
    n, c = 7, 4
    logits = _u(n, c, 3.0).astype(np.float64)
    y = _labels(n, c, multilabel)
    if multilabel:
        want = np.mean([sum(-y[i, k] * np.log(1 / (1 + np.exp(-logits[i, k])))
                            - (1 - y[i, k]) * np.log(1 - 1 / (1 + np.exp(-logits[i, k]))) for k in range(c))
                        for i in range(n)])
    else:
        want = np.mean([-logits[i, y[i]] + np.log(np.sum(np.exp(logits[i]))) for i in range(n)])
    got = jax.jit(losses.classification_loss)(jnp.asarray(logits, jnp.float32), jnp.asarray(y))
    np.testing.assert_allclose(float(got), want, rtol=1e-5)
    check_grads(lambda l: losses.classification_loss(l, jnp.asarray(y)), (jnp.asarray(logits, jnp.float32),),
                order=1, modes=["rev"], atol=1e-2, rtol=1e-2)


def test_classification_loss_errors():
    with pytest.raises(ValueError, match="logits"):
        losses.classification_loss(jnp.zeros((3,)), jnp.zeros((3,), jnp.int32))
    with pytest.raises(ValueError, match="labels"):
        losses.classification_loss(jnp.zeros((3, 2)), jnp.zeros((4,), jnp.int32))
    with pytest.raises(ValueError, match="classes"):
        losses.classification_loss(jnp.zeros((3, 2)), jnp.zeros((3, 5), jnp.int32))


# ---------------------------------------------------------------- pairwise


def _pair_terms(u, v, s, f):
    return sum(f(u[i].astype(np.float64), v[j].astype(np.float64), s[i, j]) for i in range(len(u)) for j in range(len(v)))


def test_inner_product_loss_is_kshs_objective():
    u, v = _u(5, 6), _u(4, 6)
    s = _sim(_labels(5), _labels(4))
    want = _pair_terms(u, v, s, lambda a, b, sij: (a @ b - 6 * (1 if sij else -1)) ** 2)
    got = jax.jit(losses.inner_product_loss)(jnp.asarray(u), jnp.asarray(v), jnp.asarray(s, jnp.float32))
    np.testing.assert_allclose(float(got), want, rtol=1e-5)
    # for +-1 codes it equals ||B_l B_l^T - q S||_F^2 of KSH eq. (4)
    b = np.where(u >= 0, 1.0, -1.0)
    s_pm = 2 * _sim(*(2 * [_labels(5, rng=np.random.default_rng(3))])) - 1
    want = np.sum((b @ b.T - 6 * s_pm) ** 2)
    got = losses.inner_product_loss(jnp.asarray(b, jnp.float32), jnp.asarray(b, jnp.float32), jnp.asarray((s_pm + 1) / 2))
    np.testing.assert_allclose(float(got), want)
    check_grads(lambda u: losses.inner_product_loss(u, jnp.asarray(v), jnp.asarray(s, jnp.float32)),
                (jnp.asarray(u),), order=2, modes=["rev"], atol=1e-1, rtol=1e-2)


def test_contrastive_loss_is_dshs_eq3():
    u, v = _u(5, 4), _u(6, 4)
    s = _sim(_labels(5, 3), _labels(6, 3))
    margin = 8.0

    def term(a, b, sij):
        d2 = np.sum((a - b) ** 2)
        return 0.5 * sij * d2 + 0.5 * (1 - sij) * max(margin - d2, 0.0)

    got = jax.jit(lambda u, v, s: losses.contrastive_loss(u, v, s, margin=margin))(
        jnp.asarray(u), jnp.asarray(v), jnp.asarray(s, jnp.float32))
    np.testing.assert_allclose(float(got), _pair_terms(u, v, s, term), rtol=1e-5)


def test_pairwise_terms_reject_bad_shapes():
    u = jnp.zeros((3, 4))
    with pytest.raises(ValueError, match="similarity must have shape"):
        losses.inner_product_loss(u, u, jnp.zeros((3, 2)))
    with pytest.raises(ValueError, match="v must have 4 columns"):
        losses.contrastive_loss(u, jnp.zeros((3, 5)), jnp.zeros((3, 3)), margin=1.0)
    with pytest.raises(ValueError, match="floating"):
        losses.inner_product_loss(jnp.zeros((3, 4), jnp.int32), u, jnp.zeros((3, 3)))
