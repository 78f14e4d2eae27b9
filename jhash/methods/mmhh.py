"""MMHH: Kang, Cao, Long, Wang, Yu, "Maximum-margin Hamming hashing", ICCV 2019.

Objective: the max-margin t-distribution loss of the pairwise labels
(:func:`jhash.losses.margin_t_loss`: p(similar) = 0.5 gamma / (gamma + d), pairs already
on the right side of the Hamming margin down-weighted) plus lambda times the log cosh
quantization loss, on tanh outputs; codes are sign.

Where we follow the authors' code (thuml/MMHH, src/mmhh_loss.py, src/semi_batch.py):
gamma = 10, margin = 2 (the Hamming-ball radius), inside-margin weights 0.5 (similar) and
0.8 (dissimilar), lambda = 0.001 on (1 / B) sum log cosh; and the "semi-batch": for the
first 300 steps the pairs are batch x batch, afterwards batch x memory, the memory holding
every training item's last outputs updated as m <- mu m + (1 - mu) u with
mu = 0.5 + 0.5 sqrt(t / T) (mu = 0 during the first 300 steps). Gradients reach only the
batch side. Where we differ: the memory's rows of items not yet seen are left out of the
pairs (the authors' memory starts at zeros, whose cosine is undefined); the item itself is
left out of batch x batch pairs.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jhash.losses import log_cosh_quantization, margin_t_loss, pairwise_similarity
from jhash.methods.base import MemoryBank, Method, build_model, hyperparameters


def defaults() -> dict:
    return {"gamma": 10.0, "margin": 2.0, "inside_similar": 0.5, "inside_dissimilar": 0.8, "positive_weight": 1.0,
            "quantization": 0.001, "memory_after": 300}


def build(config, *, train_labels, schedule) -> Method:
    hp = hyperparameters(config, "mmhh", defaults())
    n_train = len(train_labels)
    total_steps = max(1, schedule.num_steps)
    pair_kw = dict(gamma=hp["gamma"], margin=hp["margin"], positive_weight=hp["positive_weight"],
                   inside_weights=(hp["inside_similar"], hp["inside_dissimilar"]))

    def init_state():
        return {"memory": jnp.zeros((n_train, config.bits), jnp.float32), "seen": jnp.zeros((n_train,), jnp.float32),
                "labels": jnp.asarray(train_labels)}

    def loss(u, batch, state, *, step, key):
        z = jnp.tanh(u)
        y = batch["y"]
        def in_batch(z):
            return margin_t_loss(z, z, pairwise_similarity(y, y), mask=1.0 - jnp.eye(z.shape[0]), **pair_kw)

        def with_memory(z):
            return margin_t_loss(z, state["memory"], pairwise_similarity(y, state["labels"]),
                                 mask=jnp.broadcast_to(state["seen"], (z.shape[0], n_train)), **pair_kw)

        pairs = jax.lax.cond(step >= hp["memory_after"], with_memory, in_batch, z)  # only this phase's branch runs
        quant = hp["quantization"] * log_cosh_quantization(z) / z.shape[0]
        return pairs + quant, {"pairs": pairs, "quantization": quant}

    def momentum(step):
        return jnp.where(step >= hp["memory_after"], 0.5 + 0.5 * jnp.sqrt(step / total_steps), 0.0)

    # after the loss (whose pairs use the memory as it was): m <- mu m + (1 - mu) tanh(u) for the batch
    memory = MemoryBank("memory", of=jnp.tanh, seen="seen", momentum=momentum, after_loss=True)
    return Method(name="mmhh", model=build_model(config), loss=loss, init_state=init_state, banks=(memory,))
