"""Augmentation: every output is one of the crops/flips of its input; determinism; errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jhash.data.augment import crop_flip, get_augmentation


def _candidates(img, pad):
    p = np.pad(img, ((pad, pad), (pad, pad), (0, 0)))
    h, w = img.shape[:2]
    for i in range(2 * pad + 1):
        for j in range(2 * pad + 1):
            window = p[i:i + h, j:j + w]
            yield window
            yield window[:, ::-1]


def test_outputs_are_crops_or_flipped_crops_of_their_input():
    rng = np.random.default_rng(0)
    x = rng.random((16, 8, 8, 3)).astype(np.float32)
    y = np.asarray(jax.jit(lambda k, x: crop_flip(k, x, pad=2))(jax.random.PRNGKey(3), x))
    assert y.shape == x.shape
    seen = set()
    for img, out in zip(x, y):
        matches = [k for k, c in enumerate(_candidates(img, 2)) if np.array_equal(c, out)]
        assert matches, "output is not a crop/flip of its input"
        seen.add(matches[0])
    assert len(seen) > 4  # images get different offsets / flips


def test_same_key_same_output_and_none_is_identity():
    x = jnp.asarray(np.random.default_rng(1).random((4, 6, 6, 1)), jnp.float32)
    a = crop_flip(jax.random.PRNGKey(0), x)
    np.testing.assert_array_equal(a, crop_flip(jax.random.PRNGKey(0), x))
    assert not np.array_equal(a, crop_flip(jax.random.PRNGKey(1), x))
    np.testing.assert_array_equal(get_augmentation("none")(jax.random.PRNGKey(0), x), x)


def test_bad_inputs():
    with pytest.raises(ValueError, match="images of shape"):
        crop_flip(jax.random.PRNGKey(0), jnp.ones((3, 64)))
    with pytest.raises(ValueError, match="unknown augmentation 'mixup'"):
        get_augmentation("mixup")
