"""Flax modules: a backbone (feature extractor) and a hash head, composed by :class:`HashNetwork`.

A backbone (:class:`MLP`, :class:`CNN`, the ImageNet networks of :mod:`jhash.models.backbones`,
chosen by name with :func:`get_backbone`) maps a batch of inputs to features (batch, d); the
hash head (:mod:`jhash.models.heads`: plain FC, NINH's divide-and-encode, DRSCH's weighted bits,
grouped sub-networks; its options in one :class:`HeadOptions`) maps them to ``outputs`` real
values. :func:`get_model` builds the composition by name with ``bits`` outputs; the sign of the
outputs gives the code, and what happens between (tanh, straight-through, ...) is a method's
choice, not the model's. Pretrained weights go into an initialised model with
:func:`jhash.models.pretrained.load`.
"""
from jhash.models.heads import (DEFAULT_GROUPS, DivideEncodeHead, GroupedHead, HashHead, HeadOptions, WeightedBitsHead,
                                bit_weights, make_head, truncate_codes, weighted_hamming_distance)
from jhash.models.nets import (CNN, MLP, CodeClassifier, HashNetwork, apply_model, compute_dtype, get_backbone,
                               get_model, hash_network, init_model, network)

__all__ = ["CNN", "DEFAULT_GROUPS", "MLP", "CodeClassifier", "DivideEncodeHead", "GroupedHead", "HashHead",
           "HashNetwork", "HeadOptions", "WeightedBitsHead", "apply_model", "bit_weights", "compute_dtype",
           "get_backbone", "get_model", "hash_network", "init_model", "make_head", "network", "truncate_codes",
           "weighted_hamming_distance"]
