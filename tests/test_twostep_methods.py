"""The deep two-step methods CNNH, FTDSH and HBMP: their stage-1 code inference against independent
NumPy references (exact 1-D objectives, exhaustive enumeration of one bit column, least squares),
monotonicity, jit without recompilation, and end to end on digits (mAP above random codes)."""
import itertools
import pathlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import random_code_map

from jhash.config import apply_overrides, load_config
from jhash.run import restore_run
from jhash.methods import ftdsh
from jhash.metrics import mean_average_precision
from jhash.shallow.common import sample_triplets
from jhash.solvers import cnnh as cnnh_solver
from jhash.solvers import hbmp as hbmp_solver
from jhash.train import train
from jhash.train.trainer import read_config

REPO = pathlib.Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(20261129)
# one compilation per shape (eager calls of a lax loop would compile on every call)
pursuit = jax.jit(hbmp_solver.binary_matrix_pursuit, static_argnames=("bits", "weighted", "regress", "max_redraws"))
triplets_of = jax.jit(sample_triplets, static_argnums=2)


def all_columns(n):
    return np.array(list(itertools.product([-1.0, 1.0], repeat=n)))


def similarity(labels):
    return np.where(labels[:, None] == labels[None, :], 1.0, -1.0)


# ------------------------------------------------------------------ CNNH: Newton coordinate descent

def np_cnnh_objective(h, s):
    h, s = np.asarray(h, np.float64), np.asarray(s, np.float64)
    return np.sum((s - h @ h.T / h.shape[1]) ** 2)


def test_cnnh_objective_equals_numpy():
    h = RNG.uniform(-1, 1, (9, 3)).astype(np.float32)
    s = similarity(RNG.integers(0, 3, 9)).astype(np.float32)
    np.testing.assert_allclose(float(cnnh_solver.cnnh_objective(jnp.asarray(h), jnp.asarray(s))),
                               np_cnnh_objective(h, s), rtol=1e-5)


@pytest.mark.parametrize("n,q", [(6, 2), (10, 4)])
def test_cnnh_entry_step_is_the_projected_newton_step_and_never_increases(n, q):
    """Each entry step against the exact 1-D objective in float64: its change is the true change,
    never an increase; when taken it is the projected Newton step of the derivatives measured
    by finite differences of the NumPy objective."""
    step_fn = jax.jit(lambda h, hth, sh_t, sd, i, j: cnnh_solver.newton_entry_step(h, hth, sh_t, sd, i, j))
    taken = 0
    for trial in range(12):
        h = RNG.uniform(-1, 1, (n, q))
        s = similarity(RNG.integers(0, 3, n))
        i, j = int(RNG.integers(n)), int(RNG.integers(q))
        h32, s32 = jnp.asarray(h, jnp.float32), jnp.asarray(s, jnp.float32)
        step, change = step_fn(h32, h32.T @ h32, (s32 @ h32).T, jnp.diagonal(s32), i, j)
        step, change = float(step), float(change)

        def g(d):
            trial_h = h.copy()
            trial_h[i, j] += d
            return np_cnnh_objective(trial_h, s) * q * q     # ||H H^T - q S||^2

        np.testing.assert_allclose(change, g(step) - g(0.0), rtol=1e-3, atol=1e-3)
        assert g(step) <= g(0.0) + 1e-6
        assert -1 - 1e-6 <= h[i, j] + step <= 1 + 1e-6
        if step != 0.0:
            taken += 1
            eps = 1e-4
            g1 = (g(eps) - g(-eps)) / (2 * eps)
            g2 = (g(eps) - 2 * g(0.0) + g(-eps)) / eps ** 2
            expected = np.clip(-g1 / g2, -1 - h[i, j], 1 - h[i, j]) if g2 > 0 else step
            np.testing.assert_allclose(step, expected, rtol=1e-3, atol=1e-4)
    assert taken >= 6


def test_cnnh_sweeps_never_increase_the_objective_jitted_and_vmapped():
    n, q, problems = 12, 4, 6
    s = np.stack([similarity(RNG.integers(0, 3, n)) for _ in range(problems)]).astype(np.float32)
    h0 = RNG.uniform(-1, 1, (problems, n, q)).astype(np.float32)
    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def run(h0, s, key):
        return jax.vmap(lambda h, s: cnnh_solver.cnnh_coordinate_descent(h, s, key=key, sweeps=4))(h0, s)

    h, hist = run(h0, s, jax.random.PRNGKey(0))
    run(h0[::-1].copy(), s, jax.random.PRNGKey(1))            # new data and key: no retrace
    h, hist = np.asarray(h), np.asarray(hist)
    start = np.array([np_cnnh_objective(a, b) for a, b in zip(h0, s)])
    values = np.concatenate([start[:, None], hist], axis=1)
    assert np.all(np.diff(values, axis=1) <= 1e-4 * values[:, :1])
    assert np.all(values[:, -1] < values[:, 0])
    np.testing.assert_allclose(hist[:, -1], [np_cnnh_objective(a, b) for a, b in zip(h, s)], rtol=1e-4)
    assert np.all(np.abs(h) <= 1 + 1e-6)


def test_cnnh_codes_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="s must be a 2-D array"):
        cnnh_solver.cnnh_codes(jnp.ones((3,)), bits=2, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="s must have 4 rows"):
        cnnh_solver.cnnh_coordinate_descent(jnp.ones((4, 2)), jnp.ones((3, 3)), key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="bits must be a positive integer"):
        cnnh_solver.cnnh_codes(jnp.ones((3, 3)), bits=0, key=jax.random.PRNGKey(0))


# ------------------------------------------------------------------ HBMP: binary matrix pursuit

def random_affinity(c):
    a = RNG.random((c, c)) < 0.3
    a = a | a.T | np.eye(c, dtype=bool)
    return a.astype(np.float32)


def np_residual(affinity, codes, weights):
    t = 2.0 * np.asarray(affinity, np.float64) - 1
    x = (np.asarray(codes, np.float64) * weights) @ np.asarray(codes, np.float64).T
    return np.linalg.norm((t - x) * (1 - np.eye(len(t))))


def test_hbmp_first_bit_is_the_binarised_leading_eigenvector_and_its_step():
    c = 9
    for _ in range(4):
        aff = random_affinity(c)
        codes, w, _ = pursuit(jnp.asarray(aff), bits=3, key=jax.random.PRNGKey(0),
                                                        weighted=True, regress=False)
        r = (2.0 * aff - 1) * (1 - np.eye(c))
        vals, vecs = np.linalg.eigh(r.astype(np.float64))
        y = np.where(vecs[:, -1] > 0, 1.0, -1.0)
        if y @ r @ y < 0:
            continue                      # the authors redraw such a column at random
        y0 = np.asarray(codes)[:, 0]
        assert np.array_equal(y0, y) or np.array_equal(y0, -y)    # an eigenvector's sign is arbitrary
        np.testing.assert_allclose(float(w[0]), (y @ r @ y) / (np.linalg.norm(r) * c * c), rtol=1e-5)


@pytest.mark.parametrize("c", [5, 10])
def test_hbmp_bit_column_against_exhaustive_enumeration(c):
    """The spectral step is a relaxation of max_y y^T R y over one bit column: by enumeration of
    all 2^c columns, y^T R y <= max <= c lambda_max, and the step lowers ||R|| exactly as
    ||R - w y y^T||^2 = ||R||^2 - 2 w y^T R y + w^2 (c^2 - c) says."""
    for _ in range(3):
        aff = random_affinity(c)
        codes, w, hist = pursuit(jnp.asarray(aff), bits=2, key=jax.random.PRNGKey(3),
                                                           weighted=True, regress=False)
        codes, w = np.asarray(codes, np.float64), np.asarray(w, np.float64)
        r = (2.0 * aff - 1) * (1 - np.eye(c)) - (codes[:, :1] * w[0]) @ codes[:, :1].T * (1 - np.eye(c))
        y = codes[:, 1]
        cols = all_columns(c)
        best = np.max(np.einsum("ki,ij,kj->k", cols, r, cols))
        assert y @ r @ y <= best + 1e-5
        assert best <= c * np.linalg.eigvalsh(r)[-1] + 1e-5
        assert y @ r @ y >= 0
        before = np.linalg.norm(r)
        expected = np.sqrt(before ** 2 - 2 * w[1] * (y @ r @ y) + w[1] ** 2 * (c * c - c))
        np.testing.assert_allclose(float(hist[1]), expected, rtol=1e-4)


@pytest.mark.parametrize("regress", [False, True])
def test_hbmp_weighted_residual_never_increases_and_regressed_weights_are_least_squares(regress):
    c, bits = 12, 6
    def run(a, k):
        return pursuit(a, bits=bits, key=k, weighted=True, regress=regress)
    for seed in range(4):
        aff = random_affinity(c)
        codes, w, hist = (np.asarray(x, np.float64) for x in run(jnp.asarray(aff), jax.random.PRNGKey(seed)))
        assert set(np.unique(codes)) <= {-1.0, 1.0}
        start = np.linalg.norm((2.0 * aff - 1) * (1 - np.eye(c)))
        assert np.all(np.diff(np.concatenate([[start], hist])) <= 1e-4)
        np.testing.assert_allclose(hist[-1], np_residual(aff, codes, w), rtol=1e-4)
        if regress:  # never worse than the least-squares weights of the final codes
            mask = ~np.eye(c, dtype=bool)
            feats = np.stack([np.outer(b, b)[mask] for b in codes.T], axis=1)
            w_ls = np.linalg.lstsq(feats, (2.0 * aff - 1)[mask], rcond=None)[0]
            assert hist[-1] <= np_residual(aff, codes, w_ls) * (1 + 1e-4) + 1e-5


def test_hbmp_constant_variant_and_label_affinity():
    from jhash.methods.hbmp import label_affinity

    aff, inverse = label_affinity(np.array([2, 0, 2, 1]))
    np.testing.assert_array_equal(aff, np.eye(3))
    np.testing.assert_array_equal(inverse, [2, 0, 2, 1])
    aff, inverse = label_affinity(np.array([[1, 0], [1, 1], [1, 0]]))
    np.testing.assert_array_equal(aff, np.ones((2, 2)))
    np.testing.assert_array_equal(inverse, [0, 1, 0])
    codes, w, _ = pursuit(jnp.eye(4), bits=6, key=jax.random.PRNGKey(0), weighted=False)
    codes = np.asarray(codes)
    np.testing.assert_array_equal(np.asarray(w), np.ones(6))
    assert len({tuple(r) for r in codes}) == 4          # every class its own code
    with pytest.raises(ValueError, match="affinity must be square"):
        hbmp_solver.binary_matrix_pursuit(jnp.ones((3, 4)), bits=2, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="train_labels must be class ids"):
        label_affinity(np.zeros((2, 2, 2)))


# ------------------------------------------------------------------ FTDSH: group-wise triplet BQPs

def np_bit_loss(b, triplets, valid, r):
    """The authors' loss for bit r: sum over triplets of max(0, (r + 1) / 2 - (D_neg - D_pos)),
    Hamming distances over bits 0..r."""
    total = 0.0
    for (i, j, k), ok in zip(triplets, valid):
        if not ok:
            continue
        d_pos = np.sum(b[i, :r + 1] != b[j, :r + 1])
        d_neg = np.sum(b[i, :r + 1] != b[k, :r + 1])
        total += max(0.0, (r + 1) / 2 - (d_neg - d_pos))
    return total


def small_triplet_problem(n=8, q=4, per_point=4, seed=0):
    labels = jnp.asarray(RNG.integers(0, 3, n))
    trip, valid = triplets_of(jax.random.PRNGKey(seed), labels, per_point * n)
    return np.asarray(trip), np.asarray(valid)


@pytest.mark.parametrize("r", [0, 2])
def test_ftdsh_bit_bqp_equals_the_authors_loss_by_enumeration(r):
    from jhash.shallow import fth

    n, q = 8, 4
    trip, valid = small_triplet_problem(n, q)
    b = np.where(RNG.random((n, q)) < 0.5, -1.0, 1.0)
    b[:, r + 1:] = 1.0                                    # later bits not inferred yet
    matrix = jax.jit(lambda b, t, v: fth.bqp_matrix(n, t, fth.bit_coefficients(b, t, v, r, (r + 1) / 2)))
    a = np.asarray(matrix(jnp.asarray(b, jnp.float32), jnp.asarray(trip), jnp.asarray(valid)), np.float64)
    gaps = []
    for z in all_columns(n):
        trial = b.copy()
        trial[:, r] = z
        gaps.append(np_bit_loss(trial, trip, valid, r) - z @ a @ z)
    np.testing.assert_allclose(gaps, gaps[0], atol=1e-4)   # z^T A z is the loss up to a constant


def test_ftdsh_inferred_bits_never_worse_than_all_ones_and_one_flip_minimal():
    n, q = 10, 4
    trip, valid = small_triplet_problem(n, q, per_point=5, seed=1)
    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def run(b, first, key):
        return ftdsh.infer_bits(b, jnp.asarray(trip), jnp.asarray(valid), first, 2, key=key, restarts=2)

    prev = np.where(RNG.random((n, q)) < 0.5, -1.0, 1.0)
    prev[:, 2:] = 1.0
    b, before, after = run(jnp.asarray(prev, jnp.float32), 2, jax.random.PRNGKey(0))   # bits 2, 3
    run(jnp.asarray(prev, jnp.float32), 0, jax.random.PRNGKey(1))                       # no retrace
    b = np.asarray(b, np.float64)
    np.testing.assert_array_equal(b[:, :2], prev[:, :2])
    for l, r in enumerate((2, 3)):
        part = b.copy()
        part[:, r + 1:] = 1.0
        ones = part.copy()
        ones[:, r] = 1.0
        assert np.isclose(float(before[l]), np_bit_loss(ones, trip, valid, r))
        value = np_bit_loss(part, trip, valid, r)
        assert np.isclose(float(after[l]), value) and value <= np_bit_loss(ones, trip, valid, r)
        for i in range(n):                                  # no single flip of bit r lowers its loss
            flipped = part.copy()
            flipped[i, r] *= -1
            assert np_bit_loss(flipped, trip, valid, r) >= value - 1e-9


# ------------------------------------------------------------------ end to end on digits

EXTRA = {
    "cnnh": ["cnnh.sweeps=2"],
    "ftdsh": ["ftdsh.triplets_per_point=10", "ftdsh.restarts=1"],
    "hbmp": [],
}


def digits_config(method, *overrides):
    c = load_config(str(REPO / f"experiments/configs/{method}.py") + ":dataset=digits,bits=16")
    return apply_overrides(c, ["model.hidden=(64,)", "num_epochs=20", "checkpoint_every=140", "log_every=35",
                               "progress=false", "num_devices=1", *EXTRA[method], *overrides])




@pytest.mark.parametrize("method", ["cnnh", "ftdsh", "hbmp"])
def test_two_step_method_learns_on_digits_and_keeps_its_stage_one_in_the_state(method, tmp_path):
    results = train(digits_config(method), tmp_path)
    baseline = random_code_map(tmp_path)
    assert baseline < 0.15
    assert results["map@all"] > baseline + 0.2, (method, results["map@all"], baseline)
    assert results["distinct_db_codes"] > 50
    _, state, data = restore_run(read_config(tmp_path), tmp_path)
    ms = jax.device_get(state.method_state)
    codes, labels = np.asarray(ms["codes"]), np.asarray(data.y_train)
    assert set(np.unique(codes)) <= {-1.0, 1.0}
    assert mean_average_precision(codes, codes, labels, labels) > 0.8   # the stage-1 targets fit the labels
    if method == "cnnh":
        assert np.all(np.diff(ms["objective"]) <= 1e-6)
    if method == "ftdsh":
        assert np.all(ms["loss_after"] <= ms["loss_before"] + 1e-3)
    if method == "hbmp":  # every item of a class has its class's code
        for y in np.unique(labels):
            assert len({tuple(r) for r in codes[labels == y]}) == 1
