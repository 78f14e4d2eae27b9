"""Flax modules: backbones with a hash head producing q real outputs.

Models are chosen by name with :func:`get_model`; each takes ``bits`` (the code length q)
and returns real-valued outputs of shape (batch, q). The sign of the outputs gives the
code; what happens between (tanh, straight-through, ...) is a method's choice, not the
model's.
"""
from jhash.models.nets import CNN, MLP, CodeClassifier, HashHead, apply_model, get_model, init_model

__all__ = ["CNN", "MLP", "CodeClassifier", "HashHead", "apply_model", "get_model", "init_model"]
