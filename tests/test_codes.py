"""jhash.codes against independent NumPy references."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jhash import codes


def rand_codes(rng, n, q):
    return np.where(rng.random((n, q)) < 0.5, -1, 1).astype(np.int8)


@pytest.mark.parametrize("q", [1, 7, 8, 9, 31, 32, 33, 64, 100])
def test_pack_uint8_matches_packbits_and_roundtrips(q):
    rng = np.random.default_rng(q)
    c = rand_codes(rng, 13, q)
    p = np.asarray(codes.pack(c))
    assert p.dtype == np.uint8 and p.shape == (13, -(-q // 8))
    np.testing.assert_array_equal(p, np.packbits(c > 0, axis=1))
    np.testing.assert_array_equal(np.asarray(codes.unpack(p, q)), c)


@pytest.mark.parametrize("dtype,w", [(np.uint16, 16), (np.uint32, 32)])
@pytest.mark.parametrize("q", [5, 32, 33, 64, 70])
def test_pack_wide_words_bit_order(dtype, w, q):
    rng = np.random.default_rng(q + w)
    c = rand_codes(rng, 9, q)
    p = np.asarray(codes.pack(c, dtype))
    assert p.dtype == dtype and p.shape == (9, -(-q // w))
    # Independent reference: bit i of the code is bit (w - 1 - i % w) of word i // w.
    ref = np.zeros(p.shape, np.uint64)
    for n in range(9):
        for i in range(q):
            if c[n, i] > 0:
                ref[n, i // w] |= np.uint64(1) << np.uint64(w - 1 - i % w)
    np.testing.assert_array_equal(p.astype(np.uint64), ref)
    np.testing.assert_array_equal(np.asarray(codes.unpack(p, q)), c)


def test_pack_under_jit():
    c = rand_codes(np.random.default_rng(0), 5, 40)
    p = jax.jit(lambda x: codes.pack(x, np.uint32))(jnp.asarray(c))
    np.testing.assert_array_equal(np.asarray(p), np.asarray(codes.pack(c, np.uint32)))


@pytest.mark.parametrize("bad", [np.zeros((3, 4)), np.ones(4), np.array([[1, -1, 2]]),
                                 np.array([[True, False]])])
def test_pack_rejects_bad_codes(bad):
    with pytest.raises(ValueError, match="codes"):
        codes.pack(bad)


def test_pack_rejects_bad_dtype():
    with pytest.raises(ValueError, match="dtype"):
        codes.pack(np.ones((2, 3)), np.int32)


def brute_hamming(a, b):
    return np.array([[int(np.sum(x != y)) for y in b] for x in a])


@pytest.mark.parametrize("q", [1, 3, 8, 32, 33, 64, 65])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32])
def test_hamming_distance_matches_bruteforce(q, dtype):
    rng = np.random.default_rng(q)
    a, b = rand_codes(rng, 11, q), rand_codes(rng, 17, q)
    ref = brute_hamming(a, b)
    got = np.asarray(codes.hamming_distance(codes.pack(a, dtype), codes.pack(b, dtype),
                                            chunk_size=4))
    assert np.issubdtype(got.dtype, np.integer)
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(np.asarray(codes.hamming_distance_pm1(a, b)), ref)
    np.testing.assert_array_equal(np.asarray(codes.hamming_distance(codes.pack(a, dtype),
                                                                    codes.pack(b, dtype))), ref)


@pytest.mark.parametrize("q", [1, 63, 64, 65, 130, 200])
def test_hamming_distance_host_loop_numpy_inputs(q):
    # numpy rows of every word size (the host loop reads their bytes as 64-bit words),
    # and a result that is a jax array; sizes around the word boundaries
    rng = np.random.default_rng(100 + q)
    a, b = rand_codes(rng, 7, q), rand_codes(rng, 13, q)
    ref = brute_hamming(a, b)
    for dtype in (np.uint8, np.uint16, np.uint32):
        got = codes.hamming_distance(np.asarray(codes.pack(a, dtype)), np.asarray(codes.pack(b, dtype)))
        assert isinstance(got, jax.Array) and got.dtype == jnp.int32
        np.testing.assert_array_equal(np.asarray(got), ref)


def test_hamming_under_jit_and_empty():
    rng = np.random.default_rng(1)
    a, b = rand_codes(rng, 6, 20), rand_codes(rng, 4, 20)
    pa, pb = codes.pack(a, np.uint32), codes.pack(b, np.uint32)
    got = jax.jit(lambda x, y: codes.hamming_distance(x, y, chunk_size=4))(pa, pb)
    np.testing.assert_array_equal(np.asarray(got), brute_hamming(a, b))
    got = jax.jit(codes.hamming_distance_pm1)(jnp.asarray(a), jnp.asarray(b))
    np.testing.assert_array_equal(np.asarray(got), brute_hamming(a, b))
    assert codes.hamming_distance(pa[:0], pb).shape == (0, 4)


def test_hamming_rejects_mismatch():
    a = codes.pack(np.ones((2, 40)), np.uint32)
    b = codes.pack(np.ones((2, 70)), np.uint32)
    with pytest.raises(ValueError, match="b_packed"):
        codes.hamming_distance(a, b)
    with pytest.raises(ValueError, match="dtypes"):
        codes.hamming_distance(codes.pack(np.ones((2, 8))), codes.pack(np.ones((2, 8)), np.uint32))
    with pytest.raises(ValueError, match="bits"):
        codes.hamming_distance_pm1(np.ones((2, 3)), np.ones((2, 4)))


def test_sign_bits_roundtrip():
    u = np.array([[-2.0, 0.0, 3.0, -0.0, -1e-9]])
    np.testing.assert_array_equal(np.asarray(codes.sign(u)), [[-1, 1, 1, 1, -1]])
    c = np.array([[1, -1, -1, 1]])
    np.testing.assert_array_equal(np.asarray(codes.to_bits(c)), [[1, 0, 0, 1]])
    np.testing.assert_array_equal(np.asarray(codes.from_bits([[1, 0, 0, 1]])), c)
    with pytest.raises(ValueError):
        codes.from_bits([[2, 0]])


def test_statistics():
    rng = np.random.default_rng(3)
    c = rand_codes(rng, 50, 6)
    c[:, 5] = 1                                               # a constant bit
    np.testing.assert_allclose(np.asarray(codes.bit_balance(c)), c.mean(0), atol=1e-6)
    np.testing.assert_allclose(np.asarray(codes.bit_balance(c, fraction=True)),
                               (c > 0).mean(0), atol=1e-6)
    np.testing.assert_allclose(np.asarray(codes.bit_correlation(c)), c.T @ c / 50, atol=1e-6)
    ref = np.corrcoef(c[:, :5].T.astype(float))
    got = np.asarray(codes.bit_correlation(c, centered=True))
    np.testing.assert_allclose(got[:5, :5], ref, atol=1e-5)
    np.testing.assert_allclose(got[5], np.eye(6)[5], atol=1e-6)
    assert codes.num_distinct(c) == len({tuple(r) for r in c})
    all3 = np.array(list(itertools.product([-1, 1], repeat=3)))
    assert codes.num_distinct(np.concatenate([all3, all3])) == 8


def test_check_codes_finds_a_bad_value_past_the_first_chunk():
    db = np.ones((80_000, 64), np.int8)  # 5.1M values: checked in several chunks
    codes.check_codes(db)
    db[-1, -1] = 0
    with pytest.raises(ValueError, match=r"db must contain only -1 and \+1, found e.g. \[0\]"):
        codes.check_codes(db, "db")


@pytest.mark.parametrize("bits", [8, 64, 65, 130])
def test_num_distinct_against_python_sets(bits):
    rng = np.random.default_rng(bits)
    c = np.where(rng.random((300, bits)) < 0.5, 1, -1).astype(np.int8)
    c = np.concatenate([c, c[:100]])                       # 100 duplicates
    c[-50:, :] = c[0]                                      # more copies of one row, including its last bit
    assert codes.num_distinct(c) == len({tuple(r) for r in c})
    c2 = c.copy()
    c2[1, -1] = -c2[0, -1]; c2[1, :-1] = c2[0, :-1]        # differs from row 0 only in the last bit
    assert codes.num_distinct(c2) == len({tuple(r) for r in c2})
