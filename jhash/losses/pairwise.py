"""Pairwise supervision: similarity from labels and the pairwise likelihood (LFH / DPSH) loss."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jhash.losses._checks import check_codes, check_labels
from jhash.losses.quantization import quantization_error


def pairwise_similarity(labels_a, labels_b):
    """S_ij = 1 if item i of ``labels_a`` and item j of ``labels_b`` share at least one label, else 0.

    Labels are class ids (n,) or multi-hot (n, c); both sides must use the same form.
    Returns a float32 (n_a, n_b) matrix.
    """
    if labels_a.ndim != labels_b.ndim:
        raise ValueError(
            f"labels_a and labels_b must both be class ids or both multi-hot; got shapes {labels_a.shape} and {labels_b.shape}"
        )
    if labels_a.ndim == 1:
        return (labels_a[:, None] == labels_b[None, :]).astype(jnp.float32)
    return ((labels_a.astype(jnp.float32) @ labels_b.astype(jnp.float32).T) > 0).astype(jnp.float32)


def pairwise_likelihood(u, v, similarity):
    """Negative log-likelihood of pairwise labels under inner products, summed over pairs.

    Zhang et al., "Supervised hashing with latent factor models", SIGIR 2014 (LFH), and
    Li, Wang, Kang, "Feature learning based deep supervised hashing with pairwise labels",
    IJCAI 2016 (DPSH), eq. (1)-(2):

        theta_ij = 0.5 * <u_i, v_j>,   p(s_ij | u_i, v_j) = sigmoid(theta_ij)^s_ij (1 - sigmoid(theta_ij))^(1-s_ij)
        -log p(S) = sum_ij  log(1 + exp(theta_ij)) - s_ij * theta_ij

    computed stably as softplus(theta) - s * theta. ``u``: (n, q), ``v``: (m, q),
    ``similarity``: (n, m) with entries in {0, 1}. Returns the sum over the n * m pairs.
    """
    check_codes("u", u)
    check_codes("v", v, bits=u.shape[1])
    if similarity.shape != (u.shape[0], v.shape[0]):
        raise ValueError(f"similarity must have shape {(u.shape[0], v.shape[0])}; got {similarity.shape}")
    theta = 0.5 * (u @ v.T)
    return jnp.sum(jax.nn.softplus(theta) - similarity * theta)


def dpsh_loss(u, *, labels, eta, bank_u=None, bank_labels=None):
    """The DPSH objective for a mini-batch, normalised per pair.

    Li, Wang, Kang, "Feature learning based deep supervised hashing with pairwise labels",
    IJCAI 2016, eq. (3):  L = -sum_{s_ij} (s_ij theta_ij - log(1 + e^theta_ij)) + eta * sum_i ||b_i - u_i||^2
    with b_i = sign(u_i) (treated as a constant, the paper's alternating B-step).

    With ``bank_u`` / ``bank_labels`` (outputs and labels of the whole training set, held
    as a constant memory bank) the pairs are (batch x training set), as in the authors'
    code (jiangqy/DPSH-pytorch); otherwise (batch x batch). Like the authors' code, both
    terms are divided by the number of pairs (n_batch * n_other), which keeps the paper's
    relative weight eta.

    Args:
      u: (n, q) real network outputs of the batch.
      labels: (n,) class ids or (n, c) multi-hot labels of the batch.
      eta: weight of the quantization term (the paper's eta; lambda in the authors' code).
      bank_u, bank_labels: optional (m, q) outputs and labels of the other side of the pairs.
    Returns:
      A scalar.
    """
    check_codes("u", u)
    check_labels("labels", labels, u.shape[0])
    if (bank_u is None) != (bank_labels is None):
        raise ValueError("bank_u and bank_labels must be given together")
    if bank_u is None:
        v, labels_v = u, labels
    else:
        check_codes("bank_u", bank_u, bits=u.shape[1])
        check_labels("bank_labels", bank_labels, bank_u.shape[0])
        v, labels_v = bank_u, bank_labels
    s = pairwise_similarity(labels, labels_v)
    num_pairs = u.shape[0] * v.shape[0]
    return (pairwise_likelihood(u, v, s) + eta * quantization_error(u)) / num_pairs


def _check_pairs(u, v, similarity):
    check_codes("u", u)
    check_codes("v", v, bits=u.shape[1])
    if getattr(similarity, "shape", None) != (u.shape[0], v.shape[0]):
        raise ValueError(f"similarity must have shape {(u.shape[0], v.shape[0])}; got {getattr(similarity, 'shape', None)}")


def inner_product_loss(u, v, similarity):
    """sum_ij (u_i^T v_j - q s_ij)^2 with s_ij in {-1, +1}: KSH's code inner-product loss on a batch.

    Liu, Wang, Ji, Jiang, Chang, "Supervised hashing with kernels", CVPR 2012, eq. (4):
    min ||B_l B_l^T - q S||_F^2, S_ij = +1 for similar and -1 for dissimilar pairs. Also the
    pairwise term of ADSH, DDSH, COSDISH and BDNN. ``similarity`` is given in {0, 1} (as
    :func:`pairwise_similarity` returns) and mapped to {-1, +1} here. ``u``: (n, q),
    ``v``: (m, q), ``similarity``: (n, m). Returns the sum over the n * m pairs.
    """
    _check_pairs(u, v, similarity)
    q = u.shape[1]
    return jnp.sum(jnp.square(u @ v.T - q * (2.0 * similarity - 1.0)))


def contrastive_loss(u, v, similarity, *, margin):
    """DSH's contrastive loss with margin, summed over pairs.

    Liu, Wang, Shan, Chen, "Deep supervised hashing for fast image retrieval", CVPR 2016,
    eq. (3) (their y = 1 - s):  L_ij = s_ij / 2 ||u_i - v_j||^2 + (1 - s_ij) / 2 max(m - ||u_i - v_j||^2, 0).
    The paper's margin is m = 2q. ``u``: (n, q), ``v``: (m, q), ``similarity``: (n, m) in {0, 1}.
    """
    _check_pairs(u, v, similarity)
    d2 = jnp.sum(jnp.square(u[:, None, :] - v[None, :, :]), axis=-1)
    return jnp.sum(0.5 * similarity * d2 + 0.5 * (1.0 - similarity) * jnp.maximum(margin - d2, 0.0))
