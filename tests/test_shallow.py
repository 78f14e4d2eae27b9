"""jhash.shallow: inner steps against independent NumPy references, monotone objectives,
end-to-end learning on the bundled digits, and input errors."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from jhash import metrics, shallow
from jhash.shallow import agh, common, dgh, fth, itq, sgh, sh


def rng_data(seed, n, d):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


# ------------------------------------------------------------------ common pieces
def test_pca_matches_numpy_eigh():
    x = rng_data(0, 200, 12) * np.linspace(0.5, 3, 12, dtype=np.float32)
    mean, comps, val = common.pca(jnp.asarray(x), 5)
    xc = x.astype(np.float64) - x.mean(0)
    ev, evec = np.linalg.eigh(xc.T @ xc / len(x))
    ev, evec = ev[::-1][:5], evec[:, ::-1][:, :5]
    np.testing.assert_allclose(np.asarray(mean), x.mean(0), atol=1e-5)
    np.testing.assert_allclose(np.asarray(val), ev, rtol=1e-4)
    # eigenvectors up to sign
    np.testing.assert_allclose(np.abs(np.sum(np.asarray(comps) * evec, 0)), 1.0, atol=1e-4)


@pytest.mark.parametrize("init", ["kmeans++", "random"])
def test_kmeans_assignment_bruteforce_and_monotone(init):
    x = np.concatenate([rng_data(1, 60, 3) + c for c in (0, 6, 12)]).astype(np.float32)
    centers, assign, hist = common.kmeans(jnp.asarray(x), jax.random.key(0), k=4, iters=8, init=init)
    centers, assign, hist = map(np.asarray, (centers, assign, hist))
    brute = np.array([np.argmin([np.sum((p - c) ** 2) for c in centers]) for p in x.astype(np.float64)])
    np.testing.assert_array_equal(assign, brute)
    assert np.all(np.diff(hist) <= 1e-3 * hist[0])
    cost = sum(np.sum((p - centers[a]) ** 2) for p, a in zip(x, assign))
    assert cost <= hist[-1] * (1 + 1e-5)


def test_anchor_graph_z_matches_loop():
    x, u = rng_data(2, 30, 4), rng_data(3, 7, 4)
    s = 3
    z, sigma = common.anchor_graph(jnp.asarray(x), jnp.asarray(u), s)
    z = np.asarray(z)
    d2 = ((x[:, None, :].astype(np.float64) - u[None]) ** 2).sum(-1)
    ref_sigma = np.mean([np.sqrt(np.sort(row)[s - 1]) for row in d2])
    assert float(sigma) == pytest.approx(ref_sigma, rel=1e-5)
    ref = np.zeros_like(d2)
    for i, row in enumerate(d2):
        near = np.argsort(row)[:s]
        w = np.exp(-row[near] / ref_sigma ** 2)
        ref[i, near] = w / w.sum()
    np.testing.assert_allclose(z, ref, atol=1e-5)
    np.testing.assert_allclose(z.sum(1), 1.0, atol=1e-6)
    assert np.all((z > 0).sum(1) == s)


def test_fit_ridge_matches_normal_equations():
    phi, t = rng_data(4, 50, 6), np.sign(rng_data(5, 50, 3))
    w, b = common.fit_ridge(jnp.asarray(phi), jnp.asarray(t), 0.5)
    a = np.concatenate([phi, np.ones((50, 1))], 1).astype(np.float64)
    reg = np.diag([0.5] * 6 + [0.0])  # the bias is not regularised
    ref = np.linalg.solve(a.T @ a + reg, a.T @ t)
    np.testing.assert_allclose(np.asarray(w), ref[:6], atol=1e-4)
    np.testing.assert_allclose(np.asarray(b), ref[6], atol=1e-4)


@pytest.mark.parametrize("multi", [False, True])
def test_sample_triplets_respect_labels(multi):
    r = np.random.default_rng(6)
    labels = (r.random((40, 4)) < 0.4).astype(np.int32) if multi else r.integers(0, 3, 40)
    trip, ok = common.sample_triplets(jax.random.key(1), jnp.asarray(labels), 300)
    trip, ok = np.asarray(trip), np.asarray(ok)
    assert trip.shape == (300, 3) and ok.sum() > 250

    def similar(a, b):
        return bool(np.any(labels[a] & labels[b])) if multi else labels[a] == labels[b]

    for i, j, k in trip[ok]:
        assert i != j and similar(i, j) and not similar(i, k)


# ------------------------------------------------------------------ ITQ
def test_itq_rotation_step_is_procrustes_optimum():
    v = rng_data(7, 100, 6)
    b = np.sign(rng_data(8, 100, 6))
    r = np.asarray(itq.rotation_step(jnp.asarray(v), jnp.asarray(b)), np.float64)
    np.testing.assert_allclose(r.T @ r, np.eye(6), atol=1e-5)
    # the authors' form: svd(B^T V) = U_B S U_A^T, R = U_A U_B^T
    ub, _, uat = np.linalg.svd(b.T.astype(np.float64) @ v)
    np.testing.assert_allclose(r, uat.T @ ub.T, atol=1e-4)
    # optimality: tr(R^T V^T B) reaches the nuclear norm of V^T B
    nuc = np.linalg.svd(v.T.astype(np.float64) @ b, compute_uv=False).sum()
    assert np.trace(r.T @ v.T @ b) == pytest.approx(nuc, rel=1e-5)


def test_itq_objective_non_increasing():
    x = rng_data(9, 300, 20) @ rng_data(10, 20, 20)
    h = itq.fit(x, bits=8, key=jax.random.key(0), iters=30)
    hist = np.asarray(h.info["objective"])
    assert np.all(np.diff(hist) <= 1e-4 * hist[0])
    assert hist[-1] < hist[0]


# ------------------------------------------------------------------ SH
def test_sh_modes_and_eigenfunctions_match_paper_formula():
    x = rng_data(11, 400, 5) * np.array([3, 2, 1.5, 1, 0.5], np.float32)
    bits = 6
    h = sh.fit(x, bits=bits)
    # numpy reference: PCA by eigh, box [min, max], 1-D eigenvalues 1 - exp(-eps^2/2 (k pi / R)^2)
    xd = x.astype(np.float64)
    ev, evec = np.linalg.eigh(np.cov(xd.T, bias=True))
    pc = evec[:, ::-1][:, :min(bits, 5)]
    proj = xd @ pc
    a, bnd = proj.min(0), proj.max(0)
    eps2 = 0.1
    cands = [(1 - np.exp(-eps2 / 2 * (k * np.pi / (bnd[i] - a[i])) ** 2), i, k)
             for i in range(pc.shape[1]) for k in range(1, 4 * bits)]
    chosen = sorted(cands)[:bits]
    ref_modes = {(i, k) for _, i, k in chosen}
    got = {(int(np.flatnonzero(m)[0]), int(m[np.flatnonzero(m)[0]])) for m in h.info["modes"]}
    assert got == ref_modes
    # eigenfunction values: sin(pi/2 + k pi (x - a) / (b - a)) on the chosen direction (sign of pc free)
    vals = np.asarray(h.project(h.params, jnp.asarray(x)))
    for col, m in enumerate(h.info["modes"]):
        i = int(np.flatnonzero(m)[0])
        k = m[i]
        ref = np.sin(np.pi / 2 + k * np.pi * (proj[:, i] - a[i]) / (bnd[i] - a[i]))
        ref_flip = np.sin(np.pi / 2 + k * np.pi * (bnd[i] - proj[:, i]) / (bnd[i] - a[i]))
        err = min(np.abs(vals[:, col] - ref).max(), np.abs(vals[:, col] - ref_flip).max())
        assert err < 1e-3


# ------------------------------------------------------------------ AGH
def test_agh_eigenfunctions_are_anchor_graph_eigenvectors():
    x = rng_data(12, 80, 3)
    u = x[::8]  # every anchor is some point's nearest, so Lambda > 0
    z, _ = common.anchor_graph(jnp.asarray(x), jnp.asarray(u), 3)
    w, ev = agh.spectral_embedding(z, 4)
    y = np.asarray(z @ w, np.float64)
    n = len(x)
    np.testing.assert_allclose(y.T @ y / n, np.eye(4), atol=1e-3)
    np.testing.assert_allclose(y.sum(0) / n, 0, atol=1e-3)
    zn = np.asarray(z, np.float64)
    a = zn @ np.diag(1 / zn.sum(0)) @ zn.T
    val, vec = np.linalg.eigh(a)
    val, vec = val[::-1], vec[:, ::-1]
    assert val[0] == pytest.approx(1.0, abs=1e-6)  # the trivial eigenvector, dropped
    np.testing.assert_allclose(np.asarray(ev), val[1:5], rtol=1e-3)
    np.testing.assert_allclose(np.abs(np.sum(y / np.sqrt(n) * vec[:, 1:5], 0)), 1.0, atol=1e-3)


def test_agh_second_layer_thresholds_match_authors_loop():
    x = rng_data(14, 60, 3)
    z, _ = common.anchor_graph(jnp.asarray(x), jnp.asarray(x[::8]), 2)
    w, _ = agh.spectral_embedding(z, 2)
    y = np.asarray(z @ w, np.float64)
    zn = np.asarray(z, np.float64)
    lam = zn.sum(0)
    n = len(x)
    ref = np.zeros((2, 2))
    for k in range(2):  # the per-column loop of TwoLayerAGH_Train.m
        pos = np.flatnonzero(y[:, k] > 0)
        neg = np.setdiff1d(np.arange(n), pos)
        n1, n2 = len(pos), n - len(pos)
        get = y[:, k].copy()
        get[neg] = -get[neg]
        right = (get @ zn) / lam
        left = zn[pos].sum(0)
        s1 = np.sum(left * right)
        s2 = n1 - np.sum(left * left / lam)
        s3 = y[pos, k].sum()
        ref[0, k] = (2 * s3 + n2 * (s3 - s1) / s2) / n
        ref[1, k] = (n1 * (s3 - s1) / s2 - 2 * s3) / n
    got = np.asarray(agh.second_layer_thresholds(jnp.asarray(y, jnp.float32), z))
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-4)


# ------------------------------------------------------------------ SGH
def test_sgh_transform_is_the_papers_approximation():
    x = rng_data(16, 20, 4)
    x /= np.linalg.norm(x, axis=1).max()
    p, q = map(np.asarray, sgh.transform(jnp.asarray(x), 2.0))
    xd = x.astype(np.float64)
    n2 = (xd ** 2).sum(1)
    t = xd @ xd.T  # 2 x^T y / rho with rho = 2
    ref = 2 * np.exp(-n2[:, None] / 2) * np.exp(-n2[None] / 2) * (np.sinh(1) * t + np.cosh(1)) - 1
    np.testing.assert_allclose(p @ q.T, ref, atol=1e-5)
    exact = 2 * np.exp(-((xd[:, None] - xd[None]) ** 2).sum(-1) / 2) - 1
    assert np.abs(p @ q.T - exact).max() < 1.1  # chord of e^t on [-1, 1]: error <= 2 (cosh 1 - 1)


def test_sgh_first_bit_solves_generalized_eigenproblem():
    k = rng_data(17, 50, 6)
    x = rng_data(18, 50, 3) / 3
    p, q = sgh.transform(jnp.asarray(x), 2.0)
    w = np.asarray(sgh.sequential_learning(jnp.asarray(k), p, q, jnp.arange(1), bits=1, refine=0), np.float64)
    kd, pd, qd = np.asarray(k, np.float64), np.asarray(p, np.float64), np.asarray(q, np.float64)
    a = (kd.T @ pd) @ (kd.T @ qd).T
    zmat = kd.T @ kd + 1e-6 * np.eye(6)
    top = scipy.linalg.eigh((a + a.T) / 2, zmat, eigvals_only=True)[-1]
    assert (w[:, 0] @ a @ w[:, 0]) / (w[:, 0] @ zmat @ w[:, 0]) == pytest.approx(top, rel=1e-3)


# ------------------------------------------------------------------ DGH
def test_dgh_y_step_optimal_and_objective_non_decreasing():
    b = np.sign(rng_data(19, 40, 3)).astype(np.float32)
    y = np.asarray(dgh.y_step(jnp.asarray(b)), np.float64)
    n = len(b)
    np.testing.assert_allclose(y.T @ y, n * np.eye(3), atol=1e-3)
    np.testing.assert_allclose(y.sum(0), 0, atol=1e-3)
    jb = b - b.mean(0)
    assert np.sum(b * y) == pytest.approx(np.sqrt(n) * np.linalg.svd(jb, compute_uv=False).sum(), rel=1e-4)
    h = dgh.fit(rng_data(20, 150, 5), bits=4, key=jax.random.key(0), anchors=20, outer=6)
    hist = np.asarray(h.info["objective"])
    assert np.all(np.diff(hist) >= -1e-4 * abs(hist[0]))


def test_dgh_b_step_never_decreases_objective():
    x = rng_data(21, 30, 3)
    z, _ = common.anchor_graph(jnp.asarray(x), jnp.asarray(rng_data(22, 6, 3)), 2)
    lam_inv = 1 / jnp.sum(z, 0)
    y = dgh.y_step(jnp.asarray(np.sign(rng_data(23, 30, 2))))
    for seed in range(5):
        b = jnp.asarray(np.sign(rng_data(24 + seed, 30, 2)))
        f0 = float(dgh.objective(z, lam_inv, b, y, 0.7))
        assert float(dgh.objective(z, lam_inv, dgh.b_step(z, lam_inv, b, y, 0.7), y, 0.7)) >= f0 - 1e-4


# ------------------------------------------------------------------ FTH
def _tiny_triplets():
    labels = np.array([0, 0, 1, 1, 2, 0, 1])
    trip = np.array([[0, 1, 2], [1, 5, 3], [2, 3, 4], [3, 6, 0], [5, 0, 6], [6, 2, 1], [4, 4, 0]])
    valid = np.array([True] * 6 + [False])
    return labels, jnp.asarray(trip, jnp.int32), jnp.asarray(valid)


@pytest.mark.parametrize("r", [0, 2])
def test_fth_bit_bqp_equals_triplet_loss_by_enumeration(r):
    _, trip, valid = _tiny_triplets()
    b = np.sign(rng_data(30, 7, 3)).astype(np.float32)
    a = np.asarray(fth.bqp_matrix(7, trip, fth.bit_coefficients(jnp.asarray(b), trip, valid, r, 1.0)))
    np.testing.assert_allclose(a, a.T)
    assert np.all(np.diag(a) == 0)
    gaps = []
    for z in itertools.product([-1.0, 1.0], repeat=7):
        bz = b.copy()
        bz[:, r] = z
        # reference triplet loss by a plain loop
        loss = sum(max(0.0, 1.0 + np.sum(bz[i] != bz[j]) - np.sum(bz[i] != bz[k]))
                   for (i, j, k), ok in zip(np.asarray(trip), np.asarray(valid)) if ok)
        gaps.append(loss - np.asarray(z) @ a @ np.asarray(z))
    np.testing.assert_allclose(gaps, gaps[0], atol=1e-4)


def test_fth_bqp_solver_reaches_one_flip_local_minimum():
    for seed in range(4):
        m = rng_data(40 + seed, 9, 9)
        a = (m + m.T) / 2
        np.fill_diagonal(a, 0)
        z0 = np.sign(rng_data(50 + seed, 9, 1))[:, 0]
        z = np.asarray(fth.solve_bqp(jnp.asarray(a), jnp.asarray(z0)))
        f = z @ a @ z
        assert f <= z0 @ a @ z0 + 1e-5
        for i in range(9):  # no single flip improves
            zf = z.copy()
            zf[i] = -zf[i]
            assert zf @ a @ zf >= f - 1e-4
        best = min(np.array(c) @ a @ np.array(c) for c in itertools.product([-1, 1], repeat=9))
        assert f >= best - 1e-4


def test_fth_triplet_loss_non_increasing():
    x = rng_data(60, 60, 5)
    labels = np.repeat(np.arange(3), 20)
    h = fth.fit(x, labels, bits=3, key=jax.random.key(0), anchors=20, triplets_per_point=10)
    hist = np.asarray(h.info["objective"])
    assert hist[0] <= float(h.info["initial_objective"]) + 1e-4
    assert np.all(np.diff(hist) <= 1e-4)


# ------------------------------------------------------------------ Hasher, jit
def test_encode_under_jit_and_host_agree():
    x = rng_data(70, 100, 6)
    h = shallow.get_method("itq")(x, bits=4, key=jax.random.key(1))
    host = h.encode(x, batch_size=32)  # several padded batches
    traced = np.asarray(jax.jit(h.encode)(jnp.asarray(x)))
    np.testing.assert_array_equal(host, traced)
    assert host.dtype == np.int8 and set(np.unique(host)) <= {-1, 1}


# ------------------------------------------------------------------ errors
def test_errors_name_the_argument():
    x = rng_data(80, 20, 4)
    fit = shallow.get_method("fth")
    with pytest.raises(ValueError, match="bits"):
        shallow.get_method("lsh")(x, bits=0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="bits"):
        shallow.get_method("itq")(x, bits=True, key=jax.random.key(0))
    with pytest.raises(ValueError, match="labels has 19 rows"):
        fit(x, np.zeros(19, int), bits=4, key=jax.random.key(0))
    with pytest.raises(ValueError, match="labels are required"):
        fit(x, None, bits=4, key=jax.random.key(0))
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="features contains NaN"):
        shallow.get_method("pcah")(bad, bits=2)
    with pytest.raises(ValueError, match="features must be a 2-D"):
        shallow.get_method("pcah")(x[0], bits=2)
    with pytest.raises(ValueError, match="more than the feature dimension"):
        shallow.get_method("itq")(x, bits=5, key=jax.random.key(0))
    h = shallow.get_method("pcah")(x, bits=2)
    with pytest.raises(ValueError, match="features has 3 columns"):
        h.encode(x[:, :3])
    with pytest.raises(ValueError, match="unknown shallow hashing method"):
        shallow.get_method("nope")


def test_sdh_objective_never_increases_and_its_steps_are_exact():
    from jhash.shallow import sdh
    from jhash.solvers import ridge_regression

    rng = np.random.default_rng(3)
    x = rng.normal(size=(120, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32) + 2 * (x[:, 1] > 0).astype(np.int32)
    h = sdh.fit(x, y, bits=8, key=jax.random.key(1), anchors=30, outer_iterations=6)
    hist = np.asarray(h.info["objective"])
    assert np.all(np.diff(hist) <= 1e-3 * np.abs(hist[:-1])), hist
    # the G-step is the ridge solution: its gradient vanishes (NumPy normal equations)
    b = np.asarray(h.info["train_codes"], np.float64)
    yy = np.eye(4)[y]
    w = np.asarray(ridge_regression(jnp.asarray(b, jnp.float32), jnp.asarray(yy, jnp.float32), lam=1.0), np.float64)
    np.testing.assert_allclose(w, np.linalg.solve(b.T @ b + np.eye(8), b.T @ yy), rtol=1e-3, atol=1e-4)
    # the final hash functions reproduce most training codes, and codes of one class are close
    codes = h.encode(x)
    assert np.mean(codes == h.info["train_codes"]) > 0.8
    with pytest.raises(ValueError, match="anchors"):
        sdh.fit(x, y, bits=8, key=jax.random.key(1), anchors=500)


def test_ksh_spectral_direction_and_greedy_bits():
    from jhash.shallow import ksh

    rng = np.random.default_rng(4)
    kbar = rng.normal(size=(40, 6))
    y = rng.integers(0, 3, 40)
    r = np.where(y[:, None] == y[None, :], 1.0, -1.0) * 8
    a = np.asarray(ksh.spectral_direction(jnp.asarray(kbar, jnp.float32), jnp.asarray(r, jnp.float32)), np.float64)
    # the leading eigenvector of the generalised problem by scipy
    w, v = scipy.linalg.eigh(kbar.T @ r @ kbar, kbar.T @ kbar)
    cos = abs(a @ (kbar.T @ kbar) @ v[:, -1]) / np.sqrt((a @ kbar.T @ kbar @ a) * (v[:, -1] @ kbar.T @ kbar @ v[:, -1]))
    assert cos > 0.999
    # a greedy bit is never worse (in b^T R b) than the spectral start
    a1, _ = ksh.fit_bit(jnp.asarray(kbar, jnp.float32), jnp.asarray(r, jnp.float32), max_iterations=50)
    a1 = np.asarray(a1)
    gain = lambda a: (lambda b: b @ r @ b)(np.where(kbar @ a >= 0, 1.0, -1.0))
    assert gain(a1) >= gain(a) - 1e-6
    x = rng.normal(size=(150, 5)).astype(np.float32)
    labels = (x[:, 0] > 0).astype(np.int32)
    h = ksh.fit(x, labels, bits=6, key=jax.random.key(0), anchors=20, max_iterations=50)
    loss = np.asarray(h.info["objective"])
    assert loss[-1] < loss[0]  # the codes fit r S better than no code


def test_ksh_whitening_once_gives_the_bits_of_whitening_per_bit():
    """greedy_bits computes Kbar^T Kbar's whitening once for all bits; its projections are the same
    bytes as a greedy loop that whitens again for every bit (fit_bit without ``w_mat``)."""
    from jhash.codes import sign
    from jhash.shallow import ksh

    rng = np.random.default_rng(11)
    kbar = jnp.asarray(rng.normal(size=(80, 12)), jnp.float32)
    y = rng.integers(0, 4, 80)
    s = jnp.asarray(np.where(y[:, None] == y[None, :], 1.0, -1.0), jnp.float32)
    bits = 5

    def per_bit(kbar, s):
        def body(residual, _):
            a, _ = ksh.fit_bit(kbar, residual, max_iterations=50)
            b = sign(jnp.matmul(kbar, a, precision=jax.lax.Precision.HIGHEST)).astype(kbar.dtype)
            return residual - jnp.outer(b, b), a
        return jax.lax.scan(body, bits * s, None, length=bits)[1].T

    want = np.asarray(jax.jit(per_bit)(kbar, s))
    got = np.asarray(jax.jit(lambda k, s: ksh.greedy_bits(k, s, bits, max_iterations=50))(kbar, s)[0])
    assert got.tobytes() == want.tobytes()


def test_ksh_spectral_direction_with_collinear_kernel_features():
    """Rank-deficient Kbar (duplicated and nearly equal columns, as wide RBF kernels give): a finite
    direction that attains scipy's leading generalised eigenvalue on the independent columns."""
    from jhash.shallow import ksh

    rng = np.random.default_rng(7)
    base = rng.normal(size=(60, 5))
    kbar = np.concatenate([base, base[:, :2], base[:, :1] + 1e-9 * rng.normal(size=(60, 1))], axis=1)
    y = rng.integers(0, 3, 60)
    r = np.where(y[:, None] == y[None, :], 1.0, -1.0) * 8
    a = np.asarray(ksh.spectral_direction(jnp.asarray(kbar, jnp.float32), jnp.asarray(r, jnp.float32)), np.float64)
    assert np.all(np.isfinite(a))
    f = kbar @ a
    w, _ = scipy.linalg.eigh(base.T @ r @ base, base.T @ base)
    assert (f @ r @ f) / (f @ f) == pytest.approx(w[-1], rel=1e-3)


def test_cosdish_omega_step_never_increases_and_gamma_step_is_the_sign_rule():
    from jhash.shallow import cosdish

    rng = np.random.default_rng(5)
    x = rng.normal(size=(90, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32) + 2 * (x[:, 2] > 0).astype(np.int32)
    h = cosdish.fit(x, y, bits=6, key=jax.random.key(2), num_samples=30, iterations=4, anchors=20)
    hist = h.info["omega_step_objective"]
    assert np.all(hist[:, 1] <= hist[:, 0] + 1e-3)  # the Omega step (block coordinate descent) never increases it
    # the rescaled columns: 1 for similar pairs, -r for dissimilar ones (NumPy)
    omega = np.array([3, 10, 50])
    s = np.asarray(cosdish.rescaled_columns(jnp.asarray(np.eye(4, dtype=np.float32)[y]), jnp.asarray(omega)))
    sim = (y[:, None] == y[omega][None, :]).astype(float)
    r = sim.sum() / (1 - sim).sum()
    np.testing.assert_allclose(s, np.where(sim > 0, 1.0, -r), rtol=1e-6)
    codes = h.info["train_codes"]
    same = y[:, None] == y[None, :]
    ip = codes.astype(float) @ codes.T.astype(float)
    assert ip[same].mean() > ip[~same].mean() + 2  # codes of a class are closer than across classes


def test_lfh_row_updates_never_decrease_the_likelihood():
    from jhash.shallow import lfh

    rng = np.random.default_rng(6)
    x = rng.normal(size=(80, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32) + 2 * (x[:, 3] > 0).astype(np.int32)
    h = lfh.fit(x, y, bits=6, key=jax.random.key(3), sweeps=6)
    ll = h.info["log_likelihood"]
    assert np.all(np.diff(ll) >= -1e-3 * np.abs(ll[:-1])) and ll[-1] > ll[0], ll
    # the objective against a NumPy double loop
    u = rng.normal(size=(7, 3))
    s = (rng.random((7, 7)) < 0.4).astype(float)
    want = sum(s[i, j] * 0.5 * u[i] @ u[j] - np.log1p(np.exp(0.5 * u[i] @ u[j]))
               for i in range(7) for j in range(7) if i != j) - np.sum(u ** 2) / 4.0
    got = lfh.log_likelihood(jnp.asarray(u, jnp.float32), jnp.asarray(s, jnp.float32), beta=2.0)
    np.testing.assert_allclose(float(got), want, rtol=1e-5)
    # stochastic learning over sampled columns runs and gives class-structured codes
    h2 = lfh.fit(x, y, bits=6, key=jax.random.key(3), sweeps=4, num_samples=20)
    codes = h2.info["train_codes"].astype(float)
    same = y[:, None] == y[None, :]
    assert (codes @ codes.T)[same].mean() > (codes @ codes.T)[~same].mean() + 1


def test_fsdh_steps_are_exact_and_the_objective_never_increases():
    from jhash.shallow import fsdh

    rng = np.random.default_rng(7)
    x = rng.normal(size=(100, 6)).astype(np.float32)
    y = (x[:, 1] > 0).astype(np.int32) + 2 * (x[:, 4] > 0).astype(np.int32)
    h = fsdh.fit(x, y, bits=8, key=jax.random.key(4), anchors=25, outer_iterations=5, nu=0.5)
    hist = np.asarray(h.info["objective"])
    assert np.all(np.diff(hist) <= 1e-4 * np.abs(hist[:-1])), hist
    # the objective's value against a NumPy formula, for random parameters
    b = np.where(rng.random((100, 8)) < 0.5, -1.0, 1.0)
    w, p, c = rng.normal(size=(4, 8)), rng.normal(size=(25, 8)), rng.normal(size=8)
    phi, yy = rng.random((100, 25)), np.eye(4)[y]
    want = (np.sum((b - yy @ w) ** 2) + 1.0 * np.sum(w ** 2)
            + 0.5 * (np.sum((b - phi @ p - c) ** 2) + 0.01 * np.sum(p ** 2)))
    got = fsdh.objective(*(jnp.asarray(a, jnp.float32) for a in (b, w, p, c, yy, phi)), lam=1.0, nu=0.5, delta=0.01)
    np.testing.assert_allclose(float(got), want, rtol=1e-4)
    with pytest.raises(ValueError, match="outer_iterations"):
        fsdh.fit(x, y, bits=8, key=jax.random.key(4), anchors=25, outer_iterations=0)
