"""The compiled ranking pass (jhash._ranking.ranking_pass) against a brute-force NumPy reference.

Sizes cross the kernel's 1,024-item chunks and its 4-way unrolled counters (n_db = 1, 3,
1023, 1024, 1025, 4099); codes of 1..130 bits (not multiples of 64: several words and
padding); heavy ties (1-3 bits); class ids with queries whose class is absent (no relevant
item) and multi-hot labels over more than 64 classes (several label words).
"""
import numpy as np
import pytest

from jhash import _ranking


def brute(qb, db, gains, k, fill):
    n_q, q = qb.shape
    out = {"ap": np.zeros(n_q), "ranked": np.zeros((n_q, fill), bool),
           **{name: np.zeros((n_q, q + 1), np.int64) for name in ("n_all", "n_rel", "gain")}}
    for i in range(n_q):
        d = (qb[i] != db).sum(1)
        g = gains[i]
        np.add.at(out["n_all"][i], d, 1)
        np.add.at(out["n_rel"][i], d, (g > 0).astype(np.int64))
        np.add.at(out["gain"][i], d, g)
        rel = (g > 0)[np.argsort(d, kind="stable")]
        out["ranked"][i] = rel[:fill]
        top = rel[:k]
        if top.any():
            prec = np.cumsum(top) / np.arange(1, len(top) + 1)
            out["ap"][i] = prec[top].mean()
    return out


def run(qb, db, ql, dl, multi, k, fill):
    n_q, q = qb.shape
    qw = _ranking.pack_words(qb)
    dw_t = np.ascontiguousarray(_ranking.pack_words(db).T)
    if multi:
        q_ids, db_ids = np.zeros(n_q, np.int64), np.zeros(len(db), np.int64)
        q_lw, db_lw_t = _ranking.pack_words(ql), np.ascontiguousarray(_ranking.pack_words(dl).T)
    else:
        q_ids, db_ids = ql.astype(np.int64), dl.astype(np.int64)
        q_lw, db_lw_t = np.zeros((n_q, 0), np.uint64), np.zeros((0, len(db)), np.uint64)
    out = {"ap": np.zeros(n_q), "ranked": np.zeros((n_q, fill), bool),
           **{name: np.zeros((n_q, q + 1), np.int64) for name in ("n_all", "n_rel", "gain")}}
    _ranking.ranking_pass(qw, dw_t, q_ids, db_ids, q_lw, db_lw_t, q, k, fill, out["ap"], out["n_all"],
                          out["n_rel"], out["gain"], out["ranked"])
    return out


@pytest.mark.parametrize("n_db", [1, 3, 1023, 1024, 1025, 4099])
@pytest.mark.parametrize("q", [1, 3, 65, 130])
@pytest.mark.parametrize("multi", [False, True])
def test_ranking_pass_equals_bruteforce(n_db, q, multi):
    rng = np.random.default_rng(n_db * 1000 + q * 2 + multi)
    n_q = 5
    qb, db = rng.random((n_q, q)) < 0.5, rng.random((n_db, q)) < 0.5
    if multi:
        ql, dl = rng.random((n_q, 70)) < 0.03, rng.random((n_db, 70)) < 0.03
        ql[0] = False                                       # a query with no relevant item
        gains = (ql[:, None, :] & dl[None]).sum(-1)
    else:
        ql, dl = rng.integers(0, 4, n_q), rng.integers(0, 3, n_db)
        ql[0] = 7                                           # a class absent from the database
        gains = (ql[:, None] == dl[None]).astype(np.int64)
    for k, fill in [(n_db, 0), (1, 1), (max(1, n_db // 3), n_db), (n_db, min(n_db, 17))]:
        got = run(qb, db, ql, dl, multi, k, fill)
        want = brute(qb, db, gains, k, fill)
        for name in ("n_all", "n_rel", "gain", "ranked"):
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)
        np.testing.assert_allclose(got["ap"], want["ap"], rtol=1e-12, atol=1e-15)
        assert got["ap"][0] == 0.0
