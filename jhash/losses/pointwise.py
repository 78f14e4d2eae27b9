"""Pointwise supervision: classification from the codes (SDH-, DSDH-, GreedyHash-style)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jhash.losses._checks import check_labels


def classification_loss(logits, labels):
    """Mean over the batch of the classification loss of a linear classifier on the codes.

    Class ids (n,): softmax cross-entropy -log softmax(logits)_y (SDH, Shen et al. CVPR 2015
    use a least-squares classifier; DSDH, Li et al. NIPS 2017, and GreedyHash use the
    softmax one). Multi-hot labels (n, c): the sum over classes of the sigmoid
    cross-entropy. ``logits``: (n, c) real.
    """
    if getattr(logits, "ndim", None) != 2 or not jnp.issubdtype(logits.dtype, jnp.floating):
        raise ValueError(f"logits must be a floating array of shape (n, classes); got {getattr(logits, 'shape', None)}")
    check_labels("labels", labels, logits.shape[0])
    if labels.ndim == 1:
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))
    if labels.shape[1] != logits.shape[1]:
        raise ValueError(f"multi-hot labels have {labels.shape[1]} classes but logits have {logits.shape[1]}")
    return jnp.mean(jnp.sum(optax.sigmoid_binary_cross_entropy(logits, labels.astype(logits.dtype)), axis=1))


def label_matrix(labels, num_classes: int | None = None):
    """Labels as a float32 matrix (n, c): one-hot rows for class ids (c = ``num_classes`` or max id + 1),
    multi-hot labels unchanged. The Y of the pointwise and discrete methods (SDH, DSDH, DAGH, DSEH, ...)."""
    labels = jnp.asarray(labels)
    if labels.ndim == 2:
        return labels.astype(jnp.float32)
    return jax.nn.one_hot(labels, num_classes or int(jnp.max(labels)) + 1, dtype=jnp.float32)


def num_classes_of(labels) -> int:
    """The number of classes of training labels: max id + 1 for class ids, the width for multi-hot."""
    labels = jax.numpy.asarray(labels)
    return int(labels.shape[1]) if labels.ndim == 2 else int(jnp.max(labels)) + 1
