"""CNNH / CNNH+: Xia, Pan, Lai, Liu, Yan, "Supervised hashing for image retrieval via image
representation learning", AAAI 2014.

A two-stage method, the two-step deep baseline of the literature.

Stage 1 (once, in the method's ``init_state``, compiled by itself before training):
approximate hash codes H of the n training items,

    min_H ||S - H H^T / q||_F^2,   S_ij = +1 similar, -1 dissimilar,                       (1)

with H relaxed to [-1, 1] and solved by random coordinate descent with Newton directions
(:func:`jhash.solvers.cnnh.cnnh_coordinate_descent`; eq. 2 and its algorithm); the targets
are sign(H), kept in the method state (checkpoints and resume stay exact).

Stage 2: the network's q outputs, squashed by a sigmoid, are fitted to the targets
(H + 1) / 2 by the per-bit cross-entropy; CNNH+ (``class_outputs=True``) adds c outputs for
the class labels, fitted by the softmax cross-entropy, the two losses summed. Codes for
retrieval are sign of the q hash outputs (the sigmoid thresholded at 1/2).

Defaults and where we differ: n = the whole training set (the paper uses it too), S from
shared labels. The paper's text was not at hand here: the stage-2 loss (sigmoid outputs,
cross-entropy to the binary targets, softmax for the class outputs of CNNH+) and the
uniform [-1, 1] initialisation of H are our reading of it; the number of sweeps of the
coordinate descent (3; on mnist the third changes the objective by about 0.5 %) is our
choice. A projected Newton step is taken only when it lowers (1) (see the solver). The
authors train a 3-conv-layer CNN on the images with their own settings; our configs train
the shared small CNN from scratch with Adam.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jhash.codes import sign
from jhash.losses import classification_loss, num_classes_of, pairwise_similarity
from jhash.methods.base import Method, build_model, hyperparameters
from jhash.solvers.cnnh import cnnh_codes


def defaults() -> dict:
    return {"sweeps": 3, "class_outputs": False, "seed": 0}


def build(config, *, train_labels, schedule) -> Method:
    hp = hyperparameters(config, "cnnh", defaults())
    n, q = len(train_labels), config.bits
    labels = jnp.asarray(train_labels)
    extra = num_classes_of(labels) if hp["class_outputs"] else 0
    if extra and labels.ndim != 1:
        raise ValueError("cnnh.class_outputs (CNNH+) needs class ids (n,) as labels, not multi-hot")
    model = build_model(config, outputs=q + extra)   # q hash outputs, then CNNH+'s class outputs
    key = jax.random.PRNGKey(hp["seed"])

    @jax.jit
    def stage1():
        s = 2.0 * pairwise_similarity(labels, labels) - 1.0
        codes, _, history = cnnh_codes(s, bits=q, key=key, sweeps=int(hp["sweeps"]))
        return {"codes": codes, "objective": history / (n * n)}

    def loss(out, batch, state, *, step, key):
        del key
        target = state["codes"][batch["index"]]
        u = out[:, :q]
        hashing = jnp.mean(jnp.sum(optax.sigmoid_binary_cross_entropy(u, (target > 0).astype(u.dtype)), axis=1))
        metrics = {"hash": hashing}
        value = hashing
        if extra:
            metrics["class"] = classification_loss(out[:, q:], batch["y"])
            value = value + metrics["class"]
        return value, metrics

    return Method(name="cnnh", model=model, loss=loss, init_state=stage1, encode=lambda out: sign(out[..., :q]))
