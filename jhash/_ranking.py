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

1. a chunk of the database at a time, a vectorised loop writes each item's distance to a small
   buffer (uint8 for codes of < 256 bits), and one vector compare per 64 items gives their
   relevance bits (class ids compared as uint8 / uint16 offsets, :func:`class_ids`; for
   multi-hot labels, shared-label counts > 0);
2. per block of 64 items: for each relevance bit (a relevant item at block offset t), ``s_j``
   is the counters' value at its distance at the block start plus the number of earlier items
   of the block at that distance (a 64-item vector compare, masked to offsets < t, and a
   popcount), and ``t_j``, the relevant items before it at its distance, is read and bumped
   from a counter of relevant items; the item's ``(h, s_j, t_j)`` is recorded. Then every item
   of the block bumps the counter of its distance (2 interleaved copies: items j and j+1 go to
   different copies, so consecutive items at the same distance do not wait on each other's
   store; 8 distances per 64-bit load). The only unpredictable branch is the end of the loop
   over a block's relevance bits (one per 64 items, not one per relevant item; a second loop
   over the same bits copies multi-hot gains);
3. a pass over the recorded relevant items (about n_db / classes of them), in index order:
   rank ``p = N_h + s_j``, relevant items up to it ``R_h + t_j + 1``, AP term
   ``(R_h + t_j + 1) / (p + 1)``, added in index order (the same sum, term by term, as a visit
   of every item in index order). It reads the records and per-distance offsets only: no
   counter is updated there, so no store-to-load chain through a counter when consecutive
   relevant items share a distance.

Queries run in parallel threads (numba's prange). Hot loops index row views from 0 (numba
wraps negative indices, so ``a[s + j]`` with a signed ``s + j`` costs a compare per load and
blocks vectorisation). See experiments/bench/speed_floor.py for the distance to the floor
and experiments/results/speed_floor.md for what each choice gave.
"""
from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic


def pack_words(bits: np.ndarray) -> np.ndarray:
    """Boolean (n, m) -> uint64 (n, ceil(m / 64)) words, bit j of word w = column 64 w + j
    (zero-padded; any fixed bit order would do: only popcounts of XOR / AND of words packed
    alike are used), one vector compare per 64 columns."""
    bits = np.ascontiguousarray(bits, np.bool_)
    out = np.zeros((bits.shape[0], max(1, -(-bits.shape[1] // 64))), np.uint64)
    _pack(bits.view(np.uint8), out)
    return out


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


# numba has no vector compare-to-bitmask (x86 movemask) primitive: these three are LLVM IR.
@intrinsic
def _eq64(typingctx, arr, start, value):
    """Bit j of the uint64 result = ``arr[start + j] == value`` for j < 64 (one vector compare
    of 64 elements and a movemask on x86); ``arr[start:start + 64]`` must exist."""
    dt = arr.dtype
    sig = types.uint64(arr, start, value)

    def codegen(context, builder, signature, args):
        a, st, v = args
        data = context.make_array(signature.args[0])(context, builder, a).data
        st = context.cast(builder, st, signature.args[1], types.intp)
        v = context.cast(builder, v, signature.args[2], dt)
        vty = ir.VectorType(context.get_data_type(dt), 64)
        zeros = ir.Constant(ir.VectorType(ir.IntType(32), 64), [0] * 64)
        one = builder.insert_element(ir.Constant(vty, ir.Undefined), v, ir.Constant(ir.IntType(32), 0))
        splat = builder.shuffle_vector(one, ir.Constant(vty, ir.Undefined), zeros)
        vec = builder.load(builder.bitcast(builder.gep(data, [st]), vty.as_pointer()), align=1)
        return builder.bitcast(builder.icmp_unsigned("==", vec, splat), ir.IntType(64))
    return sig, codegen


@intrinsic
def _ctz(typingctx, x):
    """Trailing zeros of a uint64 (``llvm.cttz``: tzcnt / bsf)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        f = builder.module.declare_intrinsic("llvm.cttz", [i64], ir.FunctionType(i64, [i64, ir.IntType(1)]))
        return builder.call(f, [args[0], ir.Constant(ir.IntType(1), 0)])
    return sig, codegen


@intrinsic
def _ctpop(typingctx, x):
    """Popcount of a uint64 (``llvm.ctpop``: popcnt, or a vectorised table lookup in vector loops;
    the bit trick of :func:`_popcount` is vectorised as 64-bit multiplies when fused with a shift)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.call(builder.module.declare_intrinsic("llvm.ctpop", [ir.IntType(64)]), [args[0]])
    return sig, codegen


@numba.njit(cache=True, nogil=True)
def _pack(bits, out):
    n, m = bits.shape
    flat = bits.reshape(n * m)
    full, rem = m // 64, m % 64
    tail = (np.uint64(1) << np.uint64(rem)) - np.uint64(1)
    for i in range(n):
        s = i * m
        for w in range(full):
            out[i, w] = ~_eq64(flat, s + 64 * w, 0)
        s += 64 * full
        if rem and s + 64 <= n * m:  # the 64 bytes run into the next row: masked off
            out[i, full] = ~_eq64(flat, s, 0) & tail
        elif rem:
            for j in range(rem):
                out[i, full] |= np.uint64(flat[s + j] != 0) << np.uint64(j)


_CHUNK = 1024  # database items per distance buffer (L1-resident; a multiple of 64)
_SHIFT = 40    # record = distance << 40 | position within the distance bucket


def class_ids(q_ids, db_ids):
    """Class ids as the pass compares them: ``(query ids, database ids padded by 64)``, as uint8
    or uint16 offsets from the smallest database id when the database's ids span fewer than 255
    or 65,535 values (int64 otherwise), a query class absent from the database mapped to a
    value no database item has."""
    q_ids, db_ids = np.asarray(q_ids, np.int64), np.asarray(db_ids, np.int64)
    lo, hi = (int(db_ids.min()), int(db_ids.max())) if db_ids.size else (0, 0)
    dt = np.uint8 if hi - lo < 255 else np.uint16 if hi - lo < 65535 else None
    db_c = np.zeros(db_ids.size + 64, dt or np.int64)
    if dt is None:
        db_c[:db_ids.size] = db_ids
        return q_ids, db_c
    np.subtract(db_ids, lo, out=db_c[:db_ids.size], casting="unsafe")
    inside = (q_ids >= lo) & (q_ids <= hi)
    return np.where(inside, q_ids - lo, np.iinfo(dt).max).astype(dt), db_c


def ranking_pass(qw, dw_t, q_ids, db_ids, q_lw, db_lw_t, n_bits, k, fill, ap, n_all, n_rel, gain, ranked,
                 *, prepared=False):
    """Fills ``ap`` (n_q,), ``n_all``/``n_rel``/``gain`` (n_q, n_bits + 1) and ``ranked`` (n_q, fill).

    qw (n_q, W), dw_t (W, n_db): packed codes (database transposed). Labels: class ids
    ``q_ids`` (n_q,), ``db_ids`` (n_db,) when ``q_lw`` has no columns (``prepared``: already
    :func:`class_ids`' output, to convert them once for several calls); otherwise packed
    multi-hot words ``q_lw`` (n_q, L) and ``db_lw_t`` (L, n_db). Codes of up to 65,535 bits.
    """
    n_db = dw_t.shape[1]
    if q_lw.shape[1]:
        q_ids, db_ids = np.zeros(len(qw), np.uint8), np.zeros(n_db + 64, np.uint8)
    elif not prepared:
        q_ids, db_ids = class_ids(q_ids, db_ids)
    dist = np.uint8 if n_bits < 2**8 else np.uint16
    rank = np.int32 if n_db < 2**31 else np.int64   # relevant items before an item in its bucket
    _pass(qw, dw_t, q_ids, db_ids, q_lw, db_lw_t, n_bits, k, fill, ap, n_all, n_rel, gain, ranked,
          np.zeros(0, dist), np.zeros(0, rank))


@numba.njit(parallel=True, cache=True, nogil=True)
def _pass(qw, dw_t, q_ids, db_ids, q_lw, db_lw_t, n_bits, k, fill, ap, n_all, n_rel, gain, ranked,
          dist_type, rank_type):
    n_q, n_w = qw.shape
    n_db = dw_t.shape[1]
    n_lw = q_lw.shape[1]
    nb = n_bits + 1
    dt = dist_type.dtype.type
    one = np.uint64(1)
    byte = np.uint64(255)
    for i in numba.prange(n_q):
        cnt = np.zeros((2, nb), np.int64)        # items per distance so far, 2 interleaved copies
        c0, c1 = cnt[0], cnt[1]
        crel = np.zeros(nb, np.int64)            # relevant items per distance so far
        dist = np.zeros(_CHUNK + 64, dist_type.dtype)
        dist64 = dist.view(np.uint64)
        relm = np.zeros(_CHUNK // 64, np.uint64)  # relevance bits of the chunk's 64-item blocks
        g = np.ones(_CHUNK if n_lw else 0, np.int64)
        isrel = np.zeros(_CHUNK + 64 if n_lw else 0, np.uint8)
        rec = np.empty(n_db, np.int64)           # relevant items: distance << 40 | position in bucket
        rrank = np.empty(n_db, rank_type.dtype)  # ... and the relevant items before it in its bucket
        rgain = np.ones(n_db if n_lw else 0, np.int64)
        nr = 0
        c = q_ids[i]
        for s in range(0, n_db, _CHUNK):
            m = min(_CHUNK, n_db - s)
            nblk = (m + 63) >> 6
            # 1. distances, vectorised; relevance bits per 64-item block
            x = qw[i, 0]
            col = dw_t[0, s:s + m]
            for j in range(m):
                dist[j] = dt(_ctpop(x ^ col[j]))
            for w in range(1, n_w):
                x = qw[i, w]
                col = dw_t[w, s:s + m]
                for j in range(m):
                    dist[j] += dt(_ctpop(x ^ col[j]))
            if n_lw:
                g[:m] = 0
                for w in range(n_lw):
                    y = q_lw[i, w]
                    col = db_lw_t[w, s:s + m]
                    for j in range(m):
                        g[j] += np.int64(_ctpop(y & col[j]))
                for j in range(m):
                    isrel[j] = g[j] > 0
                for bi in range(nblk):
                    relm[bi] = _eq64(isrel, 64 * bi, 1)
            else:
                for bi in range(nblk):
                    relm[bi] = _eq64(db_ids, s + 64 * bi, c)
            if m & 63:  # a last short block: no relevant item, and distance 0, past its end
                relm[nblk - 1] &= (one << np.uint64(m & 63)) - one
                dist[m:64 * nblk] = 0
            for bi in range(nblk):
                b = 64 * bi
                # 2a. the block's relevant items, in index order: (distance, position in bucket,
                # relevant items before it in bucket); counters as at the block's start
                rel = relm[bi]
                if n_lw:  # their gains, in a loop of their own (keeps the loop below short)
                    r2 = rel
                    e = nr
                    while r2:
                        rgain[e] = g[np.uintp(b) + _ctz(r2)]
                        r2 &= r2 - one
                        e += 1
                recv, rrv = rec[nr:], rrank[nr:]
                nr += np.int64(_ctpop(rel))
                e = 0
                while rel:
                    t = _ctz(rel)
                    rel &= rel - one
                    h = dist[np.uintp(b) + t]
                    before = _eq64(dist, b, h) & ((one << t) - one)
                    recv[e] = (np.int64(h) << _SHIFT) | (c0[h] + c1[h] + np.int64(_ctpop(before)))
                    r = crel[h]
                    crel[h] = r + 1
                    rrv[e] = r
                    e += 1
                # 2b. every item of the block bumps its distance's counter (copy = offset % 2)
                if dist.itemsize == 1:  # 8 distances per 64-bit load
                    d8 = dist64[8 * bi:8 * bi + 8]
                    for j in range(8):
                        wd = d8[j]
                        c0[wd & byte] += 1
                        c1[(wd >> np.uint64(8)) & byte] += 1
                        c0[(wd >> np.uint64(16)) & byte] += 1
                        c1[(wd >> np.uint64(24)) & byte] += 1
                        c0[(wd >> np.uint64(32)) & byte] += 1
                        c1[(wd >> np.uint64(40)) & byte] += 1
                        c0[(wd >> np.uint64(48)) & byte] += 1
                        c1[wd >> np.uint64(56)] += 1
                else:
                    kb = dist[b:b + 64]
                    for j in range(0, 64, 2):
                        c0[kb[j]] += 1
                        c1[kb[j + 1]] += 1
            for j in range(m, 64 * nblk):  # the padding of a last short block counted distance 0
                cnt[j & 1, 0] -= 1
        # 3. histograms, then AP over the relevant items in index order
        pos = np.zeros(nb, np.int64)   # items at smaller distances
        rpos = np.zeros(nb, np.int64)  # relevant items at smaller distances, + 1
        tot, rtot = 0, 0
        for h in range(nb):
            n_all[i, h] = c0[h] + c1[h]
            n_rel[i, h] = crel[h]
            pos[h], rpos[h] = tot, rtot + 1
            tot += n_all[i, h]
            rtot += crel[h]
        if n_lw:
            for e in range(nr):
                gain[i, rec[e] >> _SHIFT] += rgain[e]
        else:
            gain[i] = n_rel[i]
        acc = 0.0
        hits = 0
        for e in range(nr):
            h = rec[e] >> _SHIFT
            p = pos[h] + (rec[e] & ((np.int64(1) << _SHIFT) - 1))
            if p < k:
                acc += (rpos[h] + np.int64(rrank[e])) / (p + 1.0)
                hits += 1
            if p < fill:
                ranked[i, p] = True
        ap[i] = acc / hits if hits > 0 else 0.0
