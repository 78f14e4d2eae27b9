"""jhash.shallow listwise / ranking / auxiliary-coordinate methods (RSH, RPH, DSeRH, AffHash):
inner steps against independent NumPy references and enumeration, monotone objectives,
bad-input errors, and learning on the bundled digits."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
from jax.test_util import check_grads

from jhash import metrics
from jhash.shallow import affhash, dserh, listwise, rph, rsh


def rng(seed):
    return np.random.default_rng(seed)


# ------------------------------------------------------------------ RSH
def test_rsh_triplet_sums_and_listwise_loss_match_the_explicit_tensor():
    r = rng(0)
    rel = r.integers(0, 3, (4, 9)).astype(np.float32)          # graded relevance with ties
    s_tensor = np.sign(rel[:, :, None] - rel[:, None, :])       # S_mij by its definition
    np.testing.assert_array_equal(np.asarray(rsh.triplet_tensor(jnp.asarray(rel))), s_tensor)
    s_rows = np.asarray(rsh.triplet_row_sums(jnp.asarray(rel)))
    np.testing.assert_array_equal(s_rows, s_tensor.sum(2))
    hq, hx = np.sign(r.normal(size=(4, 5))), np.sign(r.normal(size=(9, 5)))
    want = -sum(hq[m] @ (hx[i] - hx[j]) * s_tensor[m, i, j] for m in range(4) for i in range(9) for j in range(9))
    got = rsh.listwise_loss(jnp.asarray(hq, jnp.float32), jnp.asarray(hx, jnp.float32), jnp.asarray(s_rows))
    assert float(got) == pytest.approx(want, rel=1e-6)
    # the relaxed loss -tr(W^T C W) against the triple sum over the tensor
    x, w = r.normal(size=(9, 6)), r.normal(size=(6, 3))
    q = x[[1, 4, 6, 8]]
    c_ref = sum(np.outer(x[i] - x[j], q[m]) * s_tensor[m, i, j] for m in range(4) for i in range(9) for j in range(9))
    c = np.asarray(rsh.ranking_matrix(jnp.asarray(q, jnp.float32), jnp.asarray(x, jnp.float32), jnp.asarray(s_rows)))
    np.testing.assert_allclose(c, (c_ref + c_ref.T) / 2, rtol=1e-4, atol=1e-4)
    relaxed = -sum(q[m] @ w @ w.T @ (x[i] - x[j]) * s_tensor[m, i, j]
                   for m in range(4) for i in range(9) for j in range(9))
    assert -np.trace(w.T @ c @ w) == pytest.approx(relaxed, rel=1e-4)


def test_rsh_alm_reaches_the_top_eigenspace():
    r = rng(1)
    a = r.normal(size=(8, 8))
    c = (a + a.T) / 2
    c /= np.linalg.norm(c)
    w0 = np.linalg.qr(r.normal(size=(8, 3)))[0]
    w, hist = rsh.alm(jnp.asarray(c, jnp.float32), jnp.asarray(w0, jnp.float32), rho=1.0, lr=0.1,
                      outer_iterations=40, inner_steps=50)
    w = np.asarray(w, np.float64)
    np.testing.assert_allclose(w.T @ w, np.eye(3), atol=2e-3)
    top = np.sort(np.linalg.eigvalsh(c))[-3:].sum()             # the constrained problem's optimum
    assert np.trace(w.T @ c @ w) == pytest.approx(top, rel=2e-3)
    assert float(hist[-1, 1]) < 2e-3


def test_rsh_errors():
    x = rng(2).normal(size=(30, 4)).astype(np.float32)
    y = np.arange(30) % 3
    with pytest.raises(ValueError, match="bits=5 is more than the feature dimension"):
        rsh.fit(x, y, bits=5, key=jax.random.key(0))
    with pytest.raises(ValueError, match="queries"):
        rsh.fit(x, y, bits=2, key=jax.random.key(0), queries=0)
    with pytest.raises(ValueError, match="labels are required"):
        rsh.fit(x, None, bits=2, key=jax.random.key(0))


# ------------------------------------------------------------------ RPH
def _ndcg_numpy(scores, rel):
    out = []
    for s, g in zip(scores, rel):
        pos = 1 + np.array([np.sum(s > si) + 0.5 * (np.sum(s == si) - 1) for si in s])  # ties: the mean position
        dcg = np.sum((2.0 ** g - 1) / np.log2(1 + pos))
        ideal = np.sum((2.0 ** np.sort(g)[::-1] - 1) / np.log2(1 + np.arange(1, len(g) + 1)))
        out.append(dcg / ideal if ideal > 0 else 1.0)
    return np.array(out)


def test_rph_ndcg_exact_and_smooth_limit():
    r = rng(3)
    rel = r.integers(0, 3, (5, 12)).astype(np.float32)
    rel[4] = 0                                                 # no relevant item: NDCG 1
    codes_q, codes_x = np.sign(r.normal(size=(5, 4))), np.sign(r.normal(size=(12, 4)))
    ties = codes_q @ codes_x.T                                 # many ties
    np.testing.assert_allclose(np.asarray(rph.ndcg(jnp.asarray(ties, jnp.float32), jnp.asarray(rel))),
                               _ndcg_numpy(ties, rel), rtol=1e-5)
    real = r.normal(size=(5, 12)).astype(np.float32)           # distinct scores: the sigmoid tends to the step
    smooth = np.asarray(rph.ndcg(jnp.asarray(real), jnp.asarray(rel), tau=1e-4))
    np.testing.assert_allclose(smooth, _ndcg_numpy(real, rel), rtol=1e-4)


def test_rph_gradient_matches_finite_differences():
    r = rng(4)
    xq, xl = r.normal(size=(3, 5)), r.normal(size=(7, 5))
    rel = jnp.asarray(r.integers(0, 2, (3, 7)), jnp.float32)
    w = jnp.asarray(r.normal(size=(5, 2)), jnp.float32)

    def f(w):  # gamma = 0: the quantisation term's fixed sign makes it piecewise
        return rph.objective(w, jnp.asarray(xq, jnp.float32), jnp.asarray(xl, jnp.float32), rel,
                             tau=1.0, gamma=0.0, alpha=1e-2)

    check_grads(f, (w,), order=1, modes=["rev"], atol=2e-2, rtol=2e-2)


def test_rph_training_raises_the_exact_ndcg_and_errors():
    r = rng(5)
    x = r.normal(size=(200, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32) + 2 * (x[:, 1] > 0).astype(np.int32)
    h = rph.fit(x, y, bits=4, key=jax.random.key(0), steps=100, queries=20, list_size=40, lr=0.05)
    assert h.info["train_ndcg_after"] > h.info["train_ndcg_before"] + 0.05
    with pytest.raises(ValueError, match="queries \\+ list_size"):
        rph.fit(x, y, bits=4, key=jax.random.key(0), queries=150, list_size=100)
    with pytest.raises(ValueError, match="tau"):
        rph.fit(x, y, bits=4, key=jax.random.key(0), tau=0.0)


# ------------------------------------------------------------------ DSeRH
def test_dserh_adm_proposal_is_the_binary_argmin_by_enumeration():
    r = rng(6)
    b = np.sign(r.normal(size=(3, 2))).astype(np.float32)
    g = r.normal(size=(3, 2)).astype(np.float32)
    for eta in (0.3, 1.0, 5.0):
        best = min((np.array(c, np.float32).reshape(3, 2) for c in itertools.product([-1, 1], repeat=6)),
                   key=lambda z: np.sum(g * z) + eta / 2 * np.sum((z - b) ** 2))
        np.testing.assert_array_equal(np.asarray(dserh.adm_proposal(jnp.asarray(b), jnp.asarray(g), eta)), best)


def test_dserh_rank_loss_and_semantic_relevance_match_numpy():
    r = rng(7)
    b = np.sign(r.normal(size=(6, 4))).astype(np.float32)
    trip = np.array([[0, 1, 2], [3, 4, 5], [2, 0, 1], [5, 5, 0]])
    valid = np.array([True, True, True, False])
    target = np.array([1.0, 0.5, 0.25, 9.0], np.float32)
    want = np.mean([((b[i] @ b[j] - b[i] @ b[k]) / 8 - t) ** 2 for (i, j, k), t, ok in zip(trip, target, valid) if ok])
    got = dserh.rank_loss(jnp.asarray(b), jnp.asarray(trip), jnp.asarray(valid), jnp.asarray(target))
    assert float(got) == pytest.approx(want, rel=1e-6)
    labels = np.array([0, 1, 2, 0])
    emb = r.normal(size=(3, 5))
    rel = np.asarray(dserh.semantic_relevance(jnp.asarray(labels), emb))
    e = emb[labels] / np.linalg.norm(emb[labels], axis=1, keepdims=True)
    np.testing.assert_allclose(rel, e @ e.T, atol=1e-5)
    trip, ok = dserh.graded_triplets(jax.random.key(0), jnp.asarray(rel), 200)
    trip, ok = np.asarray(trip), np.asarray(ok)
    assert ok.sum() > 50
    assert all(rel[i, j] > rel[i, k] and i != j and i != k for i, j, k in trip[ok])
    with pytest.raises(ValueError, match="class_embeddings"):
        dserh.semantic_relevance(jnp.asarray(labels), emb[:2])


def test_dserh_objective_never_increases():
    r = rng(8)
    x = r.normal(size=(120, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32) + 2 * (x[:, 2] > 0).astype(np.int32)
    for kw in ({}, {"class_embeddings": r.normal(size=(4, 3))}):
        h = dserh.fit(x, y, bits=6, key=jax.random.key(1), triplets_per_point=10, outer_iterations=6, **kw)
        hist = h.info["objective"].ravel()                      # after each B step and each W step
        assert np.all(np.diff(hist) <= 1e-5 * np.abs(hist[:-1])), hist
        assert hist[-1] < hist[0]
    with pytest.raises(ValueError, match="hash_functions"):
        dserh.fit(x, y, bits=4, key=jax.random.key(0), hash_functions="deep")
    with pytest.raises(ValueError, match="lam"):
        dserh.fit(x, y, bits=4, key=jax.random.key(0), lam=0.0)


# ------------------------------------------------------------------ AffHash
def test_affhash_bit_bqp_equals_the_mac_objective_by_enumeration():
    """For one bit, E(Z, h; mu) - (z^T A z + c^T z) is the same constant for all 2^N columns z."""
    r = rng(9)
    n, q, mu = 7, 3, 0.7
    labels = r.integers(0, 2, n)
    y = np.where(labels[:, None] == labels[None, :], 1.0, -1.0)
    z = np.sign(r.normal(size=(n, q)))
    hz = np.sign(r.normal(size=(n, q)))
    k = 1
    res = q * y - sum(np.outer(z[:, l], z[:, l]) for l in range(q) if l != k)
    a, c = -2 * res, -2 * mu * hz[:, k]
    gaps = []
    for col in itertools.product([-1.0, 1.0], repeat=n):
        zz = z.copy()
        zz[:, k] = col
        e = np.sum((zz @ zz.T - q * y) ** 2) + mu * np.sum((zz - hz) ** 2)   # NumPy, not the module's function
        gaps.append(e - (np.array(col) @ a @ np.array(col) + c @ np.array(col)))
    np.testing.assert_allclose(gaps, gaps[0], atol=1e-6)
    e_mod = affhash.penalized_objective(jnp.asarray(z, jnp.float32), jnp.asarray(hz, jnp.float32),
                                        jnp.asarray(y, jnp.float32), mu)
    assert float(e_mod) == pytest.approx(np.sum((z @ z.T - q * y) ** 2) + mu * np.sum((z - hz) ** 2), rel=1e-6)


def test_affhash_z_step_never_increases_and_ends_in_one_flip_minima():
    r = rng(10)
    n, q = 40, 4
    labels = r.integers(0, 3, n)
    y = jnp.asarray(np.where(labels[:, None] == labels[None, :], 1.0, -1.0), jnp.float32)
    z = jnp.asarray(np.sign(r.normal(size=(n, q))), jnp.float32)
    hz = jnp.asarray(np.sign(r.normal(size=(n, q))), jnp.float32)
    for mu in (0.0, 5.0, 50.0):
        e0 = float(affhash.penalized_objective(z, hz, y, mu))
        z1 = affhash.z_step(z, hz, y, mu, jax.random.key(0))
        e1 = float(affhash.penalized_objective(z1, hz, y, mu))
        assert e1 <= e0 + 1e-3
        z2 = np.asarray(affhash.z_step(z1, hz, y, mu, jax.random.key(1)), np.float64)
        # the last bit of a pass is a 1-flip local minimum of E: no single flip in it lowers E
        yy, hh = np.asarray(y, np.float64), np.asarray(hz, np.float64)
        energy = lambda zz: np.sum((zz @ zz.T - q * yy) ** 2) + mu * np.sum((zz - hh) ** 2)  # noqa: E731
        e2 = energy(z2)
        for i in range(n):
            zf = z2.copy()
            zf[i, q - 1] *= -1
            assert energy(zf) >= e2 - 1e-6
    # a large mu makes Z = h(X)
    assert np.array_equal(np.asarray(affhash.z_step(z, hz, y, 1e4, jax.random.key(2))), np.asarray(hz))


def test_affhash_svm_dual_cd_solves_the_primal():
    r = rng(11)
    phi = r.normal(size=(80, 5)).astype(np.float32)
    t = np.sign(phi @ r.normal(size=(5, 2)) + 0.5 * r.normal(size=(80, 2))).astype(np.float32)
    w = np.asarray(affhash.svm_dual_cd(jnp.asarray(phi), jnp.asarray(t), 0.5, jax.random.key(0), epochs=200))
    xa = np.concatenate([phi, np.ones((80, 1))], 1).astype(np.float64)
    for k in range(2):
        def primal(v):
            m = np.maximum(0.0, 1.0 - t[:, k] * (xa @ v))
            return 0.5 * v @ v + 0.5 * np.sum(m ** 2), v - 2 * 0.5 * xa.T @ (t[:, k] * m)
        ref = scipy.optimize.minimize(primal, np.zeros(6), jac=True, method="L-BFGS-B", options={"gtol": 1e-10})
        got = float(affhash.svm_primal(jnp.asarray(w), jnp.asarray(phi), jnp.asarray(t), 0.5)[k])
        assert got == pytest.approx(ref.fun, rel=1e-4)
        np.testing.assert_allclose(w[:, k], ref.x, atol=1e-2)


def test_affhash_fit_penalty_schedule_and_errors():
    r = rng(12)
    x = r.normal(size=(80, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32) + 2 * (x[:, 1] > 0).astype(np.int32)
    h = affhash.fit(x, y, bits=4, key=jax.random.key(0), mu_steps=6)
    hist = h.info["history"]                                    # (mu, E before Z step, E after, mismatch)
    assert np.all(hist[:, 2] <= hist[:, 1] + 1e-3) and np.all(np.diff(hist[:, 0]) > 0)
    codes = h.info["train_codes"].astype(float)
    same = y[:, None] == y[None, :]
    assert (codes @ codes.T)[same].mean() > (codes @ codes.T)[~same].mean() + 1
    with pytest.raises(ValueError, match="mu_factor"):
        affhash.fit(x, y, bits=4, key=jax.random.key(0), mu_factor=1.0)
    with pytest.raises(ValueError, match="hash_functions"):
        affhash.fit(x, y, bits=4, key=jax.random.key(0), hash_functions="rbf")


def test_relevance_counts_shared_labels():
    a = np.array([[1, 0, 1], [0, 1, 0]])
    b = np.array([[1, 1, 1], [0, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(np.asarray(listwise.relevance(jnp.asarray(a), jnp.asarray(b))), a @ b.T)
    np.testing.assert_array_equal(np.asarray(listwise.relevance(jnp.asarray([0, 2]), jnp.asarray([2, 0, 1]))),
                                  [[0, 1, 0], [1, 0, 0]])
    with pytest.raises(ValueError, match="both be class ids"):
        listwise.relevance(jnp.asarray(a), jnp.asarray([0, 1, 2]))


# ------------------------------------------------------------------ digits, end to end
# `digits` (pixels in [0, 1] of the digits protocol's split 0) is a fixture of conftest.py


def test_rsh_beats_random_codes_on_digits(digits):
    """RPH, DSeRH and AffHash must beat LSH by 0.2 on digits (test_shallow_e2e.py). RSH's relaxed
    listwise problem with class-label relevance has only about as many informative directions as
    there are classes (10), so at 16 bits on digits it is checked against random codes here; on
    mnist it beats ITQ (experiments/results/shallow_mnist.md)."""
    (xt, yt), (xq, yq), (xd, yd) = digits["train"], digits["query"], digits["database"]
    h = rsh.fit(xt, yt, bits=16, key=jax.random.key(0), outer_iterations=10, inner_steps=30)
    qc, dc = h.encode(xq), h.encode(xd)
    r = np.random.default_rng(0)
    rand = metrics.mean_average_precision(np.where(r.random(qc.shape) < .5, -1, 1),
                                          np.where(r.random(dc.shape) < .5, -1, 1), yq, yd)
    assert metrics.mean_average_precision(qc, dc, yq, yd) > rand + 0.25
