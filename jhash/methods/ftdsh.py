"""FTDSH: Zhuang, Lin, Shen, Reid, "Fast training of triplet-based deep binary embedding
networks", CVPR 2016.

Two steps, interleaved over groups of bits (the paper's incremental / group-wise training):

1. binary code inference: the codes B of the n training items minimise a triplet ranking
   loss over sampled triplets (i, j, k), j similar to i and k not,

       min_B sum_(i,j,k) max(0, m - (d_H(b_i, b_k) - d_H(b_i, b_j))),                 (eq. 2)

   one bit at a time: with the other bits fixed, a triplet's loss is a function of the
   three values of the bit, exactly a sum of pairwise terms, so bit r is the binary
   quadratic problem min_z z^T A_r z (eq. 3-6; built by the pieces of
   :mod:`jhash.shallow.fth`);
2. hash function learning: the CNN's outputs are fitted to the inferred codes as q binary
   classifiers (the paper's multi-label layer): the sigmoid cross-entropy of each bit.

Where we follow the authors' code (Bohan Zhuang's release: ``do_run_fasthash.m``,
``construct_loss_dictionary.m``, ``gen_affinity_labels.m``, ``train.py``): bits come in
groups of 8 (``code_per_group``); for group g the bits are inferred in order, each once
(greedy), bit r (0-based) with the hinge margin m = (r + 1) / 2 on the Hamming distances
over bits 0..r only (later bits count 0), the earlier bits of the same group being their
inferred codes and the bits of earlier groups the signs of the network's outputs (the
feedback of step 2 into step 1); each bit's BQP starts from all ones; the network is then
trained on the inferred codes of every bit so far (``output_num`` = the bits of groups
0..g), continuing from its current weights. Stage 1 of each group runs inside the jitted
training step (a ``lax.cond`` at the first step of the group's share of the run); the codes,
triplets and the network-output memory live in the method state, so checkpoints and resume
are exact.

Where we differ: the authors solve each BQP by graph cuts on submodular blocks, started
from all ones; we use :func:`jhash.solvers.bqp_minimize`, the best of 1-flip local searches
(best improvement, to a 1-flip local minimum) from all ones and from ``restarts`` = 2 random
columns: the same objective, never worse than all ones, weaker than a block graph cut. (From
all ones alone a single-flip search stays there for the first bits: flipping one item loses
more as a positive than it gains as a negative, a trap a graph cut's large moves escape.)
The authors sample 500 triplets per anchor; we sample 50 (``triplets_per_point``; a dense
n x n BQP per bit is built from them, and 50 n keeps its construction cheap on a CPU). The
signs of the network's outputs for earlier groups come from a memory of each training item's
latest outputs (seen during the last epoch) instead of a separate forward pass over the
training set (an item the network has not seen yet keeps its inferred codes there). The
authors fine-tune a VGG-16-based CNN for a fixed number of epochs per
group; our run's epochs are split equally between the ceil(q / 8) groups and train the
shared small CNN from scratch with Adam.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jhash.codes import sign
from jhash.methods.base import DiscreteStep, MemoryBank, Method, build_model, hyperparameters
from jhash.shallow import fth
from jhash.shallow.common import sample_triplets
from jhash.solvers import bqp_minimize


def defaults() -> dict:
    return {"bits_per_group": 8, "triplets_per_point": 50, "restarts": 2, "seed": 0}


def infer_bits(b, triplets, valid, first, count: int, *, key, restarts: int = 2):
    """Bits ``first .. first + count - 1`` of ``b`` (n, q) +-1 inferred in turn, as the authors do.

    Bit r is set to the solution of its triplet BQP with the hinge margin (r + 1) / 2, the
    distances counting bits 0..r: bits after r must be +1 in ``b`` on entry (equal for every
    item, they add nothing to a distance). Bits at or beyond q are skipped. ``first`` may be
    traced, ``count`` is static. Each BQP is solved by :func:`jhash.solvers.bqp_minimize` from
    the all-ones column plus ``restarts`` random columns (``key`` folded with r). Returns ``(b, before, after)``: the codes and, per bit, its
    triplet loss with the column all ones (the start) and after the update.
    """
    n, q = b.shape

    def body(l, carry):
        b, before, after = carry
        r = first + l

        def update(b):
            margin = (r + 1) / 2.0
            start = b.at[:, r].set(1.0)
            a = fth.bqp_matrix(n, triplets, fth.bit_coefficients(start, triplets, valid, r, margin))
            z = bqp_minimize(a, jnp.zeros((n,), jnp.float32), jnp.ones((n,), jnp.float32),
                             key=jax.random.fold_in(key, r), restarts=restarts)
            new = start.at[:, r].set(z.astype(b.dtype))
            return new, fth.triplet_loss(start, triplets, valid, margin), fth.triplet_loss(new, triplets, valid, margin)

        b, lb, la = jax.lax.cond(r < q, update, lambda b: (b, jnp.float32(0), jnp.float32(0)), b)
        return b, before.at[l].set(lb), after.at[l].set(la)

    zeros = jnp.zeros((count,), jnp.float32)
    return jax.lax.fori_loop(0, count, body, (b, zeros, zeros))


def build(config, *, train_labels, schedule) -> Method:
    hp = hyperparameters(config, "ftdsh", defaults())
    n, q = len(train_labels), config.bits
    size = int(hp["bits_per_group"])
    if size < 1 or int(hp["triplets_per_point"]) < 1:
        raise ValueError(f"ftdsh.bits_per_group and ftdsh.triplets_per_point must be >= 1; got {hp}")
    groups = -(-q // size)
    period = schedule.share(groups)  # each group of bits trains for an equal share of the run
    labels = jnp.asarray(train_labels)
    seed_key = jax.random.PRNGKey(hp["seed"])
    bit_index = jnp.arange(q)

    def init_state():
        triplets, valid = jax.jit(sample_triplets, static_argnums=2)(seed_key, labels, int(hp["triplets_per_point"]) * n)
        return {"memory": jnp.zeros((n, q), jnp.float32), "seen": jnp.zeros((n,), jnp.bool_),
                "codes": jnp.ones((n, q), jnp.float32),
                "triplets": triplets, "valid": valid,
                "loss_before": jnp.zeros((groups * size,), jnp.float32),
                "loss_after": jnp.zeros((groups * size,), jnp.float32)}

    def infer_group(state, *, step, key):
        first = jnp.minimum(step // period, groups - 1) * size
        outputs = jnp.where(state["seen"][:, None], sign(state["memory"]).astype(jnp.float32), state["codes"])
        b = jnp.where(bit_index[None, :] < first, outputs, 1.0)
        b, before, after = infer_bits(b, state["triplets"], state["valid"], first, size,
                                        key=jax.random.fold_in(seed_key, 1), restarts=int(hp["restarts"]))
        in_group = (bit_index >= first) & (bit_index < first + size)
        return {**state, "codes": jnp.where(in_group[None, :], b, state["codes"]),
                "loss_before": jax.lax.dynamic_update_slice(state["loss_before"], before, (first,)),
                "loss_after": jax.lax.dynamic_update_slice(state["loss_after"], after, (first,))}

    def loss(u, batch, state, *, step, key):
        del key
        idx = batch["index"]
        g = jnp.minimum(step // period, groups - 1)
        active = (bit_index < (g + 1) * size).astype(u.dtype)
        target = (state["codes"][idx] > 0).astype(u.dtype)
        xent = optax.sigmoid_binary_cross_entropy(u, target)
        value = jnp.sum(xent * active[None, :]) / (u.shape[0] * jnp.sum(active))
        return value, {"bit_xent": value, "group": g.astype(jnp.float32)}

    # before the loss: the memory of the batch's outputs, then stage 1 for a group at the first step of its share
    stage1 = DiscreteStep(infer_group, when=lambda step: (step % period == 0) & (step // period < groups))
    return Method(name="ftdsh", model=build_model(config), loss=loss, init_state=init_state,
                  banks=(MemoryBank("memory", seen="seen"),), discrete_step=stage1)
