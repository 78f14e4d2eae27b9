"""DHN: Zhu, Long, Wang, Cao, "Deep hashing network for efficient similarity retrieval", AAAI 2016.

Objective (eq. 7): the pairwise cross-entropy of the similarity labels given
theta_ij = <z_i, z_j> (:func:`jhash.losses.weighted_pairwise_likelihood`) plus lambda times
the smooth quantization loss sum log cosh(|z| - 1) (:func:`jhash.losses.log_cosh_quantization`),
on tanh outputs z; codes are sign(z).

Where we follow the authors' group code (thuml/DeepHash, model/dhn/dhn.py): pairs are the
batch x batch pairs (the item with itself left out), similar pairs are up-weighted to
balance the two kinds (``positive_weight='balanced'``, the weighting of HashNet's paper;
their code weighs similar pairs by |S| / |S_1| and dissimilar ones by 1). Where we differ:
their latest TensorFlow code replaced the paper's inner product by 10 cos(z_i, z_j) and the
log cosh term by (|z| - 1)^2 with weight 0; we keep the paper's forms. lambda is a mean over
entries (0.1, the value the common PyTorch port uses; the paper cross-validates it).
"""
from __future__ import annotations

import jax.numpy as jnp

from jhash.losses import log_cosh_quantization, pairwise_similarity, weighted_pairwise_likelihood
from jhash.methods.base import Method, build_model, hyperparameters


def defaults() -> dict:
    return {"scale": 1.0, "quantization": 0.1, "positive_weight": "balanced"}


def build(config, *, train_labels, schedule) -> Method:
    hp = hyperparameters(config, "dhn", defaults())

    def loss(u, batch, state, *, step, key):
        z = jnp.tanh(u)
        s = pairwise_similarity(batch["y"], batch["y"])
        off_diagonal = 1.0 - jnp.eye(z.shape[0], dtype=z.dtype)
        pairs = weighted_pairwise_likelihood(z, z, s, scale=hp["scale"], positive_weight=hp["positive_weight"],
                                             mask=off_diagonal)
        quant = hp["quantization"] * log_cosh_quantization(z) / z.size
        return pairs + quant, {"pairs": pairs, "quantization": quant}

    return Method(name="dhn", model=build_model(config), loss=loss)
