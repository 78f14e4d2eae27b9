"""Dataset sources: embedded digits, local files (IDX, image folders, tarballs, .npz) and TFDS.

`load(name, data_dir=None, source='auto')` picks a source by name with a plain dict
lookup. Every source returns a validated `jhash.data.Dataset`; items from an official
train split come first, then the test split, and `is_test` marks the latter.

Local files are verified against a ``SHA256SUMS`` file (``<sha256>  <relative path>``
lines, as written by ``sha256sum``) found next to the files or in a folder above them.
Decoded image folders are cached as ``.npz`` under ``$JHASH_CACHE`` (default
``~/.cache/jhash``), keyed by the sha256 of the tarball (or of the folder listing).

TFDS is imported lazily, only by `load_tfds`, and read through ``tfds.data_source``,
which needs no TensorFlow.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import gzip
import hashlib
import io
import os
import pathlib
import tarfile
import tempfile
import warnings
from typing import Callable, Iterable, Sequence

import numpy as np

from jhash.data.dataset import Dataset
from jhash.data.images import ArrayImages, FileImages, ImageArray

__all__ = [
    "CIFAR10_CLASSES",
    "DataUnavailableError",
    "DATASETS",
    "TFDS_NAMES",
    "cache_dir",
    "find_checksum",
    "load",
    "load_cifar10",
    "load_digits",
    "load_image_folder",
    "load_mnist",
    "load_npz",
    "load_tfds",
    "read_idx",
    "sha256_file",
    "verify_checksums",
]

PathLike = str | os.PathLike

#: Canonical CIFAR-10 class order (the order of the original batches.meta): id = position.
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip

#: Names `load(..., source='auto')` may fall back to TFDS for (jhash name -> TFDS name).
TFDS_NAMES = {"mnist": "mnist", "fashion_mnist": "fashion_mnist", "cifar10": "cifar10"}

_CACHE_VERSION = "v1"


# --------------------------------------------------------------------------- checksums


class DataUnavailableError(FileNotFoundError):
    """A dataset is neither in local files nor obtainable from TFDS."""


def sha256_file(path: PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _parse_sums(sums: pathlib.Path) -> dict[pathlib.Path, str]:
    out = {}
    for lineno, line in enumerate(sums.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or len(parts[0]) != 64:
            raise ValueError(f"{sums}:{lineno}: malformed line {line!r} (expected '<sha256>  <path>')")
        digest, rel = parts
        rel = rel.lstrip("*")  # sha256sum's binary-mode marker
        out[(sums.parent / rel).resolve()] = digest.lower()
    return out


def find_checksum(path: PathLike, levels: int = 2) -> tuple[str, pathlib.Path] | None:
    """The expected sha256 of `path` from a SHA256SUMS next to it or up to `levels` folders above."""
    path = pathlib.Path(path).resolve()
    folder = path.parent
    for _ in range(levels + 1):
        sums = folder / "SHA256SUMS"
        if sums.is_file():
            entries = _parse_sums(sums)
            if path in entries:
                return entries[path], sums
        if folder.parent == folder:
            break
        folder = folder.parent
    return None


def verify_checksums(paths: Iterable[PathLike]) -> dict[str, str]:
    """Checks every file listed in a nearby SHA256SUMS; returns {path: sha256} of all of them.

    Raises:
      ValueError: a file's sha256 differs from the one its SHA256SUMS lists.
    """
    digests = {}
    for p in paths:
        digest = sha256_file(p)
        digests[str(p)] = digest
        found = find_checksum(p)
        if found is not None and found[0] != digest:
            raise ValueError(
                f"checksum mismatch for {p}: {found[1]} lists sha256 {found[0]}, the file has {digest}. "
                "The file is corrupt or was modified; fetch it again."
            )
    return digests


# --------------------------------------------------------------------------- cache


def cache_dir() -> pathlib.Path:
    """``$JHASH_CACHE`` or ``~/.cache/jhash``."""
    env = os.environ.get("JHASH_CACHE")
    return pathlib.Path(env) if env else pathlib.Path.home() / ".cache" / "jhash"


def _cache_load(path: pathlib.Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as e:  # corrupt / truncated cache: rebuild it
        warnings.warn(f"ignoring unreadable cache file {path} ({e}); rebuilding it")
        return None


def _cache_save(path: pathlib.Path, arrays: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except OSError as e:
        warnings.warn(f"could not write cache file {path} ({e}); continuing without a cache")


# --------------------------------------------------------------------------- digits


def load_digits() -> Dataset:
    """scikit-learn's bundled 8x8 digits: 1,797 items, features (n, 64) float32 in [0, 1]."""
    from sklearn.datasets import load_digits as _sk_digits

    d = _sk_digits()
    x = (d.data / 16.0).astype(np.float32)
    return Dataset("digits", x, d.target.astype(np.int32), num_classes=10, is_test=None)


# --------------------------------------------------------------------------- IDX (MNIST)

_IDX_DTYPES = {
    0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}  # fmt: skip


#: md5 of the decompressed bytes of MNIST's four IDX files (the original release; ../shared/data/README.md).
MNIST_RAW_MD5 = {
    "train_images": "6bbc9ace898e44ae57da46a324031adb", "train_labels": "a25bea736e30d166cdddb491f175f624",
    "test_images": "2646ac647ad5339dbf082846283269ea", "test_labels": "27ae3e4e09519cfbb04c329615203637",
}  # fmt: skip


def read_idx(path: PathLike, md5: dict | None = None) -> np.ndarray:
    """Reads one IDX file (gzipped or not; detected from its bytes) into a native-endian array.

    ``md5``: a dict that receives ``{path: md5 of the decompressed bytes}``."""
    path = pathlib.Path(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise ValueError(f"{path}: corrupt or truncated gzip data ({e})") from e
    if md5 is not None:
        md5[str(path)] = hashlib.md5(raw).hexdigest()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic {raw[:4].hex()})")
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != size:
        raise ValueError(
            f"{path}: IDX shape {shape} needs {size} data bytes, file has {len(raw) - header} "
            "(truncated or corrupt)"
        )
    a = np.frombuffer(raw, dtype, offset=header).reshape(shape)
    return a.astype(dtype.newbyteorder("="), copy=True)


def _find_file(folder: pathlib.Path, stems: Sequence[str]) -> pathlib.Path | None:
    for stem in stems:
        for suffix in ("", ".gz"):
            p = folder / (stem + suffix)
            if p.is_file():
                return p
    return None


def _idx_files(folder: pathlib.Path) -> dict[str, pathlib.Path | None]:
    files = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        for kind, idx in (("images", "idx3"), ("labels", "idx1")):
            files[f"{split}_{kind}"] = _find_file(
                folder, (f"{prefix}-{kind}-{idx}-ubyte", f"{prefix}-{kind}.{idx}-ubyte")
            )
    return files


def _mnist_folder(name: str, data_dir: PathLike) -> pathlib.Path:
    """The folder holding the IDX files: data_dir itself or data_dir/<name> (also '-' for '_')."""
    root = pathlib.Path(data_dir).expanduser()
    for cand in (root, root / name, root / name.replace("_", "-")):
        if any(v is not None for v in _idx_files(cand).values()):
            return cand
    return root / name if (root / name).is_dir() else root


def load_mnist(data_dir: PathLike, name: str = "mnist", num_classes: int = 10) -> Dataset:
    """MNIST-format IDX files (MNIST, Fashion-MNIST): train then t10k, images (n, 28, 28, 1) uint8.

    `data_dir` is the folder holding ``train-images-idx3-ubyte(.gz)``,
    ``train-labels-idx1-ubyte(.gz)``, ``t10k-images-idx3-ubyte(.gz)`` and
    ``t10k-labels-idx1-ubyte(.gz)``, or a parent holding ``<name>/`` with them.
    """
    folder = _mnist_folder(name, data_dir)
    files = _idx_files(folder)
    missing = [k for k, v in files.items() if v is None]
    if missing:
        want = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
                "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}  # fmt: skip
        raise FileNotFoundError(
            f"{name}: missing IDX file(s) in {folder}: "
            + ", ".join(f"{want[k]}[.gz]" for k in missing)
            + f". Pass data_dir= the folder holding the four IDX files, or its parent holding '{name}/'."
        )
    verify_checksums(files.values())
    xs, ys, md5 = [], [], {}
    for split in ("train", "test"):
        x, y = read_idx(files[f"{split}_images"], md5), read_idx(files[f"{split}_labels"], md5)
        if x.ndim != 3 or y.ndim != 1 or x.shape[0] != y.shape[0]:
            raise ValueError(
                f"{name} {split}: images {x.shape} and labels {y.shape} do not match "
                f"({files[f'{split}_images']}, {files[f'{split}_labels']})"
            )
        xs.append(x.astype(np.uint8, copy=False)[..., None])
        ys.append(y.astype(np.int32))
    if [len(y) for y in ys] == [60_000, 10_000]:  # the full-size MNIST format (a small test copy is not checked)
        _check_mnist_identity(name, {k: md5[str(v)] for k, v in files.items()}, files)
    is_test = np.concatenate([np.zeros(len(ys[0]), bool), np.ones(len(ys[1]), bool)])
    return Dataset(name, np.concatenate(xs), np.concatenate(ys), num_classes, is_test)


def _check_mnist_identity(name: str, md5: dict, files: dict) -> None:
    """MNIST's files under another name, or other files under MNIST's name, are an error naming the files."""
    is_mnist = {k: md5[k] == MNIST_RAW_MD5[k] for k in MNIST_RAW_MD5}
    if name == "mnist" and not all(is_mnist.values()):
        bad = [k for k, ok in is_mnist.items() if not ok]
        raise ValueError(f"mnist: {', '.join(str(files[k]) for k in bad)} are not MNIST's files (md5 of the "
                         f"decompressed bytes {', '.join(md5[k] for k in bad)}; MNIST's are "
                         f"{', '.join(MNIST_RAW_MD5[k] for k in bad)}). Is this Fashion-MNIST or another "
                         "MNIST-format dataset? Load it by its own name (e.g. fashion_mnist)")
    if name != "mnist" and all(is_mnist.values()):
        raise ValueError(f"{name}: the IDX files found in {files['train_images'].parent} are MNIST's (their "
                         f"md5s are MNIST's), not {name}'s; point data_dir at {name}'s own files")


# --------------------------------------------------------------------------- image folders

_IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".ppm", ".pgm", ".tif", ".tiff")
_SPLITS = {"train": False, "test": True}


def _split_class(parts: Sequence[str]) -> tuple[str | None, str] | None:
    """(split, class) from a path's components: .../<split>/<class>/<file> or <class>/<file>."""
    if len(parts) >= 3 and parts[-3] in _SPLITS:
        return parts[-3], parts[-2]
    if len(parts) >= 2:
        return None, parts[-2]
    return None


def _read_tree(root: PathLike) -> list[tuple[str, bytes]]:
    """(relative name, bytes) of every image file in a folder or a (compressed) tarball."""
    root = pathlib.Path(root)
    out = []
    if root.is_dir():
        for p in root.rglob("*"):
            if p.suffix.lower() in _IMAGE_EXT and p.is_file():
                out.append((p.relative_to(root).as_posix(), p.read_bytes()))
        return out
    try:  # stream once through the archive (random access into a .gz is quadratic)
        with tarfile.open(root, "r|*") as tar:
            for m in tar:
                if m.isfile() and pathlib.PurePosixPath(m.name).suffix.lower() in _IMAGE_EXT:
                    out.append((m.name, tar.extractfile(m).read()))
    except (tarfile.TarError, EOFError, OSError) as e:
        raise ValueError(f"{root}: cannot read the tarball ({e}); it is corrupt or truncated") from e
    return out


def _tree_key(root: pathlib.Path) -> str:
    if root.is_file():
        return verify_checksums([root])[str(root)]
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix.lower() in _IMAGE_EXT:
            st = p.stat()
            h.update(f"{p.relative_to(root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _decode(name: str, data: bytes, mode: str) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert(mode), dtype=np.uint8)
    except Exception as e:
        raise ValueError(f"cannot decode image {name!r} ({e})") from e


def load_image_folder(
    path: PathLike,
    name: str | None = None,
    class_names: Sequence[str] | None = None,
    mode: str = "RGB",
    use_cache: bool = True,
    image_size: int = 0,
    resize: int = 0,
) -> Dataset:
    """An image-folder tree, extracted or as a tarball, decoded into uint8 arrays (or read on demand).

    The tree is ``train/<class>/<file>`` and ``test/<class>/<file>`` (any prefix
    folders above ``train``/``test`` are ignored), or just ``<class>/<file>`` (then
    ``is_test`` is None). Items are ordered train first, then test, each by sorted
    path, so the result is deterministic. Class ids follow `class_names` when given
    (every folder must be one of them), else the sorted folder names. The decoded arrays
    are cached (see `cache_dir`). Without ``image_size`` all images must have the same
    size; with it, a folder's images (of any size) are read from disk on demand as
    ``image_size`` squares (:class:`jhash.data.images.ImageArray`; ``resize`` as there), and a
    tarball's same-size images are shown at that size.
    """
    path = pathlib.Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"image folder or tarball {path} does not exist")
    name = name or path.name.split(".")[0]
    if image_size and path.is_dir():
        rels = sorted(p.relative_to(path).as_posix() for p in path.rglob("*")
                      if p.suffix.lower() in _IMAGE_EXT and p.is_file())
        items = [(sc[0], sc[1], rel) for rel in rels if (sc := _split_class(pathlib.PurePosixPath(rel).parts))]
        class_id, has_split = _folder_classes(path, items, class_names)
        items.sort(key=lambda t: (_SPLITS.get(t[0], False), t[2]))
        x = ImageArray(FileImages(path, [rel for *_, rel in items], mode), image_size, resize)
        y = np.array([class_id[c] for _, c, _ in items], np.int32)
        is_test = np.array([_SPLITS.get(s, False) for s, *_ in items], bool)
        return Dataset(name, x, y, len(class_id), is_test if has_split else None)
    cache_file = None
    if use_cache:
        key = hashlib.sha256(
            f"{_CACHE_VERSION}\0{_tree_key(path)}\0{mode}\0{list(class_names or [])}".encode()
        ).hexdigest()
        cache_file = cache_dir() / f"image_folder-{name}-{key[:24]}.npz"
        cached = _cache_load(cache_file)
        if cached is not None:
            is_test = cached["is_test"] if cached["has_split"] else None
            return _sized(Dataset(name, cached["x"], cached["y"], int(cached["num_classes"]), is_test), image_size,
                          resize)
    elif path.is_file():
        verify_checksums([path])

    items = []
    for rel, data in _read_tree(path):
        sc = _split_class(pathlib.PurePosixPath(rel).parts)
        if sc is not None:
            items.append((sc[0], sc[1], rel, data))
    class_id, has_split = _folder_classes(path, items, class_names)
    class_names = list(class_id)
    items.sort(key=lambda t: (_SPLITS.get(t[0], False), t[2]))
    images = [_decode(rel, data, mode) for _, _, rel, data in items]
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise ValueError(f"{path}: images have different shapes {sorted(shapes)[:5]}; set config.image_size "
                         "(e.g. 224) to read them resized, from an extracted folder")
    x = np.stack(images)
    if x.ndim == 3:
        x = x[..., None]
    y = np.array([class_id[c] for _, c, *_ in items], np.int32)
    is_test = np.array([_SPLITS.get(s, False) for s, *_ in items], bool)
    if cache_file is not None:
        _cache_save(cache_file, dict(x=x, y=y, is_test=is_test, has_split=has_split,
                                     num_classes=len(class_names), class_names=np.array(class_names)))  # fmt: skip
    return _sized(Dataset(name, x, y, len(class_names), is_test if has_split else None), image_size, resize)


def _folder_classes(path, items, class_names) -> tuple[dict[str, int], bool]:
    """``({class: id}, has_split)`` of image-folder items ``(split, class, ...)``."""
    if not items:
        raise ValueError(f"{path}: no images found (expected <split>/<class>/<image> or <class>/<image>)")
    splits = {s for s, *_ in items}
    if None in splits and len(splits) > 1:
        raise ValueError(f"{path}: mixes files inside and outside train/ and test/ folders")
    found = sorted({c for _, c, *_ in items})
    if class_names is None:
        class_names = found
    else:
        unknown = sorted(set(found) - set(class_names))
        if unknown:
            raise ValueError(f"{path}: class folders {unknown} are not in class_names {list(class_names)}")
    return {c: i for i, c in enumerate(class_names)}, None not in splits


def _cifar10_path(data_dir: PathLike) -> pathlib.Path | None:
    root = pathlib.Path(data_dir).expanduser()
    if root.is_file():
        return root
    for cand in (
        root / "cifar10-jpeg.tar.gz",
        root / "cifar10-jpeg" / "cifar10-jpeg.tar.gz",
        root / "cifar10.tar.gz",
        root / "cifar10" / "cifar10.tar.gz",
    ):
        if cand.is_file():
            return cand
    for cand in (root, root / "cifar10-jpeg", root / "cifar10"):
        if (cand / "train").is_dir() and (cand / "test").is_dir():
            return cand
    return None


def load_cifar10(data_dir: PathLike, use_cache: bool = True) -> Dataset:
    """CIFAR-10 from an image-folder tree or tarball (e.g. ``cifar10-jpeg/cifar10-jpeg.tar.gz``).

    Class ids are the canonical CIFAR-10 order (airplane=0, ..., truck=9). Note that the
    shared JPEG copy is re-encoded: label results "CIFAR-10 (JPEG)".
    """
    p = _cifar10_path(data_dir)
    if p is None:
        raise FileNotFoundError(
            f"cifar10: no cifar10-jpeg/cifar10-jpeg.tar.gz and no train/<class>/, test/<class>/ "
            f"folders under {data_dir}. Pass data_dir= that folder, its parent, or the tarball itself."
        )
    return load_image_folder(p, name="cifar10", class_names=CIFAR10_CLASSES, use_cache=use_cache)


# --------------------------------------------------------------------------- npz


def load_npz(path: PathLike, name: str | None = None) -> Dataset:
    """A ``.npz`` with arrays ``x``, ``y`` and optionally ``is_test`` and ``num_classes``.

    This is how features of NUS-WIDE, MS-COCO or ImageNet reach jhash. `name` defaults
    to the file's stem; ``num_classes`` defaults to ``y.shape[1]`` for multi-hot labels,
    else ``y.max() + 1``.
    """
    path = pathlib.Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"npz file {path} does not exist")
    verify_checksums([path])
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:
        raise ValueError(f"{path}: cannot read the .npz ({e})") from e
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise ValueError(f"{path}: missing array(s) {missing}; it has {sorted(arrays)}")
    y = arrays["y"]
    if "num_classes" in arrays:
        c = int(arrays["num_classes"])
    elif y.ndim == 2:
        c = y.shape[1]
    else:
        c = int(y.max()) + 1 if y.size else 0
    return Dataset(name or path.stem, arrays["x"], y, c, arrays.get("is_test"))


# --------------------------------------------------------------------------- TFDS


def _read_source(ds, chunk: int = 1024) -> list:
    n = len(ds)
    out = []
    for start in range(0, n, chunk):
        keys = list(range(start, min(n, start + chunk)))
        try:
            out.extend(ds.__getitems__(keys))
        except (AttributeError, TypeError):  # sources (and tfds mocks) without batched reads
            out.extend(ds[k] for k in keys)
    return out


def _tfds_keys(name: str, features, image_key: str, label_key: str) -> tuple[str, str, str]:
    """``(image_key, label_key, kind)``: the image and label features (named or found) and the label's kind:
    ``class`` (a ClassLabel), ``multi`` (a Sequence of ClassLabel) or ``objects`` (a Sequence of dicts
    whose ``label`` is a ClassLabel, e.g. VOC's and COCO's ``objects``)."""
    import tensorflow_datasets as tfds

    F = tfds.features

    def pick(key, found, what, field):
        if key and key not in features:
            raise ValueError(f"TFDS {name!r} has no feature {key!r}; it has {list(features.keys())}")
        if not key and not found:
            raise ValueError(f"TFDS {name!r} has no {what} feature; it has {list(features.keys())} "
                             f"(name one with config.data.{field})")
        return key or found[0]

    def kind(f):
        if isinstance(f, F.ClassLabel):
            return "class"
        if isinstance(f, F.Sequence) and isinstance(f.feature, F.ClassLabel):
            return "multi"
        if isinstance(f, F.Sequence) and isinstance(f.feature, F.FeaturesDict) and isinstance(
                f.feature._feature_dict.get("label"), F.ClassLabel):  # noqa: SLF001 (no public accessor)
            return "objects"
        return None

    image_key = pick(image_key, [k for k, f in features.items() if isinstance(f, F.Image)], "Image", "image_key")
    labels = [k for k in ("label", "labels", "objects") if k in features and kind(features[k])]
    labels += [k for k, f in features.items() if k not in labels and kind(f)]
    label_key = pick(label_key, labels, "class-label", "label_key")
    k = kind(features[label_key])
    if k is None:
        raise ValueError(f"TFDS {name!r}: feature {label_key!r} is not a ClassLabel, a Sequence of ClassLabel or a "
                         f"Sequence of objects with a ClassLabel 'label' ({features[label_key]})")
    return image_key, label_key, k


def _num_classes(feature, kind: str) -> int:
    if kind == "class":
        return int(feature.num_classes)
    if kind == "multi":
        return int(feature.feature.num_classes)
    return int(feature.feature._feature_dict["label"].num_classes)  # noqa: SLF001


def _label_of(example, key: str, kind: str, c: int):
    if kind == "class":
        return int(example[key])
    ids = np.asarray(example[key]["label"] if kind == "objects" else example[key], np.int64).reshape(-1)
    row = np.zeros(c, np.uint8)
    row[ids] = 1
    return row


class TFDSImages:
    """Raw images of a TFDS split, read through ``tfds.data_source`` on demand (the source is opened in
    each process that reads, so grain workers can hold it)."""

    def __init__(self, name: str, splits: Sequence[str], data_dir, image_key: str, sizes: Sequence[int],
                 channels: int):
        self.name, self.splits, self.data_dir, self.image_key = name, list(splits), data_dir, image_key
        self.offsets = np.cumsum([0, *sizes])
        self.channels = channels
        self._sources = None

    def __getstate__(self):
        return {**self.__dict__, "_sources": None}

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def where(self, i: int) -> str:
        s = int(np.searchsorted(self.offsets, i, side="right")) - 1
        return f"TFDS {self.name} {self.splits[s]}[{i - self.offsets[s]}]"

    def read(self, i: int) -> np.ndarray:
        import tensorflow_datasets as tfds

        if self._sources is None:
            self._sources = [tfds.data_source(self.name, split=s, data_dir=self.data_dir, download=False)
                             for s in self.splits]
        s = int(np.searchsorted(self.offsets, i, side="right")) - 1
        img = np.asarray(self._sources[s][int(i - self.offsets[s])][self.image_key], np.uint8)
        if img.ndim == 2:
            img = img[..., None]
        if img.shape[-1] != self.channels:  # grayscale among RGB images
            img = np.repeat(img[..., :1], self.channels, axis=-1)
        return img

    def identity(self) -> str:
        return hashlib.sha256(f"tfds\0{self.name}\0{self.splits}\0{self.image_key}\0{self.offsets.tolist()}".encode()
                              ).hexdigest()


def load_tfds(
    name: str,
    data_dir: PathLike | None = None,
    splits: Sequence[str] | None = None,
    image_key: str = "",
    label_key: str = "",
    download: bool = True,
    jhash_name: str | None = None,
    image_size: int = 0,
    resize: int = 0,
) -> Dataset:
    """Any TFDS image dataset through ``tfds.data_source`` (no TensorFlow needed).

    ``splits``: concatenated in order (default: ``train`` then ``test`` when the dataset has
    both, else every split it has); items of a split named ``test`` are marked in ``is_test``,
    so a protocol with ``query_from='test'`` draws queries from them. ``image_key`` /
    ``label_key``: the features to use ("" = found: the first Image feature; ``label``,
    ``labels`` or ``objects``, then any class-label feature). A ``ClassLabel`` gives class ids;
    a Sequence of ClassLabel (VOC's ``labels``) or of objects with a ``label`` (COCO's
    ``objects``) gives multi-hot labels. Images of one fixed shape are read into memory as
    uint8; images whose size varies stay in the TFDS files and are read on demand
    (an :class:`jhash.data.images.ImageArray`, which needs ``image_size``); reading the labels
    then decodes every example once.
    """
    import tensorflow_datasets as tfds  # lazy: keeps `import jhash.data` cheap

    def source(split):
        before = set(_tfds_tmp_dirs())
        try:
            return tfds.data_source(name, split=split, data_dir=data_dir, download=download)
        except BaseException:
            for d in set(_tfds_tmp_dirs()) - before:  # a failed download leaves empty tmp*tfds folders
                with contextlib.suppress(OSError):
                    os.rmdir(d)  # only if empty: never another process's download
            raise

    def opened(split):
        try:
            return source(split)
        except tfds.core.registered.DatasetNotFoundError as e:
            raise ValueError(f"unknown dataset {name!r}: TFDS has no such dataset ({str(e).splitlines()[0]})") from e
        except Exception as e:
            raise DataUnavailableError(
                f"TFDS could not provide {name!r} split {split!r} (data_dir={data_dir}): {e}. "
                "Offline (or without the packages TFDS needs to download and prepare it), "
                "point data_dir= at local files instead (see jhash.data.load)."
            ) from e

    if splits is None:
        first = opened("train")
        known = list(first.dataset_info.splits.keys())
        splits = ["train", "test"] if not known or {"train", "test"} <= set(known) else sorted(known)
    feats = None
    ys, test, sizes, xs, fixed = [], [], [], [], None
    for split in splits:
        ds = opened(split)
        if feats is None:
            feats = ds.dataset_info.features
            image_key, label_key, kind = _tfds_keys(name, feats, image_key, label_key)
            c = _num_classes(feats[label_key], kind)
            shape = tuple(feats[image_key].shape)
            fixed = None not in shape
        examples = _read_source(ds)
        if not examples:
            raise ValueError(f"TFDS {name!r} split {split!r} is empty")
        ys.append(np.array([_label_of(e, label_key, kind, c) for e in examples]))
        if fixed:
            xs.append(np.stack([np.asarray(e[image_key]) for e in examples]))
        test.append(np.full(len(examples), split.split("[")[0] == "test"))
        sizes.append(len(examples))
        del examples
    y = np.concatenate(ys)
    is_test = np.concatenate(test)
    is_test = is_test if is_test.any() else None
    jname = jhash_name or name
    if fixed:
        x = np.concatenate(xs)
        if x.ndim == 3:
            x = x[..., None]
        return _sized(Dataset(jname, x, y, c, is_test), image_size, resize)
    if not image_size:
        raise ValueError(f"TFDS {name!r} has images of varying size; set config.image_size (e.g. 224)")
    channels = shape[-1] if shape[-1] is not None else 3
    x = ImageArray(TFDSImages(name, splits, data_dir, image_key, sizes, channels), image_size, resize)
    return Dataset(jname, x, y, c, is_test)


def _tfds_tmp_dirs() -> list[str]:
    return glob.glob(os.path.join(tempfile.gettempdir(), "tmp*tfds"))


def _sized(ds: Dataset, image_size: int, resize: int) -> Dataset:
    """``ds`` with its images shown at ``image_size`` (an :class:`ImageArray` over them) when that differs."""
    if not image_size or not ds.is_images or ds.x.shape[1:3] == (image_size, image_size):
        return ds
    if isinstance(ds.x, ImageArray):
        return dataclasses.replace(ds, x=ImageArray(ds.x.source, image_size, resize))
    return dataclasses.replace(ds, x=ImageArray(ArrayImages(ds.x), image_size, resize))


# --------------------------------------------------------------------------- dispatch


def _local_mnist(name):
    return lambda data_dir: load_mnist(data_dir, name=name)


#: Local loaders by jhash name: data_dir -> Dataset.
_LOCAL: dict[str, Callable[[PathLike], Dataset]] = {
    "mnist": _local_mnist("mnist"),
    "fashion_mnist": _local_mnist("fashion_mnist"),
    "cifar10": load_cifar10,
}

#: Every name `load` knows (any other name may still come from ``<data_dir>/<name>.npz``).
DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "npz", "image_folder")

_SOURCES = ("auto", "local", "tfds", "npz")


def _npz_for(name: str, data_dir: PathLike | None) -> pathlib.Path | None:
    if data_dir is None:
        return None
    root = pathlib.Path(data_dir).expanduser()
    if root.is_file() and root.suffix == ".npz":
        return root
    for cand in (root / f"{name}.npz", root / name / f"{name}.npz"):
        if cand.is_file():
            return cand
    return None


def _has_local(name: str, data_dir: PathLike | None) -> bool:
    if data_dir is None or not pathlib.Path(data_dir).expanduser().exists():
        return False
    if name == "cifar10":
        return _cifar10_path(data_dir) is not None
    folder = _mnist_folder(name, data_dir)
    return any(v is not None for v in _idx_files(folder).values())


def load(name: str, data_dir: PathLike | None = None, source: str = "auto", *, image_size: int = 0,
         resize: int = 0, image_key: str = "", label_key: str = "") -> Dataset:
    """Loads a dataset by name.

    Args:
      name: ``digits`` (embedded, scikit-learn), ``mnist``, ``fashion_mnist``,
        ``cifar10``, ``npz`` (then `data_dir` is the .npz file), ``image_folder``
        (then `data_dir` is the tree or tarball), ``imagelist:DIR`` (the literature's
        split lists in DIR, image paths relative to `data_dir`; :mod:`jhash.data.lists`),
        ``tfds:NAME`` (any TFDS image dataset, :func:`load_tfds`), a path to a ``.npz``
        file, any name with a ``<data_dir>/<name>.npz`` (e.g. ``nus_wide_21``), or any
        other TFDS name.
      data_dir: where local files live (for TFDS: its data_dir); defaults to ``$JHASH_DATA_DIR``.
      source: ``auto`` (local files when `data_dir` has them, else TFDS),
        ``local``, ``tfds`` or ``npz``.
      image_size: show images as ``image_size`` squares (0 = their own size; required for
        images of varying size); ``resize``: the shorter side before the crop
        (:class:`jhash.data.images.ImageArray`).
      image_key, label_key: TFDS features (:func:`load_tfds`).
    """
    if source not in _SOURCES:
        raise ValueError(f"unknown source {source!r}; known sources: {', '.join(_SOURCES)}")
    if data_dir is None:
        data_dir = os.environ.get("JHASH_DATA_DIR") or None
    if name.startswith("imagelist:"):
        from jhash.data.lists import load_image_list

        return load_image_list(name[len("imagelist:"):], data_dir, image_size=image_size, resize=resize, name=name)
    tfds_kw = dict(data_dir=data_dir, image_key=image_key, label_key=label_key, image_size=image_size, resize=resize)
    if name.startswith("tfds:"):
        return load_tfds(name[len("tfds:"):], jhash_name=name, **tfds_kw)
    if name == "digits":
        return load_digits()
    if name.endswith(".npz"):
        return load_npz(name)
    if name in ("npz", "image_folder"):
        if data_dir is None:
            raise ValueError(f"load({name!r}) needs data_dir= the {'.npz file' if name == 'npz' else 'tree or tarball'}")
        return load_npz(data_dir) if name == "npz" else load_image_folder(data_dir, image_size=image_size,
                                                                          resize=resize)

    npz = _npz_for(name, data_dir)
    if source == "npz" or (source == "auto" and npz is not None and name not in _LOCAL):
        if npz is None:
            raise FileNotFoundError(f"no {name}.npz in data_dir={data_dir} (looked for <data_dir>/{name}.npz)")
        return load_npz(npz, name=name)
    if name not in _LOCAL:  # any other name: TFDS
        if source == "local":
            known = sorted(set(DATASETS) | set(_LOCAL))
            raise ValueError(f"unknown local dataset {name!r}; known names: {', '.join(known)} "
                             f"(or any name with a <data_dir>/{name}.npz)")
        try:
            return load_tfds(name, jhash_name=name, **tfds_kw)
        except ValueError as e:
            if not str(e).startswith("unknown dataset"):
                raise
            raise ValueError(f"unknown dataset {name!r}: not one of {', '.join(sorted(set(DATASETS) | set(_LOCAL)))}, "
                             f"no <data_dir>/{name}.npz, and TFDS knows no such name either") from None
    if source == "local" or (source == "auto" and _has_local(name, data_dir)):
        if data_dir is None:
            raise FileNotFoundError(f"load({name!r}, source='local') needs data_dir= (or $JHASH_DATA_DIR)")
        return _sized(_LOCAL[name](data_dir), image_size, resize)
    if source == "auto" and npz is not None:
        return load_npz(npz, name=name)
    try:
        return load_tfds(TFDS_NAMES[name], **{**tfds_kw, "image_key": tfds_kw["image_key"] or "image",
                                              "label_key": tfds_kw["label_key"] or "label"}, jhash_name=name)
    except DataUnavailableError as e:
        if source == "tfds":
            raise
        want = "cifar10-jpeg/cifar10-jpeg.tar.gz or train/, test/ image folders" if name == "cifar10" else (
            "the four IDX files (train-images-idx3-ubyte.gz, ...)")
        raise DataUnavailableError(f"{name}: no local files under data_dir={data_dir} (expected {want}), "
                                   f"and the TFDS fallback failed: {e}") from e
