"""Pieces shared by the quantization methods (DQN, DEPQ, DSQ, SPDAQ): the backbone with ``dim``
real outputs and the bits accounting (M codebooks of K codewords, M log2 K = bits)."""
from __future__ import annotations

import flax.linen as nn

from jhash.models import get_model
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


def build_backbone(config, dim: int, **extra) -> nn.Module:
    """The config's network (``config.model``) with ``dim`` real outputs (the embedding that gets quantized)."""
    kwargs = {k: v for k, v in config.model.items() if k != "name"}
    kwargs.update(extra)
    return get_model(config.model.name, bits=dim, **kwargs)


def check_product(dim: int, m: int, name: str):
    if dim % m:
        raise ValueError(f"{name}.dim ({dim}) must be divisible by the number of codebooks M = {m}")
