"""Online and incremental hashing (jhash.online): reservoir, MI trigger, re-encoding counts, DIHN, stages on digits."""
import itertools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jhash.config import experiment_config, load_config
from jhash.methods.base import hyperparameters, objective
from jhash.losses import mutual_information
from jhash.methods.adsh import rescaled_similarity
from jhash.online import class_stages, dihn, load_stage_data, mihash, stage_map


# ------------------------------------------------------------------------------ reservoir
def _offer(xs_ids, draws, capacity):
    """Offers items whose features are their ids; returns the reservoir."""
    n = len(xs_ids)
    res = mihash.reservoir_init(capacity, 1, 4)
    return mihash._offer_all(res, jnp.asarray(xs_ids, jnp.float32)[:, None], jnp.zeros(n, jnp.int32),
                             jnp.asarray(draws, jnp.float32), jnp.ones((1, 4), jnp.float32))


@pytest.mark.parametrize("n,capacity", [(37, 8), (5, 8), (8, 8), (1, 3)])
def test_reservoir_holds_the_items_with_the_smallest_keys(n, capacity):
    draws = np.random.default_rng(n).random(n).astype(np.float32)
    res = _offer(np.arange(n), draws, capacity)
    size = int(res.size)
    assert size == min(n, capacity)
    held = np.asarray(res.x[:size, 0]).astype(int)
    np.testing.assert_array_equal(np.sort(held), np.sort(np.argsort(draws, kind="stable")[:size]))
    np.testing.assert_array_equal(np.asarray(res.keys[:size]), draws[held])
    assert np.all(np.isneginf(np.asarray(res.keys[size:])))


def test_reservoir_is_a_uniform_sample_without_replacement():
    n, capacity, trials = 12, 4, 4000
    draws = jax.random.uniform(jax.random.PRNGKey(0), (trials, n))
    held = jax.vmap(lambda d: _offer(np.arange(n), d, capacity).x[:, 0])(draws)
    held = np.asarray(held).astype(int)
    assert all(len(set(row)) == capacity for row in held)  # no item twice
    freq = np.bincount(held.ravel(), minlength=n) / trials
    p = capacity / n
    assert np.all(np.abs(freq - p) < 4.5 * np.sqrt(p * (1 - p) / trials)), freq
    # every pair of items equally likely to be held together: C(n-2, c-2) / C(n, c)
    pair = np.zeros((n, n))
    for row in held:
        for a, b in itertools.combinations(row, 2):
            pair[a, b] += 1
            pair[b, a] += 1
    p2 = capacity * (capacity - 1) / (n * (n - 1))
    off = pair[~np.eye(n, dtype=bool)] / trials
    assert np.all(np.abs(off - p2) < 4.5 * np.sqrt(p2 * (1 - p2) / trials))


# --------------------------------------------------------------------- mutual information
def _mi_numpy(phi_q, phi_db, sim, weight, num_bins):
    """Per-query MI by explicit loops over pairs and bins (triangular kernel, base 2)."""
    q = phi_q.shape[1]
    width = q / num_bins
    out = []
    for i in range(len(phi_q)):
        cp, cn = np.zeros(num_bins + 1), np.zeros(num_bins + 1)
        for j in range(len(phi_db)):
            if weight[i, j] == 0:
                continue
            d = (q - phi_q[i] @ phi_db[j]) / 2
            for b in range(num_bins + 1):
                k = max(0.0, 1 - abs(d - b * width) / width) * weight[i, j]
                (cp if sim[i, j] else cn)[b] += k
        npos = sum(weight[i, j] for j in range(len(phi_db)) if sim[i, j])
        nneg = sum(weight[i, j] for j in range(len(phi_db)) if not sim[i, j])

        def h(p):
            p = p[p > 0]
            return -np.sum(p * np.log2(p))

        tot = npos + nneg
        value = h((cp + cn) / tot)
        if npos:
            value -= npos / tot * h(cp / npos)
        if nneg:
            value -= nneg / tot * h(cn / nneg)
        out.append(value)
    return np.array(out)


def test_masked_mutual_information_matches_a_numpy_loop_and_the_batch_loss():
    rng = np.random.default_rng(1)
    phi_q, phi_db = rng.uniform(-1, 1, (3, 8)), rng.uniform(-1, 1, (9, 8))
    sim = rng.random((3, 9)) < 0.4
    weight = (rng.random((3, 9)) < 0.8).astype(float)
    got = mihash.masked_mutual_information(jnp.asarray(phi_q, jnp.float32), jnp.asarray(phi_db, jnp.float32),
                                           jnp.asarray(sim, jnp.float32), jnp.asarray(weight, jnp.float32),
                                           num_bins=4)
    np.testing.assert_allclose(np.asarray(got), _mi_numpy(phi_q, phi_db, sim, weight, 4), atol=1e-5)
    # every item a query against the others = the batch form in jhash.losses
    labels = rng.integers(0, 3, 9)
    phi = jnp.asarray(phi_db, jnp.float32)
    batch = mutual_information(phi, jnp.asarray(labels), num_bins=4)
    same = jnp.asarray(labels[:, None] == labels[None, :], jnp.float32)
    np.testing.assert_allclose(np.asarray(mihash.masked_mutual_information(phi, phi, same, 1 - jnp.eye(9), num_bins=4)),
                               np.asarray(batch), atol=1e-5)


def _reservoir_mi_numpy(codes, labels, size):
    """The trigger's MI from integer Hamming-distance counts (np.bincount), self pairs left out."""
    codes, labels = np.asarray(codes)[:size], np.asarray(labels)[:size]
    q = codes.shape[1]
    dist = ((q - codes @ codes.T) / 2).round().astype(int)
    values = []
    for i in range(size):
        others = np.arange(size) != i
        pos, neg = others & (labels == labels[i]), others & (labels != labels[i])
        cp, cn = np.bincount(dist[i, pos], minlength=q + 1), np.bincount(dist[i, neg], minlength=q + 1)

        def h(c):
            p = c[c > 0] / c.sum()
            return -np.sum(p * np.log2(p)) if c.sum() else 0.0

        tot = pos.sum() + neg.sum()
        values.append(h(cp + cn) - pos.sum() / tot * h(cp) - neg.sum() / tot * h(cn))
    return float(np.mean(values))


@pytest.fixture(scope="module")
def digits_stages():
    return load_stage_data("digits", first=5, per_stage=5)


@pytest.fixture(scope="module")
def digits_features(digits_stages):
    x = mihash.prepare_features(digits_stages.x_train, digits_stages.x_train.mean(axis=0))
    return x, np.asarray(digits_stages.y_train, np.int32)


def test_trigger_fires_exactly_when_the_reservoir_mi_gain_passes_the_threshold(digits_features):
    x, y = digits_features
    hp = {**mihash.defaults(), "reservoir_size": 60}
    start = mihash.init_learner(np.random.default_rng(0), x, y, hp, 16)
    order = np.random.default_rng(1).permutation(len(x))[:100]
    draws = jnp.asarray(np.random.default_rng(2).random(100), jnp.float32)
    xs, ys = jnp.asarray(x[order]), jnp.asarray(y[order])
    never, fire, gain = mihash.make_stream_chunk({**hp, "trigger_threshold": np.inf})(start, xs, ys, draws)
    assert not bool(fire)
    res = never.res
    new = np.where(x_at(res) @ np.asarray(never.w) >= 0, 1, -1)
    expected = _reservoir_mi_numpy(new, res.y, int(res.size)) - _reservoir_mi_numpy(res.codes, res.y, int(res.size))
    np.testing.assert_allclose(float(gain), expected, atol=1e-4)
    # snapshot codes of the reservoir: every held item encoded with the (unchanged) snapshot W_s
    np.testing.assert_array_equal(np.asarray(res.codes[:int(res.size)]),
                                  np.where(x_at(res) @ np.asarray(start.w) >= 0, 1, -1))
    for threshold, fires in ((expected - 1e-3, True), (expected + 1e-3, False)):
        st, fire, _ = mihash.make_stream_chunk({**hp, "trigger_threshold": threshold})(start, xs, ys, draws)
        assert bool(fire) == fires
        np.testing.assert_array_equal(np.asarray(st.w_snap), np.asarray(st.w if fires else start.w))
        np.testing.assert_array_equal(np.asarray(st.res.codes[:int(st.res.size)]), new if fires else res.codes[:int(res.size)])
    # the threshold is traced: one compiled chunk for all three thresholds
    assert mihash._stream_chunk(16, 10.0, 1.0, 0.0, False)._cache_size() == 1


def x_at(res):
    return np.asarray(res.x[:int(res.size)])


def test_reencoding_counts(digits_features):
    x, y = digits_features
    hp = {**mihash.defaults(), "update_interval": 50}
    order = np.random.default_rng(3).permutation(len(x))[:300]
    counts = {}
    for name, extra in (("mi", {}), ("never", {"trigger_threshold": np.inf}), ("fix", {"trigger": "fix"})):
        h = {**hp, **extra}
        table = mihash._Table(x, np.zeros((len(x), 32), np.int8))
        state, fires, gains = mihash.run_stream(mihash.init_learner(np.random.default_rng(0), x, y, h, 32),
                                                mihash.make_stream_chunk(h), x, y, order,
                                                np.random.default_rng(4), 50, on_fire=table.reencode)
        assert len(fires) == len(gains) == 6  # one check per 50 items
        assert table.reencodings == sum(fires) and table.bits_recomputed == sum(fires) * x.shape[0] * 32
        if sum(fires):  # the table holds the database under the snapshot mapping
            np.testing.assert_array_equal(table.codes, np.where(x @ np.asarray(state.w_snap) >= 0, 1, -1))
        if name == "mi":
            assert fires == [g > 0 for g in gains]
        counts[name] = sum(fires)
    assert counts["never"] == 0 and counts["fix"] == 6
    assert 0 < counts["mi"] <= 6


def test_mihash_stages_beat_random_codes_and_count_reencodings(digits_stages):
    config = ml_collections.ConfigDict({"bits": 32, "seed": 0, "online_mihash": {"stream_epochs": 1}})
    results = mihash.run_stages(config, digits_stages)
    rng = np.random.default_rng(0)
    for r, s in zip(results, range(2)):
        q, db = digits_stages.queries(s), digits_stages.database(s)
        random_map = stage_map(np.where(rng.random((len(q), 32)) < .5, -1, 1),
                               np.where(rng.random((len(db), 32)) < .5, -1, 1),
                               digits_stages.y_query[q], digits_stages.y_train[db])
        assert r["map"] > random_map + 0.3 and r["retrain_map"] > random_map + 0.3, (r, random_map)
        assert r["checks"] == r["stream_items"] // 100 and r["reencodings"] + r["avoided"] == r["checks"]
    assert results[-1]["total_reencodings"] == sum(r["reencodings"] for r in results)
    assert results[-1]["bits_recomputed"] == 32 * sum(r["reencodings"] * len(digits_stages.database(r["stage"]))
                                                      for r in results)


# ------------------------------------------------------------------------------------ DIHN
def test_dihn_code_update_matches_the_authors_dcc_loop_and_keeps_old_codes():
    n, n_old, q, bs, gamma, mu = 12, 7, 6, 4, 3.0, 2.0
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, n)
    old = np.where(rng.random((n_old, q)) < .5, -1, 1)
    config = experiment_config("dihn", dataset="digits", bits=q)
    config.batch_size = bs
    config.dihn = {**dihn.defaults(), "gamma": gamma, "mu": mu, "num_samples": n, "inner_epochs": 1}
    method = dihn.build(config, train_labels=labels, old_codes=old)
    state = method.init_state()
    np.testing.assert_array_equal(np.asarray(state["v"][:n_old]), old)
    state = {**state, "u": jnp.asarray(rng.uniform(-1, 1, (n, q)), jnp.float32)}
    v0 = np.asarray(state["v"]).copy()
    idx = np.arange(4, 8)
    out = jnp.asarray(rng.normal(size=(bs, q)), jnp.float32)
    batch = {"y": jnp.asarray(labels[idx]), "index": jnp.asarray(idx, jnp.int32)}
    # the trainer's composition: the loss, then the bank U and the V-step closing the outer iteration
    value, (new_state, _) = objective(method)(out, batch, state, step=jnp.int32(n // bs - 1), key=jax.random.PRNGKey(0))
    # the loss before the update: (||u V^T - q S||^2 + gamma ||V_idx - u||^2 + mu sum_i (u_i^T 1)^2) / (n bs)
    u = np.tanh(np.asarray(out, np.float64))
    s_batch = np.asarray(rescaled_similarity(jnp.asarray(labels[idx]), jnp.asarray(labels)), np.float64)
    expected = (np.sum((u @ v0.T - q * s_batch) ** 2) + gamma * np.sum((v0[idx] - u) ** 2)
                + mu * np.sum(u.sum(axis=1) ** 2)) / (n * bs)
    np.testing.assert_allclose(float(value), expected, rtol=1e-5)
    # the B^n step, as the authors' solve_dcc: all n items sampled (m = n), U = the outputs memory
    U = np.asarray(state["u"], np.float64)
    U[idx] = u
    S = np.asarray(rescaled_similarity(jnp.asarray(labels), jnp.asarray(labels)), np.float64)  # (m, n), omega = all
    omega = np.asarray(jax.random.permutation(jax.random.fold_in(jax.random.PRNGKey(config.seed), 0), n)[:n])
    U, S = U[omega], S[omega]
    B = v0[n_old:].astype(np.float64)
    expand = np.zeros((n - n_old, q))
    for r, i in enumerate(omega):
        if i >= n_old:
            expand[i - n_old] = U[r]
    P = q * S[:, n_old:].T @ U + gamma * expand
    for k in range(q):
        rest = [c for c in range(q) if c != k]
        B[:, k] = np.sign(P[:, k] - B[:, rest] @ U[:, rest].T @ U[:, k])
    np.testing.assert_array_equal(np.asarray(new_state["v"][:n_old]), old)  # bit-identical old codes
    np.testing.assert_array_equal(np.asarray(new_state["v"][n_old:]), B)


def test_dihn_bad_old_codes_are_clear_errors():
    config = experiment_config("dihn", dataset="digits", bits=4)
    config.dihn = dihn.defaults()
    labels = np.arange(100) % 5
    with pytest.raises(ValueError, match="old_codes must be"):
        dihn.build(config, train_labels=labels, old_codes=np.ones((10, 3)))
    with pytest.raises(ValueError, match="only -1 and \\+1"):
        dihn.build(config, train_labels=labels, old_codes=np.zeros((10, 4)))
    with pytest.raises(ValueError, match="no new item"):
        dihn.build(config, train_labels=labels, old_codes=np.ones((100, 4)))


def test_dihn_stages_keep_old_codes_and_beat_random_codes(digits_stages):
    config = experiment_config("dihn", dataset="digits", bits=16)
    config.dihn = dihn.defaults()
    config.num_epochs = 30
    results = dihn.run_stages(config, digits_stages, retrain=False)
    np.testing.assert_array_equal(results[1]["codes"][:len(results[0]["codes"])], results[0]["codes"])
    assert results[1]["codes_kept"] == len(results[0]["codes"])
    rng = np.random.default_rng(0)
    for r in results:
        q, db = digits_stages.queries(r["stage"]), digits_stages.database(r["stage"])
        random_map = stage_map(np.where(rng.random((len(q), 16)) < .5, -1, 1),
                               np.where(rng.random((len(db), 16)) < .5, -1, 1),
                               digits_stages.y_query[q], digits_stages.y_train[db])
        assert r["map"] > random_map + 0.4, (r["map"], random_map)


# ------------------------------------------------------------------------------ bad input
def test_bad_arguments_are_clear_errors(digits_stages):
    with pytest.raises(ValueError, match="first"):
        class_stages(np.arange(10), first=0, per_stage=1)
    with pytest.raises(ValueError, match="distinct"):
        class_stages(np.array([1, 1, 2]), first=1, per_stage=1)
    with pytest.raises(ValueError, match="capacity"):
        mihash.reservoir_init(0, 3, 4)
    with pytest.raises(ValueError, match="sim and weight"):
        mihash.masked_mutual_information(jnp.zeros((2, 4)), jnp.zeros((3, 4)), jnp.zeros((2, 2)), jnp.zeros((2, 3)),
                                         num_bins=2)
    with pytest.raises(ValueError, match="trigger"):
        mihash.run_stages(ml_collections.ConfigDict({"bits": 8, "seed": 0, "online_mihash": {"trigger": "always"}}),
                          digits_stages)
    with pytest.raises(ValueError, match="unknown key"):
        mihash.run_stages(ml_collections.ConfigDict({"bits": 8, "seed": 0, "online_mihash": {"reservoir": 5}}),
                          digits_stages)
    assert [list(s) for s in class_stages(np.arange(7), first=3, per_stage=2)] == [[0, 1, 2], [3, 4], [5, 6]]


def test_config_files_hold_the_defaults_and_the_stage_plan():
    import pathlib

    repo = pathlib.Path(__file__).resolve().parents[1]
    mi = load_config(str(repo / "experiments/configs/online_mihash.py") + ":dataset=digits,bits=16,seed=2")
    dh = load_config(str(repo / "experiments/configs/dihn.py") + ":dataset=mnist,bits=32,cpu=true")
    assert hyperparameters(mi, "online_mihash", mihash.defaults())["reservoir_size"] == 200
    assert (mi.bits, mi.seed, mi.split_seed) == (16, 2, 2)
    assert hyperparameters(dh, "dihn", dihn.defaults()) == {**dihn.defaults()}
    assert dh.num_epochs == 3 and dh.model.name == "cnn"
    for c in (mi, dh):
        assert [len(s) for s in class_stages(np.arange(10), **c.stages.to_dict())] == [5, 1, 1, 1, 1, 1]
