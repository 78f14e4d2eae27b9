"""jhash.shallow ranking / triplet methods (MLH, HDML, CGH, Top-RSBC, OPH): loss-augmented
inference against exhaustive enumeration, losses against NumPy loops, the CGH master
solver against scipy and its objective never increasing, learning on digits, input errors."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from jhash.shallow import cgh, hdml, linear_sgd, mlh, oph, toprsbc

CODES = {q: np.array(list(itertools.product([-1.0, 1.0], repeat=q))) for q in range(1, 5)}


def rng(seed):
    return np.random.default_rng(seed)


# ------------------------------------------------------------------ MLH
def mlh_loss_np(m, s, rho, lam):
    return max(m - rho + 1, 0.0) if s else lam * max(rho - m + 1, 0.0)


@pytest.mark.parametrize("q", [1, 2, 3, 4])
def test_mlh_loss_augmented_inference_is_the_exhaustive_maximum(q):
    r = rng(q)
    cand = CODES[q]
    for trial in range(6):
        f, fp = r.normal(size=q) * 2, r.normal(size=q) * 2
        s, rho, lam = bool(trial % 2), float(r.integers(0, q + 1)), float(r.choice([0.5, 1.0, 2.0]))
        brute = max(g @ f + h @ fp + mlh_loss_np(np.sum(g != h), s, rho, lam) for g in cand for h in cand)
        g, h, v = mlh.loss_augmented_inference(jnp.asarray(f, jnp.float32), jnp.asarray(fp, jnp.float32), s, rho, lam)
        g, h = np.asarray(g), np.asarray(h)
        assert set(np.unique(np.concatenate([g, h]))) <= {-1.0, 1.0}
        np.testing.assert_allclose(float(v), brute, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(g @ f + h @ fp + mlh_loss_np(np.sum(g != h), s, rho, lam), brute, rtol=1e-5,
                                   atol=1e-5)


def test_mlh_bound_majorises_the_loss_and_its_gradient_is_the_papers_update():
    r = rng(10)
    d, q, n = 5, 4, 12
    x, xp = r.normal(size=(n, d)).astype(np.float32), r.normal(size=(n, d)).astype(np.float32)
    s = r.random(n) < 0.5
    params = {"mean": jnp.asarray(r.normal(size=d), jnp.float32), "w": jnp.asarray(r.normal(size=(d, q)), jnp.float32),
              "b": jnp.asarray(r.normal(size=q), jnp.float32)}
    bound = float(mlh.upper_bound(params, x, xp, s, 2.0, 0.5))
    assert bound >= float(mlh.empirical_loss(params, x, xp, s, 2.0, 0.5)) - 1e-5
    # NumPy: brute-force maximisers, then W <- W - eta [(g^ - b(x)) x~^T + (h^ - b(x')) x'~^T] / n
    m, w, b = (np.asarray(params[k], np.float64) for k in ("mean", "w", "b"))
    gw, gb = np.zeros_like(w), np.zeros_like(b)
    for xi, xj, si in zip(x.astype(np.float64) - m, xp.astype(np.float64) - m, s):
        f, fp = xi @ w + b, xj @ w + b
        g, h = max(((g, h) for g in CODES[q] for h in CODES[q]),
                   key=lambda gh: gh[0] @ f + gh[1] @ fp + mlh_loss_np(np.sum(gh[0] != gh[1]), si, 2.0, 0.5))
        bx, bxp = np.where(f >= 0, 1.0, -1.0), np.where(fp >= 0, 1.0, -1.0)
        gw += np.outer(xi, g - bx) + np.outer(xj, h - bxp)
        gb += g - bx + h - bxp
    grad = jax.grad(mlh.upper_bound)(params, x, xp, s, 2.0, 0.5)
    np.testing.assert_allclose(np.asarray(grad["w"]), gw / n, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(grad["b"]), gb / n, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ HDML
@pytest.mark.parametrize("q", [1, 2, 3, 4])
def test_hdml_loss_augmented_inference_is_the_exhaustive_maximum(q):
    r = rng(20 + q)
    cand = CODES[q]
    # all (g, g+, g-) at once: score = g f + g+ f+ + g- f- + [||g-g+|| - ||g-g-|| + 1]_+
    dist = (cand[:, None, :] != cand[None, :, :]).sum(-1)
    for _ in range(4):
        f, fp, fn = (r.normal(size=q) for _ in range(3))
        a, bp, bn = cand @ f, cand @ fp, cand @ fn
        total = (a[:, None, None] + bp[None, :, None] + bn[None, None, :]
                 + np.maximum(dist[:, :, None] - dist[:, None, :] + 1, 0))
        g, gp, gn, v = hdml.loss_augmented_inference(*(jnp.asarray(t, jnp.float32) for t in (f, fp, fn)))
        g, gp, gn = map(np.asarray, (g, gp, gn))
        np.testing.assert_allclose(float(v), total.max(), rtol=1e-5, atol=1e-5)
        mine = g @ f + gp @ fp + gn @ fn + max(np.sum(g != gp) - np.sum(g != gn) + 1, 0)
        np.testing.assert_allclose(mine, total.max(), rtol=1e-5, atol=1e-5)


def test_hdml_bound_majorises_the_triplet_loss_and_training_lowers_it():
    r = rng(30)
    x = r.normal(size=(3, 20, 6)).astype(np.float32)
    params = {"mean": jnp.zeros(6), "w": jnp.asarray(r.normal(size=(6, 5)), jnp.float32), "b": jnp.zeros(5)}
    assert float(hdml.upper_bound(params, *x)) >= float(hdml.empirical_loss(params, *x)) - 1e-5
    y = np.repeat(np.arange(3), 30)
    feats = (r.normal(size=(90, 8)) + 3 * np.eye(8)[y]).astype(np.float32)
    h = hdml.fit(feats, y, bits=6, key=jax.random.key(0), steps=300)
    hist = np.asarray(h.info["objective"])
    assert hist[-50:].mean() < 0.5 * hist[:50].mean()


# ------------------------------------------------------------------ Top-RSBC
@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
def test_toprsbc_loss_matches_a_numpy_loop(p):
    r = rng(40)
    h = np.tanh(r.normal(size=(9, 5)))
    y = np.array([0, 0, 1, 1, 1, 2, 0, 2, 3])     # class 3: no relevant item
    dist = lambda a, b: (5 - h[a] @ h[b]) / 2
    per_query = []
    for i in range(9):
        neg = [k for k in range(9) if y[k] != y[i]]
        pos = [j for j in range(9) if y[j] == y[i] and j != i]
        if pos and neg:
            c = [np.mean([max(1 + dist(i, j) - dist(i, k), 0) for j in pos]) for k in neg]
            per_query.append(np.mean(np.array(c) ** p))
    got = toprsbc.top_rank_loss(jnp.asarray(h, jnp.float32), jnp.asarray(y[:, None] == y[None, :]), p)
    np.testing.assert_allclose(float(got), np.mean(per_query), rtol=1e-5)
    # binary codes ranked perfectly (relevant at distance 0, irrelevant at q) cost nothing
    perfect = np.where(np.eye(4)[y][:, :4] > 0, 1.0, -1.0)
    assert float(toprsbc.top_rank_loss(jnp.asarray(perfect, jnp.float32), jnp.asarray(y[:, None] == y[None, :]), p)) == 0


# ------------------------------------------------------------------ OPH
def test_oph_categories_and_loss_match_a_numpy_loop():
    r = rng(50)
    n, k, q = 10, 3, 6
    x = r.normal(size=(n, 4))
    rel = r.random((n, n)) < 0.5
    cat = np.asarray(oph.categories(jnp.asarray(x, jnp.float32), jnp.asarray(rel), k))
    for i in range(n):
        mine = [j for j in range(n) if rel[i, j] and j != i]
        ranked = sorted(mine, key=lambda j: (np.sum((x[i] - x[j]) ** 2), j))
        for pos, j in enumerate(ranked):
            assert cat[i, j] == pos * k // len(ranked)
        assert all(cat[i, j] == k for j in range(n) if j not in mine)
    h = np.tanh(r.normal(size=(n, q)))
    radii = (0.0, 1.0, 2.0)
    d = (q - h @ h.T) / 2
    want = 0.0
    for t, rt in enumerate(radii):
        inside = [d[i, j] for i in range(n) for j in range(n) if i != j and cat[i, j] <= t]
        outside = [d[i, j] for i in range(n) for j in range(n) if i != j and cat[i, j] > t]
        want += np.mean([max(v - rt, 0) for v in inside]) + np.mean([max(rt + 1 - v, 0) for v in outside])
    got = oph.order_loss(jnp.asarray(h, jnp.float32), jnp.asarray(cat), radii)
    np.testing.assert_allclose(float(got), want, rtol=1e-5)


# ------------------------------------------------------------------ CGH
def test_cgh_master_solver_matches_scipy_and_its_dual_is_kkt():
    r = rng(60)
    delta = r.integers(-1, 2, size=(80, 5)).astype(np.float32)
    c = 5.0
    active = jnp.asarray([1, 1, 1, 1, 0], jnp.float32)
    w, f = cgh.solve_master(jnp.asarray(delta), c, jnp.zeros(5), active, 3000)
    w = np.asarray(w, np.float64)
    assert w[4] == 0 and np.all(w >= 0)
    dm = delta[:, :4].astype(np.float64)
    obj = lambda v: v.sum() + c / 80 * np.sum(np.maximum(0, 1 - dm @ v) ** 2)
    jac = lambda v: 1 - 2 * c / 80 * dm.T @ np.maximum(0, 1 - dm @ v)
    ref = scipy.optimize.minimize(obj, np.ones(4), jac=jac, bounds=[(0, None)] * 4, method="L-BFGS-B",
                                  options={"ftol": 1e-14, "gtol": 1e-10})
    np.testing.assert_allclose(float(f), ref.fun, rtol=1e-4)
    np.testing.assert_allclose(w[:4], ref.x, atol=2e-3)
    # KKT: with u = 2c/T max(0, 1 - delta w), 1 - delta^T u >= 0 everywhere and = 0 where w > 0
    u = np.asarray(cgh.dual_variables(jnp.asarray(w, jnp.float32), jnp.asarray(delta), c), np.float64)
    reduced = 1 - dm.T @ u
    assert np.all(reduced >= -1e-3) and np.all(np.abs(reduced[w[:4] > 1e-3]) < 1e-3)


def test_cgh_deltas_gain_and_weighted_distance_match_loops():
    r = rng(70)
    codes = np.where(r.random((12, 4)) < 0.5, -1.0, 1.0)
    trip = r.integers(0, 12, size=(15, 3))
    delta = np.asarray(cgh.triplet_deltas(jnp.asarray(codes), jnp.asarray(trip)))
    u = r.random(15)
    for t, (i, j, k) in enumerate(trip):
        for m in range(4):
            assert delta[t, m] == float(codes[i, m] != codes[k, m]) - float(codes[i, m] != codes[j, m])
    for m in range(4):
        np.testing.assert_allclose(float(cgh.column_gain(jnp.asarray(codes[:, m]), jnp.asarray(trip), jnp.asarray(u))),
                                   u @ delta[:, m], rtol=1e-5)
    w = r.random(4)
    dw = cgh.weighted_distance(codes[:3], codes, w)
    np.testing.assert_allclose(dw, [[np.sum(w * (a != b)) for b in codes] for a in codes[:3]], atol=1e-12)
    with pytest.raises(ValueError, match="weights"):
        cgh.weighted_distance(codes, codes, w[:3])


def test_cgh_master_objective_never_increases_and_columns_have_positive_gain():
    r = rng(80)
    y = np.repeat(np.arange(4), 25)
    x = (r.normal(size=(100, 6)) + 2.5 * np.eye(6)[y]).astype(np.float32)
    h = cgh.fit(x, y, bits=6, key=jax.random.key(1), master_iters=200, power_iters=50, ascent_iters=50)
    hist = np.asarray(h.info["objective"])
    c = 10.0
    assert hist[0] <= c + 1e-4  # w = 0 costs c (every margin violated by 1)
    assert np.all(np.diff(hist) <= 1e-5 * np.abs(hist[:-1])), hist
    assert np.all(np.asarray(h.info["column_gain"]) > 0)
    assert np.all(np.asarray(h.info["bit_weights"]) >= 0)


# ------------------------------------------------------------------ learning on digits
# `digits` (pixels in [0, 1] of the digits protocol's split 0) is a fixture of conftest.py


# Learning on digits (beating LSH by 0.2 mAP) is tested with the other methods in test_shallow_e2e.py.


def test_oph_without_labels_uses_the_euclidean_order():
    r = rng(90)
    x = (r.normal(size=(120, 5)) + 4 * np.eye(5)[np.repeat(np.arange(4), 30)]).astype(np.float32)
    h = oph.fit(x, None, bits=8, key=jax.random.key(0), steps=200, batch=60)
    hist = np.asarray(h.info["objective"])
    assert hist[-20:].mean() < hist[:20].mean()


# ------------------------------------------------------------------ errors
def test_bad_input_errors_name_the_argument():
    x = rng(100).normal(size=(30, 4)).astype(np.float32)
    y = np.repeat(np.arange(3), 10)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="labels are required"):
        mlh.fit(x, None, bits=4, key=key)
    with pytest.raises(ValueError, match="rho"):
        mlh.fit(x, y, bits=4, key=key, rho=9)
    with pytest.raises(ValueError, match="lr"):
        hdml.fit(x, y, bits=4, key=key, lr=0.0)
    with pytest.raises(ValueError, match="momentum"):
        toprsbc.fit(x, y, bits=4, key=key, momentum=1.0, batch=10)
    with pytest.raises(ValueError, match="batch"):
        toprsbc.fit(x, y, bits=4, key=key, batch=31)
    with pytest.raises(ValueError, match="num_categories"):
        oph.fit(x, y, bits=4, key=key, num_categories=6, batch=10)
    with pytest.raises(ValueError, match="neighbours"):
        oph.fit(x, None, bits=4, key=key, neighbours=1.5, batch=10)
    with pytest.raises(ValueError, match="c must be positive"):
        cgh.fit(x, y, bits=4, key=key, c=-1.0)
    with pytest.raises(ValueError, match="one class only"):
        hdml.fit(x, np.zeros(30, int), bits=4, key=key)
    with pytest.raises(ValueError, match="steps"):
        linear_sgd.sgd(None, {"mean": 0, "w": 0, "b": 0}, None, key, steps=0, lr=1.0, momentum=0.0,
                       weight_decay=0.0)
