"""Multiwise supervision: triplets, multilevel rankings, and ranking metrics (AP, NDCG) made differentiable.

Triplets (a, p, n) are formed inside the batch from labels: p shares a label with the
anchor a (p != a) and n shares none. Hamming distances are relaxed as
d(u, v) = (q - u^T v) / 2, which equals the Hamming distance for +-1 codes.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jhash.losses._checks import check_codes, check_labels
from jhash.losses.pairwise import pairwise_similarity


def relaxed_hamming(u, v):
    """(q - u v^T) / 2: the Hamming distances of +-1 codes, and their relaxation for real outputs. (n, q), (m, q) -> (n, m)."""
    return 0.5 * (u.shape[1] - u @ v.T)


def valid_triplets(labels):
    """(n, n, n) float mask of the batch's triplets: T[a, p, n] = 1 when s(a, p) = 1, p != a and s(a, n) = 0."""
    s = pairwise_similarity(labels, labels)
    positive = s * (1.0 - jnp.eye(s.shape[0], dtype=s.dtype))
    return positive[:, :, None] * (1.0 - s)[:, None, :]


def _mean_over(mask, values):
    return jnp.sum(mask * values) / jnp.maximum(jnp.sum(mask), 1.0)


def triplet_likelihood_loss(u, labels, *, margin):
    """DTSH's negative log triplet likelihood, averaged over the valid triplets of the batch.

    Wang, Shi, Kitani, "Deep supervised hashing with triplet labels", ACCV 2016, eq. (4):
    p(t_apn | U) = sigmoid(Theta_ap - Theta_an - alpha) with Theta_ij = u_i^T u_j / 2, so each
    triplet costs -log sigmoid(x) = softplus(-x), x = Theta_ap - Theta_an - margin.
    ``u``: (n, q); ``labels``: class ids (n,) or multi-hot (n, c). 0 when the batch has no triplet.
    """
    check_codes("u", u)
    check_labels("labels", labels, u.shape[0])
    theta = 0.5 * (u @ u.T)
    x = theta[:, :, None] - theta[:, None, :] - margin
    return _mean_over(valid_triplets(labels), jax.nn.softplus(-x))


def triplet_margin_loss(u, labels, *, margin):
    """The triplet ranking hinge on relaxed Hamming distances, averaged over the batch's valid triplets.

    max(0, margin + d(u_a, u_p) - d(u_a, u_n)): the bit-scalable ranking loss of DRSCH (Zhang,
    Lin, Zuo, Zhang, "Bit-scalable deep hashing with regularized similarity learning", TIP
    2015) and of Lai et al. (CVPR 2015), with d = (q - u^T v) / 2.
    """
    check_codes("u", u)
    check_labels("labels", labels, u.shape[0])
    d = relaxed_hamming(u, u)
    return _mean_over(valid_triplets(labels), jnp.maximum(margin + d[:, :, None] - d[:, None, :], 0.0))


# ---------------------------------------------------------------------------------------------
# Ranking objectives by soft histogram binning of relaxed Hamming distances (MIHash, TALR).
# Every item of the batch is a query against the other n - 1 items.


def soft_distance_histogram(phi, num_bins: int):
    """Triangular-kernel weights of each pair's relaxed distance on ``num_bins + 1`` bin centres 0, D, 2D, ..., q (D = q / num_bins).

    Cakir et al., ICCV 2017, eq. (7): delta_l(d) = max(0, 1 - |d - c_l| / D). For d in [0, q]
    the weights of a pair sum to 1. ``phi``: (n, q) relaxed codes in [-1, 1]. Returns
    (n, n, num_bins + 1); the diagonal (an item against itself) is zeroed.
    """
    check_codes("phi", phi)
    if not isinstance(num_bins, int) or num_bins <= 0:
        raise ValueError(f"num_bins must be a positive integer, got {num_bins!r}")
    n, q = phi.shape
    width = q / num_bins
    centres = width * jnp.arange(num_bins + 1, dtype=phi.dtype)
    d = relaxed_hamming(phi, phi)
    w = jnp.maximum(0.0, 1.0 - jnp.abs(d[:, :, None] - centres) / width)
    return w * (1.0 - jnp.eye(n, dtype=phi.dtype))[:, :, None]


def _neighbours(labels, n):
    s = pairwise_similarity(labels, labels)
    off = 1.0 - jnp.eye(n, dtype=s.dtype)
    return s * off, (1.0 - s) * off


def _entropy2(p):
    return -jnp.sum(jnp.where(p > 0, p * jnp.log2(jnp.where(p > 0, p, 1.0)), 0.0), axis=-1)


def mutual_information(phi, labels, *, num_bins: int):
    """Per-query mutual information (bits) between the relaxed Hamming distance and the neighbour indicator.

    Cakir, He, Bargal, Sclaroff, "MIHash: Online hashing with mutual information", ICCV 2017,
    eq. (4)-(9), in the batch form of the authors' deep code (fcakir/deep-mihash, mi_forward.m):
    for query i, with positive / negative histograms c+ and c- of its distances to the other
    n - 1 items (:func:`soft_distance_histogram`),

        I_i = H(D_i) - p+_i H(D_i | +) - p-_i H(D_i | -),   H in base 2,

    p(D_i) = (c+ + c-) / (n - 1), p(D_i | +) = c+ / sum c+, p+_i = (#positives) / (n - 1).
    ``phi``: (n, q) relaxed codes (the authors use 2 sigmoid(u) - 1); returns (n,).
    """
    check_labels("labels", labels, phi.shape[0])
    n = phi.shape[0]
    w = soft_distance_histogram(phi, num_bins)
    pos, neg = _neighbours(labels, n)
    cp, cn = jnp.einsum("ijl,ij->il", w, pos), jnp.einsum("ijl,ij->il", w, neg)
    n_pos, n_neg = jnp.sum(pos, axis=1), jnp.sum(neg, axis=1)
    prior_pos = n_pos / (n - 1)
    h_all = _entropy2((cp + cn) / (n - 1))
    h_pos = _entropy2(cp / jnp.maximum(n_pos, 1.0)[:, None])
    h_neg = _entropy2(cn / jnp.maximum(n_neg, 1.0)[:, None])
    return h_all - prior_pos * h_pos - (1.0 - prior_pos) * h_neg


def mutual_information_loss(phi, labels, *, num_bins: int):
    """MIHash's objective: minus the mean over the batch's queries of :func:`mutual_information`."""
    return -jnp.mean(mutual_information(phi, labels, num_bins=num_bins))


def tie_aware_ap_relaxed(phi, labels, *, num_bins: int):
    """Per-query continuous relaxation of tie-aware average precision (TALR's AP^r, simplified form).

    He, Cakir, Bargal, Sclaroff, "Hashing as tie-aware learning to rank", CVPR 2018, sec. 4,
    in the simplified form the authors train with (kunhe/TALR, apr_s_forward.m): with soft
    histograms c+ (positives) and c = c+ + c- of the query's distances, cumulative counts
    C_d = sum_{l <= d} c_l (C+ likewise) and C_{-1} = 0,

        AP_i = 1 / N+_i  sum_d c+_d (C+_{d-1} + C+_d + 1) / (C_{d-1} + C_d + 1),

    which is exact tie-aware AP's expectation over tied orderings with the mean taken inside
    the ratio; with no ties it is AP itself. Queries without positives get 0. Returns (n,).
    """
    check_labels("labels", labels, phi.shape[0])
    w = soft_distance_histogram(phi, num_bins)
    pos, neg = _neighbours(labels, phi.shape[0])
    cp = jnp.einsum("ijl,ij->il", w, pos)
    c = cp + jnp.einsum("ijl,ij->il", w, neg)
    big_c, big_cp = jnp.cumsum(c, axis=1), jnp.cumsum(cp, axis=1)
    prev_c, prev_cp = big_c - c, big_cp - cp
    n_pos = jnp.sum(pos, axis=1)
    ap = jnp.sum(cp * (prev_cp + big_cp + 1.0) / (prev_c + big_c + 1.0), axis=1) / jnp.maximum(n_pos, 1.0)
    return jnp.where(n_pos > 0, ap, 0.0)


def tie_aware_ndcg_relaxed(phi, labels, *, num_bins: int):
    """Per-query continuous relaxation of tie-aware NDCG (TALR's NDCG^r, simplified form).

    He et al., CVPR 2018, sec. 4 (kunhe/TALR, ndcgr_s_forward.m). Gains g_ij = 2^{r_ij} - 1
    with r_ij the number of labels i and j share (1 / 0 for class ids). With soft histograms
    c_d (all items) and G_d = sum_j w_ijd g_ij (gain mass), C_d cumulative as above,

        DCG_i = sum_d G_d / log2(C_{d-1} + (c_d + 1) / 2 + 1),

    the discount of the mean position of the tie group, and NDCG_i = DCG_i / IDCG_i with the
    ideal DCG of the other n - 1 items sorted by gain (1 when IDCG_i = 0). We differ from
    the authors' code in leaving the query itself out of its ideal DCG, as it is left out
    of DCG_i. Returns (n,).
    """
    check_labels("labels", labels, phi.shape[0])
    n = phi.shape[0]
    w = soft_distance_histogram(phi, num_bins)
    if labels.ndim == 1:
        shared = (labels[:, None] == labels[None, :]).astype(phi.dtype)
    else:
        shared = labels.astype(phi.dtype) @ labels.astype(phi.dtype).T
    gain = (jnp.exp2(shared) - 1.0) * (1.0 - jnp.eye(n, dtype=phi.dtype))
    c = jnp.sum(w, axis=1)
    g = jnp.einsum("ijl,ij->il", w, gain)
    big_c = jnp.cumsum(c, axis=1)
    dcg = jnp.sum(g / jnp.log2(big_c - c + (c + 1.0) / 2.0 + 1.0), axis=1)
    ideal = jnp.sum(-jnp.sort(-gain, axis=1) / jnp.log2(jnp.arange(2, n + 2, dtype=phi.dtype)), axis=1)
    return jnp.where(ideal > 0, dcg / jnp.where(ideal > 0, ideal, 1.0), 1.0)


def shared_label_counts(labels):
    """r_ij: how many labels items i and j share (1 / 0 for class ids). (n,) or (n, c) -> (n, n) float."""
    if labels.ndim == 1:
        return (labels[:, None] == labels[None, :]).astype(jnp.float32)
    y = labels.astype(jnp.float32)
    return y @ y.T


def multilevel_ranking_loss(u, labels, *, margin):
    """DSRH's surrogate of NDCG on multilevel similarities: a gain-weighted triplet hinge, the weighted mean over the batch.

    Zhao, Huang, Wang, Tan, "Deep semantic ranking based hashing for multi-label image
    retrieval", CVPR 2015, eq. (4)-(6): every item q of the batch is a query; for items i, j
    with r_qi > r_qj (r = shared labels) the ranking should put i first, and the hinge
    max(0, margin + d(q, i) - d(q, j)) is weighted by the NDCG gain difference
    w = 2^{r_qi} - 2^{r_qj}, d the relaxed Hamming distance. We normalise by the total weight
    (the paper's constant Z). With class ids it is a triplet hinge.
    """
    check_codes("u", u)
    check_labels("labels", labels, u.shape[0])
    n = u.shape[0]
    r = shared_label_counts(labels)
    gain = jnp.exp2(r)
    off = 1.0 - jnp.eye(n, dtype=u.dtype)
    weights = jnp.maximum(gain[:, :, None] - gain[:, None, :], 0.0) * off[:, :, None] * off[:, None, :]
    d = relaxed_hamming(u, u)
    hinge = jnp.maximum(margin + d[:, :, None] - d[:, None, :], 0.0)
    return jnp.sum(weights * hinge) / jnp.maximum(jnp.sum(weights), 1e-12)
