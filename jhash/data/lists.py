"""The literature's split lists, and split files made elsewhere.

**Image lists** (dataset ``imagelist:DIR``) are the format of the most used collection,
DeepHash-pytorch (``data/<dataset>/train.txt``, ``test.txt``, ``database.txt``): one item
per line, an image path relative to the data root, then the item's 0/1 label vector
(one-hot or multi-hot), separated by spaces. ``test.txt`` holds the queries. The
dataset's items are the distinct paths in the order they first appear in ``test.txt``,
``database.txt``, ``train.txt``, so the database keeps the list's order (ties of the
Hamming ranking fall by that order) and an item listed in both ``train.txt`` and
``database.txt`` is one item. Images of any size and mode are read on demand
(:class:`jhash.data.images.ImageArray`); one-hot lists give class ids, others multi-hot
labels. The lists' split is the dataset's ``given_split``, which the ``lists`` protocol
takes as it is.

**Split files** (``config.split_file``): an ``.npz`` with integer arrays ``query``,
``train`` and ``database`` of dataset positions (any order; the database's order is the
ranking's tie order), or a split file written by jhash; :func:`split_from_file` checks
it against the dataset (range, duplicates, non-empty) and returns a :class:`Split`.
"""
from __future__ import annotations

import pathlib
import zipfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from jhash.data.dataset import Dataset
from jhash.data.images import FileImages, ImageArray, ImageReadError

__all__ = ["LIST_FILES", "check_image_files", "load_image_list", "split_from_file"]

#: The list files of an image-list folder, by split part.
LIST_FILES = {"query": "test.txt", "database": "database.txt", "train": "train.txt"}


def _parse_list(path: pathlib.Path, width: int | None):
    """``(paths, labels (n, c) uint8, line numbers, width)`` of one list file; errors name the file and line."""
    paths, rows, origins = [], [], []
    seen = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            where = f"{path}:{lineno}"
            if len(parts) < 2:
                raise ValueError(f"{where}: malformed line {line.strip()!r}: expected an image path then its 0/1 "
                                 "label vector")
            bits = parts[1:]
            if any(b not in ("0", "1") for b in bits):
                raise ValueError(f"{where}: malformed line: the labels after the path must be 0 or 1, got "
                                 f"{' '.join(bits[:8])}{' ...' if len(bits) > 8 else ''}")
            width = len(bits) if width is None else width
            if len(bits) != width:
                raise ValueError(f"{where}: {len(bits)} labels, but earlier lines have {width}")
            if parts[0] in seen:
                raise ValueError(f"{where}: {parts[0]} is listed twice in {path.name} (also at line {seen[parts[0]]})")
            seen[parts[0]] = lineno
            paths.append(parts[0])
            rows.append(np.frombuffer("".join(bits).encode(), np.uint8) - 48)
            origins.append(lineno)
    if not paths:
        raise ValueError(f"{path}: the list is empty")
    return paths, np.stack(rows), origins, width


def load_image_list(list_dir, data_dir=None, *, image_size: int, resize: int = 0, mode: str = "RGB",
                    name: str | None = None) -> Dataset:
    """A dataset from an image-list folder (see the module docstring).

    Args:
      list_dir: the folder holding ``train.txt``, ``test.txt`` and ``database.txt``.
      data_dir: the root the listed paths are relative to (default: ``list_dir``).
      image_size: the side of the square images the model sees (e.g. 224); required, since
        the listed images may have any size.
      resize: the shorter side before the crop (:class:`ImageArray`; 0 = ``image_size * 8 / 7``).
    """
    list_dir = pathlib.Path(list_dir).expanduser()
    if not list_dir.is_dir():
        raise FileNotFoundError(f"imagelist: {list_dir} is not a folder (expected one holding "
                                f"{', '.join(LIST_FILES.values())})")
    missing = [f for f in LIST_FILES.values() if not (list_dir / f).is_file()]
    if missing:
        raise FileNotFoundError(f"imagelist: {list_dir} lacks {', '.join(missing)} (a list folder holds "
                                f"{', '.join(LIST_FILES.values())})")
    if not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"imagelist: the listed images may have any size; set config.image_size (e.g. 224), "
                         f"got {image_size!r}")
    position, paths, labels, file_of, line_of = {}, [], [], [], []
    files = [str(list_dir / f) for f in LIST_FILES.values()]
    given, width = {}, None
    for f, (part, file) in enumerate(LIST_FILES.items()):
        p, y, lines, width = _parse_list(list_dir / file, width)
        idx = np.empty(len(p), np.int64)
        for k, (path, row, line) in enumerate(zip(p, y, lines)):
            at = position.get(path)
            if at is None:
                at = position[path] = len(paths)
                paths.append(path), labels.append(row), file_of.append(f), line_of.append(line)
            elif not np.array_equal(labels[at], row):
                raise ValueError(f"{list_dir / file}:{line}: {path} has other labels than at "
                                 f"{files[file_of[at]]}:{line_of[at]}")
            idx[k] = at
        given[part] = idx
    y = np.stack(labels)
    if (y.sum(axis=1) == 1).all():  # one-hot: class ids
        y = np.argmax(y, axis=1).astype(np.int32)
    is_test = np.zeros(len(paths), bool)
    is_test[given["query"]] = True
    root = pathlib.Path(data_dir).expanduser() if data_dir else list_dir
    origins = (files, np.array(file_of, np.uint8), np.array(line_of, np.int32))
    x = ImageArray(FileImages(root, paths, mode, origins), image_size, resize)
    return Dataset(name or f"imagelist:{list_dir.name}", x, y, int(width), is_test, given_split=given)


def check_image_files(x: ImageArray, threads: int = 8) -> None:
    """Every file of a file-backed ``x`` exists and its image header can be read; the first bad one is a
    clear :class:`ImageReadError` naming the file and its list line. Reads headers only (fast)."""
    from PIL import Image

    source = x.source
    if not isinstance(source, FileImages):
        return

    def check(i):
        path = source.path(i)
        try:
            with Image.open(path) as im:
                im.size  # noqa: B018 (header parsed)
        except FileNotFoundError:
            return f"image {source.where(i)} does not exist"
        except Exception as e:
            return f"cannot read image {source.where(i)} ({type(e).__name__}: {e})"
        return None

    with ThreadPoolExecutor(threads) as pool:
        for problem in pool.map(check, range(len(source)), chunksize=256):
            if problem:
                raise ImageReadError(problem + " (found by config.data.check_files; fix or remove the line)")


def split_from_file(path, dataset: Dataset):
    """The :class:`jhash.data.Split` in ``path`` (see the module docstring), checked against ``dataset``."""
    from jhash.data.protocols import Split, load_split

    path = pathlib.Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"config.split_file: {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            files = set(z.files)
            if "meta" in files:  # a jhash split file
                split = load_split(path)
                arrays = {k: split.query if k == "query" else getattr(split, k) for k in ("query", "train", "database")}
            else:
                missing = [k for k in ("query", "train", "database") if k not in files]
                if missing:
                    raise ValueError(f"config.split_file: {path} lacks the array(s) {missing}; it has {sorted(files)} "
                                     "(expected integer arrays query, train, database of dataset positions)")
                arrays = {k: z[k] for k in ("query", "train", "database")}
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        raise ValueError(f"config.split_file: {path} is not a readable .npz ({e})") from e
    n = len(dataset)
    for key, a in arrays.items():
        if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"config.split_file: {path}: {key!r} must be a 1-D integer array, got {a.dtype}{a.shape}")
        if not len(a):
            raise ValueError(f"config.split_file: {path}: {key!r} is empty")
        if a.min() < 0 or a.max() >= n:
            raise ValueError(f"config.split_file: {path}: {key!r} holds positions outside [0, {n}) "
                             f"(range [{a.min()}, {a.max()}]); the dataset {dataset.name!r} has {n} items")
        if len(np.unique(a)) != len(a):
            raise ValueError(f"config.split_file: {path}: {key!r} lists {len(a) - len(np.unique(a))} position(s) twice")
    return Split(**arrays, protocol=f"file:{path.name}", seed=0, fingerprint=dataset.fingerprint)
