"""GreedyHash: Su, Zhang, Zhu, Tian, "Greedy hash: towards fast optimization for accurate hash coding in CNN", NeurIPS 2018.

The hash layer's outputs h are rounded greedily, b = sign(h), in the forward pass, and the
gradient of b is handed to h unchanged (:func:`jhash.discretize.sign_ste`, eq. 7); a
classifier on the binary codes gives the supervised loss, and the penalty
alpha * mean | |h| - 1 |^3 (:func:`jhash.losses.cubic_penalty`, eq. 8) keeps h close to
the codes it is rounded to.

Where we follow the authors' code (ssppp/GreedyHash, cifar1.py): the classifier is a
bias-free linear layer on b, the loss is cross-entropy + 0.1 * mean |(|h| - 1)^3| (alpha = 1
on ImageNet), codes are sign(h). Where we differ: multi-hot labels use a sigmoid
cross-entropy head (the authors' code is single-label); sign(0) = +1 (torch.sign gives 0);
the authors fine-tune AlexNet with SGD, our configs train the shared small CNN with Adam.
"""
from __future__ import annotations

from jhash.losses import classification_loss, cubic_penalty, num_classes_of
from jhash.methods.base import Method, build_model, encode_u, hyperparameters
from jhash.models import CodeClassifier


def defaults() -> dict:
    return {"alpha": 0.1}


def build(config, *, train_labels, schedule) -> Method:
    hp = hyperparameters(config, "greedyhash", defaults())
    model = CodeClassifier(build_model(config), num_classes_of(train_labels), on="sign_ste", use_bias=False)

    def loss(out, batch, state, *, step, key):
        u = out["u"]
        ce = classification_loss(out["logits"], batch["y"])
        penalty = hp["alpha"] * cubic_penalty(u) / u.size
        return ce + penalty, {"classification": ce, "penalty": penalty}

    return Method(name="greedyhash", model=model, loss=loss, encode=encode_u)
