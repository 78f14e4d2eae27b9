"""DSRH: Zhao, Huang, Wang, Tan, "Deep semantic ranking based hashing for multi-label image retrieval", CVPR 2015.

Multilevel similarity (r = the number of labels two images share) is preserved by a
surrogate of NDCG: for each query of the batch and items i, j with r_qi > r_qj, the hinge
max(0, rho + d(q, i) - d(q, j)) weighted by 2^{r_qi} - 2^{r_qj}
(:func:`jhash.losses.multilevel_ranking_loss`), on relaxed codes h = 2 sigmoid(z) - 1, plus
(alpha / 2) ||mean h||^2 for bit balance (:func:`jhash.losses.bit_balance_penalty`);
weight decay is the optimizer's. Codes are sign(z).

No code was published; the margin rho, the normaliser Z and alpha are not given in the
parts of the paper we could read, so rho = 1 (one Hamming unit), Z = the total weight and
alpha = 1 are our choices. The paper feeds the hash layer with multi-scale (fc7 + conv5)
features of a pretrained CNN; our configs use the shared small CNN. With class ids (one
relevance level) the loss is a triplet hinge.
"""
from __future__ import annotations

from jhash.discretize import sigmoid
from jhash.losses import bit_balance_penalty, multilevel_ranking_loss
from jhash.methods.base import Method, build_model, hyperparameters


def defaults() -> dict:
    return {"margin": 1.0, "balance": 1.0}


def build(config, *, train_labels, schedule) -> Method:
    hp = hyperparameters(config, "dsrh", defaults())
    relax = sigmoid(1.0)

    def loss(u, batch, state, *, step, key):
        h = relax(u)
        ranking = multilevel_ranking_loss(h, batch["y"], margin=hp["margin"])
        balance = 0.5 * hp["balance"] * bit_balance_penalty(h)
        return ranking + balance, {"ranking": ranking, "balance": balance}

    return Method(name="dsrh", model=build_model(config), loss=loss)
