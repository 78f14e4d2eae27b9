"""Pieces shared by the ranking / auxiliary-coordinate methods (RSH, RPH, DSeRH, AffHash):
graded relevance from labels and the feature map of their hash functions."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jhash.shallow.common import check_positive, choose_anchors, rbf_bandwidth, rbf_features

_HI = jax.lax.Precision.HIGHEST

__all__ = ["relevance", "feature_map", "feature_project"]


def relevance(labels_q, labels_x):
    """r(q, x): the number of labels shared by each query and each item (1 / 0 for class ids), ``(M, N)`` float32."""
    if labels_q.ndim != labels_x.ndim:
        raise ValueError("labels_q and labels_x must both be class ids (n,) or both multi-hot (n, c)")
    if labels_q.ndim == 1:
        return (labels_q[:, None] == labels_x[None, :]).astype(jnp.float32)
    return jnp.matmul(labels_q.astype(jnp.float32), labels_x.astype(jnp.float32).T, precision=_HI)


def feature_map(x, key, kind: str, anchors: int):
    """The hash functions' input: ``'linear'``: phi(x) = x - mean; ``'kernel'``: RBF features on
    ``anchors`` random training points (sigma = the mean distance to them, as SDH / FTH).
    Returns ``(phi (n, m), params)`` where ``params`` are what :func:`feature_project` needs."""
    if kind == "linear":
        params = {"mean": jnp.mean(x, 0)}
        return x - params["mean"], params
    if kind == "kernel":
        u = choose_anchors(x, key, check_positive(anchors, "anchors", x.shape[0], "the number of training points"),
                           "random")
        params = {"anchors": u, "sigma": rbf_bandwidth(x, u, "mean")}
        return rbf_features(x, u, params["sigma"]), params
    raise ValueError(f"hash_functions must be 'linear' or 'kernel', got {kind!r}")


def feature_project(params, x):
    """``phi(x) @ w + b`` for the feature map of :func:`feature_map` (``params``: its entries, ``w``, ``b``)."""
    if "anchors" in params:
        phi = rbf_features(x, params["anchors"], params["sigma"])
    else:
        phi = x - params["mean"]
    return jnp.matmul(phi, params["w"], precision=_HI) + params["b"]
