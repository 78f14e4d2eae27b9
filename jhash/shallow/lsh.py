"""LSH: random-projection locality-sensitive hashing.

Gionis, Indyk, Motwani, "Similarity search in high dimensions via hashing", VLDB 1999
(the LSH framework); the hash family for real vectors is Charikar's random hyperplanes
(STOC 2002): ``h_k(x) = sign(w_k^T (x - mean))`` with ``w_k ~ N(0, I)``, so that
``P[h_k(x) = h_k(y)] = 1 - angle(x, y) / pi``.

Data-independent except for the centering at the training mean, as in the LSH baseline
of the ITQ and AGH authors' comparison code (which centers all data first).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jhash.shallow.common import Hasher, linear_project, prepare_fit


def fit(features, labels=None, *, bits, key, center: bool = True) -> Hasher:
    """``bits`` Gaussian random hyperplanes through the training mean (``center``) or the origin."""
    x, _, bits = prepare_fit(features, labels, bits, supervised=False)
    d = x.shape[1]
    mean = jnp.mean(x, 0) if center else jnp.zeros(d, jnp.float32)
    w = jax.random.normal(key, (d, bits), jnp.float32)
    return Hasher("lsh", bits, d, linear_project, {"mean": mean, "w": w, "b": jnp.zeros(bits)})
