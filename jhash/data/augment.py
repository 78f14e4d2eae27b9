"""Data augmentation as pure, jittable functions of (key, batch): the trainer applies one to each
training batch inside the compiled step, with the step's key, so runs stay reproducible."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def crop_flip(key, x, *, pad: int = 4):
    """Random crop after zero padding by ``pad`` pixels, and random horizontal flip.

    The standard CIFAR-10 augmentation (He et al., "Deep residual learning for image
    recognition", CVPR 2016, section 4.2). ``x``: images (n, H, W, C); each image gets its
    own offset and flip from ``key``.
    """
    if x.ndim != 4:
        raise ValueError(f"crop_flip expects images of shape (n, H, W, C); got shape {x.shape}")
    n, h, w, _ = x.shape
    k_off, k_flip = jax.random.split(key)
    offsets = jax.random.randint(k_off, (n, 2), 0, 2 * pad + 1)
    flips = jax.random.bernoulli(k_flip, 0.5, (n,))
    padded = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))

    def one(img, off, flip):
        out = jax.lax.dynamic_slice(img, (off[0], off[1], 0), (h, w, img.shape[-1]))
        return jnp.where(flip, out[:, ::-1], out)

    return jax.vmap(one)(padded, offsets, flips)


def none(key, x):
    """No augmentation."""
    del key
    return x


AUGMENTATIONS = {"none": none, "crop_flip": crop_flip}


def get_augmentation(name: str):
    """The augmentation called ``name`` (``'none'`` or ``'crop_flip'``)."""
    if name not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {name!r}; expected one of {sorted(AUGMENTATIONS)}")
    return AUGMENTATIONS[name]
