"""The `Dataset` every source returns and every protocol splits.

A dataset is a pair of arrays (the retrieval protocols of the hashing literature need
random access to all of it to draw queries, training points and the database), plus the
flags that say which items came from the official test split and, for sources that come
with their own split (the literature's list files), that split. The labels are held in
host memory; the images either as a uint8 array or, for datasets larger than memory, as
a lazy :class:`jhash.data.images.ImageArray` that decodes an item when it is indexed. It is validated on construction so that a bad file fails loudly at load
time rather than as a silent NaN or an out-of-range gather inside a jitted step.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib

import numpy as np

from jhash.data.images import ImageArray

__all__ = ["Dataset"]


def _readonly(a: np.ndarray) -> np.ndarray:
    """A read-only view of `a` (the caller's array keeps its own flags)."""
    v = a.view()
    v.flags.writeable = False
    return v


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A labelled dataset held in memory.

    Attributes:
      name: a short name, e.g. ``"cifar10"``; used in manifests and error messages.
      x: images ``(n, H, W, C)`` uint8 (float32 images are accepted too), a lazy
        :class:`jhash.data.images.ImageArray` of images read from disk on demand, or features
        ``(n, d)`` float32 (other real dtypes are converted to float32).
      y: labels: class ids ``(n,)`` int32, or multi-hot ``(n, num_classes)`` uint8.
      num_classes: the number of classes (for multi-hot labels, ``y.shape[1]``).
      is_test: bool ``(n,)``, True for items from the official test split, or None
        when the source has no such split.
      given_split: the source's own split, ``{"query": ..., "train": ..., "database": ...}``
        int64 position arrays (the literature's list files), or None; the ``lists``
        protocol (:func:`jhash.data.make_split`) takes it as it is.

    The arrays are stored as read-only views, so `fingerprint` (computed once and
    cached) stays valid.
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    num_classes: int
    is_test: np.ndarray | None = None
    given_split: dict | None = None

    def __post_init__(self):
        def fail(arg, msg):
            raise ValueError(f"Dataset({self.name!r}): argument {arg!r}: {msg}")

        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Dataset: argument 'name' must be a non-empty string, got {self.name!r}")
        lazy = isinstance(self.x, ImageArray)
        x = self.x if lazy else np.asarray(self.x)
        y = np.asarray(self.y)
        if x.ndim not in (2, 4):
            fail("x", f"must be images (n, H, W, C) or features (n, d); got shape {x.shape} (ndim {x.ndim})")
        n = x.shape[0]
        if n == 0:
            fail("x", "is empty (0 items)")
        if lazy:
            pass  # read on demand: decoded, converted and checked item by item
        elif x.dtype == np.bool_ or not (np.issubdtype(x.dtype, np.number)):
            fail("x", f"must be numeric, got dtype {x.dtype}")
        if np.issubdtype(x.dtype, np.complexfloating):
            fail("x", f"must be real, got dtype {x.dtype}")
        if x.ndim == 4:
            if x.dtype != np.uint8 and not np.issubdtype(x.dtype, np.floating):
                fail("x", f"images must be uint8 (or float), got dtype {x.dtype}")
            if np.issubdtype(x.dtype, np.floating):
                x = x.astype(np.float32, copy=False)
        else:
            x = x.astype(np.float32, copy=False)
        if not lazy and np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
            bad = int(np.count_nonzero(~np.isfinite(x).reshape(n, -1).all(axis=1)))
            fail("x", f"contains NaN or inf values (in {bad} of {n} items)")

        if isinstance(self.num_classes, (bool, np.bool_)) or not isinstance(
            self.num_classes, (int, np.integer)
        ):
            fail("num_classes", f"must be an int, got {self.num_classes!r}")
        c = int(self.num_classes)
        if c < 1:
            fail("num_classes", f"must be >= 1, got {c}")

        if y.ndim not in (1, 2):
            fail("y", f"must be class ids (n,) or multi-hot (n, num_classes); got shape {y.shape}")
        if y.shape[0] != n:
            fail("y", f"has {y.shape[0]} labels but x has {n} items (x and y must have the same length)")
        if y.dtype != np.bool_ and not np.issubdtype(y.dtype, np.integer):
            if np.issubdtype(y.dtype, np.floating) and np.isfinite(y).all() and (y == np.round(y)).all():
                pass  # integral floats (e.g. from a CSV) are accepted
            else:
                fail("y", f"must hold integer class ids or 0/1 multi-hot values, got dtype {y.dtype}")
        if y.ndim == 1:
            if y.size and (y.min() < 0 or y.max() >= c):
                fail("y", f"class ids must lie in [0, {c}); got range [{y.min()}, {y.max()}]")
            y = y.astype(np.int32, copy=False)
        else:
            if y.shape[1] != c:
                fail("y", f"multi-hot labels have {y.shape[1]} columns but num_classes={c}")
            if not np.isin(y, (0, 1)).all():
                fail("y", "multi-hot labels must be 0 or 1")
            y = y.astype(np.uint8, copy=False)

        t = self.is_test
        if t is not None:
            t = np.asarray(t)
            if t.shape != (n,):
                fail("is_test", f"must have shape ({n},), got {t.shape}")
            if t.dtype != np.bool_:
                if not np.isin(t, (0, 1)).all():
                    fail("is_test", "must be boolean")
                t = t.astype(np.bool_)
            t = _readonly(t)

        if self.given_split is not None:
            parts = {}
            for key in ("query", "train", "database"):
                a = np.asarray(self.given_split.get(key, ()))
                if a.ndim != 1 or not len(a) or not np.issubdtype(a.dtype, np.integer) or a.min() < 0 or a.max() >= n:
                    fail("given_split", f"{key!r} must be a non-empty 1-D array of positions in [0, {n})")
                parts[key] = _readonly(a.astype(np.int64))
            object.__setattr__(self, "given_split", parts)
        object.__setattr__(self, "x", x if lazy else _readonly(x))
        object.__setattr__(self, "y", _readonly(y))
        object.__setattr__(self, "num_classes", c)
        object.__setattr__(self, "is_test", t)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def multilabel(self) -> bool:
        """True when `y` is multi-hot ``(n, num_classes)``."""
        return self.y.ndim == 2

    @property
    def is_images(self) -> bool:
        return self.x.ndim == 4

    def class_counts(self, mask: np.ndarray | None = None) -> np.ndarray:
        """Items per class (for multi-hot labels: items carrying each label)."""
        y = self.y if mask is None else self.y[mask]
        if self.multilabel:
            return y.sum(axis=0, dtype=np.int64)
        return np.bincount(y, minlength=self.num_classes).astype(np.int64)

    @functools.cached_property
    def fingerprint(self) -> str:
        """sha256 hex digest of x, y and is_test (bytes, shapes and dtypes)."""
        h = hashlib.sha256(b"jhash.Dataset.v1\0")
        parts = [("x", self.x), ("y", self.y), ("is_test", self.is_test)]
        if self.given_split is not None:  # (absent from the v1 hash, so older fingerprints stay valid)
            parts += [(f"given_{k}", v) for k, v in self.given_split.items()]
        for key, a in parts:
            h.update(key.encode() + b"\0")
            if isinstance(a, ImageArray):  # what the lazy items are, not their pixels (never all read)
                h.update(f"lazy\0{a.identity()}\0".encode())
                continue
            if a is None:
                h.update(b"None\0")
                continue
            a = np.ascontiguousarray(a)
            h.update(f"{a.dtype.str}{a.shape}\0".encode())
            h.update(memoryview(a).cast("B"))
        return h.hexdigest()

    def __repr__(self) -> str:
        t = "None" if self.is_test is None else f"{int(self.is_test.sum())} test"
        return (
            f"Dataset(name={self.name!r}, n={len(self)}, x={self.x.dtype}{tuple(self.x.shape[1:])}, "
            f"y={self.y.dtype}{tuple(self.y.shape[1:])}, num_classes={self.num_classes}, is_test={t})"
        )
