"""Flax modules: backbones with a hash head producing q real outputs.

Models are chosen by name with :func:`get_model`; each takes ``bits`` (the code length q)
and returns real-valued outputs of shape (batch, q). The sign of the outputs gives the
code; what happens between (tanh, straight-through, ...) is a method's choice, not the
model's. The hash head (``head``: plain FC, NINH's divide-and-encode, DRSCH's weighted bits,
grouped sub-networks) is chosen by name on every backbone (:mod:`jhash.models.heads`).
"""
from jhash.models.heads import (DivideEncodeHead, GroupedHead, HashHead, WeightedBitsHead, bit_weights, make_head,
                                truncate_codes, weighted_hamming_distance)
from jhash.models.nets import CNN, MLP, CodeClassifier, apply_model, compute_dtype, get_model, init_model

__all__ = ["CNN", "MLP", "CodeClassifier", "DivideEncodeHead", "GroupedHead", "HashHead", "WeightedBitsHead",
           "apply_model", "bit_weights", "compute_dtype", "get_model", "init_model", "make_head", "truncate_codes",
           "weighted_hamming_distance"]
