"""BDNN (supervised, SH-BDNN): Do, Doan, Cheung, "Learning to hash with binary deep neural network", ECCV 2016.

The network's last layer H is tied to binary codes B by a penalty, and the codes should be
independent, balanced and similarity preserving (eq. 10 of the paper, the supervised form of
the authors' code dadung/sh-bdnn, DeepNN_HASH/deepNNCost.m), for m items:

    (l2 / 2m) ||H - B||^2 + (l3 / 2) ||H^T H / m - I||^2 + (l4 / 2m) ||H^T 1||^2
    + (l5 / 2m) ||H H^T / q - S||^2,      S_ij = +1 similar, -1 dissimilar,

(weight decay l1 is the optimizer's), optimised by alternating B = sign(H) (closed form:
B appears only in the first term) with the network step on the rest.

Where we follow the authors' code: the terms and their weights l2..l5 = 5e-2, 1e-2,
0.5e-6, 1e-2; the linear output layer; B = sign(H); codes are sign(H). Where we differ:
the authors run full-batch L-BFGS on PCA'd AlexNet features with 20 outer alternations
(B initialised by ITQ); we train the shared small CNN on mini-batches of b items, so each
term is the mini-batch estimate of its value over the m training items (||H^T 1||^2 ~
m^2 ||mean_batch h||^2; the m^2 pairs of the similarity term by (m / b)^2 times the batch's
b^2 pairs), which keeps the authors' relative weights (with b as m, the similarity term
was m / b times too weak: mAP 0.70 on mnist at 32 bits); B of every training item is kept in the
method state and refreshed with sign(H) each time the item is seen (the alternation at the
granularity of an epoch), and an item seen for the first time is tied to the sign of its
current outputs.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jhash.codes import sign
from jhash.losses import bit_decorrelation_penalty, inner_product_loss, pairwise_similarity
from jhash.methods.base import MemoryBank, Method, build_model, hyperparameters


def defaults() -> dict:
    return {"binary": 5e-2, "independence": 1e-2, "balance": 0.5e-6, "similarity": 1e-2}


def build(config, *, train_labels, schedule) -> Method:
    hp = hyperparameters(config, "bdnn", defaults())
    n_train, q = len(train_labels), config.bits

    def init_state():
        return {"codes": jnp.zeros((n_train, q), jnp.float32)}  # 0 = not yet assigned

    def loss(h, batch, state, *, step, key):
        m = h.shape[0]
        idx = batch["index"]
        current = jax.lax.stop_gradient(sign(h).astype(h.dtype))
        old = state["codes"][idx]
        b = jnp.where(jnp.any(old != 0, axis=1, keepdims=True), old, current)
        s = pairwise_similarity(batch["y"], batch["y"])
        terms = {
            "binary": hp["binary"] / (2 * m) * jnp.sum(jnp.square(h - b)),
            "independence": hp["independence"] / 2 * bit_decorrelation_penalty(h),
            "balance": hp["balance"] * n_train / 2 * jnp.sum(jnp.square(jnp.mean(h, axis=0))),
            "similarity": hp["similarity"] * n_train / (2 * m ** 2) * inner_product_loss(h, h, s) / q ** 2,
        }
        return sum(terms.values()), terms

    # the B-step for the items of the batch, after the loss (which ties h to their earlier codes)
    codes = MemoryBank("codes", of=lambda h: sign(h).astype(h.dtype), after_loss=True)
    return Method(name="bdnn", model=build_model(config), loss=loss, init_state=init_state, banks=(codes,))
