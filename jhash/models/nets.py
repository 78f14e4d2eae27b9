"""Backbones (an MLP for feature vectors, a small CNN for images) and the hash head."""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

_ACTIVATIONS = {"none": None, "tanh": jnp.tanh, "sigmoid": nn.sigmoid}


class HashHead(nn.Module):
    """A dense layer with ``bits`` outputs, optionally squashed (``'none'``, ``'tanh'``, ``'sigmoid'``)."""

    bits: int
    activation: str = "none"

    @nn.compact
    def __call__(self, h):
        u = nn.Dense(self.bits, name="hash")(h)
        act = _ACTIVATIONS[self.activation]
        return u if act is None else act(u)


class MLP(nn.Module):
    """Fully connected ReLU network on flat inputs (images are flattened), then a hash head."""

    bits: int
    hidden: Sequence[int] = (256, 256)
    head_activation: str = "none"

    @nn.compact
    def __call__(self, x):
        h = x.reshape((x.shape[0], -1))
        for i, width in enumerate(self.hidden):
            h = nn.relu(nn.Dense(width, name=f"dense{i}")(h))
        return HashHead(self.bits, self.head_activation)(h)


class CNN(nn.Module):
    """A small VGG-style CNN for 28x28 / 32x32 images: blocks of ``convs_per_block`` x (3x3 conv, ReLU) and a 2x2 max-pool, a dense ReLU layer, a hash head."""

    bits: int
    channels: Sequence[int] = (32, 64)
    convs_per_block: int = 1
    dense: int = 256
    head_activation: str = "none"

    @nn.compact
    def __call__(self, x):
        if x.ndim != 4:
            raise ValueError(f"CNN expects images of shape (batch, H, W, C); got x with shape {x.shape}")
        h = x
        for i, c in enumerate(self.channels):
            for j in range(self.convs_per_block):
                h = nn.relu(nn.Conv(c, (3, 3), name=f"conv{i}_{j}")(h))
            h = nn.max_pool(h, (2, 2), strides=(2, 2))
        h = h.reshape((h.shape[0], -1))
        h = nn.relu(nn.Dense(self.dense, name="dense")(h))
        return HashHead(self.bits, self.head_activation)(h)


_MODELS = {"mlp": MLP, "cnn": CNN}


def get_model(name: str, *, bits: int, **kwargs) -> nn.Module:
    """Builds the model called ``name`` (``'mlp'`` or ``'cnn'``) with ``bits`` hash outputs."""
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(_MODELS)}")
    if not isinstance(bits, int) or isinstance(bits, bool) or bits <= 0:
        raise ValueError(f"bits must be a positive integer, got {bits!r}")
    if kwargs.get("head_activation", "none") not in _ACTIVATIONS:
        raise ValueError(f"head_activation must be one of {sorted(_ACTIVATIONS)}, got {kwargs['head_activation']!r}")
    return _MODELS[name](bits=bits, **kwargs)
