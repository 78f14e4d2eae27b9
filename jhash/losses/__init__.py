"""Pure loss functions, grouped by supervision (pointwise, pairwise, multiwise) and quantization.

Every loss takes arrays and keyword arguments, documents its shapes, raises a ValueError on
bad shapes, and returns a scalar. A method's objective is a weighted sum of such terms.
"""
from jhash.losses.pairwise import dpsh_loss, pairwise_likelihood, pairwise_similarity
from jhash.losses.quantization import binarize, quantization_error

__all__ = ["binarize", "dpsh_loss", "pairwise_likelihood", "pairwise_similarity", "quantization_error"]
