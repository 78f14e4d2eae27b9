"""Product / additive quantization, asymmetric distances, mAP of a real-distance ranking, and the
quantization methods (DQN, DEPQ, DSQ, SPDAQ), against independent NumPy references."""
import itertools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jhash import metrics, quantization as jq
from jhash import run as jrun
from jhash.config import apply_overrides, load_config
from jhash.methods import depq, dqn, dsq, spdaq
from jhash.train import train

REPO = pathlib.Path(__file__).resolve().parents[1]
QUANT = ("dqn", "depq", "dsq", "spdaq")


def _rng(seed=0):
    return np.random.default_rng(seed)


# ------------------------------------------------------------------ assignment, encode, decode
def test_assign_matches_brute_force_with_ties():
    rng = _rng()
    cb = rng.integers(-2, 3, size=(3, 5, 2)).astype(np.float32)
    cb[1, 3] = cb[1, 1]  # a duplicated codeword: the lower index must win
    x = rng.integers(-2, 3, size=(40, 3, 2)).astype(np.float32)
    got = np.asarray(jq.assign(jnp.asarray(x), jnp.asarray(cb)))
    for i, m in itertools.product(range(40), range(3)):
        d = [float(np.sum((x[i, m] - cb[m, k]) ** 2)) for k in range(5)]
        assert got[i, m] == min(range(5), key=lambda k: (d[k], k))


def test_pq_encode_decode_against_numpy():
    rng = _rng(1)
    cb = rng.normal(size=(4, 8, 3)).astype(np.float32)
    codes = rng.integers(0, 8, size=(50, 4))
    dec = np.asarray(jq.pq_decode(jnp.asarray(codes), jnp.asarray(cb)))
    ref = np.concatenate([cb[m][codes[:, m]] for m in range(4)], axis=1)
    np.testing.assert_allclose(dec, ref, rtol=0, atol=0)
    np.testing.assert_array_equal(np.asarray(jq.pq_encode(jnp.asarray(dec), jnp.asarray(cb))), codes)
    add = np.asarray(jq.additive_decode(jnp.asarray(codes), jnp.asarray(rng.normal(size=(4, 8, 5)).astype(np.float32))))
    assert add.shape == (50, 5)


def test_additive_encode_never_increases_and_is_exact_for_one_codebook():
    rng = _rng(2)
    cb = rng.normal(size=(2, 4, 3)).astype(np.float32)
    x = rng.normal(size=(30, 3)).astype(np.float32)
    codes, errors = jq.additive_encode(jnp.asarray(x), jnp.asarray(cb), sweeps=4)
    codes, errors = np.asarray(codes), np.asarray(errors)
    assert np.all(np.diff(errors) <= 1e-5)
    err = np.sum((x - cb[0][codes[:, 0]] - cb[1][codes[:, 1]]) ** 2)
    np.testing.assert_allclose(errors[-1], err, rtol=1e-5)
    best = sum(min(np.sum((x[i] - cb[0][a] - cb[1][b]) ** 2) for a in range(4) for b in range(4)) for i in range(30))
    assert err >= best - 1e-4  # ICM is a local method: never below the exhaustive optimum
    one, _ = jq.additive_encode(jnp.asarray(x), jnp.asarray(cb[:1]), sweeps=1)
    np.testing.assert_array_equal(np.asarray(one)[:, 0], np.argmin(((x[:, None] - cb[0][None]) ** 2).sum(-1), 1))


def test_pq_kmeans_error_never_increases_and_is_the_reconstruction_error():
    x = jnp.asarray(_rng(3).normal(size=(300, 8)).astype(np.float32))
    cb, codes, errors = jq.pq_kmeans(x, jax.random.PRNGKey(0), m=2, k=8, iters=15)
    errors = np.asarray(errors)
    assert cb.shape == (2, 8, 4) and codes.shape == (300, 2)
    assert np.all(np.diff(errors) <= 1e-3 * errors[0])
    assert errors[-1] < 0.9 * errors[0]
    final = float(np.sum((np.asarray(x) - np.asarray(jq.pq_decode(codes, cb))) ** 2))
    assert final <= errors[-1] + 1e-3  # the last Lloyd update can only lower it
    np.testing.assert_array_equal(np.asarray(jq.pq_encode(x, cb)), np.asarray(codes))


# ------------------------------------------------------------------ asymmetric distances
@pytest.mark.parametrize("kind,metric", [("product", "l2"), ("product", "ip"), ("additive", "ip")])
def test_aqd_equals_numpy_distances_to_decoded_vectors(kind, metric):
    rng = _rng(4)
    d = 6 if kind == "additive" else 2
    cb = rng.normal(size=(3, 5, d)).astype(np.float32)
    codes = rng.integers(0, 5, size=(40, 3))
    q = rng.normal(size=(7, 6)).astype(np.float32)
    dec = np.asarray(jq.decode(jnp.asarray(codes), jnp.asarray(cb), kind=kind))
    ref = ((q[:, None] - dec[None]) ** 2).sum(-1) if metric == "l2" else -(q @ dec.T)
    got = np.asarray(jq.asymmetric_distances(jnp.asarray(q), jnp.asarray(codes), jnp.asarray(cb), kind=kind,
                                             metric=metric))
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_bad_inputs_are_clear_errors():
    cb = jnp.zeros((2, 4, 3))
    with pytest.raises(ValueError, match="metric='l2' needs product codebooks"):
        jq.aqd_table(jnp.zeros((1, 3)), cb, kind="additive", metric="l2")
    with pytest.raises(ValueError, match="kind must be one of"):
        jq.aqd_table(jnp.zeros((1, 6)), cb, kind="residual")
    with pytest.raises(ValueError, match="not divisible into m=4"):
        jq.split(jnp.zeros((2, 6)), 4)
    with pytest.raises(ValueError, match="codes must have shape"):
        jq.pq_decode(jnp.zeros((5, 3), jnp.int32), cb)
    with pytest.raises(ValueError, match="multiple of log2"):
        jq.num_codebooks(20, 256)
    with pytest.raises(ValueError, match="power of two"):
        jq.num_codebooks(32, 100)
    assert jq.num_codebooks(32, 256) == 4 and jq.num_codebooks(16, 16) == 4
    with pytest.raises(ValueError, match="distances must have shape"):
        metrics.mean_average_precision_by_distance(np.zeros((2, 3)), np.zeros(2), np.zeros(4))


# ------------------------------------------------------------------ mAP of a real-distance ranking
def _ap_reference(dist, ql, dl, k):
    aps = []
    for i in range(len(ql)):
        order = sorted(range(len(dl)), key=lambda j: (dist[i, j], j))[:k]
        hits, total = 0, 0.0
        for rank, j in enumerate(order, 1):
            if dl[j] == ql[i]:
                hits += 1
                total += hits / rank
        aps.append(total / hits if hits else 0.0)
    return float(np.mean(aps))


@pytest.mark.parametrize("k", [None, 1, 7, 100])
def test_map_by_distance_against_brute_force_with_ties(k):
    rng = _rng(5)
    dist = rng.integers(0, 4, size=(9, 30)).astype(np.float64)  # many ties: broken by database index
    ql, dl = rng.integers(0, 3, 9), rng.integers(0, 3, 30)
    got = metrics.mean_average_precision_by_distance(dist, ql, dl, k=k)
    assert got == pytest.approx(_ap_reference(dist, ql, dl, min(k or 30, 30)), abs=1e-12)
    chunked = metrics.mean_average_precision_by_distance(lambda s, e: dist[s:e], ql, dl, k=k, chunk_size=2)
    assert chunked == pytest.approx(got, abs=1e-12)


def test_map_by_distance_of_hamming_distances_equals_the_hamming_map():
    rng = _rng(6)
    q = np.where(rng.random((20, 8)) < 0.5, -1, 1).astype(np.int8)
    d = np.where(rng.random((60, 8)) < 0.5, -1, 1).astype(np.int8)
    ql = (rng.random((20, 4)) < 0.4).astype(np.int32)
    dl = (rng.random((60, 4)) < 0.4).astype(np.int32)
    ham = (8 - q.astype(np.int64) @ d.T.astype(np.int64)) / 2
    for k in (None, 10):
        assert metrics.mean_average_precision_by_distance(ham, ql, dl, k=k) == pytest.approx(
            metrics.mean_average_precision(q, d, ql, dl, k=k), abs=1e-12)


# ------------------------------------------------------------------ the methods' losses against NumPy
def test_dqn_losses_against_numpy():
    rng = _rng(7)
    z = rng.normal(size=(6, 4)).astype(np.float32)
    y = rng.integers(0, 3, 6)
    s = np.where(y[:, None] == y[None, :], 1.0, -1.0)
    zn = z / np.linalg.norm(z, axis=1, keepdims=True)
    ref = np.mean([(s[i, j] - zn[i] @ zn[j]) ** 2 for i in range(6) for j in range(6)])
    assert float(dqn.cosine_loss(jnp.asarray(z), jnp.asarray(y))) == pytest.approx(ref, rel=1e-5)
    cb = rng.normal(size=(2, 3, 2)).astype(np.float32)
    codes = rng.integers(0, 3, size=(6, 2))
    rec = np.concatenate([cb[0][codes[:, 0]], cb[1][codes[:, 1]]], 1)
    assert float(dqn.pq_loss(jnp.asarray(z), jnp.asarray(codes), jnp.asarray(cb))) == pytest.approx(
        np.mean(np.sum((z - rec) ** 2, 1)), rel=1e-5)


def test_depq_losses_against_numpy():
    rng = _rng(8)
    soft, hard = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    centers, y = rng.normal(size=(3, 4)), rng.integers(0, 3, 5)
    ref = np.mean([0.5 * (np.sum((soft[i] - centers[y[i]]) ** 2) + np.sum((hard[i] - centers[y[i]]) ** 2))
                   for i in range(5)])
    got = depq.joint_central_loss(jnp.asarray(soft), jnp.asarray(hard), jnp.asarray(centers), jnp.asarray(y))
    assert float(got) == pytest.approx(ref, rel=1e-5)
    p = rng.random((5, 2, 3))
    p /= p.sum(-1, keepdims=True)
    gini = lambda q: np.mean([1 - sum(q[m, k] ** 2 for k in range(3)) for m in range(2)])  # noqa: E731
    ref = np.mean([gini(p[i]) for i in range(5)]) - gini(p.mean(0))
    assert float(depq.gini_loss(jnp.asarray(p))) == pytest.approx(ref, rel=1e-5)
    with pytest.raises(ValueError, match="class ids"):
        depq.joint_central_loss(jnp.asarray(soft), jnp.asarray(hard), jnp.asarray(centers), jnp.ones((5, 3)))


def test_dsq_loss_and_codebook_step_against_numpy():
    rng = _rng(9)
    x = rng.normal(size=(6, 4))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    cb, codes = rng.normal(size=(2, 3, 4)), rng.integers(0, 3, size=(6, 2))
    w = rng.normal(size=(3, 4))
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    y = rng.integers(0, 3, 6)
    logits = 10.0 * x @ w.T
    ce = np.mean(np.log(np.exp(logits).sum(1)) - logits[np.arange(6), y])
    err = x - cb[0][codes[:, 0]] - cb[1][codes[:, 1]]
    ref = ce + 0.5 * np.mean(np.sum(err ** 2, 1)) + 0.25 * np.mean(np.sum((err @ w.T) ** 2, 1))
    got, _ = dsq.dsq_loss(jnp.asarray(x, jnp.float32), jnp.asarray(codes), jnp.asarray(cb, jnp.float32),
                          jnp.asarray(w, jnp.float32), jnp.asarray(y), scale=10.0, lambda_q=0.5, lambda_s=0.25)
    assert float(got) == pytest.approx(ref, rel=1e-4)
    xs, cs = rng.normal(size=(40, 4)), rng.integers(0, 3, size=(40, 2))
    h = np.concatenate([np.eye(3)[cs[:, 0]], np.eye(3)[cs[:, 1]]], 1)
    ref_c = np.linalg.solve(h.T @ h + 1e-3 * np.eye(6), h.T @ xs).reshape(2, 3, 4)
    got_c = np.asarray(dsq.least_squares_codebooks(jnp.asarray(xs, jnp.float32), jnp.asarray(cs), 3), np.float64)
    # H^T H of one-hot blocks is singular (every block's columns sum to ones): compare the minimised objective,
    # which is well conditioned, not the ill-conditioned minimiser.
    ridge = lambda c: np.sum((xs - h @ c.reshape(6, 4)) ** 2) + 1e-3 * np.sum(c ** 2)  # noqa: E731
    assert ridge(got_c) == pytest.approx(ridge(ref_c), rel=1e-5)


def _spdaq_problem(seed=10, n=30, o=8, dim=5, m=2, k=4):
    rng = _rng(seed)
    omega = np.sort(rng.choice(n, o, replace=False))
    labels = rng.integers(0, 3, n)
    s = np.asarray(spdaq.rescaled_similarity(jnp.asarray(labels[omega]), jnp.asarray(labels)))
    f = rng.normal(size=(o, dim)).astype(np.float32)
    codes = rng.integers(0, k, size=(n, m)).astype(np.int32)
    cb = rng.normal(size=(m, k, dim)).astype(np.float32)
    return f, omega, s, codes, cb


def test_spdaq_objective_against_numpy():
    f, omega, s, codes, cb = _spdaq_problem()
    x = cb[0][codes[:, 0]] + cb[1][codes[:, 1]]
    ref = sum((f[i] @ x[j] - 3.0 * s[i, j]) ** 2 for i in range(len(f)) for j in range(len(x)))
    ref += 7.0 * sum(np.sum((f[i] - x[omega[i]]) ** 2) for i in range(len(f)))
    got = spdaq.objective(*map(jnp.asarray, (f, omega, s, codes, cb)), gamma=7.0, r=3.0)
    assert float(got) == pytest.approx(ref, rel=1e-4)


@pytest.mark.parametrize("seed", [10, 11, 12])
def test_spdaq_code_and_codebook_steps_never_increase_the_objective(seed):
    f, omega, s, codes, cb = map(jnp.asarray, _spdaq_problem(seed))
    kw = dict(gamma=7.0, r=3.0)
    before = float(spdaq.objective(f, omega, s, codes, cb, **kw))
    new_codes = spdaq.update_codes(codes, cb, f, omega, s, sweeps=3, **kw)
    mid = float(spdaq.objective(f, omega, s, new_codes, cb, **kw))
    new_cb = spdaq.update_codebooks(cb, new_codes, f, omega, s, iterations=10, **kw)
    after = float(spdaq.objective(f, omega, s, new_codes, new_cb, **kw))
    assert mid <= before * (1 + 1e-5) and after <= mid * (1 + 1e-5)
    assert after < before
    # One ICM move is the exact best codeword: no single codeword change lowers the objective further
    # than the step's result for a sampled item.
    one = spdaq.update_codes(new_codes, new_cb, f, omega, s, sweeps=1, **kw)
    assert float(spdaq.objective(f, omega, s, one, new_cb, **kw)) <= after * (1 + 1e-5)


def test_spdaq_code_step_is_exact_per_codebook():
    f, omega, s, codes, cb = map(jnp.asarray, _spdaq_problem(13, n=6, o=3, k=3))
    kw = dict(gamma=2.0, r=1.0)
    got = np.asarray(spdaq.update_codes(codes, cb, f, omega, s, sweeps=1, **kw))
    c = np.asarray(codes).copy()
    for m in range(2):  # the same sweep by brute force: item by item, codeword by codeword
        for j in range(6):
            costs = []
            for kk in range(3):
                trial = c.copy()
                trial[j, m] = kk
                costs.append(float(spdaq.objective(f, omega, s, jnp.asarray(trial), cb, **kw)))
            best = min(range(3), key=lambda kk: (costs[kk] - 1e-4 * (kk == c[j, m]), kk))
            c[j, m] = best
    np.testing.assert_array_equal(got, c)


# ------------------------------------------------------------------ every method learns on digits
def _config(method, *overrides):
    c = load_config(str(REPO / f"experiments/configs/{method}.py") + ":dataset=digits,bits=16")
    return apply_overrides(c, ["model.hidden=(64,)", "num_epochs=12", "checkpoint_every=1000", "log_every=50",
                               "progress=false", "num_devices=1", f"{method}.codebook_size=16", *overrides])


@pytest.mark.parametrize("method", QUANT)
def test_quantization_method_learns_on_digits(method, tmp_path):
    extra = {"spdaq": ["spdaq.num_samples=256"]}.get(method, [])
    results = train(_config(method, *extra), tmp_path)
    z = np.load(tmp_path / "codes.npz")
    assert z["database_codes"].shape[1] == 4 and int(z["bits"]) == 16  # 4 codebooks x log2(16) = 16 bits
    rng = _rng(0)
    q = np.where(rng.random((len(z["query_labels"]), 16)) < 0.5, -1, 1).astype(np.int8)
    d = np.where(rng.random((len(z["database_labels"]), 16)) < 0.5, -1, 1).astype(np.int8)
    baseline = metrics.mean_average_precision(q, d, z["query_labels"], z["database_labels"])
    assert baseline < 0.15
    assert results["map@all"] > baseline + 0.3, (method, results)
    assert results["distinct_db_codes"] > 50 and results["codebook_usage"] > 0.5
    # `jhash eval`: the method rebuilt, its checkpoint (codebooks in params or method state) restored, the same figures
    again = jrun.evaluate(_config(method, *extra), tmp_path)
    assert again == results


@pytest.mark.parametrize("method", QUANT)
def test_bad_code_lengths_are_clear_errors(method):
    from jhash import methods

    with pytest.raises(ValueError, match=r"bits must be a positive multiple of log2\(codebook_size\) = 8"):
        methods.build(_config(method, "bits=12", f"{method}.codebook_size=256"), train_labels=np.zeros(500, np.int32))
    with pytest.raises(ValueError, match="codebook_size must be a power of two"):
        methods.build(_config(method, f"{method}.codebook_size=10"), train_labels=np.zeros(500, np.int32))
