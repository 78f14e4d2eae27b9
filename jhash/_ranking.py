"""The CPU ranking pass behind :mod:`jhash.metrics`: one compiled pass per query over the database.

For each query it computes, without sorting and without a distance matrix:

* the Hamming distance to every database item (XOR + popcount on 64-bit words);
* the gain of every item: 1/0 for class ids (same class), the number of shared labels for
  multi-hot labels (relevant = gain > 0);
* per-distance histograms: items, relevant items, summed gain (distance 0..q);
* AP@k under the ranking by (distance, database index) and, optionally, the relevance of
  the first ``fill`` ranked positions (for P@k and PR curves).

The ranking needs no sort: the rank of item j at distance h is ``N_h + s_j`` with ``N_h`` the
number of items at distances < h and ``s_j = #{i < j: d_i = h}`` its position within its
distance bucket; AP needs ranks of the *relevant* items only. So the pass is:

1. a chunk of the database at a time, a vectorised loop writes each item's key (distance,
   relevance bit) to a small buffer; then one scalar loop over the buffer bumps the
   per-distance counter of each item and, for a relevant item only, records ``(h, s_j)``
   (its distance and the counter before the bump). The counter is split into 4 copies
   (items j, j+1, j+2, j+3 go to different copies: consecutive items at the same distance
   do not wait on each other's store), so ``s_j`` is the sum of the 4 copies;
2. a pass over the recorded relevant items (about n_db / classes of them), in index order:
   rank ``p = N_h + s_j``, relevant items up to it ``R_h + t`` (t-th relevant one of its
   bucket), AP term ``(R_h + t) / (p + 1)``, added in index order (the same sum, term by
   term, as a visit of every item in index order).

Cost: the vectorised distance loop (the distance-matrix floor), one counter bump per item
and a branch that is taken for relevant items. Queries run in parallel threads (numba's
prange). See experiments/bench/speed_floor.py for the distance to the floor.
"""
from __future__ import annotations

import numba
import numpy as np


def pack_words(bits: np.ndarray) -> np.ndarray:
    """Boolean (n, m) -> uint64 (n, ceil(m / 64)) words (bit order irrelevant here: only popcounts are used)."""
    n, m = bits.shape
    padded = np.zeros((n, max(1, -(-m // 64)) * 64), np.bool_)
    padded[:, :m] = bits
    return np.packbits(padded, axis=1).view(np.uint64)


@numba.njit(inline="always")
def _popcount(x):
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (x * np.uint64(0x0101010101010101)) >> np.uint64(56)


@numba.njit(parallel=True, cache=True, nogil=True)
def distance_matrix(aw, bw, out):
    """``out[i, j]`` = Hamming distance between rows ``aw[i]`` and ``bw[j]`` (uint64 words);
    the loop behind :func:`jhash.codes.hamming_distance` on the host."""
    n_w = aw.shape[1]
    for i in numba.prange(aw.shape[0]):
        if n_w == 1:  # codes of <= 64 bits: one vectorised loop
            x = aw[i, 0]
            for j in range(bw.shape[0]):
                out[i, j] = _popcount(x ^ bw[j, 0])
        else:
            for j in range(bw.shape[0]):
                d = 0
                for w in range(n_w):
                    d += _popcount(aw[i, w] ^ bw[j, w])
                out[i, j] = d


_CHUNK = 1024  # database items per key buffer (L1-resident)
_REL = 16      # key = distance | relevant << 16 (codes have < 2**16 bits)
_SHIFT = 40    # record = distance << 40 | position within the distance bucket


@numba.njit(inline="always")
def _record(rec, nr, key, c0, c1, c2, c3):
    """Records (distance, #earlier items at that distance) of a relevant key; returns the new size."""
    h = key & 0xFFFF
    if key >> _REL:
        rec[nr] = (np.int64(h) << _SHIFT) | (c0[h] + c1[h] + c2[h] + c3[h])
        nr += 1
    return nr


@numba.njit(parallel=True, cache=True, nogil=True)
def ranking_pass(qw, dw_t, q_ids, db_ids, q_lw, db_lw_t, n_bits, k, fill, ap, n_all, n_rel, gain, ranked):
    """Fills ``ap`` (n_q,), ``n_all``/``n_rel``/``gain`` (n_q, n_bits + 1) and ``ranked`` (n_q, fill).

    qw (n_q, W), dw_t (W, n_db): packed codes (database transposed). Labels: class ids
    ``q_ids`` (n_q,), ``db_ids`` (n_db,) when ``q_lw`` has no columns; otherwise packed
    multi-hot words ``q_lw`` (n_q, L) and ``db_lw_t`` (L, n_db).
    """
    n_q, n_w = qw.shape
    n_db = dw_t.shape[1]
    n_lw = q_lw.shape[1]
    nb = n_bits + 1
    for i in numba.prange(n_q):
        c0, c1, c2, c3 = np.zeros(nb, np.int64), np.zeros(nb, np.int64), np.zeros(nb, np.int64), np.zeros(nb, np.int64)
        key = np.empty(_CHUNK, np.int64)
        g = np.ones(_CHUNK if n_lw else 0, np.int64)
        rec = np.empty(n_db, np.int64)           # relevant items: distance << 40 | position in bucket
        rgain = np.ones(n_db if n_lw else 0, np.int64)
        nr = 0
        for s in range(0, n_db, _CHUNK):
            m = min(_CHUNK, n_db - s)
            # 1a. keys, vectorised: distance | relevant << 16
            x = qw[i, 0]
            for j in range(m):
                key[j] = np.int64(_popcount(x ^ dw_t[0, s + j]))
            for w in range(1, n_w):
                x = qw[i, w]
                for j in range(m):
                    key[j] += np.int64(_popcount(x ^ dw_t[w, s + j]))
            if n_lw == 0:
                c = q_ids[i]
                for j in range(m):
                    key[j] |= np.int64(db_ids[s + j] == c) << _REL
            else:
                g[:m] = 0
                for w in range(n_lw):
                    y = q_lw[i, w]
                    for j in range(m):
                        g[j] += np.int64(_popcount(y & db_lw_t[w, s + j]))
                for j in range(m):
                    key[j] |= np.int64(g[j] > 0) << _REL
            # 1b. counters (4 copies) and the relevant items' records, in index order
            n0 = nr
            m4 = m - m % 4
            for j in range(0, m4, 4):
                nr = _record(rec, nr, key[j], c0, c1, c2, c3)
                c0[key[j] & 0xFFFF] += 1
                nr = _record(rec, nr, key[j + 1], c0, c1, c2, c3)
                c1[key[j + 1] & 0xFFFF] += 1
                nr = _record(rec, nr, key[j + 2], c0, c1, c2, c3)
                c2[key[j + 2] & 0xFFFF] += 1
                nr = _record(rec, nr, key[j + 3], c0, c1, c2, c3)
                c3[key[j + 3] & 0xFFFF] += 1
            for j in range(m4, m):
                nr = _record(rec, nr, key[j], c0, c1, c2, c3)
                c0[key[j] & 0xFFFF] += 1
            if n_lw:
                e = n0
                for j in range(m):
                    if key[j] >> _REL:
                        rgain[e] = g[j]
                        e += 1
        # 2. histograms, then AP over the relevant items in index order
        for h in range(nb):
            n_all[i, h] = c0[h] + c1[h] + c2[h] + c3[h]
        for e in range(nr):
            h = rec[e] >> _SHIFT
            n_rel[i, h] += 1
            gain[i, h] += rgain[e] if n_lw else 1
        pos = np.zeros(nb, np.int64)   # items at smaller distances
        rpos = np.zeros(nb, np.int64)  # relevant items ranked before the next relevant one
        tot, rtot = 0, 0
        for h in range(nb):
            pos[h], rpos[h] = tot, rtot
            tot += n_all[i, h]
            rtot += n_rel[i, h]
        acc = 0.0
        hits = 0
        for e in range(nr):
            h = rec[e] >> _SHIFT
            p = pos[h] + (rec[e] & ((np.int64(1) << _SHIFT) - 1))
            r = rpos[h] + 1
            rpos[h] = r
            if p < k:
                acc += r / (p + 1.0)
                hits += 1
            if p < fill:
                ranked[i, p] = True
        ap[i] = acc / hits if hits > 0 else 0.0
