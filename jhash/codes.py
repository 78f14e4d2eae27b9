"""Binary codes: +-1 <-> {0,1} bits <-> packed words, Hamming distances, code statistics.

Conventions
-----------
* A *code matrix* is a 2-D array ``(n, q)`` with entries in ``{-1, +1}`` (any integer or
  float dtype); ``q`` is the number of bits.
* *Bits* are ``{0, 1}`` (uint8): ``+1 -> 1`` and ``-1 -> 0``.
* *Packed* codes are ``(n, ceil(q / w))`` unsigned words of ``w`` bits (uint8: w=8,
  uint16: 16, uint32: 32).  Bit ``i`` of a code goes to word ``i // w``, **most-significant
  bit first** within a word (bit ``i`` is bit ``w - 1 - i % w`` of its word), and padding
  bits are 0.  Hence ``pack(c)`` (uint8) equals ``np.packbits(c > 0, axis=1)`` and the
  uint32 words are the big-endian reading of those bytes.  Padding bits are 0 in every
  code, so they never contribute to a Hamming distance.

All array math is written with ``jax.numpy`` and works under ``jax.jit``; values are exact
integers.  Value checks (entries really are +-1) run only on concrete arrays: inside a
traced function they are skipped.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "sign", "to_bits", "from_bits", "pack", "unpack", "hamming_distance",
    "hamming_distance_pm1", "bit_balance", "bit_correlation", "num_distinct",
    "check_codes", "word_bits",
]

_WORD_DTYPES = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16, np.dtype(np.uint32): 32}

# Memory budget (bytes) for the intermediate of one Hamming-distance block.
_HAMMING_BLOCK_BYTES = 256 * 2**20


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def check_codes(codes, name: str = "codes", ndim: int = 2):
    """Raise ``ValueError`` (naming ``name``) unless ``codes`` is an ``ndim``-D +-1 array.

    The value check is done only for concrete (non-traced) arrays.  Returns ``codes``.
    """
    shape = getattr(codes, "shape", None)
    if shape is None:
        codes = np.asarray(codes)
        shape = codes.shape
    if len(shape) != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array of +-1 codes, got shape {tuple(shape)}")
    dtype = np.dtype(codes.dtype)
    if dtype == np.bool_ or not (np.issubdtype(dtype, np.number) or jnp.issubdtype(dtype, jnp.floating)):  # bfloat16 too
        raise ValueError(f"{name} must hold +-1 numbers, got dtype {dtype}")
    if _is_concrete(codes) and codes.size:
        a = np.asarray(codes)
        rows = max(1, (1 << 22) // max(1, a[:1].size))  # checked ~4M values at a time: no full-size temporaries
        for s in range(0, len(a), rows):
            part = a[s:s + rows]
            if not np.all(np.abs(part) == 1):
                bad = part[np.abs(part) != 1].ravel()[:3]
                raise ValueError(f"{name} must contain only -1 and +1, found e.g. {bad.tolist()}")
    return codes


def word_bits(dtype) -> int:
    """Number of bits of a packing word dtype (uint8 -> 8, uint16 -> 16, uint32 -> 32)."""
    dtype = np.dtype(dtype)
    if dtype not in _WORD_DTYPES:
        raise ValueError(f"dtype must be one of uint8, uint16, uint32, got {dtype}")
    return _WORD_DTYPES[dtype]


def sign(u):
    """Binarise real values to +-1 int8: ``u >= 0 -> +1``, ``u < 0 -> -1``.

    Unlike ``jnp.sign`` this maps 0 to +1 (so every output is a valid bit); NaN maps to -1.
    """
    u = jnp.asarray(u)
    return jnp.where(u >= 0, 1, -1).astype(jnp.int8)


def to_bits(codes):
    """+-1 codes -> {0,1} uint8 bits (``+1 -> 1``)."""
    check_codes(codes, "codes", ndim=getattr(codes, "ndim", np.ndim(codes)))
    return (jnp.asarray(codes) > 0).astype(jnp.uint8)


def from_bits(bits):
    """{0,1} (or boolean) bits -> +-1 int8 codes (``1 -> +1``, ``0 -> -1``)."""
    bits = jnp.asarray(bits)
    if _is_concrete(bits) and bits.size and not bool(jnp.all((bits == 0) | (bits == 1))):
        raise ValueError("bits must contain only 0 and 1")
    return jnp.where(bits > 0, 1, -1).astype(jnp.int8)


@functools.partial(jax.jit, static_argnames=("dtype",))
def _pack(codes, dtype):
    w = _WORD_DTYPES[np.dtype(dtype)]
    n, q = codes.shape
    nw = -(-q // w)
    bits = (codes > 0).astype(dtype)
    bits = jnp.pad(bits, ((0, 0), (0, nw * w - q)))
    bits = bits.reshape(n, nw, w)
    shifts = jnp.arange(w - 1, -1, -1, dtype=dtype)
    # Bits are disjoint, so the sum is an OR; it is exact in the word dtype.
    return jnp.sum(bits << shifts, axis=-1, dtype=dtype)


def pack(codes, dtype=np.uint8):
    """Pack +-1 codes ``(n, q)`` into ``(n, ceil(q / w))`` words of ``dtype``.

    ``dtype`` is uint8 (default, w=8), uint16 or uint32.  Bit order: see the module
    docstring (MSB first; uint8 packing equals ``np.packbits(codes > 0, axis=1)``).
    """
    check_codes(codes, "codes")
    word_bits(dtype)
    return _pack(jnp.asarray(codes), np.dtype(dtype).type)


@functools.partial(jax.jit, static_argnames=("n_bits",))
def _unpack(packed, n_bits):
    w = _WORD_DTYPES[np.dtype(packed.dtype)]
    shifts = jnp.arange(w - 1, -1, -1, dtype=packed.dtype)
    bits = (packed[..., None] >> shifts) & 1
    bits = bits.reshape(packed.shape[0], -1)[:, :n_bits]
    return jnp.where(bits > 0, 1, -1).astype(jnp.int8)


def _check_packed(packed, name):
    if getattr(packed, "ndim", None) != 2:
        raise ValueError(f"{name} must be a 2-D array of packed words, got shape "
                         f"{getattr(packed, 'shape', None)}")
    if np.dtype(packed.dtype) not in _WORD_DTYPES:
        raise ValueError(f"{name} must have dtype uint8, uint16 or uint32, got {packed.dtype}")


def unpack(packed, n_bits: int):
    """Inverse of :func:`pack`: packed words ``(n, nw)`` -> +-1 int8 codes ``(n, n_bits)``.

    The word size is read from ``packed.dtype``.
    """
    packed = jnp.asarray(packed)
    _check_packed(packed, "packed")
    w = word_bits(packed.dtype)
    n_bits = int(n_bits)
    if not (0 <= n_bits <= packed.shape[1] * w) or -(-n_bits // w) != packed.shape[1]:
        raise ValueError(f"n_bits={n_bits} does not fit {packed.shape[1]} words of {w} bits")
    return _unpack(packed, n_bits)


def _hamming_block(a, b):
    """XOR + popcount of every row of ``a`` against every row of ``b`` -> int32 (na, nb)."""
    x = jax.lax.population_count(a[:, None, :] ^ b[None, :, :]).astype(jnp.int32)
    return jnp.sum(x, axis=-1)


def _default_chunk(n_b: int, n_words: int) -> int:
    per_row = max(1, n_b * max(n_words, 1) * 4)
    return int(max(1, min(65536, _HAMMING_BLOCK_BYTES // per_row)))


_hamming_jit = jax.jit(_hamming_block)


def _host_words(packed):
    """Packed rows of any word dtype -> uint64 words (the row's bytes, zero-padded to 8)."""
    rows = np.ascontiguousarray(packed).view(np.uint8).reshape(packed.shape[0], -1)
    out = np.zeros((rows.shape[0], max(1, -(-rows.shape[1] // 8)) * 8), np.uint8)
    out[:, :rows.shape[1]] = rows
    return out.view(np.uint64)


def _on_host(x) -> bool:
    return isinstance(x, np.ndarray) or (
        isinstance(x, jax.Array) and _is_concrete(x) and all(d.platform == "cpu" for d in x.devices()))


def _aligned_empty(shape, dtype, align=64):
    """An uninitialised array whose data starts on a 64-byte boundary (jax then wraps it
    without a copy)."""
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    buf = np.empty(size + align, np.uint8)
    start = -buf.ctypes.data % align
    return buf[start:start + size].view(dtype).reshape(shape)


def hamming_distance(a_packed, b_packed, chunk_size: int | None = None):
    """Hamming distances between packed codes: int32 ``(n_a, n_b)`` via XOR + popcount.

    ``a_packed`` and ``b_packed`` are outputs of :func:`pack` with the same dtype and
    number of words.  Concrete arrays on the CPU (numpy, or jax arrays on a CPU device) go
    through a compiled numba loop on the host's cores (64-bit words, popcount; the
    result is a jax array sharing the loop's output buffer, no copy).  Traced arrays (inside
    ``jax.jit``) and arrays on an accelerator use XLA, over blocks of ``chunk_size`` rows of
    ``a`` (default: chosen so that one block's ``(chunk, n_b, words)`` XOR intermediate
    would stay under 256 MiB; XLA fuses it away).  Either way memory is bounded by the
    output itself (``metrics`` chunks the queries instead of materialising ``n_a x n_b``
    for huge databases).
    """
    host = _on_host(a_packed) and _on_host(b_packed)
    a_packed, b_packed = (x if isinstance(x, np.ndarray) else jnp.asarray(x) for x in (a_packed, b_packed))
    _check_packed(a_packed, "a_packed")
    _check_packed(b_packed, "b_packed")
    if a_packed.dtype != b_packed.dtype:
        raise ValueError(f"a_packed and b_packed have different dtypes "
                         f"({a_packed.dtype} vs {b_packed.dtype})")
    if a_packed.shape[1] != b_packed.shape[1]:
        raise ValueError(f"a_packed has {a_packed.shape[1]} words per code but b_packed has "
                         f"{b_packed.shape[1]}")
    if a_packed.shape[0] == 0 or b_packed.shape[0] == 0:
        return jnp.zeros((a_packed.shape[0], b_packed.shape[0]), jnp.int32)
    if host:
        from jhash import _ranking

        out = _aligned_empty((a_packed.shape[0], b_packed.shape[0]), np.int32)
        _ranking.distance_matrix(_host_words(np.asarray(a_packed)), _host_words(np.asarray(b_packed)), out)
        return jax.device_put(out)
    a_packed, b_packed = jnp.asarray(a_packed), jnp.asarray(b_packed)
    if chunk_size is None:
        chunk_size = _default_chunk(b_packed.shape[0], b_packed.shape[1])
    chunk_size = int(max(1, min(chunk_size, max(a_packed.shape[0], 1))))
    n_a = a_packed.shape[0]
    blocks = [_hamming_jit(a_packed[s:s + chunk_size], b_packed)
              for s in range(0, n_a, chunk_size)]
    return blocks[0] if len(blocks) == 1 else jnp.concatenate(blocks, axis=0)


@jax.jit
def _hamming_pm1(a, b):
    q = a.shape[1]
    ip = jnp.matmul(a.astype(jnp.float32), b.astype(jnp.float32).T,
                    precision=jax.lax.Precision.HIGHEST)
    # Inner products of +-1 vectors are exact integers in float32 for q < 2**24.
    return ((q - jnp.round(ip).astype(jnp.int32)) // 2).astype(jnp.int32)


def hamming_distance_pm1(a, b):
    """Hamming distances of +-1 codes by inner product: ``(q - a @ b.T) / 2`` as int32."""
    check_codes(a, "a")
    check_codes(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a has {a.shape[1]} bits but b has {b.shape[1]}")
    return _hamming_pm1(jnp.asarray(a), jnp.asarray(b))


def bit_balance(codes, fraction: bool = False):
    """Per-bit balance of +-1 codes ``(n, q)``.

    Returns the per-bit mean in [-1, 1] (0 = perfectly balanced), or with
    ``fraction=True`` the fraction of +1 entries per bit in [0, 1] (0.5 = balanced).
    """
    check_codes(codes, "codes")
    m = jnp.mean(jnp.asarray(codes, jnp.float32), axis=0)
    return (m + 1.0) / 2.0 if fraction else m


def bit_correlation(codes, centered: bool = False):
    """``(q, q)`` bit correlation of +-1 codes ``(n, q)``.

    ``centered=False`` (default): the uncentred second moment ``B^T B / n`` used by the
    bit-decorrelation constraints of SH/SDH-style methods (identity = uncorrelated, diagonal
    is 1).  ``centered=True``: Pearson correlation; a constant bit has zero variance and
    its row/column is set to 0 (diagonal entry 1).
    """
    check_codes(codes, "codes")
    b = jnp.asarray(codes, jnp.float32)
    n = b.shape[0]
    if not centered:
        return b.T @ b / n
    c = b - jnp.mean(b, axis=0)
    cov = c.T @ c / n
    sd = jnp.sqrt(jnp.diag(cov))
    ok = sd > 0
    denom = jnp.where(ok[:, None] & ok[None, :], sd[:, None] * sd[None, :], 1.0)
    corr = jnp.where(ok[:, None] & ok[None, :], cov / denom, 0.0)
    return corr.at[jnp.diag_indices(b.shape[1])].set(1.0)


def num_distinct(codes) -> int:
    """Number of distinct codes (rows) in a +-1 code matrix (host computation)."""
    check_codes(codes, "codes")
    a = np.asarray(codes)
    if a.shape[0] == 0:
        return 0
    words = -(-a.shape[1] // 64)
    packed = np.zeros((a.shape[0], 8 * words), np.uint8)  # rows as whole 64-bit words: a cheap integer sort
    chunk = max(1, (1 << 24) // a.shape[1])
    for s in range(0, a.shape[0], chunk):
        packed[s:s + chunk, :-(-a.shape[1] // 8)] = np.packbits(a[s:s + chunk] > 0, axis=1)
    packed = packed.view(np.uint64)
    return int(len(np.unique(packed[:, 0])) if words == 1 else len(np.unique(packed, axis=0)))
