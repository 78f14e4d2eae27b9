"""The compiled ranking pass (jhash._ranking.ranking_pass) against a brute-force NumPy reference,
and bit for bit against the previous pass (kept here, not in jhash: one counter bump and a branch
per item, AP terms summed in index order) on random cases.

Sizes cross the kernel's 1,024-item chunks and its 4-way unrolled counters (n_db = 1, 3,
1023, 1024, 1025, 4099); codes of 1..130 bits (not multiples of 64: several words and
padding); heavy ties (1-3 bits); class ids with queries whose class is absent (no relevant
item) and multi-hot labels over more than 64 classes (several label words).
"""
import numba
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


def run(qb, db, ql, dl, multi, k, fill, kernel=_ranking.ranking_pass):
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
    kernel(qw, dw_t, q_ids, db_ids, q_lw, db_lw_t, q, k, fill, out["ap"], out["n_all"],
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


@numba.njit(inline="always")
def _prev_record(rec, nr, key, c0, c1, c2, c3):
    h = key & 0xFFFF
    if key >> 16:
        rec[nr] = (np.int64(h) << 40) | (c0[h] + c1[h] + c2[h] + c3[h])
        nr += 1
    return nr


@numba.njit
def previous_pass(qw, dw_t, q_ids, db_ids, q_lw, db_lw_t, n_bits, k, fill, ap, n_all, n_rel, gain, ranked):
    """The ranking pass before the 64-item blocks (jhash 2ca0f3a), serial: the reference for bit-for-bit equality."""
    n_q, n_w = qw.shape
    n_db = dw_t.shape[1]
    n_lw = q_lw.shape[1]
    nb = n_bits + 1
    for i in range(n_q):
        c0, c1, c2, c3 = np.zeros(nb, np.int64), np.zeros(nb, np.int64), np.zeros(nb, np.int64), np.zeros(nb, np.int64)
        key = np.empty(1024, np.int64)
        g = np.ones(1024 if n_lw else 0, np.int64)
        rec = np.empty(n_db, np.int64)
        rgain = np.ones(n_db if n_lw else 0, np.int64)
        nr = 0
        for s in range(0, n_db, 1024):
            m = min(1024, n_db - s)
            x = qw[i, 0]
            for j in range(m):
                key[j] = np.int64(_ranking._popcount(x ^ dw_t[0, s + j]))
            for w in range(1, n_w):
                x = qw[i, w]
                for j in range(m):
                    key[j] += np.int64(_ranking._popcount(x ^ dw_t[w, s + j]))
            if n_lw == 0:
                c = q_ids[i]
                for j in range(m):
                    key[j] |= np.int64(db_ids[s + j] == c) << 16
            else:
                g[:m] = 0
                for w in range(n_lw):
                    y = q_lw[i, w]
                    for j in range(m):
                        g[j] += np.int64(_ranking._popcount(y & db_lw_t[w, s + j]))
                for j in range(m):
                    key[j] |= np.int64(g[j] > 0) << 16
            n0 = nr
            m4 = m - m % 4
            for j in range(0, m4, 4):
                nr = _prev_record(rec, nr, key[j], c0, c1, c2, c3)
                c0[key[j] & 0xFFFF] += 1
                nr = _prev_record(rec, nr, key[j + 1], c0, c1, c2, c3)
                c1[key[j + 1] & 0xFFFF] += 1
                nr = _prev_record(rec, nr, key[j + 2], c0, c1, c2, c3)
                c2[key[j + 2] & 0xFFFF] += 1
                nr = _prev_record(rec, nr, key[j + 3], c0, c1, c2, c3)
                c3[key[j + 3] & 0xFFFF] += 1
            for j in range(m4, m):
                nr = _prev_record(rec, nr, key[j], c0, c1, c2, c3)
                c0[key[j] & 0xFFFF] += 1
            if n_lw:
                e = n0
                for j in range(m):
                    if key[j] >> 16:
                        rgain[e] = g[j]
                        e += 1
        for h in range(nb):
            n_all[i, h] = c0[h] + c1[h] + c2[h] + c3[h]
        for e in range(nr):
            h = rec[e] >> 40
            n_rel[i, h] += 1
            gain[i, h] += rgain[e] if n_lw else 1
        pos = np.zeros(nb, np.int64)
        rpos = np.zeros(nb, np.int64)
        tot, rtot = 0, 0
        for h in range(nb):
            pos[h], rpos[h] = tot, rtot
            tot += n_all[i, h]
            rtot += n_rel[i, h]
        acc = 0.0
        hits = 0
        for e in range(nr):
            h = rec[e] >> 40
            p = pos[h] + (rec[e] & ((np.int64(1) << 40) - 1))
            r = rpos[h] + 1
            rpos[h] = r
            if p < k:
                acc += r / (p + 1.0)
                hits += 1
            if p < fill:
                ranked[i, p] = True
        ap[i] = acc / hits if hits > 0 else 0.0


def test_ranking_pass_bit_for_bit_equals_previous_pass():
    """Random cases: 1-200 bits (mostly few: heavy ties), one of 32,770 bits, 255 bits (the
    most with uint8 distances) and 256 (the fewest with uint16 ones), class ids and multi-hot labels, any
    k and fill: every output identical."""
    rng = np.random.default_rng(18)
    cases = [(int(rng.choice([1, 2, 3, 4, 6, 8, 16, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 200])),
              int(rng.integers(1, 2600)), bool(rng.random() < 0.5)) for _ in range(120)]
    cases += [(32770, 70, False), (255, 700, True), (256, 700, False)]
    for q, n_db, multi in cases:
        n_q = int(rng.integers(1, 5))
        qb, db = rng.random((n_q, q)) < 0.5, rng.random((n_db, q)) < 0.5
        if multi:
            n_lab, p = int(rng.integers(1, 80)), rng.random() * 0.3
            ql, dl = rng.random((n_q, n_lab)) < p, rng.random((n_db, n_lab)) < p
        else:
            n_cls = int(rng.integers(1, 12))
            ql, dl = rng.integers(0, n_cls, n_q), rng.integers(0, n_cls, n_db)
        k, fill = int(rng.integers(1, n_db + 1)), int(rng.integers(0, n_db + 1))
        got = run(qb, db, ql, dl, multi, k, fill)
        want = run(qb, db, ql, dl, multi, k, fill, kernel=previous_pass)
        for name in got:
            np.testing.assert_array_equal(got[name], want[name], err_msg=f"{name}, {q} bits, {n_db} items, multi={multi}")


@pytest.mark.parametrize("lo,span", [(-3, 2), (0, 254), (-1000, 255), (7, 65534), (0, 65535), (-2**40, 2**41)])
def test_ranking_pass_class_id_ranges(lo, span):
    """Class ids spanning the compact uint8 / uint16 compare types and beyond (int64), negative
    ids, and query classes just outside the database's range or between its ids (no relevant
    item): brute force and the previous pass agree with the pass bit for bit."""
    rng = np.random.default_rng(span % 1000)
    n_db, q = 1100, 9
    classes = np.array([lo, lo + span] + ([lo + span // 2] if span >= 4 else []))
    dl = rng.choice(classes, n_db)
    ql = np.array([lo - 1, lo + span + 1, lo + 1, lo, lo + span, lo + span // 2])
    qb, db = rng.random((len(ql), q)) < 0.5, rng.random((n_db, q)) < 0.5
    q_c, db_c = _ranking.class_ids(ql, dl)
    assert q_c.dtype == db_c.dtype == (np.uint8 if span < 255 else np.uint16 if span < 65535 else np.int64)
    gains = (ql[:, None] == dl[None]).astype(np.int64)
    for k, fill in [(n_db, 0), (300, 50)]:
        got = run(qb, db, ql, dl, False, k, fill)
        want = brute(qb, db, gains, k, fill)
        prev = run(qb, db, ql, dl, False, k, fill, kernel=previous_pass)
        for name in got:
            np.testing.assert_array_equal(got[name], prev[name], err_msg=name)
            if name != "ap":
                np.testing.assert_array_equal(got[name], want[name], err_msg=name)
        np.testing.assert_allclose(got["ap"], want["ap"], rtol=1e-12, atol=1e-15)
        assert got["ap"][:2].tolist() == [0.0, 0.0] and got["n_rel"][:3].sum() == 0


@pytest.mark.parametrize("n", [1, 2, 7])
@pytest.mark.parametrize("m", [0, 1, 32, 63, 64, 65, 130])
def test_pack_words(n, m):
    """Bit j of word w is column 64 w + j, zero-padded (the vector path, which reads into the
    next row and masks it off, and the last row's scalar tail), (n, 0) -> one zero word."""
    bits = np.random.default_rng(n * 1000 + m).random((n, m)) < 0.5
    want = np.zeros((n, max(1, -(-m // 64))), np.uint64)
    for i, j in zip(*np.nonzero(bits)):
        want[i, j // 64] |= np.uint64(1) << np.uint64(j % 64)
    got = _ranking.pack_words(bits)
    assert got.dtype == np.uint64
    np.testing.assert_array_equal(got, want)
