"""The compiled (numba) loops behind :mod:`jhash.index`.

Codes are rows of uint64 words (``(n, W)``); only popcounts of XORs and single-bit flips are
used, so the bit order inside a word does not matter here (``jhash.index`` says where each
code bit lives).  Database items are identified by their *position* (row); ties are broken
by position ascending everywhere.

* :func:`topk_scan`: exact top-k by (distance, position).  One pass over the database per
  block of queries, a database chunk at a time (kept in cache while the block's queries scan
  it).  Each query keeps a buffer of candidates in position order and a threshold ``t``: once
  k candidates have distance <= t, a later item (larger position) enters only with distance
  < t.  The database words are read column-major, so the test "distance < t" for 64
  consecutive rows is one vectorised loop giving a 64-bit mask; only its set bits (rare once
  t has settled) are visited, in position order.  A full buffer is compacted with a histogram
  over distances (no sort); the final k are placed by a counting sort on the distance.
* :func:`build_table`: a static hash table, i.e. the rows sorted by bucket (a counting sort on
  the top bits of a mixed hash of the key) plus the bucket starts.
* :func:`ball_search`: radius search by table lookups: for each table, every key within the
  table's radius of the query key is probed, every hit is verified by its full distance
  (one table over whole codes = Hamming-ball enumeration; m tables over substrings =
  multi-index hashing).  A hit already reachable through an earlier table is skipped, so no
  item is reported twice.  One pass counts every query's items and writes them while they fit
  the query's slots; only a query with more items than slots is run again.
* :func:`radius_scan`: the same output by an exhaustive scan.
"""
from __future__ import annotations

import numba
import numpy as np

from jhash._ranking import _popcount

_MIX1 = np.uint64(0x9E3779B97F4A7C15)
_MIX2 = np.uint64(0xD6E8FEB86659FD93)


@numba.njit(inline="always")
def _compact(bd, bp, nb, k, hist):
    """Keeps the k smallest (distance, position) of the buffer's ``nb`` entries, in buffer
    (= position) order.  Returns (new size, distance threshold t): k entries have d <= t.
    Branch-free copy (about half the entries go, in no predictable pattern)."""
    hist[:] = 0
    for e in range(nb):
        hist[bd[e]] += 1
    cum, t = 0, 0
    while cum + hist[t] < k:
        cum += hist[t]
        t += 1
    take = k - cum  # entries at distance t to keep: the earliest ones
    out = 0
    for e in range(nb):
        d = bd[e]
        tie = d == t
        keep = (d < t) | (tie & (take > 0))
        bd[out] = d
        bp[out] = bp[e]
        out += keep
        take -= tie & keep
    return out, np.int64(t)


@numba.njit(inline="always")
def _offer(bd, bp, c, t, d, p, k, hist):
    """Item p at distance d enters the buffer if d < t (a full buffer is compacted); returns
    (size, threshold).  Inlined: a call per candidate costs more than the insert."""
    if d < t:
        bd[c] = d
        bp[c] = p
        c += 1
        if c == bd.shape[0]:
            c, t = _compact(bd, bp, c, k, hist)
    return c, t


@numba.njit(inline="always")
def _dist_row(x0, x1, qrow, flat, j, n_w):
    """Distance of a query (words ``qrow``; its first two also as ``x0``, ``x1``) to row ``j``
    of the row-major words ``flat``.  ``j`` is unsigned (no negative-index handling) and 1
    and 2 words are spelled out (no loop)."""
    if n_w == 1:
        return np.int64(_popcount(x0 ^ flat[j]))
    if n_w == 2:
        return np.int64(_popcount(x0 ^ flat[np.uint64(2) * j])) + np.int64(_popcount(x1 ^ flat[np.uint64(2) * j + np.uint64(1)]))
    d = 0
    for w in range(n_w):
        d += np.int64(_popcount(qrow[w] ^ flat[j * n_w + np.uint64(w)]))
    return d


_G = 64  # rows per group: one bit each in the group's mask


@numba.njit(inline="always")
def _dist_col(x0, x1, qrow, c0, c1, cflat, un, j, n_w):
    """Distance of a query to row ``j`` of the column-major words (``c0``, ``c1``: words 0 and
    1 of every row; ``cflat``: all words, word w of row j at ``w * un + j``)."""
    if n_w == 1:
        return np.int64(_popcount(x0 ^ c0[j]))
    if n_w == 2:
        return np.int64(_popcount(x0 ^ c0[j])) + np.int64(_popcount(x1 ^ c1[j]))
    d = 0
    for w in range(n_w):
        d += np.int64(_popcount(qrow[w] ^ cflat[np.uint64(w) * un + j]))
    return d


@numba.njit(inline="always")
def _mask1(x0, c0, j0, t):
    """Bit u set when row j0 + u (one word) is at distance < t: a vectorised loop."""
    msk = np.uint64(0)
    for u in range(_G):
        msk |= np.uint64(np.int64(_popcount(x0 ^ c0[j0 + np.uint64(u)])) < t) << np.uint64(u)
    return msk


@numba.njit(inline="always")
def _mask2(x0, x1, c0, c1, j0, t):
    """As :func:`_mask1` for two words (word 0 and word 1 in two column arrays)."""
    msk = np.uint64(0)
    for u in range(_G):
        j = j0 + np.uint64(u)
        d = np.int64(_popcount(x0 ^ c0[j])) + np.int64(_popcount(x1 ^ c1[j]))
        msk |= np.uint64(d < t) << np.uint64(u)
    return msk


@numba.njit(inline="always")
def _maskn(qrow, cflat, un, j0, t, acc):
    """As :func:`_mask1` for any number of words: distances summed word by word in ``acc``."""
    acc[:] = 0
    for w in range(qrow.shape[0]):
        x, base = qrow[w], np.uint64(w) * un + j0
        for u in range(_G):
            acc[u] += np.int64(_popcount(x ^ cflat[base + np.uint64(u)]))
    msk = np.uint64(0)
    for u in range(_G):
        msk |= np.uint64(acc[u] < t) << np.uint64(u)
    return msk


@numba.njit(parallel=True, cache=True, nogil=True)
def topk_scan(qw, cols, k, n_bits, db_chunk, q_block, out_pos, out_d):
    """Fills ``out_pos`` / ``out_d`` (n_q, k) with the k nearest positions of each query, by
    (distance, position).  ``cols`` holds the database words column-major, ``(W, n)`` (word w
    of every row contiguous), so the distances of 64 consecutive rows are one vectorised
    loop.  Needs 1 <= k <= n."""
    n_q, n_w = qw.shape
    n = cols.shape[1]
    c0, c1 = cols[0], cols[min(1, n_w - 1)]
    cflat, un = cols.reshape(-1), np.uint64(n)
    cap = 2 * k + 64
    n_blocks = (n_q + q_block - 1) // q_block
    for b in numba.prange(n_blocks):
        q0 = b * q_block
        nb_q = min(n_q, q0 + q_block) - q0
        bd = np.empty((nb_q, cap), np.int32)
        bp = np.empty((nb_q, cap), np.int64)
        cnt = np.zeros(nb_q, np.int64)
        thr = np.full(nb_q, n_bits + 1, np.int64)
        hist = np.zeros(n_bits + 2, np.int64)
        acc = np.empty(_G, np.int64)
        for ch in range(0, n, db_chunk):
            m = min(n, ch + db_chunk) - ch
            mg = ch + m - m % _G
            for ii in range(nb_q):
                qrow, bdi, bpi = qw[q0 + ii], bd[ii], bp[ii]  # views made once, not per candidate
                x0, x1 = qrow[0], qrow[min(1, n_w - 1)]
                t, c = thr[ii], cnt[ii]
                for s0 in range(ch, mg, _G):
                    j0 = np.uint64(s0)
                    if n_w == 1:
                        msk = _mask1(x0, c0, j0, t)
                    elif n_w == 2:
                        msk = _mask2(x0, x1, c0, c1, j0, t)
                    else:
                        msk = _maskn(qrow, cflat, un, j0, t, acc)
                    while msk:  # rare once the threshold has settled: the set bits, in order
                        low = msk & (~msk + np.uint64(1))
                        msk ^= low
                        j = j0 + np.uint64(_popcount(low - np.uint64(1)))
                        d = _dist_col(x0, x1, qrow, c0, c1, cflat, un, j, n_w)
                        c, t = _offer(bdi, bpi, c, t, d, np.int64(j), k, hist)  # t may have dropped
                for j in range(mg, ch + m):
                    d = _dist_col(x0, x1, qrow, c0, c1, cflat, un, np.uint64(j), n_w)
                    c, t = _offer(bdi, bpi, c, t, d, j, k, hist)
                thr[ii], cnt[ii] = t, c
        for ii in range(nb_q):
            c = cnt[ii]
            if c > k:
                c, _ = _compact(bd[ii], bp[ii], c, k, hist)
            hist[:] = 0  # counting sort by distance; stable, so ties stay in position order
            for e in range(c):
                hist[bd[ii, e] + 1] += 1
            for h in range(1, n_bits + 2):
                hist[h] += hist[h - 1]
            for e in range(c):
                d = bd[ii, e]
                p = hist[d]
                hist[d] = p + 1
                out_pos[q0 + ii, p] = bp[ii, e]
                out_d[q0 + ii, p] = d


@numba.njit(inline="always")
def _bucket(keys, row, shift):
    """Bucket of the key ``keys[row]`` (a mixed hash of its words, top bits)."""
    h = np.uint64(0)
    for w in range(keys.shape[1]):
        h = (h ^ keys[row, w]) * _MIX1
        h ^= h >> np.uint64(31)
    h *= _MIX2
    return np.int64(h >> np.uint64(shift))


@numba.njit(cache=True)
def build_table(keys, n_buckets_log2):
    """Static hash table over the rows of ``keys`` (n, Wk) uint64.

    Returns ``(perm, starts)``: rows ``perm[starts[b]:starts[b + 1]]`` are those in bucket b,
    in position order (a stable counting sort on the bucket)."""
    n = keys.shape[0]
    shift = 64 - n_buckets_log2
    n_b = 1 << n_buckets_log2
    bucket = np.empty(n, np.int64)
    starts = np.zeros(n_b + 1, np.int64)
    for i in range(n):
        bucket[i] = _bucket(keys, i, shift)
        starts[bucket[i] + 1] += 1
    for b in range(n_b):
        starts[b + 1] += starts[b]
    nxt = starts[:-1].copy()
    perm = np.empty(n, np.int64)
    for i in range(n):
        perm[nxt[bucket[i]]] = i
        nxt[bucket[i]] += 1
    return perm, starts


@numba.njit(parallel=True, cache=True)
def extract_bits(words, pw, pm, out):
    """``out[i]`` gets bit t set when the code bit at (word ``pw[t]``, mask ``pm[t]``) of row i is set."""
    for i in numba.prange(words.shape[0]):
        key = np.uint64(0)
        for t in range(pw.shape[0]):
            if words[i, pw[t]] & pm[t]:
                key |= np.uint64(1) << np.uint64(t)
        out[i] = key


@numba.njit(inline="always")
def _sort_segment(out_pos, out_d, s, e, n):
    """Sorts entries s:e of the outputs by (distance, position)."""
    key = np.empty(e - s, np.int64)
    for a in range(e - s):
        key[a] = np.int64(out_d[s + a]) * n + out_pos[s + a]
    key.sort()
    for a in range(e - s):
        out_d[s + a] = key[a] // n
        out_pos[s + a] = key[a] % n


_BATCH = 256  # probes whose buckets are looked up together


@numba.njit(inline="always")
def _probe_batch(i, j, nb, pk, pb, pe, fk, qw, dw, x0, x1, qrow, flat, uw, keys, perm, starts, radii, submask, r,
                 c, base, slots, out_pos, out_d, fill):
    """Looks up ``nb`` probe keys ``pk`` (buckets ``pb``) of table j; returns the new count.

    The bucket bounds (``pb``, ``pe``), then the first word of each bucket's first key
    (``fk``), are read in loops of independent loads (many cache misses in flight) before
    the candidates are compared and verified."""
    n_w, n_kw = qw.shape[1], pk.shape[1]
    for t in range(nb):
        b = pb[t]
        pb[t], pe[t] = starts[j, b], starts[j, b + 1]
    for t in range(nb):
        if pb[t] < pe[t]:
            fk[t] = keys[j, pb[t], 0]
    for t in range(nb):
        if pb[t] == pe[t] or (pe[t] - pb[t] == 1 and fk[t] != pk[t, 0]):
            continue  # an empty bucket, or one key that differs
        for e in range(pb[t], pe[t]):
            same = True
            for w in range(n_kw):
                if keys[j, e, w] != pk[t, w]:
                    same = False
                    break
            if not same:
                continue
            p = perm[j, e]
            dist = _dist_row(x0, x1, qrow, flat, np.uint64(p), uw)
            if dist > r:
                continue
            seen = False  # found already through an earlier table?
            for jj in range(j):
                if radii[jj] >= 0:
                    sd = 0
                    for w in range(n_w):
                        sd += np.int64(_popcount((qw[i, w] ^ dw[p, w]) & submask[jj, w]))
                    if sd <= radii[jj]:
                        seen = True
                        break
            if seen:
                continue
            if fill and c < slots:
                out_pos[base + c] = p
                out_d[base + c] = dist
            c += 1
    return c


@numba.njit(parallel=True, cache=True)
def ball_search(qw, dw, qkeys, keys, perm, starts, shift, fw, fm, npos, radii, submask, r,
                lims, out_pos, out_d, fill):
    """Items within distance ``r`` of each query via m hash tables; returns the counts (n_q,).

    Table j: keys ``keys[j]`` (n, Wk) and ``perm[j]`` / ``starts[j]`` from :func:`build_table`,
    the query keys ``qkeys[:, j]``, the key's flippable bits (word ``fw[j, t]``, mask
    ``fm[j, t]``, t < ``npos[j]``), the probing radius ``radii[j]`` (-1: not probed) and the
    mask ``submask[j]`` (full-code words) of the code bits the key holds.  With ``fill`` the
    items of query i are written to its slots ``out_*[lims[i]:lims[i + 1]]``, sorted by
    (distance, position), when they fit (count <= slots); the count is exact either way.
    Probes are enumerated in batches of ``_BATCH`` and looked up by :func:`_probe_batch`.
    """
    n_q, n_w = qw.shape
    n = dw.shape[0]
    flat, uw = dw.reshape(-1), np.uint64(n_w)
    m, _, n_kw = keys.shape
    max_rad = max(1, radii.max())
    counts = np.zeros(n_q, np.int64)
    for i in numba.prange(n_q):
        c = 0
        base = lims[i] if fill else 0
        slots = lims[i + 1] - lims[i] if fill else 0
        qrow = qw[i]
        x0, x1 = qrow[0], qrow[min(1, n_w - 1)]
        pk = np.empty((_BATCH, n_kw), np.uint64)
        pb = np.empty(_BATCH, np.int64)
        pe = np.empty(_BATCH, np.int64)
        fk = np.empty(_BATCH, np.uint64)
        idx = np.empty(max_rad, np.int64)
        for j in range(m):
            nb = 0
            for d in range(min(radii[j], npos[j]) + 1):  # every subset of d flipped bits
                for a in range(d):
                    idx[a] = a
                while True:
                    for w in range(n_kw):
                        pk[nb, w] = qkeys[i, j, w]
                    for a in range(d):
                        pk[nb, fw[j, idx[a]]] ^= fm[j, idx[a]]
                    pb[nb] = _bucket(pk, nb, shift)
                    nb += 1
                    if nb == _BATCH:
                        c = _probe_batch(i, j, nb, pk, pb, pe, fk, qw, dw, x0, x1, qrow, flat, uw, keys, perm, starts,
                                         radii, submask, r, c, base, slots, out_pos, out_d, fill)
                        nb = 0
                    a = d - 1  # next subset, in lexicographic order
                    while a >= 0 and idx[a] == npos[j] - d + a:
                        a -= 1
                    if a < 0:
                        break
                    idx[a] += 1
                    for a2 in range(a + 1, d):
                        idx[a2] = idx[a2 - 1] + 1
            c = _probe_batch(i, j, nb, pk, pb, pe, fk, qw, dw, x0, x1, qrow, flat, uw, keys, perm, starts,
                             radii, submask, r, c, base, slots, out_pos, out_d, fill)
        counts[i] = c
        if fill and c <= slots:
            _sort_segment(out_pos, out_d, base, base + c, n)
    return counts


@numba.njit(parallel=True, cache=True)
def radius_scan(qw, dw, r, lims, out_pos, out_d, fill):
    """Items within distance ``r`` by an exhaustive scan: returns the counts; with ``fill``,
    writes query i's items to its slots ``out_*[lims[i]:lims[i + 1]]``, sorted by (distance,
    position), when they fit (as :func:`ball_search`)."""
    n_q, n_w = qw.shape
    n = dw.shape[0]
    flat, uw = dw.reshape(-1), np.uint64(n_w)
    counts = np.zeros(n_q, np.int64)
    for i in numba.prange(n_q):
        c = 0
        qrow = qw[i]
        x0, x1 = qrow[0], qrow[min(1, n_w - 1)]
        if fill:
            slots = lims[i + 1] - lims[i]
            for p in range(n):
                dist = _dist_row(x0, x1, qrow, flat, np.uint64(p), uw)
                if dist <= r:
                    if c < slots:
                        out_pos[lims[i] + c] = p
                        out_d[lims[i] + c] = dist
                    c += 1
            if c <= slots:
                _sort_segment(out_pos, out_d, lims[i], lims[i] + c, n)
        elif n_w == 1:  # counting only: a vectorised loop
            x, d1 = qw[i, 0], dw[:, 0]
            for p in range(n):
                c += np.int64(_popcount(x ^ d1[p])) <= r
        else:
            for p in range(n):
                c += _dist_row(x0, x1, qrow, flat, np.uint64(p), uw) <= r
        counts[i] = c
    return counts
