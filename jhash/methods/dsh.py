"""DSH: Liu, Wang, Shan, Chen, "Deep supervised hashing for fast image retrieval", CVPR 2016.

Objective (eq. 5): for every pair of the batch, the contrastive loss with margin
m = 2q on the real outputs (:func:`jhash.losses.contrastive_loss`), plus
alpha * sum_i || |u_i| - 1 ||_1 pulling the outputs to +-1 (:func:`jhash.losses.l1_quantization`).

Where we follow the authors' Caffe code (lhmRyan/deep-supervised-hashing-DSH,
hashing_loss_layer.cpp): pairs are the unordered pairs i < j of the batch, the pair term
is divided by B (B - 1) and the regularizer by B; the hand-written gradient there is that
of the paper's loss with its 1/2 factors, which is the loss we use; alpha = 0.01,
m = 2q (``margin = 0`` means 2q). The outputs are linear (no tanh); codes are sign(u).
Where we differ: the authors train a 3-conv CNN with SGD (lr 1e-3, 70k iterations);
our configs use the shared small CNN and Adam.
"""
from __future__ import annotations

from jhash.losses import contrastive_loss, l1_quantization, pairwise_similarity
from jhash.methods.base import Method, build_model, hyperparameters


def defaults() -> dict:
    return {"alpha": 0.01, "margin": 0.0}


def build(config, *, train_labels, schedule) -> Method:
    hp = hyperparameters(config, "dsh", defaults())
    margin = float(hp["margin"]) or 2.0 * config.bits
    if margin < 0 or hp["alpha"] < 0:
        raise ValueError(f"dsh.margin and dsh.alpha must be >= 0, got {hp}")

    def loss(u, batch, state, *, step, key):
        n = u.shape[0]
        s = pairwise_similarity(batch["y"], batch["y"])
        pairs = contrastive_loss(u, u, s, margin=margin) / 2.0 / (n * (n - 1))  # ordered pairs counted twice
        reg = hp["alpha"] * l1_quantization(u) / n
        return pairs + reg, {"pairs": pairs, "regularizer": reg}

    return Method(name="dsh", model=build_model(config), loss=loss)
