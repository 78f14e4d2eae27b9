"""PCAH: sign of the top principal components.

The PCA-hashing baseline of Wang, Kumar, Chang (CVPR 2010) and Gong & Lazebnik (CVPR
2011): ``h(x) = sign(V_k^T (x - mean))`` with ``V_k`` the top-``bits`` eigenvectors of the
training covariance. ``bits`` must not exceed the feature dimension.
"""
from __future__ import annotations

import jax.numpy as jnp

from jhash.shallow.common import Hasher, check_bits, linear_project, pca, prepare_fit


def fit(features, labels=None, *, bits, key=None) -> Hasher:
    """The top-``bits`` principal directions of the training features (``key`` is unused)."""
    x, _, bits = prepare_fit(features, labels, bits, supervised=False)
    check_bits(bits, x.shape[1], "the feature dimension")
    mean, comps, val = pca(x, bits)
    return Hasher("pcah", bits, x.shape[1], linear_project,
                  {"mean": mean, "w": comps, "b": jnp.zeros(bits)}, {"eigenvalues": val})
