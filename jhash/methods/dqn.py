"""DQN: Cao, Long, Wang, Zhu, Wen, "Deep quantization network for efficient image retrieval", AAAI 2016.

A network ends in a bottleneck layer ``z = tanh(W h + b)`` of ``dim`` units; its objective
(eq. 5) is the pairwise cosine loss plus a product-quantization loss,

    min  sum_{s_ij} (s_ij - <z_i, z_j> / (||z_i|| ||z_j||))^2  +  lambda sum_i sum_m ||z_im - C_m h_im||^2,

``s_ij = +1`` for pairs that share a label and ``-1`` otherwise, ``z_im`` the m-th of the M
sub-vectors of ``z_i``, ``C_m`` the m-th codebook of K codewords and ``h_im`` a one-hot choice.
It is optimised by alternation: the network by back-propagation with the codes fixed, then
the codebooks and codes with the network fixed (k-means in each subspace: the exact code
step and the closed-form codebook step of PQ). Retrieval ranks the database by asymmetric
quantizer distance ``AQD(q, x) = sum_m ||z_qm - C_m h_xm||^2`` (eq. 8): the query's real
``z`` against the database's codewords, by table lookup (:mod:`jhash.quantization`).
Bits: M log2 K (K = 256, so M = bits / 8).

Where we follow the authors' code (thulab/DeepHash, DeepHash/model/dqn/dqn.py and
examples/dqn/train_val.sh): the cosine loss is the mean over all pairs of the batch
(diagonal included), the quantization loss the mean over the batch of the per-item squared
error, lambda = 1e-4 (their script's ``q_lambda``), K = 256, lambda = 0 until the first
codebook update, and the codebooks are re-learned from scratch every two epochs by k-means
in each subspace (their ``initial_centers``) on the outputs of every training item (here:
the latest output of each item, kept in the method state), which also gives the training
codes. Their evaluation re-encodes query and database with the final codebooks, as ours.
Where we differ: their code ranks by the inner product ``<z_q, C h_x>`` while the paper's
AQD is the squared distance; ``aqd_metric="l2"`` (default) is the paper's, ``"ip"`` theirs.
They use M = 4 codebooks of 300-dim outputs at every code length; we use M = bits / 8 and
``dim`` = 256 (``dim=0``), so that M divides it. We also refit the codebooks at the last
training step, so the retrieval codebooks fit the final network (theirs are those of the
last two-epoch update). They fine-tune AlexNet with momentum SGD; our configs train the
shared small CNN with Adam.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jhash.losses import pairwise_similarity
from jhash.methods._quant import build_backbone, check_product, codebook_layout
from jhash.methods.base import DiscreteStep, MemoryBank, Method, hyperparameters
from jhash.quantization import Quantizer, pq_decode, pq_encode, pq_kmeans


def defaults() -> dict:
    return {"lambda_q": 1e-4, "codebook_size": 256, "dim": 0, "update_every_epochs": 2, "kmeans_iters": 20,
            "aqd_metric": "l2"}


def cosine_loss(z, labels):
    """DQN's pairwise cosine loss: mean over the batch's pairs of (s_ij - cos(z_i, z_j))^2, s_ij in {-1, +1}."""
    if getattr(z, "ndim", None) != 2:
        raise ValueError(f"z must have shape (n, dim), got {getattr(z, 'shape', None)}")
    s = 2.0 * pairwise_similarity(labels, labels) - 1.0
    zn = z / jnp.maximum(jnp.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    return jnp.mean(jnp.square(s - zn @ zn.T))


def pq_loss(z, codes, codebooks):
    """DQN's quantization loss: mean over items of ||z_i - [C_1 h_i1, ..., C_M h_iM]||^2."""
    return jnp.mean(jnp.sum(jnp.square(z - pq_decode(codes, codebooks)), axis=1))


def build(config, *, train_labels, schedule) -> Method:
    hp = hyperparameters(config, "dqn", defaults())
    m, k, dim = codebook_layout(config, hp)
    check_product(dim, m, "dqn")
    if hp["lambda_q"] < 0:
        raise ValueError(f"dqn.lambda_q must be >= 0, got {hp['lambda_q']}")
    if hp["aqd_metric"] not in ("l2", "ip"):
        raise ValueError(f"dqn.aqd_metric must be 'l2' or 'ip', got {hp['aqd_metric']!r}")
    n = len(train_labels)
    if k > n:
        raise ValueError(f"dqn.codebook_size ({k}) must not exceed the training set ({n} items)")
    period, last = schedule.every_epochs(hp["update_every_epochs"]), schedule.last_step
    key0 = jax.random.PRNGKey(config.seed)

    def init_state():
        return {"memory": jnp.zeros((n, dim), jnp.float32), "codes": jnp.zeros((n, m), jnp.int32),
                "codebooks": jnp.zeros((m, k, dim // m), jnp.float32), "ready": jnp.zeros((), jnp.float32)}

    def update(state, *, step, key):
        cb, codes, _ = pq_kmeans(state["memory"], jax.random.fold_in(key0, step), m=m, k=k,
                                 iters=int(hp["kmeans_iters"]))
        return {**state, "codebooks": cb, "codes": codes, "ready": jnp.ones((), jnp.float32)}

    def loss(z, batch, state, *, step, key):
        del key
        idx = batch["index"]
        cos = cosine_loss(z, batch["y"])
        quant = pq_loss(z, state["codes"][idx], state["codebooks"])
        value = cos + hp["lambda_q"] * state["ready"] * quant
        return value, {"cosine": cos, "quantization": quant}

    # before the loss: the memory of the batch's outputs, then the codebooks re-learned (and at the last step)
    refit = DiscreteStep(update, when=lambda step: (step > 0) & ((step % period == 0) | (step == last)))

    quantizer = Quantizer(codebooks=lambda params, state: state["codebooks"],
                          encode=lambda z, cb: (z, pq_encode(z, cb)), kind="product", metric=hp["aqd_metric"])
    return Method(name="dqn", model=build_backbone(config, dim, head_activation="tanh"), loss=loss,
                  init_state=init_state, banks=(MemoryBank("memory"),), discrete_step=refit, quantizer=quantizer)
