"""Pure loss functions, grouped by supervision (pointwise, pairwise, multiwise) and quantization.

Every loss takes arrays and keyword arguments, documents its shapes, raises a ValueError on
bad shapes, and returns a scalar. A method's objective is a weighted sum of such terms.
"""
from jhash.losses.multiwise import (multilevel_ranking_loss, mutual_information, mutual_information_loss,
                                    relaxed_hamming, shared_label_counts,
                                    soft_distance_histogram, tie_aware_ap_relaxed, tie_aware_ndcg_relaxed,
                                    triplet_likelihood_loss, triplet_margin_loss, valid_triplets)
from jhash.losses.pairwise import (cauchy_cross_entropy, cauchy_quantization, contrastive_loss, cosine_hamming,
                                   dpsh_loss, inner_product_loss, margin_t_loss, pairwise_likelihood,
                                   pairwise_similarity, weighted_pairwise_likelihood)
from jhash.losses.pointwise import classification_loss, label_matrix, num_classes_of
from jhash.losses.quantization import (binarize, bit_balance_penalty, bit_decorrelation_penalty, cubic_penalty,
                                       l1_quantization, log_cosh_quantization, quantization_error)

__all__ = [
    "multilevel_ranking_loss", "shared_label_counts",
    "cauchy_cross_entropy", "cauchy_quantization", "cosine_hamming", "margin_t_loss", "weighted_pairwise_likelihood",
    "binarize", "bit_balance_penalty", "bit_decorrelation_penalty", "classification_loss", "contrastive_loss",
    "cubic_penalty", "dpsh_loss", "label_matrix", "inner_product_loss", "l1_quantization", "log_cosh_quantization",
    "mutual_information", "mutual_information_loss", "num_classes_of", "pairwise_likelihood", "pairwise_similarity", "quantization_error", "relaxed_hamming",
    "soft_distance_histogram", "tie_aware_ap_relaxed", "tie_aware_ndcg_relaxed", "triplet_likelihood_loss", "triplet_margin_loss", "valid_triplets",
]
