"""jhash: a JAX functional research framework for supervised learning to hash."""

__version__ = "0.1.0"
