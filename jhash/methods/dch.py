"""DCH: Cao, Long, Liu, Wang, "Deep Cauchy hashing for Hamming space retrieval", CVPR 2018.

Objective (eq. 8): the Cauchy cross-entropy of the pairwise labels
(:func:`jhash.losses.cauchy_cross_entropy`: p(similar) = gamma / (gamma + d), d = q/2 (1 - cos))
plus lambda times the Cauchy quantization loss (:func:`jhash.losses.cauchy_quantization`),
on tanh outputs; codes are sign. The Cauchy distribution's heavy tail keeps pulling similar
pairs together until they are within a small Hamming radius, which is what Hamming-ball
(radius-2 lookup) retrieval needs: compare precision@r2 with the likelihood methods.

Where we follow the authors' code (thuml/DeepHash, model/dch/dch.py): gamma = 20, pairs are
batch x batch with the item itself masked out, similar pairs re-weighted (the paper's
|S| / |S_c|). Where we differ: their latest code uses the squared Euclidean distance of the
tanh outputs and lambda = 0; we keep the paper's cosine distance (their ``normed`` branch)
and lambda = 0.1 as a mean over items (the common PyTorch port's value).
"""
from __future__ import annotations

import jax.numpy as jnp

from jhash.losses import cauchy_cross_entropy, cauchy_quantization, pairwise_similarity
from jhash.methods.base import Method, build_model, hyperparameters


def defaults() -> dict:
    return {"gamma": 20.0, "quantization": 0.1, "positive_weight": "balanced"}


def build(config, *, train_labels, schedule) -> Method:
    hp = hyperparameters(config, "dch", defaults())
    if hp["gamma"] <= 0:
        raise ValueError(f"dch.gamma must be > 0, got {hp['gamma']}")

    def loss(u, batch, state, *, step, key):
        z = jnp.tanh(u)
        s = pairwise_similarity(batch["y"], batch["y"])
        off_diagonal = 1.0 - jnp.eye(z.shape[0], dtype=z.dtype)
        pairs = cauchy_cross_entropy(z, z, s, gamma=hp["gamma"], positive_weight=hp["positive_weight"], mask=off_diagonal)
        quant = hp["quantization"] * cauchy_quantization(z, gamma=hp["gamma"]) / z.shape[0]
        return pairs + quant, {"pairs": pairs, "quantization": quant}

    return Method(name="dch", model=build_model(config), loss=loss)
