"""TSH and FastH (jhash.shallow.tsh, .fasth, .twostep, .trees): the bit problem against
exhaustive enumeration, monotone solvers, the boosted trees against NumPy references,
input errors, and learning on the bundled digits."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from jhash import metrics
from jhash.shallow import fasth, trees, tsh, twostep


# ------------------------------------------------------------------ NumPy references
def np_loss(d, similar, r, loss):
    """The three pair losses, written out from their definitions."""
    if loss == "ksh":
        target = 1.0 if similar else -1.0
        return (target - (r - 2.0 * d) / r) ** 2
    if loss == "bre":
        return ((0.0 if similar else 1.0) - d / r) ** 2
    return (d / r) ** 2 if similar else max(0.0, 0.5 - d / r) ** 2


def problem(seed, n, prev_bits, classes=3, density=0.6):
    """Labels, a symmetric pair mask and previous +-1 bits for a small random instance."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    mask = np.triu(rng.random((n, n)) < density, 1)
    mask = (mask | mask.T).astype(np.float32)
    prev = np.where(rng.random((n, prev_bits)) < 0.5, -1.0, 1.0)
    return labels, mask, prev


def weights_for(labels, mask, prev, loss):
    r = prev.shape[1] + 1
    d0 = twostep.hamming_distances(jnp.asarray(prev))
    sim = jnp.asarray(labels[:, None] == labels[None, :])
    return np.asarray(twostep.bit_weights(d0, sim, jnp.asarray(mask), jnp.float32(r), loss))


def all_columns(n):
    return np.array(list(itertools.product([-1.0, 1.0], repeat=n)))


def np_tree(xb, y, w, depth, bins, min_weight=0.01):
    """Dollar-style greedy tree by brute force over every feature and threshold."""
    n, f = xb.shape
    w = w / w.sum()
    inner = 2 ** depth - 1
    fid, thr = np.zeros(inner, int), np.full(inner, bins - 1)
    node = np.zeros(n, int)
    for level in range(depth):
        for k in range(2 ** level):
            at = 2 ** level - 1 + k
            mem = node == k
            w0, w1 = w[mem & (y < 0)].sum(), w[mem & (y > 0)].sum()
            tot = w0 + w1
            if tot <= 0:
                continue
            prior = w1 / tot
            best = (np.inf, 0, 0)
            for j in range(f):
                for t in range(bins):
                    lft, rgt = mem & (xb[:, j] <= t), mem & (xb[:, j] > t)
                    e_a = w[lft & (y > 0)].sum() + w[rgt & (y < 0)].sum()
                    e_b = w[lft & (y < 0)].sum() + w[rgt & (y > 0)].sum()
                    if min(e_a, e_b) / tot < best[0]:
                        best = (min(e_a, e_b) / tot, j, t)
            e, j, t = best
            wl, wr = w[mem & (xb[:, j] <= t)].sum(), w[mem & (xb[:, j] > t)].sum()
            if (e < min(prior, 1 - prior) - 1e-6 and 1e-3 <= prior <= 1 - 1e-3 and tot >= min_weight
                    and wl > 0 and wr > 0):
                fid[at], thr[at] = j, t
        at = 2 ** level - 1 + node
        node = 2 * node + (xb[np.arange(n), fid[at]] > thr[at])
    leaf = np.array([1.0 if w[(node == k) & (y > 0)].sum() >= w[(node == k) & (y < 0)].sum() else -1.0
                     for k in range(2 ** depth)])
    return fid, thr, leaf


def np_tree_apply(fid, thr, leaf, xb):
    depth = len(leaf).bit_length() - 1
    node = np.zeros(len(xb), int)
    for level in range(depth):
        at = 2 ** level - 1 + node
        node = 2 * node + (xb[np.arange(len(xb)), fid[at]] > thr[at])
    return leaf[node]


def tree_data(seed, n=40, f=4, bins=6):
    rng = np.random.default_rng(seed)
    xb = rng.integers(0, bins, (n, f)).astype(np.int32)
    y = np.where(xb[:, 0] + rng.integers(0, 3, n) > bins // 2 + 1, 1.0, -1.0)
    return xb, y, rng.random(n) + 0.05


# ------------------------------------------------------------------ step 1: the bit problem
@pytest.mark.parametrize("loss", twostep.LOSSES)
def test_bit_bqp_equals_the_pair_loss_for_every_column(loss):
    """For every z in {-1,+1}^n (n = 10): the loss of the r-bit codes [prev, z] equals a
    constant plus (1/2) sum_{i<j} W_ij z_i z_j, and W is <= 0 on similar pairs (submodular blocks)."""
    labels, mask, prev = problem(1, 10, 2)
    r = prev.shape[1] + 1
    w = weights_for(labels, mask, prev, loss)
    cols = all_columns(10)
    objective = np.einsum("ki,ij,kj->k", cols, w, cols) / 4   # half of sum_{i<j} W_ij z_i z_j
    truth = np.zeros(len(cols))
    for k, z in enumerate(cols):
        codes = np.concatenate([prev, z[:, None]], 1)
        for i in range(10):
            for j in range(i + 1, 10):
                if mask[i, j]:
                    truth[k] += np_loss(np.sum(codes[i] != codes[j]), labels[i] == labels[j], r, loss)
    np.testing.assert_allclose(truth - objective, np.full(len(cols), (truth - objective)[0]), atol=1e-4)
    # the total loss of full codes against the loop
    codes = np.concatenate([prev, cols[5][:, None]], 1)
    got = twostep.total_loss(jnp.asarray(codes), jnp.asarray(labels[:, None] == labels[None, :]), jnp.asarray(mask), loss)
    np.testing.assert_allclose(float(got), truth[5], rtol=1e-5)
    sim = labels[:, None] == labels[None, :]
    assert np.all(w[sim] <= 1e-7)
    np.testing.assert_array_equal(w, w.T)
    np.testing.assert_allclose(twostep.data_weights(jnp.asarray(w)), np.abs(w).sum(1), rtol=1e-6)


def test_pair_mask_and_blocks():
    labels = np.random.default_rng(2).integers(0, 4, 60)
    m = np.asarray(twostep.pair_mask(jnp.asarray(labels), jax.random.key(0), 5))
    sim = labels[:, None] == labels[None, :]
    np.testing.assert_array_equal(m, m.T)
    assert np.all(np.diag(m) == 0)
    for i in range(60):   # each point drew min(5, #available) partners of each kind
        assert np.sum(m[i] * sim[i]) >= min(5, sim[i].sum() - 1)
        assert np.sum(m[i] * ~sim[i]) >= min(5, (~sim[i]).sum())
    np.testing.assert_array_equal(np.asarray(twostep.pair_mask(jnp.asarray(labels), jax.random.key(0), None)),
                                  1 - np.eye(60))
    blocks = twostep.class_blocks(labels)
    got = np.sort(blocks[blocks < 60])
    np.testing.assert_array_equal(got, np.arange(60))
    for b in blocks:
        assert len(set(labels[b[b < 60]])) == 1


@pytest.mark.parametrize("loss", twostep.LOSSES)
def test_fasth_block_descent_never_increases_and_blocks_are_local_minima(loss):
    labels, mask, prev = problem(3, 12, 3)
    w = jnp.asarray(weights_for(labels, mask, prev, loss))
    blocks = jnp.asarray(twostep.class_blocks(labels))
    z, info = fasth.solve_bit(w, jax.random.key(0), blocks, sweeps=3)
    hist = np.asarray(info["objective"])
    assert len(hist) == 1 + 3 * blocks.shape[0]
    assert np.all(np.diff(hist) <= 1e-5)
    np.testing.assert_allclose(hist[-1], np.asarray(z) @ np.asarray(w) @ np.asarray(z) / 2, rtol=1e-5)
    # one block update from random bits: others unchanged, no worse, no improving single flip in the block
    rng = np.random.default_rng(4)
    wn = np.asarray(w)
    update = jax.jit(fasth._block_update, static_argnums=3)
    for trial in range(5):
        z0 = np.where(rng.random(12) < 0.5, -1.0, 1.0)
        idx = np.asarray(blocks[trial % blocks.shape[0]])
        z1 = np.asarray(update(w, jnp.asarray(z0), jnp.asarray(idx), None))
        inside = idx[idx < 12]
        outside = np.setdiff1d(np.arange(12), inside)
        np.testing.assert_array_equal(z1[outside], z0[outside])
        val = z1 @ wn @ z1 / 2
        assert val <= z0 @ wn @ z0 / 2 + 1e-5
        for i in inside:
            z2 = z1.copy()
            z2[i] = -z2[i]
            assert z2 @ wn @ z2 / 2 >= val - 1e-5
        # never worse than flipping the whole block
        z3 = z0.copy()
        z3[inside] = -z3[inside]
        assert val <= z3 @ wn @ z3 / 2 + 1e-5


@pytest.mark.parametrize("loss", twostep.LOSSES)
def test_tsh_relaxation_is_monotone_and_ends_at_a_one_flip_minimum(loss):
    labels, mask, prev = problem(5, 12, 2)
    wn = weights_for(labels, mask, prev, loss)
    z, info = tsh.solve_bit(jnp.asarray(wn), jax.random.key(0), box_iterations=30)
    relaxed = np.asarray(info["relaxed"])
    assert np.all(np.diff(relaxed) <= 1e-5)
    z = np.asarray(z)
    val = z @ wn @ z / 2
    np.testing.assert_allclose(float(info["final"]), val, rtol=1e-5, atol=1e-6)
    assert val <= float(info["rounded"]) + 1e-5
    for i in range(12):
        z2 = z.copy()
        z2[i] = -z2[i]
        assert z2 @ wn @ z2 / 2 >= val - 1e-5
    # the spectral start: numpy's eigenvector of the smallest eigenvalue (up to sign), max |z| = 1
    v = np.linalg.eigh(wn.astype(np.float64))[1][:, 0]
    s = np.asarray(tsh.spectral_start(jnp.asarray(wn), jax.random.key(0)))
    assert np.isclose(np.max(np.abs(s)), 1.0)
    assert abs(s @ v) / np.linalg.norm(s) > 0.999


def test_tsh_spectral_start_by_lobpcg_for_large_problems():
    n = 300    # LOBPCG on bound*I - W (forced: the dense limit set to 0)
    rng = np.random.default_rng(6)
    q, _ = np.linalg.qr(rng.normal(size=(n, 8)))
    w = q @ np.diag([-50.0, -20, -10, -5, 5, 10, 20, 30]) @ q.T + 0.01 * (lambda a: a + a.T)(rng.normal(size=(n, n)))
    s = np.asarray(tsh.spectral_start(jnp.asarray(w, jnp.float32), jax.random.key(1), dense_limit=0))
    v = np.linalg.eigh(w)[1][:, 0]
    assert abs(s @ v) / np.linalg.norm(s) > 0.99


def test_weighted_l2svm_matches_scipy():
    rng = np.random.default_rng(7)
    phi = rng.normal(size=(60, 5)).astype(np.float32)
    y = np.where(phi @ rng.normal(size=5) + 0.5 * rng.normal(size=60) > 0, 1.0, -1.0).astype(np.float32)
    s = (rng.random(60) + 0.1).astype(np.float32)
    reg = 0.5

    def f(theta):
        m = np.maximum(0, 1 - y * (phi @ theta[:-1] + theta[-1]))
        return 0.5 * reg * theta[:-1] @ theta[:-1] + np.sum(s * m ** 2)

    ref = scipy.optimize.minimize(f, np.zeros(6), method="L-BFGS-B", options={"gtol": 1e-10, "ftol": 1e-14})
    theta = np.asarray(tsh.fit_l2svm(jnp.asarray(phi), jnp.asarray(y), jnp.asarray(s), jnp.float32(reg)))
    assert f(theta.astype(np.float64)) <= ref.fun * (1 + 1e-4)
    np.testing.assert_allclose(theta, ref.x, atol=2e-3)
    np.testing.assert_allclose(float(tsh.svm_objective(jnp.asarray(theta), phi, y, s, reg)), f(theta), rtol=1e-5)


# ------------------------------------------------------------------ step 2: boosted trees
def test_best_stump_by_brute_force():
    xb, y, w = tree_data(8)
    tree = trees.fit_tree(jnp.asarray(xb), jnp.asarray(y), jnp.asarray(w), jax.random.key(0), depth=1, bins=6,
                          features_per_node=10)
    fid, thr, leaf = np_tree(xb, y, w, 1, 6)
    assert thr[0] < 5   # a real split
    np.testing.assert_array_equal(np.asarray(tree["fid"]), fid)
    np.testing.assert_array_equal(np.asarray(tree["thr"]), thr)
    np.testing.assert_array_equal(np.asarray(tree["leaf"]), leaf)
    # the weighted error of the stump equals the least brute-force error
    pred = np_tree_apply(fid, thr, leaf, xb)
    err = w[pred != y].sum() / w.sum()
    best = min(min(w[((xb[:, j] <= t) & (y > 0)) | ((xb[:, j] > t) & (y < 0))].sum(),
                   w[((xb[:, j] <= t) & (y < 0)) | ((xb[:, j] > t) & (y > 0))].sum())
               for j in range(4) for t in range(6)) / w.sum()
    np.testing.assert_allclose(err, best, rtol=1e-6)


@pytest.mark.parametrize("seed,depth", [(9, 2), (10, 3)])
def test_deep_tree_matches_numpy(seed, depth):
    xb, y, w = tree_data(seed, n=50)
    tree = trees.fit_tree(jnp.asarray(xb), jnp.asarray(y), jnp.asarray(w), jax.random.key(0), depth=depth, bins=6,
                          features_per_node=4)
    fid, thr, leaf = np_tree(xb, y, w, depth, 6)
    np.testing.assert_array_equal(np.asarray(tree["thr"]), thr)
    np.testing.assert_array_equal(np.asarray(tree["fid"])[thr < 5], fid[thr < 5])
    np.testing.assert_array_equal(np.asarray(trees.tree_apply(tree, jnp.asarray(xb))), np_tree_apply(fid, thr, leaf, xb))


@pytest.mark.parametrize("trim", [1.0, 0.9])
def test_adaboost_weights_and_alphas_by_formula(trim):
    xb, y, s = tree_data(11, n=50)
    n = len(y)
    params, out, us = trees.fit_boosted(jnp.asarray(xb), jnp.asarray(y), jnp.asarray(s), jax.random.key(2), trees=4,
                                        depth=2, bins=6, features_per_node=4, trim=trim)
    u = n * s / s.sum()
    score = np.zeros(n)
    for t in range(4):
        np.testing.assert_allclose(np.asarray(us[t]), u, rtol=1e-4)
        order = np.argsort(-u, kind="stable")
        cum = np.cumsum(u[order]) / u.sum()
        keep = np.zeros(n, bool)
        keep[order[:np.argmax(cum > trim) + 1] if trim < 1 else order] = True
        np.testing.assert_array_equal(np.asarray(trees.trim_mask(jnp.asarray(u, jnp.float32), trim)), keep)
        fid, thr, leaf = np_tree(xb, y, np.where(keep, u, 0.0), 2, 6)
        np.testing.assert_array_equal(np.asarray(params["thr"][t]), thr)
        h = np_tree_apply(fid, thr, leaf, xb)
        v_pos, v_neg = u[y * h > 0].sum(), u[y * h < 0].sum()
        alpha = 0.5 * np.log(v_pos / v_neg) if v_pos > v_neg else 0.0
        np.testing.assert_allclose(float(params["alpha"][t]), alpha, rtol=1e-4, atol=1e-6)
        score += alpha * h
        u = u * np.exp(-alpha * y * h)
        u = n * u / u.sum()
    np.testing.assert_array_equal(np.asarray(out), np.where(score >= 0, 1.0, -1.0))
    np.testing.assert_allclose(np.asarray(trees.boosted_apply(params, jnp.asarray(xb))), score, rtol=1e-4, atol=1e-5)


def test_quantise_and_alpha_edge_cases():
    x = jnp.asarray([[0.0, 5.0], [1.0, 5.0], [0.6, 5.0]])
    lo, hi = trees.quantiser(x)
    xb = np.asarray(trees.quantise(x, lo, hi, 4))
    np.testing.assert_array_equal(xb[:, 0], [0, 3, 2])    # equal-width bins over the widened range
    assert np.all((xb[:, 1] >= 0) & (xb[:, 1] < 4))
    assert float(trees.adaboost_alpha(jnp.float32(10.0), jnp.float32(0.0))) == pytest.approx(np.log(10) + np.log(1e8), rel=1e-5)
    assert float(trees.adaboost_alpha(jnp.float32(4.0), jnp.float32(6.0))) == 0.0


# ------------------------------------------------------------------ errors and end to end
def test_errors_name_the_argument():
    x = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
    y = np.arange(30) % 3
    key = jax.random.key(0)
    for fit, kw, word in [(tsh.fit, {"loss": "l2"}, "loss"), (fasth.fit, {"loss": "l2"}, "loss"),
                          (fasth.fit, {"trees": 0}, "trees"), (fasth.fit, {"depth": 0}, "depth"),
                          (fasth.fit, {"bins": 300}, "bins"), (fasth.fit, {"bins": 1}, "bins"),
                          (fasth.fit, {"trim": 0.0}, "trim"), (fasth.fit, {"features_per_node": 0}, "features_per_node"),
                          (fasth.fit, {"sweeps": 0}, "sweeps"), (tsh.fit, {"pairs_per_point": 0}, "pairs_per_point"),
                          (tsh.fit, {"anchors": 31}, "anchors"), (tsh.fit, {"reg": 0.0}, "reg"),
                          (tsh.fit, {"box_iterations": 0}, "box_iterations")]:
        base = {"anchors": 10} if fit is tsh.fit else {}
        with pytest.raises(ValueError, match=word):
            fit(x, y, bits=4, key=key, **dict(base, **kw))
    for fit in (tsh.fit, fasth.fit):
        with pytest.raises(ValueError, match="labels"):
            fit(x, None, bits=4, key=key)
        with pytest.raises(ValueError, match="bits"):
            fit(x, y, bits=0, key=key)
        with pytest.raises(ValueError, match="features"):
            fit(x[:, :0], y, bits=4, key=key)


# `digits` (pixels in [0, 1] of the digits protocol's split 0) is a fixture of conftest.py


@pytest.mark.parametrize("name,hyper", [("tsh", {"anchors": 100, "box_iterations": 20, "svm_iterations": 3}),
                                        ("fasth", {"trees": 10})])
def test_beats_random_codes_on_digits(name, hyper, digits):
    bits = 8
    (xt, yt), (xq, yq), (xd, yd) = digits["train"], digits["query"], digits["database"]
    fit = {"tsh": tsh.fit, "fasth": fasth.fit}[name]
    h = fit(xt, yt, bits=bits, key=jax.random.key(0), **hyper)
    qc, dc = h.encode(xq), h.encode(xd)
    assert qc.shape == (len(xq), bits) and qc.dtype == np.int8
    r = np.random.default_rng(0)
    rand = metrics.mean_average_precision(np.where(r.random((len(yq), bits)) < .5, -1, 1),
                                          np.where(r.random((len(yd), bits)) < .5, -1, 1), yq, yd)
    m = metrics.mean_average_precision(qc, dc, yq, yd)
    assert m > rand + 0.3, (m, rand)
    # later bits were conditioned on the fitted outputs: the recorded total loss (KSH loss,
    # the default) is the loss of the encoded training codes on the method's pair sample
    tc = h.encode(xt).astype(np.float64)
    d = (bits - tc @ tc.T) / 2
    sim = yt[:, None] == yt[None, :]
    loop_key = jax.random.split(jax.random.key(0))[1] if name == "tsh" else jax.random.key(0)
    mask = np.asarray(twostep.pair_mask(jnp.asarray(yt, jnp.int32), jax.random.split(loop_key)[0], 100))
    ksh = (np.where(sim, 1.0, -1.0) - (bits - 2 * d) / bits) ** 2
    np.testing.assert_allclose(h.info["total_loss"][-1], 0.5 * np.sum(mask * ksh), rtol=1e-4)
