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


# ---------------------------------------------------------------- multiwise: triplets


def _triplets(y):
    s = _sim(y, y)
    n = len(y)
    return [(a, p, m) for a, p, m in itertools.product(range(n), repeat=3) if a != p and s[a, p] and not s[a, m]]


@pytest.mark.parametrize("multilabel", [False, True])
def test_triplet_losses_match_loops(multilabel):
    rng = np.random.default_rng(5)
    u, y = _u(7, 6, rng=rng), _labels(7, 3, multilabel, rng=rng)
    trips = _triplets(y)
    assert trips
    u64 = u.astype(np.float64)
    theta = lambda i, j: 0.5 * u64[i] @ u64[j]
    ham = lambda i, j: 0.5 * (6 - u64[i] @ u64[j])
    want_lik = np.mean([np.log1p(np.exp(-(theta(a, p) - theta(a, m) - 2.0))) for a, p, m in trips])
    want_hinge = np.mean([max(0.0, 3.0 + ham(a, p) - ham(a, m)) for a, p, m in trips])
    f_lik = jax.jit(lambda u: losses.triplet_likelihood_loss(u, jnp.asarray(y), margin=2.0))
    f_hinge = jax.jit(lambda u: losses.triplet_margin_loss(u, jnp.asarray(y), margin=3.0))
    np.testing.assert_allclose(float(f_lik(jnp.asarray(u))), want_lik, rtol=1e-5)
    np.testing.assert_allclose(float(f_hinge(jnp.asarray(u))), want_hinge, rtol=1e-5)
    check_grads(f_lik, (jnp.asarray(u),), order=2, modes=["rev"], atol=1e-2, rtol=1e-2)
    both = jax.vmap(f_lik)(jnp.asarray(np.stack([u, 2 * u])))
    np.testing.assert_allclose(both[0], want_lik, rtol=1e-5)


def test_triplet_losses_without_triplets_are_zero():
    u = jnp.asarray(_u(4, 3))
    same = jnp.zeros((4,), jnp.int32)  # no negative anywhere
    assert float(losses.triplet_likelihood_loss(u, same, margin=1.0)) == 0.0
    assert float(losses.triplet_margin_loss(u, jnp.arange(4, dtype=jnp.int32), margin=1.0)) == 0.0  # no positive


# ---------------------------------------------------------------- multiwise: histogram-binned ranking objectives


def _np_hist(phi, i, j, bins):
    """Triangular bin weights of the pair (i, j): a loop over bin centres."""
    q = phi.shape[1]
    width = q / bins
    d = 0.5 * (q - phi[i] @ phi[j])
    return np.array([max(0.0, 1 - abs(d - l * width) / width) for l in range(bins + 1)])


def _np_counts(phi, y, i, bins, weight):
    """sum_{j != i} weight(i, j) * hist(i, j)."""
    return sum(weight(i, j) * _np_hist(phi, i, j, bins) for j in range(len(phi)) if j != i)


def _np_mi(phi, y, bins):
    s = _sim(y, y)
    n = len(phi)
    out = []
    for i in range(n):
        cp = _np_counts(phi, y, i, bins, lambda i, j: s[i, j])
        cn = _np_counts(phi, y, i, bins, lambda i, j: 1 - s[i, j])
        npos = sum(s[i, j] for j in range(n) if j != i)
        h = lambda p: -sum(x * np.log2(x) for x in p if x > 0)
        hp = h(cp / npos) if npos else 0.0
        hn = h(cn / (n - 1 - npos)) if n - 1 - npos else 0.0
        out.append(h((cp + cn) / (n - 1)) - npos / (n - 1) * hp - (1 - npos / (n - 1)) * hn)
    return np.array(out)


def _np_ap(phi, y, bins):
    s = _sim(y, y)
    out = []
    for i in range(len(phi)):
        cp = _np_counts(phi, y, i, bins, lambda i, j: s[i, j])
        c = _np_counts(phi, y, i, bins, lambda i, j: 1.0)
        npos = sum(s[i, j] for j in range(len(phi)) if j != i)
        total, cum_c, cum_p = 0.0, 0.0, 0.0
        for d in range(bins + 1):
            total += cp[d] * (cum_p + (cum_p + cp[d]) + 1) / (cum_c + (cum_c + c[d]) + 1)
            cum_c, cum_p = cum_c + c[d], cum_p + cp[d]
        out.append(total / npos if npos else 0.0)
    return np.array(out)


def _np_ndcg(phi, y, bins):
    n = len(phi)
    shared = (y[:, None] == y[None, :]).astype(float) if y.ndim == 1 else (y @ y.T).astype(float)
    out = []
    for i in range(n):
        gains = {j: 2.0 ** shared[i, j] - 1 for j in range(n) if j != i}
        c = _np_counts(phi, y, i, bins, lambda i, j: 1.0)
        g = _np_counts(phi, y, i, bins, lambda i, j: gains[j])
        dcg, cum = 0.0, 0.0
        for d in range(bins + 1):
            dcg += g[d] / np.log2(cum + (c[d] + 1) / 2 + 1)
            cum += c[d]
        ideal = sum(gain / np.log2(r + 2) for r, gain in enumerate(sorted(gains.values(), reverse=True)))
        out.append(dcg / ideal if ideal > 0 else 1.0)
    return np.array(out)


@pytest.mark.parametrize("multilabel", [False, True])
@pytest.mark.parametrize("name,ref", [("mutual_information", _np_mi), ("tie_aware_ap_relaxed", _np_ap),
                                      ("tie_aware_ndcg_relaxed", _np_ndcg)])
def test_binned_ranking_objectives_match_loops(name, ref, multilabel):
    rng = np.random.default_rng(11)
    n, q, bins = 9, 8, 4
    phi = np.tanh(rng.normal(size=(n, q)) * 1.5).astype(np.float32)
    y = _labels(n, 3, multilabel, rng=rng)
    fn = jax.jit(lambda p: getattr(losses, name)(p, jnp.asarray(y), num_bins=bins))
    np.testing.assert_allclose(fn(jnp.asarray(phi)), ref(phi.astype(np.float64), y, bins), rtol=2e-5, atol=1e-6)
    scalar = lambda p: jnp.mean(fn(p))
    check_grads(scalar, (jnp.asarray(phi),), order=1, modes=["rev"], atol=1e-2, rtol=1e-2)
    batched = jax.vmap(lambda p: getattr(losses, name)(p, jnp.asarray(y), num_bins=bins))(jnp.stack([phi, phi]))
    np.testing.assert_allclose(batched[1], ref(phi.astype(np.float64), y, bins), rtol=2e-5, atol=1e-6)


def test_relaxed_ap_without_ties_is_exact_ap():
    """+-1 codes at distinct distances from the query, one bin per distance: AP^r is the exact AP."""
    q = 7
    query = np.ones(q)
    db = np.array([np.where(np.arange(q) < k, -1.0, 1.0) for k in range(q + 1)])  # distance k from the query
    order = np.random.default_rng(2).permutation(q + 1)
    phi = np.vstack([query, db[order]]).astype(np.float32)
    relevant = np.array([1, 0, 1, 1, 0, 0, 1, 0])[order]
    y = np.concatenate([[1], np.where(relevant == 1, 1, 2)]).astype(np.int32)
    got = float(losses.tie_aware_ap_relaxed(jnp.asarray(phi), jnp.asarray(y), num_bins=q)[0])
    ranks = np.argsort(0.5 * (q - db[order] @ query))
    hits = relevant[ranks]
    exact = np.mean([hits[: r + 1].mean() for r in range(len(hits)) if hits[r]])
    np.testing.assert_allclose(got, exact, rtol=1e-6)
    mi = losses.mutual_information(jnp.asarray(phi), jnp.asarray(y), num_bins=q)
    assert np.all(np.asarray(mi) >= -1e-6)  # mutual information is never negative


def test_histogram_weights_sum_to_one_and_errors():
    phi = jnp.tanh(jnp.asarray(_u(6, 8)))
    w = losses.soft_distance_histogram(phi, 5)
    off = 1 - np.eye(6)
    np.testing.assert_allclose(np.asarray(w).sum(-1), off, atol=1e-6)
    with pytest.raises(ValueError, match="num_bins"):
        losses.soft_distance_histogram(phi, 0)


# ---------------------------------------------------------------- pairwise: weighted / Cauchy / margin


def _np_cos_ham(a, b):
    return 0.5 * len(a) * (1 - a @ b / (np.sqrt(a @ a + 1e-6) * np.sqrt(b @ b + 1e-6)))


def _np_weights(s, positive_weight, mask):
    if positive_weight == "balanced":
        total, pos = mask.sum(), (s * mask).sum()
        return mask * np.where(s > 0, total / max(pos, 1), total / max(total - pos, 1))
    return mask * np.where(s > 0, positive_weight, 1.0)


def _np_weighted(u, v, s, weights, term):
    num = sum(weights[i, j] * term(u[i], v[j], s[i, j]) for i in range(len(u)) for j in range(len(v)))
    return num / weights.sum()


@pytest.mark.parametrize("positive_weight", [1.0, 5.0, "balanced"])
@pytest.mark.parametrize("masked", [False, True])
def test_weighted_likelihood_cauchy_and_margin_losses(positive_weight, masked):
    rng = np.random.default_rng(7)
    n, q = 8, 16
    u = np.tanh(rng.normal(size=(n, q))).astype(np.float32)
    y = _labels(n, 3, rng=rng)
    s = _sim(y, y)
    mask = 1 - np.eye(n) if masked else np.ones((n, n))
    w = _np_weights(s, positive_weight, mask)
    u64 = u.astype(np.float64)
    kw = dict(positive_weight=positive_weight, mask=jnp.asarray(mask, jnp.float32))
    args = (jnp.asarray(u), jnp.asarray(u), jnp.asarray(s, jnp.float32))

    def lik(a, b, sij):
        theta = (10 / q) * a @ b
        return np.log1p(np.exp(theta)) - sij * theta

    got = jax.jit(lambda u, v, s: losses.weighted_pairwise_likelihood(u, v, s, scale=10 / q, **kw))(*args)
    np.testing.assert_allclose(float(got), _np_weighted(u64, u64, s, w, lik), rtol=1e-5)

    def cauchy(a, b, sij):  # -log p for similar, -log(1 - p) for dissimilar pairs, p = gamma / (gamma + d)
        d = _np_cos_ham(a, b)
        p = 20 / (20 + d)
        return -np.log(p) if sij else -np.log(1 - p)

    got = jax.jit(lambda u, v, s: losses.cauchy_cross_entropy(u, v, s, gamma=20.0, **kw))(*args)
    np.testing.assert_allclose(float(got), _np_weighted(u64, u64, s, w, cauchy), rtol=1e-4)

    margin_w = np.array([[(0.5 if s[i, j] else 0.8) if _np_cos_ham(u64[i], u64[j]) <= 4.0 else 1.0
                          for j in range(n)] for i in range(n)])

    def t_term(a, b, sij):
        p = 0.5 * 10 / (10 + _np_cos_ham(a, b))
        return -sij * np.log(p) - (1 - sij) * np.log(1 - p)

    got = jax.jit(lambda u, v, s: losses.margin_t_loss(u, v, s, gamma=10.0, margin=4.0, **kw))(*args)
    np.testing.assert_allclose(float(got), _np_weighted(u64, u64, s, w * margin_w, t_term), rtol=1e-5)


def test_cauchy_and_margin_gradients_and_quantization():
    rng = np.random.default_rng(8)
    u, v = np.tanh(rng.normal(size=(5, 8))).astype(np.float32), np.tanh(rng.normal(size=(6, 8))).astype(np.float32)
    s = jnp.asarray(_sim(_labels(5, 2, rng=rng), _labels(6, 2, rng=rng)), jnp.float32)
    check_grads(lambda u: losses.cauchy_cross_entropy(u, jnp.asarray(v), s, gamma=20.0), (jnp.asarray(u),),
                order=1, modes=["rev"], atol=1e-2, rtol=1e-2)
    check_grads(lambda u: losses.weighted_pairwise_likelihood(u, jnp.asarray(v), s, scale=0.5, positive_weight="balanced"),
                (jnp.asarray(u),), order=2, modes=["rev"], atol=1e-2, rtol=1e-2)
    want = sum(np.log1p(_np_cos_ham(np.abs(x.astype(np.float64)), np.ones(8)) / 20.0) for x in u)
    np.testing.assert_allclose(float(losses.cauchy_quantization(jnp.asarray(u), gamma=20.0)), want, rtol=1e-5)
    assert float(losses.cauchy_quantization(jnp.asarray(np.sign(u)), gamma=20.0)) < 1e-6  # binary codes cost nothing
    with pytest.raises(ValueError, match="positive_weight"):
        losses.weighted_pairwise_likelihood(jnp.asarray(u), jnp.asarray(v), s, scale=1.0, positive_weight="auto")


@pytest.mark.parametrize("multilabel", [False, True])
def test_multilevel_ranking_loss_matches_loops(multilabel):
    rng = np.random.default_rng(9)
    n, q = 7, 8
    u = _u(n, q, rng=rng)
    y = _labels(n, 4, multilabel, rng=rng)
    r = (y[:, None] == y[None, :]).astype(float) if y.ndim == 1 else (y @ y.T).astype(float)
    u64 = u.astype(np.float64)
    d = lambda i, j: 0.5 * (q - u64[i] @ u64[j])
    num = den = 0.0
    for a, i, j in itertools.product(range(n), repeat=3):
        if len({a, i, j}) == 3 and r[a, i] > r[a, j]:
            w = 2 ** r[a, i] - 2 ** r[a, j]
            num += w * max(0.0, 1.5 + d(a, i) - d(a, j))
            den += w
    got = jax.jit(lambda u: losses.multilevel_ranking_loss(u, jnp.asarray(y), margin=1.5))(jnp.asarray(u))
    np.testing.assert_allclose(float(got), num / den, rtol=1e-5)
    if not multilabel:  # one level of relevance: the triplet hinge (up to triplets with i or j = a, which have no weight)
        np.testing.assert_allclose(float(got), float(losses.triplet_margin_loss(jnp.asarray(u), jnp.asarray(y), margin=1.5)),
                                   rtol=1e-5)


# ---------------------------------------------------------------- every term under jit and vmap

_Y = np.array([0, 1, 0, 2, 1, 0], np.int32)
_S = jnp.asarray(_sim(_Y, _Y), jnp.float32)
TERMS = {
    "quantization_error": lambda u: losses.quantization_error(u),
    "l1_quantization": lambda u: losses.l1_quantization(u),
    "log_cosh_quantization": lambda u: losses.log_cosh_quantization(u),
    "cubic_penalty": lambda u: losses.cubic_penalty(u),
    "bit_balance_penalty": lambda u: losses.bit_balance_penalty(u),
    "bit_decorrelation_penalty": lambda u: losses.bit_decorrelation_penalty(u),
    "dpsh_loss": lambda u: losses.dpsh_loss(u, labels=jnp.asarray(_Y), eta=1.0),
    "inner_product_loss": lambda u: losses.inner_product_loss(u, u, _S),
    "contrastive_loss": lambda u: losses.contrastive_loss(u, u, _S, margin=4.0),
    "weighted_pairwise_likelihood": lambda u: losses.weighted_pairwise_likelihood(u, u, _S, scale=0.5),
    "cauchy_cross_entropy": lambda u: losses.cauchy_cross_entropy(u, u, _S, gamma=20.0),
    "cauchy_quantization": lambda u: losses.cauchy_quantization(u, gamma=20.0),
    "margin_t_loss": lambda u: losses.margin_t_loss(u, u, _S, gamma=10.0, margin=2.0),
    "triplet_likelihood_loss": lambda u: losses.triplet_likelihood_loss(u, jnp.asarray(_Y), margin=1.0),
    "triplet_margin_loss": lambda u: losses.triplet_margin_loss(u, jnp.asarray(_Y), margin=1.0),
    "multilevel_ranking_loss": lambda u: losses.multilevel_ranking_loss(u, jnp.asarray(_Y), margin=1.0),
    "mutual_information_loss": lambda u: losses.mutual_information_loss(jnp.tanh(u), jnp.asarray(_Y), num_bins=2),
    "tie_aware_ap_relaxed": lambda u: jnp.mean(losses.tie_aware_ap_relaxed(jnp.tanh(u), jnp.asarray(_Y), num_bins=2)),
    "tie_aware_ndcg_relaxed": lambda u: jnp.mean(losses.tie_aware_ndcg_relaxed(jnp.tanh(u), jnp.asarray(_Y), num_bins=2)),
}


@pytest.mark.parametrize("name", sorted(TERMS))
def test_every_term_is_jittable_and_vmappable(name):
    fn = TERMS[name]
    batch = jnp.asarray(np.random.default_rng(4).normal(size=(3, 6, 4)), jnp.float32)
    one_by_one = np.array([float(fn(b)) for b in batch])
    np.testing.assert_allclose(jax.jit(jax.vmap(fn))(batch), one_by_one, rtol=1e-5, atol=1e-6)
    assert np.all(np.isfinite(np.asarray(jax.grad(lambda u: jnp.sum(jax.vmap(fn)(u)))(batch))))
