"""Pieces shared by the quantization methods (DQN, DEPQ, DSQ, SPDAQ): the network with ``dim``
real outputs and the bits accounting (M codebooks of K codewords, M log2 K = bits).

For these methods ``config.bits`` is the length of the quantized code (M log2 K), not the
width of the network's output: the network outputs the ``dim``-unit embedding that gets
quantized (:class:`jhash.models.HashNetwork`'s ``outputs``)."""
from __future__ import annotations

import flax.linen as nn

from jhash.methods.base import build_model
from jhash.quantization import num_codebooks


def codebook_layout(config, hp) -> tuple[int, int, int]:
    """``(M, K, dim)`` from ``config.bits`` and the method's ``codebook_size`` and ``dim``: M log2 K = bits.

    ``dim`` = 0 means the smallest multiple of M not below 256 (so every M of 16, 32, 64 bits divides it)."""
    k = int(hp["codebook_size"])
    m = num_codebooks(int(config.bits), k)
    dim = int(hp["dim"]) or -(-256 // m) * m
    if dim <= 0:
        raise ValueError(f"dim must be positive, got {hp['dim']}")
    return m, k, dim


def build_backbone(config, dim: int, **model) -> nn.Module:
    """The config's network (``config.model``, entries of ``model`` overriding it) with ``dim`` real
    outputs (the embedding that gets quantized)."""
    return build_model(config, outputs=dim, **model)


def check_product(dim: int, m: int, name: str):
    if dim % m:
        raise ValueError(f"{name}.dim ({dim}) must be divisible by the number of codebooks M = {m}")
