"""DTSH: Wang, Shi, Kitani, "Deep supervised hashing with triplet labels", ACCV 2016.

Objective (eq. 4-5): the negative log-likelihood of triplet labels, p(t_apn) =
sigmoid(Theta_ap - Theta_an - alpha) with Theta_ij = u_i^T u_j / 2, plus
eta * sum ||u - sign(u)||^2; codes are sign(u).

Where we follow the authors' code (Minione/DTSH, DTSH.m, tripletSampling.m, update.m): the
anchors are the batch; positives and negatives come from a memory of every training item's
last outputs (refreshed with the batch, as in DPSH), drawn at random outside the batch,
M1 = 50 positives and M2 negatives per anchor, all M1 x M2 combinations used (the authors
draw 50 negatives from each other class: 22,500 triplets per anchor; we draw M2 = 450
negatives from the non-neighbours at large, the same count for 10 classes); only the
anchor receives a gradient; the margin alpha = q / 2; eta = 100 on the per-anchor sum of
triplet terms, i.e. eta / (M1 M2) against the mean we take. Where we differ: the authors
fine-tune VGG-F with plain SGD; our configs train the shared small CNN with Adam.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jhash.losses import pairwise_similarity, quantization_error
from jhash.methods.base import MemoryBank, Method, build_model, hyperparameters


def defaults() -> dict:
    return {"margin": 0.0, "eta": 100.0, "num_positives": 50, "num_negatives": 450}


def _draw(key, allowed, num):
    """``num`` rows drawn uniformly with replacement among the allowed ones of each row of ``allowed`` (n, N) -> (n, num)."""
    cdf = jnp.cumsum(allowed, axis=1)
    r = jax.random.uniform(key, (allowed.shape[0], num)) * cdf[:, -1:]
    rows = jax.vmap(lambda c, x: jnp.searchsorted(c, x, side="right"))(cdf, r)
    return jnp.minimum(rows, allowed.shape[1] - 1)


def build(config, *, train_labels, schedule) -> Method:
    hp = hyperparameters(config, "dtsh", defaults())
    margin = float(hp["margin"]) or config.bits / 2.0
    m1, m2 = int(hp["num_positives"]), int(hp["num_negatives"])
    if m1 <= 0 or m2 <= 0:
        raise ValueError(f"dtsh.num_positives and dtsh.num_negatives must be positive, got {m1}, {m2}")
    n_train = len(train_labels)

    def init_state():
        return {"bank_u": jnp.zeros((n_train, config.bits), jnp.float32), "bank_labels": jnp.asarray(train_labels)}

    def loss(u, batch, state, *, step, key):
        idx = batch["index"]
        bank = state["bank_u"]  # with the batch's outputs (written before the loss)
        outside = jnp.ones((n_train,), u.dtype).at[idx].set(0.0)
        similar = pairwise_similarity(batch["y"], state["bank_labels"])
        s, ds = similar * outside, (1.0 - similar) * outside
        key_p, key_n = jax.random.split(key)
        pos, neg = _draw(key_p, s, m1), _draw(key_n, ds, m2)  # (B, M1), (B, M2) rows of the bank
        theta_p = 0.5 * jnp.einsum("bq,bmq->bm", u, bank[pos])
        theta_n = 0.5 * jnp.einsum("bq,bmq->bm", u, bank[neg])
        x = theta_p[:, :, None] - theta_n[:, None, :] - margin
        valid = (jnp.any(s > 0, axis=1) & jnp.any(ds > 0, axis=1)).astype(u.dtype)  # anchors with triplets
        triplets = jnp.sum(valid * jnp.mean(jax.nn.softplus(-x), axis=(1, 2))) / jnp.maximum(jnp.sum(valid), 1.0)
        quant = hp["eta"] / (m1 * m2) * quantization_error(u) / u.shape[0]
        return triplets + quant, {"triplets": triplets, "quantization": quant}

    return Method(name="dtsh", model=build_model(config), loss=loss, init_state=init_state,
                  banks=(MemoryBank("bank_u"),))
