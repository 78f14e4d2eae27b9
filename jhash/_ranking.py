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

1. a chunk of the database at a time, a vectorised loop writes each item's key
   ``2 * distance + relevant`` to a small buffer (uint8 for codes of < 128 bits);
2. per block of 64 keys: a vector compare gives the block's relevance bits; for each set bit
   (a relevant item at block offset t), ``s_j`` is the counters' value at its distance at the
   block start plus the number of earlier keys of the block at that distance (a second
   64-key vector compare, masked to offsets < t, and a popcount); the item's ``(h, s_j)`` is
   recorded. Then every key of the block bumps the counter of its key (4 interleaved copies:
   items j, j+1, j+2, j+3 go to different copies, so consecutive items with the same key do
   not wait on each other's store). The only unpredictable branch is the end of the loop
   over a block's relevance bits (one per 64 items, not one per relevant item; a second loop
   over the same bits copies multi-hot gains);
3. a pass over the recorded relevant items (about n_db / classes of them), in index order:
   rank ``p = N_h + s_j``, relevant items up to it ``R_h + t`` (t-th relevant one of its
   bucket), AP term ``(R_h + t) / (p + 1)``, added in index order (the same sum, term by
   term, as a visit of every item in index order).

Queries run in parallel threads (numba's prange). Hot loops index row views from 0 (numba
wraps negative indices, so ``a[s + j]`` with a signed ``s + j`` costs a compare per load and
blocks vectorisation). See experiments/bench/speed_floor.py for the distance to the floor.
"""
from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic


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


# numba has no vector compare-to-bitmask (x86 movemask) primitive: these three are LLVM IR.
@intrinsic
def _mask64(typingctx, arr, start, andv, value):
    """Bit j of the uint64 result = ``(arr[start + j] & andv) == value`` for j < 64 (one vector
    compare of 64 elements and a movemask on x86); ``arr[start:start + 64]`` must exist."""
    dt = arr.dtype
    sig = types.uint64(arr, start, andv, value)

    def codegen(context, builder, signature, args):
        a, st, av, v = args
        data = context.make_array(signature.args[0])(context, builder, a).data
        st = context.cast(builder, st, signature.args[1], types.intp)
        av = context.cast(builder, av, signature.args[2], dt)
        v = context.cast(builder, v, signature.args[3], dt)
        vty = ir.VectorType(context.get_data_type(dt), 64)
        zeros = ir.Constant(ir.VectorType(ir.IntType(32), 64), [0] * 64)

        def splat(x):
            one = builder.insert_element(ir.Constant(vty, ir.Undefined), x, ir.Constant(ir.IntType(32), 0))
            return builder.shuffle_vector(one, ir.Constant(vty, ir.Undefined), zeros)
        vec = builder.load(builder.bitcast(builder.gep(data, [st]), vty.as_pointer()), align=1)
        return builder.bitcast(builder.icmp_unsigned("==", builder.and_(vec, splat(av)), splat(v)), ir.IntType(64))
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


_CHUNK = 1024  # database items per key buffer (L1-resident; a multiple of 64)
_SHIFT = 40    # record = distance << 40 | position within the distance bucket


def ranking_pass(qw, dw_t, q_ids, db_ids, q_lw, db_lw_t, n_bits, k, fill, ap, n_all, n_rel, gain, ranked):
    """Fills ``ap`` (n_q,), ``n_all``/``n_rel``/``gain`` (n_q, n_bits + 1) and ``ranked`` (n_q, fill).

    qw (n_q, W), dw_t (W, n_db): packed codes (database transposed). Labels: class ids
    ``q_ids`` (n_q,), ``db_ids`` (n_db,) when ``q_lw`` has no columns; otherwise packed
    multi-hot words ``q_lw`` (n_q, L) and ``db_lw_t`` (L, n_db). Codes of up to 65,535 bits.
    """
    key = np.uint8 if n_bits < 2**7 else np.uint16 if n_bits < 2**15 else np.uint32  # 2 * distance + 1 fits
    _pass(qw, dw_t, q_ids, db_ids, q_lw, db_lw_t, n_bits, k, fill, ap, n_all, n_rel, gain, ranked,
          np.zeros(0, key))


@numba.njit(parallel=True, cache=True, nogil=True)
def _pass(qw, dw_t, q_ids, db_ids, q_lw, db_lw_t, n_bits, k, fill, ap, n_all, n_rel, gain, ranked, key_type):
    n_q, n_w = qw.shape
    n_db = dw_t.shape[1]
    n_lw = q_lw.shape[1]
    nb = n_bits + 1
    kt = key_type.dtype.type
    one = np.uint64(1)
    for i in numba.prange(n_q):
        cnt = np.zeros((2 * nb, 4), np.int64)    # items per key so far, 4 interleaved copies
        key = np.zeros(_CHUNK, key_type.dtype)   # 2 * distance + relevant
        g = np.ones(_CHUNK if n_lw else 0, np.int64)
        rec = np.empty(n_db, np.int64)           # relevant items: distance << 40 | position in bucket
        rgain = np.ones(n_db if n_lw else 0, np.int64)
        nr = 0
        for s in range(0, n_db, _CHUNK):
            m = min(_CHUNK, n_db - s)
            # 1. keys, vectorised
            if n_lw:
                g[:m] = 0
                for w in range(n_lw):
                    y = q_lw[i, w]
                    col = db_lw_t[w, s:s + m]
                    for j in range(m):
                        g[j] += np.int64(_ctpop(y & col[j]))
            x = qw[i, 0]
            col = dw_t[0, s:s + m]
            if n_w == 1 and n_lw == 0:
                c = q_ids[i]
                ids = db_ids[s:s + m]
                for j in range(m):
                    key[j] = kt((_ctpop(x ^ col[j]) << one) | (ids[j] == c))
            else:
                for j in range(m):
                    key[j] = kt(_ctpop(x ^ col[j]))
                for w in range(1, n_w):
                    x = qw[i, w]
                    col = dw_t[w, s:s + m]
                    for j in range(m):
                        key[j] += kt(_ctpop(x ^ col[j]))
                if n_lw == 0:
                    c = q_ids[i]
                    ids = db_ids[s:s + m]
                    for j in range(m):
                        key[j] = (key[j] << kt(1)) | kt(ids[j] == c)
                else:
                    for j in range(m):
                        key[j] = (key[j] << kt(1)) | kt(g[j] > 0)
            for b in range(0, m, 64):
                mb = min(64, m - b)
                # 2a. the block's relevant items, in index order: (distance, position in bucket)
                rel = _mask64(key, b, 1, 1)
                if mb < 64:
                    rel &= (one << np.uint64(mb)) - one
                if n_lw:  # their gains, in a loop of their own (keeps the loop below short)
                    r2 = rel
                    e = nr
                    while r2:
                        rgain[e] = g[np.uintp(b) + _ctz(r2)]
                        r2 &= r2 - one
                        e += 1
                recv = rec[nr:]
                nr += np.int64(_ctpop(rel))
                e = np.uintp(0)
                while rel:
                    t = _ctz(rel)
                    rel &= rel - one
                    h2 = key[np.uintp(b) + t] & kt(~1)
                    before = _mask64(key, b, ~1, h2) & ((one << t) - one)
                    sb = (cnt[h2, 0] + cnt[h2, 1] + cnt[h2, 2] + cnt[h2, 3]
                          + cnt[h2 + 1, 0] + cnt[h2 + 1, 1] + cnt[h2 + 1, 2] + cnt[h2 + 1, 3])
                    recv[e] = (np.int64(h2 >> kt(1)) << _SHIFT) | (sb + np.int64(_ctpop(before)))
                    e += np.uintp(1)
                # 2b. every item of the block bumps its key's counter
                kb = key[b:b + mb]
                m4 = mb - mb % 4
                for j in range(0, m4, 4):
                    cnt[kb[j], 0] += 1
                    cnt[kb[j + 1], 1] += 1
                    cnt[kb[j + 2], 2] += 1
                    cnt[kb[j + 3], 3] += 1
                for j in range(m4, mb):
                    cnt[kb[j], 0] += 1
        # 3. histograms, then AP over the relevant items in index order
        for h in range(nb):
            n_all[i, h] = (cnt[2 * h, 0] + cnt[2 * h, 1] + cnt[2 * h, 2] + cnt[2 * h, 3]
                           + cnt[2 * h + 1, 0] + cnt[2 * h + 1, 1] + cnt[2 * h + 1, 2] + cnt[2 * h + 1, 3])
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
