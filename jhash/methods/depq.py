"""DEPQ (the paper's DPQ): Klein & Wolf, "End-to-end supervised product quantization for image search and
retrieval", CVPR 2019 (arXiv:1711.08589).

The network's embedding ``z`` (``dim`` units) is split into M sub-vectors; a small layer per
sub-vector gives a distribution over its codebook's K codewords, ``p_m = softmax(z_m A_m)``,
and two representations are built from the learned codebooks ``C_m`` (K x dim/M):

  soft  ``s_m = sum_k p_mk C_m[k]``        (differentiable),
  hard  ``h_m = C_m[argmax_k p_mk]``       (a PQ code; back-propagated by the straight-through
                                            estimator ``h = s + stop_gradient(h - s)``).

Both go through one shared classifier; the loss is

    CE(W s, y) + CE(W h, y) + lambda_jcl * JCL + lambda_gini * (Gini(p_i) - Gini(mean_batch p)),

with the joint central loss ``JCL = mean_i (||s_i - o_{y_i}||^2 + ||h_i - o_{y_i}||^2) / 2``
(learned class centres ``o``: soft and hard vectors of a class meet at one centre) and the
Gini impurity ``Gini(p) = mean_m (1 - sum_k p_mk^2)``: low per item (peaked assignments, so
the soft vector is close to the hard one), high for the batch mean (every codeword used).
Everything is learned end to end by back-propagation. Retrieval is asymmetric: the database
stores the hard codes ``argmax p`` (M log2 K bits), the query keeps its soft vector ``s``,
and items are ranked by ``sum_m ||s_m - C_m[b_m]||^2`` from lookup tables.

Sources: the paper's formulation as summarised above; the authors did not publish code
that we could find; a public PyTorch re-implementation (a ``DPQ`` module with per-subspace
softmax assignment layers and a ``DPQJointClassLoss``, read for the shape of the JCL: half
the squared distances of soft and hard vectors to the class centre, averaged over the batch)
agrees with it. Where we differ / choose: the paper's weights of the JCL and Gini terms
were not available to us; ``lambda_gini = 1`` and ``lambda_jcl = 0.01`` are our choices
(``lambda_jcl`` picked from {0.1, 0.01} on digits, 16 bits, K = 16: mAP 0.56 vs 0.88; never
on mnist); the paper fine-tunes an ImageNet network, our configs
train the shared small CNN from scratch with Adam; JCL needs class ids (single-label data).
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jhash.losses import classification_loss, num_classes_of
from jhash.methods._quant import build_backbone, check_product, codebook_layout
from jhash.methods.base import Method, hyperparameters
from jhash.quantization import Quantizer


def defaults() -> dict:
    return {"lambda_jcl": 0.01, "lambda_gini": 1.0, "codebook_size": 256, "dim": 0}


class SoftHardPQ(nn.Module):
    """Backbone, then DPQ's soft and hard product-quantized vectors and a shared classifier on both.

    Returns ``{'z', 'probs' (n, M, K), 'codes' (n, M), 'soft', 'hard' (n, dim), 'logits_soft',
    'logits_hard', 'centers' (classes, dim)}``."""

    backbone: nn.Module  # a jhash.models.HashNetwork with dim outputs
    num_books: int
    codebook_size: int
    num_classes: int

    @nn.compact
    def __call__(self, x, train: bool = False):
        z = self.backbone(x, train=train)
        n, dim = z.shape
        m, k, d = self.num_books, self.codebook_size, dim // self.num_books
        zs = z.reshape(n, m, d)
        a = self.param("assign", nn.initializers.lecun_normal(batch_axis=(0,)), (m, d, k))
        cb = self.param("codebooks", nn.initializers.normal(1.0), (m, k, d))
        p = jax.nn.softmax(jnp.einsum("nmd,mdk->nmk", zs, a), axis=-1)
        codes = jnp.argmax(p, axis=-1).astype(jnp.int32)
        soft = jnp.einsum("nmk,mkd->nmd", p, cb).reshape(n, dim)
        hard = cb[jnp.arange(m)[None, :], codes].reshape(n, dim)
        hard = soft + jax.lax.stop_gradient(hard - soft)  # straight-through
        classifier = nn.Dense(self.num_classes, name="classifier")
        centers = self.param("centers", nn.initializers.normal(1.0), (self.num_classes, dim))
        return {"z": z, "probs": p, "codes": codes, "soft": soft, "hard": hard,
                "logits_soft": classifier(soft), "logits_hard": classifier(hard), "centers": centers}


def joint_central_loss(soft, hard, centers, labels):
    """mean_i (||soft_i - o_{y_i}||^2 + ||hard_i - o_{y_i}||^2) / 2 for class ids ``labels``."""
    if getattr(labels, "ndim", None) != 1:
        raise ValueError(f"the joint central loss needs class ids (n,), got labels of shape {getattr(labels, 'shape', None)}")
    o = centers[labels]
    return 0.5 * jnp.mean(jnp.sum(jnp.square(soft - o), 1) + jnp.sum(jnp.square(hard - o), 1))


def gini_impurity(p):
    """mean_m (1 - sum_k p_mk^2) of distributions ``p (..., M, K)``: shape ``p.shape[:-2]``."""
    return jnp.mean(1.0 - jnp.sum(jnp.square(p), axis=-1), axis=-1)


def gini_loss(probs):
    """mean_i Gini(p_i) - Gini(mean_i p_i): peaked assignments per item, all codewords used across the batch."""
    return jnp.mean(gini_impurity(probs)) - gini_impurity(jnp.mean(probs, axis=0))


def build(config, *, train_labels, schedule) -> Method:
    hp = hyperparameters(config, "depq", defaults())
    m, k, dim = codebook_layout(config, hp)
    check_product(dim, m, "depq")
    if hp["lambda_jcl"] < 0 or hp["lambda_gini"] < 0:
        raise ValueError(f"depq.lambda_jcl and depq.lambda_gini must be >= 0, got {hp}")
    if jnp.ndim(train_labels) != 1:
        raise ValueError("depq needs class ids (single-label data) for its joint central loss; "
                         f"got train_labels of shape {jnp.shape(train_labels)}")
    model = SoftHardPQ(build_backbone(config, dim), m, k, num_classes_of(train_labels))

    def loss(out, batch, state, *, step, key):
        del step, key
        y = batch["y"]
        ce = classification_loss(out["logits_soft"], y) + classification_loss(out["logits_hard"], y)
        jcl = joint_central_loss(out["soft"], out["hard"], out["centers"], y)
        gini = gini_loss(out["probs"])
        value = ce + hp["lambda_jcl"] * jcl + hp["lambda_gini"] * gini
        return value, {"classification": ce, "jcl": jcl, "gini": gini}

    quantizer = Quantizer(codebooks=lambda params, state: params["codebooks"],
                          encode=lambda out, cb: (out["soft"], out["codes"]), kind="product", metric="l2")
    return Method(name="depq", model=model, loss=loss, quantizer=quantizer)
