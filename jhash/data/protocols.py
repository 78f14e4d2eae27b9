"""Retrieval protocols of the hashing literature, and seeded, checksummed splits.

A `Protocol` says how to cut a dataset into a query set, a training set and a
database; `make_split(dataset, protocol, seed)` draws the cut with
``np.random.default_rng(seed)`` and returns a `Split` of sorted int64 index arrays
carrying the dataset's fingerprint and a checksum, which `save_split` / `load_split`
keep and verify. The same seed always gives the same split, on any machine.

The cut, in order:

1. query pool: the official test items (``query_from='test'``, needs ``is_test``) or
   all items (``'all'``); draw ``n_query`` from it, ``query_per_class`` per class when
   set (an item counts for its class id), uniformly at random otherwise;
2. rest = every item not in the query set; draw ``n_train`` from the rest, likewise
   (per class with ``train_per_class``);
3. database: ``'rest'`` (the rest, so train is a subset of it), ``'rest_minus_train'``
   (the rest without the training items) or ``'train'`` (the training items).

Drawing a whole pool takes all of it (``cifar10_50k``). ``n_database``, when set, is
checked against the result, so a protocol run on the wrong dataset fails loudly; use
``dataclasses.replace(protocol, n_query=..., n_database=None, ...)`` for a variant.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import zipfile

import numpy as np

from jhash.data.dataset import Dataset

__all__ = [
    "PROTOCOLS",
    "Protocol",
    "Split",
    "get_protocol",
    "load_split",
    "parse_protocol",
    "make_split",
    "save_split",
    "subset",
]


@dataclasses.dataclass(frozen=True)
class Protocol:
    """How to cut a dataset into query / train / database (see the module docstring)."""

    name: str
    dataset: str
    n_query: int
    n_train: int
    n_database: int | None
    query_per_class: int | None = None
    train_per_class: int | None = None
    query_from: str = "all"  # 'test' | 'all'
    database: str = "rest"  # 'rest' | 'rest_minus_train' | 'train'
    map_k: int | None = None  # None: mAP over the whole database (mAP@ALL)
    description: str = ""
    reference: str = ""
    given: bool = False  # take the dataset's own split (its list files) instead of drawing one

    def __post_init__(self):
        def fail(msg):
            raise ValueError(f"Protocol({self.name!r}): {msg}")

        if self.query_from not in ("test", "all"):
            fail(f"query_from must be 'test' or 'all', got {self.query_from!r}")
        if self.database not in ("rest", "rest_minus_train", "train"):
            fail(f"database must be 'rest', 'rest_minus_train' or 'train', got {self.database!r}")
        for f in ("n_query", "n_train"):
            if getattr(self, f) < (0 if self.given else 1):
                fail(f"{f} must be >= 1, got {getattr(self, f)}")
        for f in ("n_database", "query_per_class", "train_per_class", "map_k"):
            v = getattr(self, f)
            if v is not None and v < 1:
                fail(f"{f} must be None or >= 1, got {v}")
        for per, total in (("query_per_class", "n_query"), ("train_per_class", "n_train")):
            k, n = getattr(self, per), getattr(self, total)
            if k is not None and n % k:
                fail(f"{total}={n} is not a multiple of {per}={k}")

    @property
    def map_name(self) -> str:
        return "mAP@ALL" if self.map_k is None else f"mAP@{self.map_k}"


_SINGLE = "Queries and training items are drawn per class; "

PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in [
        Protocol(
            "cifar10", "cifar10", n_query=1_000, n_train=5_000, n_database=59_000,
            query_per_class=100, train_per_class=500, query_from="test", database="rest",
            description="1,000 queries (100/class) from the test set; database = the other 59,000 "
            "images; 5,000 training images (500/class) drawn from the database; mAP@ALL.",
            reference="DPSH (Li et al., IJCAI 2016), DSDH (Li et al., NIPS 2017), ADSH (Jiang & Li, "
            "AAAI 2018): CIFAR-10 with 1,000 queries, 5,000 training, 59,000 database.",
        ),
        Protocol(
            "cifar10_54k", "cifar10", n_query=1_000, n_train=5_000, n_database=54_000,
            query_per_class=100, train_per_class=500, query_from="test", database="rest_minus_train",
            description="1,000 queries (100/class) from the test set; 5,000 training images "
            "(500/class) from the rest; database = the remaining 54,000 (disjoint from both); mAP@ALL.",
            reference="The disjoint 54,000-image-database variant common in later deep hashing papers "
            "and re-implementations. Papers differ on whether queries come from the test set or from "
            "all 60,000 images; jhash draws them from the test set, so the query set equals the "
            "'cifar10' protocol's for the same seed (the distribution is the same).",
        ),
        Protocol(
            "cifar10_50k", "cifar10", n_query=10_000, n_train=50_000, n_database=50_000,
            query_from="test", database="train",
            description="queries = the 10,000 test images; training set = database = the 50,000 "
            "training images; mAP@ALL.",
            reference="The official CIFAR-10 train/test split, as in the second CIFAR-10 setting of "
            "DPSH (Li et al., IJCAI 2016) and DSDH (Li et al., NIPS 2017).",
        ),
        Protocol(
            "mnist", "mnist", n_query=1_000, n_train=5_000, n_database=69_000,
            query_per_class=100, train_per_class=500, query_from="test", database="rest",
            description="1,000 queries (100/class) from the test set; database = the other 69,000 "
            "images; 5,000 training images (500/class) drawn from the database; mAP@ALL.",
            reference="1,000 MNIST queries with the rest as database as in KSH (Liu et al., CVPR 2012) "
            "and SDH (Shen et al., CVPR 2015); 100/class queries and 500/class training follow the "
            "CIFAR-10 protocol above (and ../shared/data/README.md).",
        ),
        Protocol(
            "fashion_mnist", "fashion_mnist", n_query=1_000, n_train=5_000, n_database=69_000,
            query_per_class=100, train_per_class=500, query_from="test", database="rest",
            description="as 'mnist': 1,000 queries (100/class) from the test set, 5,000 training "
            "(500/class) from the 69,000-item database; mAP@ALL.",
            reference="The 'mnist' protocol on Fashion-MNIST (Xiao et al., 2017).",
        ),
        Protocol(
            "digits", "digits", n_query=100, n_train=500, n_database=1_697,
            query_per_class=10, train_per_class=50, query_from="all", database="rest",
            description="scikit-learn's 1,797 8x8 digits: 100 queries (10/class) drawn from all items; "
            "database = the other 1,697; 500 training items (50/class) from the database; mAP@ALL. "
            "Small, runs anywhere, for the embedded default and tests.",
            reference="jhash's own scaled-down copy of the CIFAR-10 protocol.",
        ),
        Protocol(
            "nus_wide_21", "nus_wide_21", n_query=2_100, n_train=10_500, n_database=193_734,
            query_from="all", database="rest", map_k=5_000,
            description="195,834 NUS-WIDE images carrying one of the 21 most frequent concepts "
            "(multi-hot labels): 2,100 random queries; database = the other 193,734; 10,500 random "
            "training images from the database; mAP@5000. Sampling is uniform, not per concept.",
            reference="The 21-concept subset of DNNH (Lai et al., CVPR 2015), with 2,100 queries and "
            "10,500 training images as in DPSH (Li et al., IJCAI 2016) and DSDH (NIPS 2017), who sample "
            "100 / 500 per concept; mAP@5000 as in DHN (Zhu et al., AAAI 2016) and the HashNet/DCH line "
            "(Cao et al., ICCV 2017 / CVPR 2018). jhash samples uniformly (labels are multi-hot).",
        ),
        Protocol(
            "ms_coco", "ms_coco", n_query=5_000, n_train=10_000, n_database=117_218,
            query_from="all", database="rest", map_k=5_000,
            description="122,218 MS-COCO train+val images with at least one of the 80 categories "
            "(multi-hot): 5,000 random queries; database = the other 117,218; 10,000 random training "
            "images from the database; mAP@5000.",
            reference="HashNet (Cao et al., ICCV 2017), section 4; also DCH (CVPR 2018).",
        ),
        Protocol(
            "imagenet100", "imagenet100", n_query=5_000, n_train=10_000, n_database=128_503,
            train_per_class=100, query_from="test", database="rest",
            map_k=1_000,
            description="100 ImageNet (ILSVRC 2012) classes: queries = their 5,000 validation images "
            "(mark them is_test); database = their 128,503 training images; 10,000 training images "
            "(100/class) from the database; mAP@1000.",
            reference="HashNet (Cao et al., ICCV 2017), section 4 (100 random classes, validation "
            "images as queries, 100 training images per class); 128,503 is the size of the database "
            "list HashNet released.",
        ),
    ]
}  # fmt: skip


def _lists(name: str, map_k: int | None, sizes: str, reference: str) -> Protocol:
    return Protocol(f"lists:{name}" if name else "lists", "imagelist", n_query=0, n_train=0, n_database=None,
                    map_k=map_k, given=True, reference=reference,
                    description=f"the split of the dataset's list files (test.txt = queries, train.txt, database.txt)"
                    f"{sizes}; {'mAP@ALL' if map_k is None else f'mAP@{map_k}'}.")


#: The literature's split lists (dataset ``imagelist:DIR``, :mod:`jhash.data.lists`): the split is the
#: lists' own; the protocols differ only in the mAP cut-off the literature reports.
PROTOCOLS.update({p.name: p for p in [
    _lists("", None, "", "Any lists in DeepHash-pytorch's format."),
    _lists("nuswide_21", 5_000, " (DeepHash-pytorch's data/nuswide_21: 2,100 queries, 10,500 training, 193,734 "
           "database images, 21 concepts, multi-hot)",
           "DeepHash-pytorch (github.com/swuxyj/DeepHash-pytorch) data/nuswide_21, the lists of the HashNet / DCH "
           "line; mAP@5000 as in HashNet (Cao et al., ICCV 2017)."),
    _lists("coco", 5_000, " (DeepHash-pytorch's data/coco: 5,000 queries, 10,000 training, 117,218 database "
           "images, 80 categories, multi-hot)", "HashNet (Cao et al., ICCV 2017), section 4; the lists HashNet "
           "released, as DeepHash-pytorch ships them."),
    _lists("imagenet100", 1_000, " (DeepHash-pytorch's data/imagenet: 5,000 queries, 13,000 training, "
           "128,503 database images of 100 classes)", "HashNet (Cao et al., ICCV 2017), section 4; the lists "
           "HashNet released, as DeepHash-pytorch ships them."),
    _lists("cifar10", None, " (DeepHash-pytorch's data/cifar10 lists)", "DeepHash-pytorch data/cifar10; "
           "mAP@ALL as DPSH (Li et al., IJCAI 2016)."),
]})


_CUSTOM_INT_FIELDS = ("n_query", "n_train", "n_database", "query_per_class", "train_per_class", "map_k")
_CUSTOM_STR_FIELDS = ("query_from", "database")


def parse_protocol(spec: str) -> Protocol:
    """A protocol written out: ``"custom:n_query=100,n_train=500[,query_per_class=10][,map_k=1000]..."``.

    For datasets the named protocols do not cover (e.g. features brought as ``.npz``). Fields
    are those of :class:`Protocol`; unset ones keep its defaults (queries from all items,
    database = the rest, mAP@ALL, no size check).
    """
    _, _, body = spec.partition(":")
    fields = {}
    for item in filter(None, body.split(",")):
        key, eq, value = (t.strip() for t in item.partition("="))
        if not eq or key not in _CUSTOM_INT_FIELDS + _CUSTOM_STR_FIELDS:
            raise ValueError(f"protocol {spec!r}: {item!r} must be FIELD=VALUE with FIELD one of "
                             f"{', '.join(_CUSTOM_INT_FIELDS + _CUSTOM_STR_FIELDS)}")
        if key in _CUSTOM_INT_FIELDS:
            try:
                fields[key] = int(value)
            except ValueError:
                raise ValueError(f"protocol {spec!r}: {key} must be an integer, got {value!r}") from None
        else:
            fields[key] = value
    for key in ("n_query", "n_train"):
        if key not in fields:
            raise ValueError(f"protocol {spec!r} must set {key}")
    fields.setdefault("n_database", None)
    return Protocol(name=spec, dataset="custom", **fields)


def get_protocol(name: str) -> Protocol:
    """A named protocol, or one written out as ``"custom:..."`` (:func:`parse_protocol`). The name of an
    ``imagelist:DIR`` dataset gives the ``lists`` protocol (its own split, mAP@ALL)."""
    if name.startswith("custom:"):
        return parse_protocol(name)
    if name.startswith("imagelist:"):
        return PROTOCOLS["lists"]
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ValueError(f"unknown protocol {name!r}; known protocols: {', '.join(PROTOCOLS)}, "
                         "or custom:n_query=...,n_train=...") from None


# --------------------------------------------------------------------------- splits


def _checksum(query: np.ndarray, train: np.ndarray, database: np.ndarray) -> str:
    h = hashlib.sha256(b"jhash.Split.v1\0")
    for key, a in (("query", query), ("train", train), ("database", database)):
        a = np.ascontiguousarray(a, dtype="<i8")
        h.update(f"{key}\0{a.shape[0]}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


@dataclasses.dataclass(frozen=True, eq=False)
class Split:
    """int64 positions of the query, training and database items: unique within each part, in any
    order (the splits jhash draws are sorted; a split from a list or a file keeps its order, and
    the database's order is the order in which ties of a Hamming ranking fall).

    `checksum` (sha256 over the three index arrays) is computed when not given and
    verified when given, so a `Split` rebuilt from a file cannot silently differ.
    """

    query: np.ndarray
    train: np.ndarray
    database: np.ndarray
    protocol: str
    seed: int
    fingerprint: str
    checksum: str = ""

    def __post_init__(self):
        for key in ("query", "train", "database"):
            a = np.asarray(getattr(self, key))
            if a.ndim != 1 or not (np.issubdtype(a.dtype, np.integer) or a.size == 0):
                raise ValueError(f"Split: argument {key!r} must be a 1-D integer index array, got {a.dtype}{a.shape}")
            a = a.astype(np.int64)
            if a.size and (a.min() < 0 or len(np.unique(a)) != len(a)):
                raise ValueError(f"Split: argument {key!r} must hold unique, non-negative positions")
            a.flags.writeable = False
            object.__setattr__(self, key, a)
        digest = _checksum(self.query, self.train, self.database)
        if self.checksum and self.checksum != digest:
            raise ValueError(
                f"Split({self.protocol!r}, seed={self.seed}): checksum mismatch (stored {self.checksum}, "
                f"indices give {digest}); the split file is corrupt or was edited"
            )
        object.__setattr__(self, "checksum", digest)
        object.__setattr__(self, "seed", int(self.seed))

    def sizes(self) -> dict[str, int]:
        return {"query": len(self.query), "train": len(self.train), "database": len(self.database)}

    def __eq__(self, other):
        return isinstance(other, Split) and (self.checksum, self.protocol, self.seed, self.fingerprint) == (
            other.checksum, other.protocol, other.seed, other.fingerprint)  # fmt: skip

    __hash__ = None


def _class_ids(dataset: Dataset, protocol: Protocol) -> np.ndarray:
    if not dataset.multilabel:
        return dataset.y
    per_row = dataset.y.sum(axis=1)
    if not np.all(per_row == 1):
        raise ValueError(
            f"protocol {protocol.name!r} samples per class but dataset {dataset.name!r} has multi-hot "
            f"labels with {int(np.sum(per_row != 1))} items not carrying exactly one label; "
            "use query_per_class=None / train_per_class=None"
        )
    return np.argmax(dataset.y, axis=1).astype(np.int32)


def _draw(rng, pool, n, per_class, labels, num_classes, what, protocol, dataset):
    if per_class is None:
        if n > len(pool):
            raise ValueError(
                f"protocol {protocol.name!r} needs {n} {what} items but dataset {dataset.name!r} "
                f"has only {len(pool)} to draw them from"
            )
        return np.sort(rng.choice(pool, size=n, replace=False))
    classes = n // per_class
    if classes != num_classes:
        raise ValueError(
            f"protocol {protocol.name!r} draws {per_class} {what} items from each of {classes} classes, "
            f"but dataset {dataset.name!r} has {num_classes} classes"
        )
    picks = []
    pool_labels = labels[pool]
    for c in range(num_classes):
        members = pool[pool_labels == c]
        if len(members) < per_class:
            raise ValueError(
                f"protocol {protocol.name!r} needs {per_class} {what} items of class {c} but dataset "
                f"{dataset.name!r} has only {len(members)} available"
            )
        picks.append(rng.choice(members, size=per_class, replace=False))
    return np.sort(np.concatenate(picks))


def make_split(dataset: Dataset, protocol: Protocol | str, seed: int) -> Split:
    """Draws the protocol's query / train / database split of `dataset` with `seed`."""
    if isinstance(protocol, str):
        protocol = get_protocol(protocol)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"make_split: seed must be a non-negative int, got {seed!r}")
    if protocol.given:
        if dataset.given_split is None:
            raise ValueError(f"protocol {protocol.name!r} takes the split of the dataset's list files, but dataset "
                             f"{dataset.name!r} has none (use an imagelist:DIR dataset or another protocol)")
        return Split(**dataset.given_split, protocol=protocol.name, seed=0, fingerprint=dataset.fingerprint)
    n = len(dataset)
    rng = np.random.default_rng(int(seed))
    per_class = protocol.query_per_class is not None or protocol.train_per_class is not None
    labels = _class_ids(dataset, protocol) if per_class else None
    everything = np.arange(n, dtype=np.int64)
    if protocol.query_from == "test":
        if dataset.is_test is None:
            raise ValueError(
                f"protocol {protocol.name!r} draws queries from the test split, but dataset "
                f"{dataset.name!r} has no is_test flags"
            )
        pool = everything[dataset.is_test]
    else:
        pool = everything
    query = _draw(rng, pool, protocol.n_query, protocol.query_per_class, labels,
                  dataset.num_classes, "query", protocol, dataset)  # fmt: skip
    in_query = np.zeros(n, bool)
    in_query[query] = True
    rest = everything[~in_query]
    train = _draw(rng, rest, protocol.n_train, protocol.train_per_class, labels,
                  dataset.num_classes, "training", protocol, dataset)  # fmt: skip
    if protocol.database == "rest":
        database = rest
    elif protocol.database == "train":
        database = train
    else:
        in_train = np.zeros(n, bool)
        in_train[train] = True
        database = rest[~in_train[rest]]
    if protocol.n_database is not None and len(database) != protocol.n_database:
        raise ValueError(
            f"protocol {protocol.name!r} expects a database of {protocol.n_database} items but dataset "
            f"{dataset.name!r} ({n} items) gives {len(database)}; it is not the protocol's dataset "
            "(use dataclasses.replace(protocol, n_database=None, ...) for a variant)"
        )
    if len(database) == 0:
        raise ValueError(f"protocol {protocol.name!r} leaves an empty database on dataset {dataset.name!r}")
    return Split(query, train, database, protocol.name, int(seed), dataset.fingerprint)


def save_split(split: Split, path: str | os.PathLike) -> None:
    """Writes the split (indices, protocol, seed, fingerprint, checksum) to a .npz file."""
    path = pathlib.Path(path)
    meta = {"protocol": split.protocol, "seed": split.seed, "fingerprint": split.fingerprint,
            "checksum": split.checksum, "format": "jhash.Split.v1"}  # fmt: skip
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, query=split.query, train=split.train, database=split.database, meta=np.array(json.dumps(meta)))
    os.replace(tmp, path)


def load_split(path: str | os.PathLike, dataset: Dataset | None = None) -> Split:
    """Reads a split written by `save_split`, verifying its checksum (and `dataset`'s fingerprint).

    Raises:
      FileNotFoundError: no such file.
      ValueError: the file is truncated or corrupt, its checksum does not match, or it
        was drawn from a different dataset than `dataset`.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"split file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("query", "train", "database")}
            meta = json.loads(str(z["meta"]))
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, ValueError, json.JSONDecodeError) as e:
        raise ValueError(f"split file {path} is truncated or corrupt ({type(e).__name__}: {e})") from e
    if meta.get("format") != "jhash.Split.v1":
        raise ValueError(f"split file {path}: unknown format {meta.get('format')!r}")
    try:
        split = Split(**arrays, protocol=meta["protocol"], seed=meta["seed"],
                      fingerprint=meta["fingerprint"], checksum=meta["checksum"])  # fmt: skip
    except ValueError as e:
        raise ValueError(f"split file {path}: {e}") from e
    if dataset is not None:
        if split.fingerprint != dataset.fingerprint:
            raise ValueError(
                f"split file {path} was drawn from a dataset with fingerprint {split.fingerprint[:16]}..., "
                f"not {dataset.name!r} ({dataset.fingerprint[:16]}...)"
            )
        top = max((int(a.max()) for a in arrays.values() if a.size), default=-1)
        if top >= len(dataset):
            raise ValueError(f"split file {path} indexes item {top} but {dataset.name!r} has {len(dataset)}")
    return split


def subset(dataset: Dataset, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(x[idx], y[idx])`` of `dataset` (copies)."""
    idx = np.asarray(idx)
    if idx.ndim != 1 or not (np.issubdtype(idx.dtype, np.integer) or idx.size == 0):
        raise ValueError(f"subset: idx must be a 1-D integer array, got {idx.dtype}{idx.shape}")
    idx = idx.astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= len(dataset)):
        raise ValueError(f"subset: indices out of range for {dataset.name!r} with {len(dataset)} items")
    return dataset.x[idx], dataset.y[idx]
