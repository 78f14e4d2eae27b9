"""Images read on demand: the lazy ``x`` of datasets that do not fit in host memory.

An :class:`ImageArray` looks like a uint8 array ``(n, size, size, C)`` to the rest of jhash
(``len``, ``shape``, ``dtype``, ``x[i]``, ``x[index_array]``), but holds only a *source* of
raw images (:class:`FileImages`: paths on disk; :class:`ArrayImages`: an in-memory uint8
array of another size) and decodes, resizes and crops an item when it is indexed. Indexing
gives the deterministic *evaluation view* of the literature (DeepHash-pytorch's test
transform: the shorter side resized to ``resize``, then the central ``size`` x ``size``
crop); :meth:`ImageArray.train_item` gives the random *training view* (``crop='random'``:
the same resize, a random ``size`` crop and a random horizontal flip, DeepHash-pytorch's
train transform; ``'random_resized'``: torchvision's ``RandomResizedCrop`` (scale 0.08-1,
aspect 3/4-4/3) and a flip; ``'center'``: the evaluation view) drawn from a NumPy generator
the caller seeds, so the batch of a step stays a pure function of (seed, step).

Every image is converted to the array's mode (``RGB``: grayscale, CMYK, palette and RGBA
images become RGB; ``L``: one channel) with PIL, and resized with PIL's antialiased
bilinear filter. The sources are plain picklable objects, so grain's worker processes can
read them (:mod:`jhash.data.pipeline`).
"""
from __future__ import annotations

import hashlib
import io
import os
from typing import Sequence

import numpy as np

__all__ = ["ArrayImages", "FileImages", "ImageArray", "ImageReadError", "TRAIN_CROPS", "decode_image"]

#: Training views of :meth:`ImageArray.train_item`.
TRAIN_CROPS = ("random", "random_resized", "center")


class ImageReadError(ValueError):
    """An image file is missing or cannot be decoded; the message names the file (and list line)."""


def decode_image(data: bytes, mode: str, name: str) -> np.ndarray:
    """Decodes image bytes into uint8 ``(h, w, C)`` in ``mode`` (``RGB`` or ``L``); ``name`` is for errors."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            out = np.asarray(im.convert(mode), dtype=np.uint8)
    except Exception as e:
        raise ImageReadError(f"cannot decode image {name} ({type(e).__name__}: {e})") from e
    return out if out.ndim == 3 else out[..., None]


class FileImages:
    """Raw images from files: ``root / paths[i]``, decoded in ``mode``.

    ``origins`` (optional): ``(list_files, file_of_item, line_of_item)``, where each item was listed,
    for errors. Paths are held as UTF-8 bytes (a 190,000-image list takes a few MB).
    """

    def __init__(self, root, paths: Sequence[str], mode: str = "RGB", origins=None):
        self.root = str(root)
        self.paths = np.array([p.encode() for p in paths], dtype=np.bytes_)
        self.mode = mode
        self.origins = origins
        self.channels = 3 if mode == "RGB" else 1

    def __len__(self) -> int:
        return len(self.paths)

    def path(self, i: int) -> str:
        return os.path.join(self.root, self.paths[i].decode())

    def where(self, i: int) -> str:
        if self.origins is None:
            return self.path(i)
        files, file_of, line_of = self.origins
        return f"{self.path(i)} (listed at {files[file_of[i]]}:{line_of[i]})"

    def read(self, i: int) -> np.ndarray:
        try:
            with open(self.path(i), "rb") as f:
                data = f.read()
        except OSError as e:
            raise ImageReadError(f"cannot read image {self.where(i)}: {e.strerror or e}") from e
        return decode_image(data, self.mode, self.where(i))

    def identity(self) -> str:
        """What the items are (the listed paths and mode; not the root, so a moved tree is the same data)."""
        h = hashlib.sha256(f"files\0{self.mode}\0{len(self.paths)}\0".encode())
        h.update(b"\0".join(self.paths.tolist()))
        return h.hexdigest()


class ArrayImages:
    """Raw images from an in-memory uint8 array ``(n, h, w, C)`` (to be resized to another size)."""

    def __init__(self, x: np.ndarray):
        self.x = x
        self.channels = int(x.shape[-1])

    def __len__(self) -> int:
        return len(self.x)

    def where(self, i: int) -> str:
        return f"item {i}"

    def read(self, i: int) -> np.ndarray:
        return np.asarray(self.x[i])

    def identity(self) -> str:
        h = hashlib.sha256(f"array\0{self.x.dtype.str}{self.x.shape}\0".encode())
        h.update(memoryview(np.ascontiguousarray(self.x)).cast("B"))
        return h.hexdigest()


def _resize(img: np.ndarray, h: int, w: int) -> np.ndarray:
    if img.shape[:2] == (h, w):
        return img
    from PIL import Image

    im = Image.fromarray(img[..., 0] if img.shape[2] == 1 else img)
    out = np.asarray(im.resize((w, h), Image.BILINEAR), dtype=np.uint8)
    return out if out.ndim == 3 else out[..., None]


def _resize_shorter(img: np.ndarray, side: int) -> np.ndarray:
    h, w = img.shape[:2]
    if h <= w:
        return _resize(img, side, max(side, round(w * side / h)))
    return _resize(img, max(side, round(h * side / w)), side)


def _crop(img: np.ndarray, top: int, left: int, size: int) -> np.ndarray:
    return img[top:top + size, left:left + size]


class ImageArray:
    """A lazy uint8 image array ``(n, size, size, C)`` over a raw-image source (see the module docstring).

    Args:
      source: :class:`FileImages`, :class:`ArrayImages` or any object with ``__len__``,
        ``read(i) -> uint8 (h, w, C)``, ``where(i) -> str``, ``identity() -> str`` and ``channels``.
      size: the side of the square images it gives.
      resize: the shorter side before cropping; 0 = ``round(size * 8 / 7)`` (256 for 224, the
        literature's ratio).
    """

    ndim = 4
    dtype = np.dtype(np.uint8)

    def __init__(self, source, size: int, resize: int = 0):
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"ImageArray: size must be a positive int, got {size!r}")
        if not isinstance(resize, int) or isinstance(resize, bool) or resize < 0:
            raise ValueError(f"ImageArray: resize must be an int >= 0, got {resize!r}")
        resize = resize or round(size * 8 / 7)
        if resize < size:
            raise ValueError(f"ImageArray: resize ({resize}) must be >= size ({size})")
        self.source, self.size, self.resize = source, size, resize

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.source), self.size, self.size, self.source.channels)

    def __len__(self) -> int:
        return len(self.source)

    def item(self, i: int) -> np.ndarray:
        """The evaluation view of item ``i``: shorter side to ``resize``, central crop."""
        img = _resize_shorter(self.source.read(int(i)), self.resize)
        h, w = img.shape[:2]
        return _crop(img, (h - self.size) // 2, (w - self.size) // 2, self.size)

    def train_item(self, i: int, rng: np.random.Generator, crop: str) -> np.ndarray:
        """A random training view of item ``i`` (``crop`` one of :data:`TRAIN_CROPS`), drawn with ``rng``."""
        if crop == "center":
            return self.item(i)
        img = self.source.read(int(i))
        if crop == "random":
            img = _resize_shorter(img, self.resize)
            h, w = img.shape[:2]
            img = _crop(img, int(rng.integers(h - self.size + 1)), int(rng.integers(w - self.size + 1)), self.size)
        elif crop == "random_resized":
            img = self._random_resized(img, rng)
        else:
            raise ValueError(f"unknown train crop {crop!r}; expected one of {TRAIN_CROPS}")
        return img[:, ::-1] if rng.random() < 0.5 else img

    def _random_resized(self, img, rng):
        """torchvision's RandomResizedCrop: area 8-100 %, log-uniform aspect 3/4-4/3, 10 tries, then the
        central crop of the closest allowed aspect."""
        h, w = img.shape[:2]
        area = h * w
        for _ in range(10):
            target = area * rng.uniform(0.08, 1.0)
            aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
            cw, ch = round(np.sqrt(target * aspect)), round(np.sqrt(target / aspect))
            if 0 < cw <= w and 0 < ch <= h:
                top, left = int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1))
                return _resize(img[top:top + ch, left:left + cw], self.size, self.size)
        ratio = w / h
        cw, ch = (w, round(w / (4 / 3))) if ratio > 4 / 3 else (round(h * 3 / 4), h) if ratio < 3 / 4 else (w, h)
        top, left = (h - ch) // 2, (w - cw) // 2
        return _resize(img[top:top + ch, left:left + cw], self.size, self.size)

    def __getitem__(self, idx):
        if isinstance(idx, (int, np.integer)):
            n = len(self)
            if not -n <= idx < n:
                raise IndexError(f"index {idx} is out of range for {n} images")
            return self.item(int(idx) % n)
        if isinstance(idx, slice):
            idx = np.arange(len(self))[idx]
        idx = np.asarray(idx)
        if idx.dtype == np.bool_:
            idx = np.flatnonzero(idx)
        if idx.ndim != 1 or not (np.issubdtype(idx.dtype, np.integer) or idx.size == 0):
            raise IndexError(f"ImageArray takes an int, a slice or a 1-D index array, got {idx.dtype}{idx.shape}")
        out = np.empty((len(idx),) + self.shape[1:], np.uint8)
        for k, i in enumerate(idx):
            out[k] = self[int(i)]
        return out

    def __array__(self, dtype=None, copy=None):
        raise TypeError(f"an ImageArray of {len(self)} images is read on demand; index it (x[idx]) instead of "
                        "converting it whole")

    def identity(self) -> str:
        return hashlib.sha256(f"{self.source.identity()}\0{self.size}\0{self.resize}".encode()).hexdigest()

    def __repr__(self) -> str:
        return f"ImageArray({type(self.source).__name__}, n={len(self)}, size={self.size}, resize={self.resize})"

