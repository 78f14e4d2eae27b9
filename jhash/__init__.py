"""jhash: a JAX functional research framework for supervised learning to hash."""
from jhash import _determinism, _malloc

__version__ = "0.1.0"

_determinism.request()  # deterministic GPU kernels for everything that imports jhash (see jhash/_determinism.py)
_malloc.keep_freed_memory()  # XLA's per-call CPU buffer reused, not page-faulted afresh (see jhash/_malloc.py)
