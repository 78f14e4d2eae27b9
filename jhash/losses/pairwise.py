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


def pairwise_likelihood(u, v, similarity, *, scale: float = 0.5):
    """Negative log-likelihood of pairwise labels under inner products, summed over pairs.

    Zhang et al., "Supervised hashing with latent factor models", SIGIR 2014 (LFH), and
    Li, Wang, Kang, "Feature learning based deep supervised hashing with pairwise labels",
    IJCAI 2016 (DPSH), eq. (1)-(2):

        theta_ij = scale * <u_i, v_j>,   p(s_ij | u_i, v_j) = sigmoid(theta_ij)^s_ij (1 - sigmoid(theta_ij))^(1-s_ij)
        -log p(S) = sum_ij  log(1 + exp(theta_ij)) - s_ij * theta_ij

    computed stably as softplus(theta) - s * theta. ``scale`` is 1/2 in LFH and DPSH, 1 in
    DHN (Zhu et al., AAAI 2016, eq. 3). ``u``: (n, q), ``v``: (m, q), ``similarity``: (n, m)
    with entries in {0, 1}. Returns the sum over the n * m pairs.
    """
    _check_pairs(u, v, similarity)
    return jnp.sum(_likelihood_terms(u, v, similarity, scale))


def _likelihood_terms(u, v, similarity, scale):
    theta = scale * (u @ v.T)
    return jax.nn.softplus(theta) - similarity * theta


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


def _pair_weights(similarity, positive_weight, mask):
    """Per-pair weights: ``positive_weight`` on similar pairs (``'balanced'``: |S| / |S_1| on similar and |S| / |S_0|
    on dissimilar pairs, counted over the pairs in ``mask``), 1 on dissimilar ones; zero outside ``mask``."""
    mask = jnp.ones_like(similarity) if mask is None else mask.astype(similarity.dtype)
    if isinstance(positive_weight, str):
        if positive_weight != "balanced":
            raise ValueError(f"positive_weight must be a number or 'balanced', got {positive_weight!r}")
        total = jnp.sum(mask)
        n_pos = jnp.sum(similarity * mask)
        w_pos = total / jnp.maximum(n_pos, 1.0)
        w_neg = total / jnp.maximum(total - n_pos, 1.0)
        return mask * (similarity * w_pos + (1.0 - similarity) * w_neg)
    return mask * (similarity * positive_weight + (1.0 - similarity))


def _weighted_mean(terms, weights):
    return jnp.sum(weights * terms) / jnp.maximum(jnp.sum(weights), 1e-12)


def weighted_pairwise_likelihood(u, v, similarity, *, scale, positive_weight=1.0, mask=None):
    """HashNet's weighted maximum likelihood: the weighted mean over pairs of softplus(theta) - s theta, theta = scale <u, v>.

    Cao, Long, Wang, Yu, "HashNet: Deep learning to hash by continuation", ICCV 2017, eq. (5):
    similar pairs are re-weighted to counter the imbalance of similar and dissimilar pairs.
    The paper weights them by |S| / |S_1| and |S| / |S_0| (``positive_weight='balanced'``);
    the authors' code (thuml/HashNet, pytorch/src/loss.py) uses a fixed weight c on similar
    pairs and 1 on dissimilar ones (``positive_weight=c``; c = 1 for COCO, 5 for NUS-WIDE),
    with theta = (10 / q) <u, v>. The sum is divided by the total weight. ``mask`` (n, m)
    leaves pairs out (e.g. an item with itself).
    """
    _check_pairs(u, v, similarity)
    return _weighted_mean(_likelihood_terms(u, v, similarity, scale), _pair_weights(similarity, positive_weight, mask))


def cosine_hamming(u, v, eps: float = 1e-6):
    """d_ij = q / 2 (1 - cos(u_i, v_j)): the Hamming distance of +-1 codes extended to real vectors (DCH, MMHH)."""
    norms = jnp.sqrt(jnp.sum(u * u, axis=1, keepdims=True) + eps) * jnp.sqrt(jnp.sum(v * v, axis=1) + eps)
    return jnp.maximum(0.5 * u.shape[1] * (1.0 - (u @ v.T) / norms), 0.0)  # rounding can make 1 - cos < 0


def cauchy_cross_entropy(u, v, similarity, *, gamma, positive_weight="balanced", mask=None):
    """DCH's Cauchy cross-entropy, the weighted mean over pairs.

    Cao, Long, Liu, Wang, "Deep Cauchy hashing for Hamming space retrieval", CVPR 2018,
    eq. (4)-(6): p(s_ij = 1) = gamma / (gamma + d_ij) with d the :func:`cosine_hamming`
    distance, so

        l_ij = s_ij log((d_ij + gamma) / gamma) + (1 - s_ij) log((d_ij + gamma) / d_ij),

    weighted as in :func:`weighted_pairwise_likelihood` (the paper's |S| / |S_c| by default).
    The heavy Cauchy tail keeps pulling similar pairs long after they are close, so they
    end up inside a small Hamming ball. gamma = 20 in the paper and the authors' code.
    We use the paper's cosine distance; the authors' latest code (thuml/DeepHash, dch.py)
    switched to the squared Euclidean distance of the tanh outputs.
    """
    _check_pairs(u, v, similarity)
    d = cosine_hamming(u, v)
    terms = similarity * jnp.log1p(d / gamma) + (1.0 - similarity) * (jnp.log(d + gamma) - jnp.log(d + 1e-6))
    return _weighted_mean(terms, _pair_weights(similarity, positive_weight, mask))


def cauchy_quantization(u, *, gamma):
    """DCH's Cauchy quantization loss: sum_i log(1 + d(|u_i|, 1) / gamma), d the :func:`cosine_hamming` distance.

    Cao et al., CVPR 2018, eq. (7): pulls |u_i| towards the all-ones vector, i.e. u_i towards
    a binary code. ``u``: (n, q). Returns the sum over the n items.
    """
    check_codes("u", u)
    d = cosine_hamming(jnp.abs(u), jnp.ones((1, u.shape[1]), u.dtype))[:, 0]
    return jnp.sum(jnp.log1p(d / gamma))


def margin_t_loss(u, v, similarity, *, gamma, margin, inside_weights=(0.5, 0.8), positive_weight=1.0, mask=None):
    """MMHH's max-margin t-distribution loss, the weighted mean over pairs.

    Kang, Cao, Long, Wang, Yu, "Maximum-margin Hamming hashing", ICCV 2019. As in the authors'
    code (thuml/MMHH, src/mmhh_loss.py): p(s_ij = 1) = 0.5 gamma / (gamma + d_ij) with d the
    :func:`cosine_hamming` distance, l_ij = -s_ij log p - (1 - s_ij) log(1 - p); pairs already
    inside the Hamming ball d <= ``margin`` are down-weighted (similar x inside_weights[0] =
    0.5, dissimilar x inside_weights[1] = 0.8; constants, no gradient through the test), so
    the loss concentrates on similar pairs still outside the ball and dissimilar ones
    inside it. Authors' defaults: gamma = 10, margin = 2.
    """
    _check_pairs(u, v, similarity)
    d = cosine_hamming(u, v)
    p = 0.5 * gamma / (gamma + d)
    terms = -similarity * jnp.log(p) - (1.0 - similarity) * jnp.log1p(-p)
    inside = jax.lax.stop_gradient(d <= margin)
    sim_in, dis_in = inside_weights
    reweight = jnp.where(inside, similarity * sim_in + (1.0 - similarity) * dis_in, 1.0)
    return _weighted_mean(terms, reweight * _pair_weights(similarity, positive_weight, mask))
