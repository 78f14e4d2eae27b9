"""Pure loss functions, grouped by supervision (pointwise, pairwise, multiwise) and quantization.

Every loss takes arrays and keyword arguments, documents its shapes, raises a ValueError on
bad shapes, and returns a scalar. A method's objective is a weighted sum of such terms.
"""
from jhash.losses.pairwise import (contrastive_loss, dpsh_loss, inner_product_loss, pairwise_likelihood,
                                   pairwise_similarity)
from jhash.losses.pointwise import classification_loss, num_classes_of
from jhash.losses.quantization import (binarize, bit_balance_penalty, bit_decorrelation_penalty, cubic_penalty,
                                       l1_quantization, log_cosh_quantization, quantization_error)

__all__ = [
    "binarize", "bit_balance_penalty", "bit_decorrelation_penalty", "classification_loss", "contrastive_loss",
    "cubic_penalty", "dpsh_loss", "inner_product_loss", "l1_quantization", "log_cosh_quantization",
    "num_classes_of", "pairwise_likelihood", "pairwise_similarity", "quantization_error",
]
