"""The CPU ranking pass behind :mod:`jhash.metrics`: one compiled pass per query over the database.

For each query it computes, without sorting:

* the Hamming distance to every database item (XOR + popcount on 64-bit words);
* the gain of every item: 1/0 for class ids (same class), the number of shared labels for
  multi-hot labels (relevant = gain > 0);
* per-distance histograms: items, relevant items, summed gain (distance 0..q);
* the ranking by (distance, database index) as a counting sort: the rank of item j at
  distance h is #{i: d_i < h} + #{i < j: d_i = h}, kept in one counter per distance while
  the items are visited in index order;
* AP@k from that ranking (sum over relevant items ranked < k of #relevant up to it / rank,
  divided by the number of relevant items ranked < k; 0 if there is none) and, optionally,
  the relevance of the first ``fill`` ranked positions (for P@k and PR curves).

XLA's CPU sort is a slow comparison sort and a counting sort needs a sequential pass, which
XLA cannot express cheaply; numba compiles this pass to a loop that is about as fast as
computing the distance matrix itself (see experiments/bench/eval_speed.py). Queries run in
parallel threads (numba's prange).
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
def ranking_pass(qw, dw_t, q_ids, db_ids, q_lw, db_lw_t, n_bits, k, fill, ap, n_all, n_rel, gain, ranked):
    """Fills ``ap`` (n_q,), ``n_all``/``n_rel``/``gain`` (n_q, n_bits + 1) and ``ranked`` (n_q, fill).

    qw (n_q, W), dw_t (W, n_db): packed codes (database transposed). Labels: class ids
    ``q_ids`` (n_q,), ``db_ids`` (n_db,) when ``q_lw`` has no columns; otherwise packed
    multi-hot words ``q_lw`` (n_q, L) and ``db_lw_t`` (L, n_db).
    """
    n_q, n_w = qw.shape
    n_db = dw_t.shape[1]
    n_lw = q_lw.shape[1]
    for i in numba.prange(n_q):
        d = np.zeros(n_db, np.uint16)
        for w in range(n_w):
            x = qw[i, w]
            for j in range(n_db):
                d[j] += np.uint16(_popcount(x ^ dw_t[w, j]))
        g = np.zeros(n_db, np.int32)
        if n_lw == 0:
            c = q_ids[i]
            for j in range(n_db):
                g[j] = db_ids[j] == c
        else:
            for w in range(n_lw):
                y = q_lw[i, w]
                for j in range(n_db):
                    g[j] += np.int32(_popcount(y & db_lw_t[w, j]))
        for j in range(n_db):
            h = d[j]
            n_all[i, h] += 1
            if g[j] > 0:
                n_rel[i, h] += 1
                gain[i, h] += g[j]
        pos = np.zeros(n_bits + 1, np.int64)   # next rank (0-based) at each distance
        rpos = np.zeros(n_bits + 1, np.int64)  # relevant items ranked before it
        tot, rtot = 0, 0
        for h in range(n_bits + 1):
            pos[h], rpos[h] = tot, rtot
            tot += n_all[i, h]
            rtot += n_rel[i, h]
        acc = 0.0
        hits = 0
        for j in range(n_db):
            h = d[j]
            p = pos[h]
            pos[h] = p + 1
            if g[j] > 0:
                r = rpos[h] + 1
                rpos[h] = r
                if p < k:
                    acc += r / (p + 1.0)
                    hits += 1
                if p < fill:
                    ranked[i, p] = True
        ap[i] = acc / hits if hits > 0 else 0.0
