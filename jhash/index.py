"""A packed-code Hamming index: exact top-k ranking, radius search, add / remove, save / load.

``HammingIndex(bits)`` holds binary codes of ``bits`` bits with stable integer ids.  Codes go
in as +-1 matrices ``(n, bits)`` (any numeric dtype, packed by :func:`jhash.codes.pack`) or as
already packed uint8 rows ``(n, ceil(bits / 8))`` (``jhash.codes.pack``'s bit order, padding
bits 0).  They are stored as rows of uint64 words (the packed bytes read as little-endian
words), so a distance is one XOR + popcount per 64 bits.

Ordering
--------
Items are kept sorted by id (the default ids are 0, 1, 2, ... in insertion order), and every
result is sorted by (Hamming distance, id): ties are broken by id ascending.  An index built
from a database matrix with the default ids therefore ranks exactly like
:mod:`jhash.metrics` (ties by database index).

Search
------
* :meth:`HammingIndex.search` -- exact top-k: ``(ids, distances)`` of shape
  ``(n_query, min(k, len(index)))`` (no padding: with k > n every item is returned).  A
  compiled scan (:mod:`jhash._index_kernels`) over blocks of ``query_chunk`` queries and
  ``db_chunk`` database rows, keeping per query a buffer of O(k) candidates and a distance
  threshold: no distance matrix and no sort.  The scan reads the words column-major (a copy
  of the codes for more than 64 bits, kept until the next add / remove).  With ``mesh=`` the database is sharded over
  the mesh's ``'data'`` axis and each device computes its top-k in JAX (XOR +
  ``population_count``, ``lax.top_k``, which keeps the lower index first on ties), merged into
  the same result as one device.
* :meth:`HammingIndex.range_search` -- every item within radius r, as a :class:`RangeResult`
  (CSR: ``lims``, ``ids``, ``distances``), each query's items sorted by (distance, id).
  ``method="table"`` enumerates the Hamming ball of the query (sum_{d<=r} C(bits, d) probes
  of a hash table of the codes); ``method="mih"`` is multi-index hashing (Norouzi, Punjani,
  Fleet, "Fast search in Hamming space with multi-index hashing", CVPR 2012): the codes are
  cut into m substrings, each with its own table; if ``r = m r' + a`` (0 <= a < m), any item
  within r has a substring within r' among the first a + 1 substrings or within r' - 1 among
  the others (pigeonhole), so probing those balls finds every candidate, and each is verified
  by its full distance; ``method="scan"`` is the exhaustive scan.  ``"auto"`` (default)
  picks the one with the smallest estimated cost (:func:`plan_range_search`).  All three
  return the same exact result.

Files
-----
:meth:`HammingIndex.save` writes an ``.npz`` with a format name, a format version, bits,
ids, packed codes and a SHA-256 of them; :meth:`HammingIndex.load` raises
:class:`IndexFileError` (a ``ValueError``) naming the path and the problem for a truncated,
corrupted or foreign file.  :meth:`HammingIndex.to_faiss` / :meth:`HammingIndex.from_faiss`
convert to and from ``faiss.IndexBinaryFlat`` (optional dependency: ``pip install
jhash[faiss]``).
"""
from __future__ import annotations

import functools
import hashlib
import math
import pathlib
import warnings
import zipfile
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numba
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from jhash import _index_kernels as _k
from jhash import codes as _codes
from jhash import io as jio

__all__ = ["HammingIndex", "RangeResult", "IndexFileError", "plan_range_search"]

FORMAT = "jhash.HammingIndex"
FORMAT_VERSION = 1
# Relative cost of one table probe / candidate check (a random memory access) and of one
# word of an exhaustive scan (streamed, vectorised); only used to choose a method.
_SCAN_COST = 0.005
# Result slots per query in a radius search's one pass (a query with more items runs again).
_RANGE_SLOTS = 32


class IndexFileError(ValueError):
    """An index file that cannot be loaded (truncated, corrupted, foreign or too new)."""

    def __init__(self, path, problem):
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = str(path), problem


class RangeResult(NamedTuple):
    """Radius-search result in CSR form: query i's items are ``ids[lims[i]:lims[i + 1]]``
    (int64) at ``distances[lims[i]:lims[i + 1]]`` (int32), sorted by (distance, id)."""

    lims: np.ndarray
    ids: np.ndarray
    distances: np.ndarray

    def per_query(self):
        """The result as a list of ``(ids, distances)`` pairs, one per query."""
        return [(self.ids[s:e], self.distances[s:e]) for s, e in zip(self.lims[:-1], self.lims[1:])]


# ------------------------------------------------------------------------------ layout
def _n_bytes(bits):
    return -(-bits // 8)


def _n_words(bits):
    return max(1, -(-bits // 64))


def _bit_location(bits):
    """(word, mask) of each code bit in the uint64 row layout: bit p is bit 7 - p % 8 of byte
    p // 8 (``jhash.codes.pack``), and byte b is bits 8 (b % 8) .. of word b // 8."""
    p = np.arange(bits)
    shift = 8 * ((p // 8) % 8) + 7 - p % 8
    return (p // 64).astype(np.int64), np.left_shift(np.uint64(1), shift.astype(np.uint64))


def _rows_to_words(rows, bits):
    """Packed uint8 rows (n, ceil(bits / 8)) -> uint64 words (n, ceil(bits / 64))."""
    buf = np.zeros((rows.shape[0], _n_words(bits) * 8), np.uint8)
    buf[:, : rows.shape[1]] = rows
    return buf.view("<u8").astype(np.uint64, copy=False)


def _words_to_rows(words, bits):
    return np.ascontiguousarray(words.astype("<u8", copy=False).view(np.uint8)[:, : _n_bytes(bits)])


def _as_words(codes, bits, name, chunk=1 << 16):
    """+-1 codes (n, bits) or packed uint8 rows (n, ceil(bits / 8)) -> uint64 words."""
    shape = getattr(codes, "shape", None)
    if shape is None:
        codes = np.asarray(codes)
        shape = codes.shape
    if len(shape) != 2:
        raise ValueError(f"{name} must be 2-D: +-1 codes (n, {bits}) or packed uint8 rows "
                         f"(n, {_n_bytes(bits)}), got shape {tuple(shape)}")
    if np.dtype(codes.dtype) == np.uint8:
        rows = np.asarray(codes)
        if rows.shape[1] != _n_bytes(bits):
            raise ValueError(f"{name} is packed uint8 with {rows.shape[1]} bytes per code; a "
                             f"{bits}-bit index expects {_n_bytes(bits)}")
        if bits % 8 and rows.size and np.any(rows[:, -1] & np.uint8((1 << (8 - bits % 8)) - 1)):
            raise ValueError(f"{name} has nonzero padding bits: packed {bits}-bit codes must keep "
                             f"the last {8 - bits % 8} bits of each row 0 (jhash.codes.pack)")
        return _rows_to_words(rows, bits)
    if shape[1] != bits:
        raise ValueError(f"{name} has {shape[1]} bits per code; the index holds {bits}-bit codes "
                         f"(or pass packed uint8 rows of {_n_bytes(bits)} bytes)")
    out = [_rows_to_words(np.asarray(_codes.pack(codes[s:s + chunk])), bits)
           for s in range(0, shape[0], chunk)]
    return np.concatenate(out) if out else np.zeros((0, _n_words(bits)), np.uint64)


def _check_int(value, name, low):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


# ----------------------------------------------------------------------- range planning
def _ball_size(length, radius):
    return sum(math.comb(length, d) for d in range(min(radius, length) + 1)) if radius >= 0 else 0


def _mih_layout(bits, n, r, m):
    """Substring bounds and per-substring probing radii for m substrings."""
    bounds = [j * bits // m for j in range(m + 1)]
    rp, a = divmod(r, m)
    radii = [rp if j <= a else rp - 1 for j in range(m)]
    return bounds, radii


def _default_m(bits, n):
    m = round(bits / max(1.0, math.log2(max(n, 2))))
    return int(min(bits, max(_n_words(bits), m, 1)))


def plan_range_search(bits, n, r, method="auto", m=None):
    """The radius-search plan ``(method, m)`` and the estimated costs by method.

    Costs (in random-access units, for uniformly spread codes): ``table`` = ball probes;
    ``mih`` = sum over substrings of probes + expected candidates ``n * probes / 2**length``;
    ``scan`` = ``n * words * 0.005``.  ``m`` (MIH substrings) defaults to
    ``bits / log2(n)`` (Norouzi et al.), at least ``ceil(bits / 64)`` (a substring is <= 64 bits).
    """
    if method not in ("auto", "table", "mih", "scan"):
        raise ValueError(f"method must be 'auto', 'table', 'mih' or 'scan', got {method!r}")
    if m is None:
        m = _default_m(bits, n)
    elif _check_int(m, "m", 1) > bits or -(-bits // m) > 64:
        raise ValueError(f"m must be between {_n_words(bits)} and {bits} for {bits}-bit codes "
                         f"(substrings of 1..64 bits), got {m}")
    bounds, radii = _mih_layout(bits, n, r, m)
    mih = sum(_ball_size(hi - lo, rad) * (1 + n / 2.0 ** (hi - lo))
              for lo, hi, rad in zip(bounds[:-1], bounds[1:], radii))
    costs = {"table": float(_ball_size(bits, r)), "mih": float(mih),
             "scan": n * _n_words(bits) * _SCAN_COST}
    if method == "auto":
        method = min(costs, key=costs.get)
    return method, int(m), costs


class _Tables(NamedTuple):
    keys: np.ndarray      # (m, n, Wk) uint64, rows in bucket order
    perm: np.ndarray      # (m, n) positions
    starts: np.ndarray    # (m, n_buckets + 1)
    shift: int
    fw: np.ndarray        # (m, P) word of each flippable key bit
    fm: np.ndarray        # (m, P) its mask
    npos: np.ndarray      # (m,) number of key bits
    submask: np.ndarray   # (m, W) the code bits each key holds, in the full-code layout
    bounds: tuple         # substring bounds (None for the whole-code table)


# ------------------------------------------------------------------------------ index
class HammingIndex:
    """Binary codes of ``bits`` bits with stable integer ids (see the module docstring).

    ``HammingIndex(bits, codes=None, ids=None)``; ``len(index)`` is the number of items.
    """

    def __init__(self, bits: int, codes=None, ids=None):
        self.bits = _check_int(bits, "bits", 1)
        if self.bits >= 2**16:
            raise ValueError(f"bits must be < 65536, got {bits}")
        self._words = np.zeros((0, _n_words(self.bits)), np.uint64)
        self._ids = np.zeros(0, np.int64)
        self._next_id = 0
        self._cache = {}
        if codes is not None:
            self.add(codes, ids)
        elif ids is not None:
            raise ValueError("ids given without codes")

    def __len__(self):
        return int(self._ids.shape[0])

    def __repr__(self):
        return f"HammingIndex(bits={self.bits}, n={len(self)})"

    @property
    def ids(self) -> np.ndarray:
        """The ids of the items, ascending (a copy)."""
        return self._ids.copy()

    def packed_codes(self) -> np.ndarray:
        """The codes as packed uint8 rows ``(n, ceil(bits / 8))``, in id order."""
        return _words_to_rows(self._words, self.bits)

    # -------------------------------------------------------------------- mutation
    def add(self, codes, ids=None) -> np.ndarray:
        """Adds codes (+-1 ``(n, bits)`` or packed uint8 rows); returns their ids.

        ``ids=None`` numbers them on from the largest id ever given (0, 1, ... for a new
        index).  Given ids must be distinct integers not in the index.
        """
        words = _as_words(codes, self.bits, "codes")
        n = words.shape[0]
        if ids is None:
            ids = np.arange(self._next_id, self._next_id + n, dtype=np.int64)
        else:
            ids_arr = np.asarray(ids)
            if ids_arr.shape != (n,) or not (np.issubdtype(ids_arr.dtype, np.integer) or n == 0):
                raise ValueError(f"ids must be {n} integers (one per code), got shape "
                                 f"{ids_arr.shape} and dtype {ids_arr.dtype}")
            ids = ids_arr.astype(np.int64)
            if np.unique(ids).size != n:
                raise ValueError("ids must be distinct")
            taken = ids[np.isin(ids, self._ids)]
            if taken.size:
                raise ValueError(f"ids already in the index: {taken[:5].tolist()}")
        if n == 0:
            return ids
        all_ids = np.concatenate([self._ids, ids])
        all_words = np.concatenate([self._words, words])
        if (len(self) and ids.min() < self._ids[-1]) or np.any(np.diff(ids) < 0):
            order = np.argsort(all_ids, kind="stable")
            all_ids, all_words = all_ids[order], all_words[order]
        self._ids, self._words = all_ids, np.ascontiguousarray(all_words)
        self._next_id = max(self._next_id, int(ids.max()) + 1)
        self._cache.clear()
        return ids

    def remove(self, ids) -> None:
        """Removes the items with these ids (every one must be in the index)."""
        ids = np.asarray(ids)
        if ids.ndim != 1 or not (np.issubdtype(ids.dtype, np.integer) or ids.size == 0):
            raise ValueError(f"ids must be a 1-D array of integers, got shape {ids.shape} "
                             f"and dtype {ids.dtype}")
        missing = ids[~np.isin(ids, self._ids)]
        if missing.size:
            raise ValueError(f"ids not in the index: {missing[:5].tolist()}")
        keep = ~np.isin(self._ids, ids)
        self._ids, self._words = self._ids[keep], np.ascontiguousarray(self._words[keep])
        self._cache.clear()

    # --------------------------------------------------------------------- top-k
    def search(self, queries, k: int, *, query_chunk: int = 4096, db_chunk: int = 4096,
               mesh=None):
        """Exact top-k by (Hamming distance, id): ``(ids, distances)``, int64 and int32 arrays
        ``(n_query, min(k, len(self)))``.

        Queries are processed ``query_chunk`` at a time (output and scratch memory O(chunk *
        k)) and the database ``db_chunk`` rows at a time.  ``mesh``: a ``jax.sharding.Mesh``
        with a ``'data'`` axis (e.g. ``jhash.train.state.make_mesh()``) -- the database is
        sharded over it and each device computes its top-k in JAX; the result is identical.
        """
        qw = _as_words(queries, self.bits, "queries")
        k = _check_int(k, "k", 1)
        query_chunk = _check_int(query_chunk, "query_chunk", 1)
        db_chunk = _check_int(db_chunk, "db_chunk", 1)
        n_q, kk = qw.shape[0], min(k, len(self))
        if k > kk:
            warnings.warn(f"k={k} is larger than the index ({len(self)} items); the top {kk} are returned", stacklevel=2)
        pos = np.zeros((n_q, kk), np.int64)
        dist = np.zeros((n_q, kk), np.int32)
        if kk and n_q:
            # blocks of up to 16 queries share each database chunk; at least 2 blocks per thread
            q_block = max(1, min(16, -(-min(n_q, query_chunk) // (2 * numba.get_num_threads()))))
            for s in range(0, n_q, query_chunk):
                e = min(n_q, s + query_chunk)
                if mesh is None:
                    _k.topk_scan(qw[s:e], self._columns(), kk, self.bits, min(db_chunk, len(self)),
                                 q_block, pos[s:e], dist[s:e])
                else:
                    pos[s:e], dist[s:e] = self._search_sharded(qw[s:e], kk, mesh, db_chunk, e - s)
        return self._ids[pos], dist

    def _columns(self):
        """The words column-major, ``(W, n)``: a view for codes of <= 64 bits, else a copy kept
        until the next add / remove (the top-k scan vectorises across rows with it)."""
        if "columns" not in self._cache:
            self._cache["columns"] = np.ascontiguousarray(self._words.T)
        return self._cache["columns"]

    def _search_sharded(self, qw, k, mesh, db_chunk, n_rows):
        n_dev = mesh.shape["data"]
        n = len(self)
        chunk = max(1, min(db_chunk, -(-n // n_dev)))
        per_dev = -(-n // (n_dev * chunk)) * chunk
        key = ("sharded", id(mesh), chunk)
        if key not in self._cache:
            words32 = np.zeros((per_dev * n_dev, 2 * self._words.shape[1]), np.uint32)
            words32[:n] = self._words.view(np.uint32)
            self._cache[key] = (mesh, jax.device_put(words32, NamedSharding(mesh, P("data"))))
        db = self._cache[key][1]
        fn = _sharded_topk(mesh, k, chunk, per_dev, n, self.bits)
        d, p = fn(jax.device_put(qw.view(np.uint32), NamedSharding(mesh, P())), db)
        return np.asarray(p)[:n_rows], np.asarray(d)[:n_rows]

    # -------------------------------------------------------------------- radius
    def range_search(self, queries, r: int, *, method: str = "auto", m: int | None = None) -> RangeResult:
        """Every item within Hamming distance ``r`` of each query, sorted by (distance, id).

        ``method``: ``"auto"`` (default), ``"table"`` (Hamming-ball enumeration), ``"mih"``
        (multi-index hashing with ``m`` substrings) or ``"scan"``; see the module docstring.
        The tables are built on first use and kept until the index changes.
        """
        qw = _as_words(queries, self.bits, "queries")
        r = _check_int(r, "r", 0)
        method, m, _ = plan_range_search(self.bits, len(self), r, method, m)
        n_q, slots = qw.shape[0], _RANGE_SLOTS
        # One pass: every query's count, and its items while they fit its slots ...
        slot_lims = np.arange(n_q + 1, dtype=np.int64) * slots
        pos, dist = np.zeros(n_q * slots, np.int64), np.zeros(n_q * slots, np.int32)
        counts = self._range_pass(qw, r, method, m, slot_lims, pos, dist, True)
        lims = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        fits = counts <= slots
        keep = np.arange(slots) < np.where(fits, counts, 0)[:, None]
        out_pos, out_d = np.zeros(lims[-1], np.int64), np.zeros(lims[-1], np.int32)
        dest = (lims[:-1, None] + np.arange(slots))[keep]
        out_pos[dest], out_d[dest] = pos[keep.ravel()], dist[keep.ravel()]
        over = np.flatnonzero(~fits)
        if over.size:  # ... then the queries with more items, with exact room
            sub_lims = np.concatenate([[0], np.cumsum(counts[over])]).astype(np.int64)
            sub_pos, sub_d = np.zeros(sub_lims[-1], np.int64), np.zeros(sub_lims[-1], np.int32)
            self._range_pass(np.ascontiguousarray(qw[over]), r, method, m, sub_lims, sub_pos, sub_d, True)
            for j, i in enumerate(over):
                out_pos[lims[i]:lims[i + 1]] = sub_pos[sub_lims[j]:sub_lims[j + 1]]
                out_d[lims[i]:lims[i + 1]] = sub_d[sub_lims[j]:sub_lims[j + 1]]
        return RangeResult(lims, self._ids[out_pos], out_d)

    def range_count(self, queries, r: int, *, method: str = "auto", m: int | None = None) -> np.ndarray:
        """The number of items within Hamming distance ``r`` of each query (int64)."""
        return self._range_counts(queries, r, method, m)[1]

    def _range_counts(self, queries, r, method, m):
        qw = _as_words(queries, self.bits, "queries")
        r = _check_int(r, "r", 0)
        method, m, _ = plan_range_search(self.bits, len(self), r, method, m)
        empty = np.zeros(0, np.int64)
        counts = self._range_pass(qw, r, method, m, empty, empty, empty.astype(np.int32), False)
        return qw, counts, method, m

    def _range_pass(self, qw, r, method, m, lims, pos, dist, fill):
        if len(self) == 0 or qw.shape[0] == 0:
            return np.zeros(qw.shape[0], np.int64)
        if method == "scan":
            return _k.radius_scan(qw, self._words, r, lims, pos, dist, fill)
        t = self._tables(method, m)
        if method == "table":
            radii, qkeys = np.array([r], np.int64), qw[:, None, :]
        else:
            radii = np.array(_mih_layout(self.bits, len(self), r, m)[1], np.int64)
            qkeys = self._substring_keys(qw, t.bounds)
        return _k.ball_search(qw, self._words, np.ascontiguousarray(qkeys), t.keys, t.perm, t.starts,
                              t.shift, t.fw, t.fm, t.npos, radii, t.submask, r, lims, pos, dist, fill)

    def _substring_keys(self, words, bounds):
        fw, fm = _bit_location(self.bits)
        out = np.zeros((words.shape[0], len(bounds) - 1, 1), np.uint64)
        for j, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
            col = np.zeros(words.shape[0], np.uint64)
            _k.extract_bits(words, fw[lo:hi], fm[lo:hi], col)
            out[:, j, 0] = col
        return out

    def _tables(self, method, m):
        key = (method, m if method == "mih" else 1)
        if key in self._cache:
            return self._cache[key]
        n, n_w = self._words.shape
        log2 = max(1, int(math.ceil(math.log2(max(n, 2)))) - 1)
        fw, fm = _bit_location(self.bits)
        if method == "table":
            bounds, fws, fms, npos, submask = None, fw[None], fm[None], np.array([self.bits]), self._full_mask()[None]
            n_tab, n_kw = 1, n_w
        else:
            bounds = tuple(_mih_layout(self.bits, n, 0, m)[0])
            lengths = np.diff(bounds)
            fws = np.zeros((m, lengths.max()), np.int64)
            fms = np.left_shift(np.uint64(1), np.arange(lengths.max(), dtype=np.uint64))[None].repeat(m, 0)
            npos = lengths.astype(np.int64)
            submask = np.zeros((m, n_w), np.uint64)
            for j, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
                np.bitwise_or.at(submask[j], fw[lo:hi], fm[lo:hi])
            n_tab, n_kw = m, 1
        idx = np.int32 if n < 2**31 else np.int64  # halves the tables of a large index
        keys = np.empty((n_tab, n, n_kw), np.uint64)
        perms = np.empty((n_tab, n), idx)
        starts = np.empty((n_tab, (1 << log2) + 1), idx)
        for j in range(n_tab):
            kj = self._words if method == "table" else self._substring_keys(self._words, bounds[j:j + 2])[:, 0]
            p, st = _k.build_table(kj, log2)
            keys[j], perms[j], starts[j] = kj[p], p, st
        t = _Tables(keys, perms, starts, 64 - log2, np.ascontiguousarray(fws), np.ascontiguousarray(fms),
                    npos, submask, bounds)
        self._cache[key] = t
        return t

    def _full_mask(self):
        fw, fm = _bit_location(self.bits)
        mask = np.zeros(self._words.shape[1], np.uint64)
        np.bitwise_or.at(mask, fw, fm)
        return mask

    # ----------------------------------------------------------------------- files
    def save(self, path) -> pathlib.Path:
        """Writes the index to ``path`` (an ``.npz``; written to a temporary file and renamed)."""
        path = pathlib.Path(path)
        rows = self.packed_codes()
        fields = {"format": np.str_(FORMAT), "version": np.int64(FORMAT_VERSION),
                  "bits": np.int64(self.bits), "next_id": np.int64(self._next_id),
                  "ids": self._ids, "codes": rows}
        fields["sha256"] = np.str_(_digest(fields))
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a folder; give the index file's path (an .npz)")
        return jio.savez(path, **fields)

    @classmethod
    def load(cls, path) -> "HammingIndex":
        """Reads an index written by :meth:`save`; :class:`IndexFileError` if it is damaged."""
        path = pathlib.Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such index file")
        try:
            with np.load(path, allow_pickle=False) as z:
                names = set(z.files)
                if "format" not in names or str(z["format"]) != FORMAT:
                    raise IndexFileError(path, f"not a jhash index (no '{FORMAT}' format marker)")
                missing = {"version", "bits", "next_id", "ids", "codes", "sha256"} - names
                if missing:
                    raise IndexFileError(path, f"incomplete index file, missing {sorted(missing)}")
                version = int(z["version"])
                if version > FORMAT_VERSION:
                    raise IndexFileError(path, f"format version {version} is newer than the "
                                               f"supported {FORMAT_VERSION}")
                fields = {name: z[name] for name in ("format", "version", "bits", "next_id", "ids", "codes")}
                stored = str(z["sha256"])
        except IndexFileError:
            raise
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as e:
            raise IndexFileError(path, f"truncated or corrupted ({type(e).__name__}: {e})") from e
        if _digest(fields) != stored:
            raise IndexFileError(path, "checksum mismatch: the contents are corrupted")
        bits = int(fields["bits"])
        ids, rows = fields["ids"], fields["codes"]
        if (rows.dtype != np.uint8 or rows.ndim != 2 or ids.ndim != 1 or rows.shape[0] != ids.shape[0]
                or rows.shape[1] != _n_bytes(bits)):
            raise IndexFileError(path, f"inconsistent arrays: codes {rows.shape} {rows.dtype}, "
                                       f"ids {ids.shape} for {bits} bits")
        index = cls(bits, rows, ids.astype(np.int64))
        index._next_id = int(fields["next_id"])
        return index

    # ----------------------------------------------------------------------- faiss
    def to_faiss(self):
        """A ``faiss.IndexBinaryFlat`` holding the codes in id order (faiss id i = ``self.ids[i]``).

        faiss needs a multiple of 8 bits; the index's codes are padded with zero bits, which
        leaves every distance unchanged (query faiss with ``jhash.codes.pack``'s rows too).
        """
        import faiss

        index = faiss.IndexBinaryFlat(8 * _n_bytes(self.bits))
        if len(self):
            index.add(self.packed_codes())
        return index

    @classmethod
    def from_faiss(cls, index, bits: int | None = None, ids=None) -> "HammingIndex":
        """An index holding the codes of a ``faiss.IndexBinaryFlat`` (``bits`` defaults to its
        dimension; ``ids`` to 0..ntotal-1, faiss's ids)."""
        import faiss

        if not isinstance(index, faiss.IndexBinaryFlat):
            raise ValueError(f"index must be a faiss.IndexBinaryFlat, got {type(index).__name__}")
        bits = index.d if bits is None else bits
        if not (index.d - 8 < _check_int(bits, "bits", 1) <= index.d):
            raise ValueError(f"bits must be in ({index.d - 8}, {index.d}] for a faiss index of "
                             f"dimension {index.d}, got {bits}")
        rows = faiss.vector_to_array(index.xb).reshape(index.ntotal, index.code_size)
        return cls(bits, rows, ids)


def _digest(fields) -> str:
    h = hashlib.sha256()
    for name in ("format", "version", "bits", "next_id", "ids", "codes"):
        a = np.ascontiguousarray(fields[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------------------- sharded
@functools.lru_cache(maxsize=32)
def _sharded_topk(mesh, k, chunk, per_dev, n, bits):
    """A jitted top-k over a database of ``n`` rows sharded over ``mesh``'s ``'data'`` axis
    (``per_dev`` rows per device, scanned ``chunk`` rows at a time)."""
    big = bits + 1
    k_dev = min(k, per_dev)

    def local(qw, db):
        offset = jax.lax.axis_index("data") * per_dev

        def step(carry, c):
            best_d, best_p = carry
            blk = jax.lax.dynamic_slice_in_dim(db, c * chunk, chunk)
            d = jnp.sum(jax.lax.population_count(qw[:, None, :] ^ blk[None]).astype(jnp.int32), -1)
            p = offset + c * chunk + jnp.arange(chunk, dtype=jnp.int32)
            d = jnp.where(p < n, d, big)
            # Earlier positions first: the carry, then the chunk in order; top_k keeps the
            # lower index first on ties, so ties stay in position order.
            all_d = jnp.concatenate([best_d, d], axis=1)
            all_p = jnp.concatenate([best_p, jnp.broadcast_to(p, d.shape)], axis=1)
            neg, idx = jax.lax.top_k(-all_d, k_dev)
            return (-neg, jnp.take_along_axis(all_p, idx, axis=1)), None

        init = (jnp.full((qw.shape[0], k_dev), big, jnp.int32), jnp.full((qw.shape[0], k_dev), -1, jnp.int32))
        init = jax.lax.pcast(init, ("data",), to="varying")  # the carry differs per device
        (best_d, best_p), _ = jax.lax.scan(step, init, jnp.arange(per_dev // chunk))
        return best_d, best_p

    sharded = jax.shard_map(local, mesh=mesh, in_specs=(P(), P("data")),
                            out_specs=(P(None, "data"), P(None, "data")))

    @jax.jit
    def fn(qw, db):
        d, p = sharded(qw, db)  # (n_q, devices * k_dev), device blocks in position order
        neg, idx = jax.lax.top_k(-d, k)
        return -neg, jnp.take_along_axis(p, idx, axis=1)

    return fn
