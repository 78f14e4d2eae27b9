"""Tests of jhash.data: datasets, sources, protocols and splits, batching."""

import dataclasses
import gzip
import hashlib
import io
import itertools
import os
import pathlib
import subprocess
import sys
import tarfile

import numpy as np
import pytest

import jhash.data as jd
from jhash.data import sources

# ----------------------------------------------------------------------------- helpers


USER_CACHE = jd.cache_dir()  # $JHASH_CACHE or ~/.cache/jhash, read before the fixture below


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    """Every test gets its own empty cache dir (real-data tests override it)."""
    monkeypatch.setenv("JHASH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("JHASH_DATA_DIR", raising=False)


def synthetic(name, n_train_per_class, n_test_per_class, num_classes, multilabel=False, seed=0):
    """A tiny-feature dataset with the given class layout (train items first, then test)."""
    rng = np.random.default_rng(seed)
    n_tr, n_te = n_train_per_class * num_classes, n_test_per_class * num_classes
    n = n_tr + n_te
    if multilabel:
        y = (rng.random((n, num_classes)) < 0.1).astype(np.uint8)
        y[np.arange(n), rng.integers(0, num_classes, n)] = 1  # at least one label each
    else:
        y = np.concatenate([np.repeat(np.arange(num_classes), n_train_per_class),
                            np.repeat(np.arange(num_classes), n_test_per_class)]).astype(np.int32)  # fmt: skip
    is_test = np.arange(n) >= n_tr
    x = rng.standard_normal((n, 2)).astype(np.float32)
    return jd.Dataset(name, x, y, num_classes, is_test)


def multilabel_dataset(name, n, num_classes, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, num_classes)) < 0.1).astype(np.uint8)
    y[np.arange(n), rng.integers(0, num_classes, n)] = 1
    return jd.Dataset(name, np.zeros((n, 1), np.float32), y, num_classes)


# Synthetic datasets with the real shape of each protocol's dataset.
PROTOCOL_DATA = {
    "cifar10": lambda: synthetic("cifar10", 5000, 1000, 10),
    "cifar10_54k": lambda: synthetic("cifar10", 5000, 1000, 10),
    "cifar10_50k": lambda: synthetic("cifar10", 5000, 1000, 10),
    "mnist": lambda: synthetic("mnist", 6000, 1000, 10),
    "fashion_mnist": lambda: synthetic("fashion_mnist", 6000, 1000, 10),
    "digits": jd.load_digits,
    "nus_wide_21": lambda: multilabel_dataset("nus_wide_21", 195_834, 21),
    "ms_coco": lambda: multilabel_dataset("ms_coco", 122_218, 80),
    # 100 classes: 128,503 training images (uneven per class), 50 validation images each.
    "imagenet100": lambda: jd.Dataset(
        "imagenet100", np.zeros((133_503, 1), np.float32),
        np.concatenate([np.arange(128_503) % 100, np.repeat(np.arange(100), 50)]).astype(np.int32),
        100, np.arange(133_503) >= 128_503),
}  # fmt: skip


def write_idx(path, array):
    codes = {np.dtype("u1"): 0x08, np.dtype(">i4"): 0x0C}
    array = np.asarray(array)
    dt = np.dtype("u1") if array.dtype == np.uint8 else np.dtype(">i4")
    header = bytes([0, 0, codes[dt], array.ndim]) + np.array(array.shape, ">u4").tobytes()
    data = header + array.astype(dt).tobytes()
    if str(path).endswith(".gz"):
        data = gzip.compress(data)
    pathlib.Path(path).write_bytes(data)


def make_mnist_dir(folder, n_train=20, n_test=10, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8),
    }
    for stem, a in arrays.items():
        write_idx(folder / (stem + (".gz" if gz else "")), a)
    return arrays


def write_sums(root, files):
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(root).as_posix()}" for p in files]
    (root / "SHA256SUMS").write_text("\n".join(lines) + "\n")


def make_image_tarball(path, per_class=2, classes=jd.CIFAR10_CLASSES, fmt="PNG", prefix=""):
    """A tiny train/<class>/NNNN.png, test/<class>/NNNN.png tarball; returns {member: pixels}."""
    from PIL import Image

    rng = np.random.default_rng(1)
    pixels = {}
    with tarfile.open(path, "w:gz") as tar:
        # Add members in a scrambled order: the loader must sort them.
        names = [f"{prefix}{split}/{c}/{i:04d}.{fmt.lower()}"
                 for split in ("test", "train") for c in reversed(classes) for i in range(per_class)]  # fmt: skip
        for name in names:
            img = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format=fmt)
            info = tarfile.TarInfo(name)
            info.size = len(buf.getvalue())
            tar.addfile(info, io.BytesIO(buf.getvalue()))
            pixels[name] = img
    return pixels


# ----------------------------------------------------------------------------- Dataset


def test_dataset_validates_and_converts():
    ds = jd.Dataset("t", np.ones((4, 3), np.float64), np.array([0, 1, 2, 1]), 3, np.array([0, 0, 1, 1]))
    assert ds.x.dtype == np.float32 and ds.y.dtype == np.int32 and ds.is_test.dtype == bool
    assert len(ds) == 4 and not ds.multilabel
    assert ds.class_counts().tolist() == [1, 2, 1]
    with pytest.raises(ValueError):
        ds.x[0, 0] = 5  # read-only views
    ml = jd.Dataset("m", np.zeros((2, 1, 1, 1), np.uint8), np.array([[1, 0], [1, 1]], bool), 2)
    assert ml.multilabel and ml.y.dtype == np.uint8 and ml.class_counts().tolist() == [2, 1]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(x=np.zeros((3, 2)), y=np.zeros(4, int)), "'y'.*same length"),
        (dict(x=np.array([[0.0, np.nan], [1, 1]]), y=np.zeros(2, int)), "'x'.*NaN or inf"),
        (dict(x=np.array([[0.0, np.inf]]), y=np.zeros(1, int)), "'x'.*NaN or inf"),
        (dict(x=np.zeros((2, 2)), y=np.array([0, 3])), r"'y'.*\[0, 3\)"),
        (dict(x=np.zeros((2, 2)), y=np.array([-1, 0])), "'y'.*class ids"),
        (dict(x=np.zeros(3), y=np.zeros(3, int)), "'x'.*ndim"),
        (dict(x=np.zeros((2, 2, 2)), y=np.zeros(2, int)), "'x'.*ndim"),
        (dict(x=np.zeros((0, 2)), y=np.zeros(0, int)), "'x'.*empty"),
        (dict(x=np.zeros((2, 2)), y=np.zeros((2, 2, 1), int)), "'y'"),
        (dict(x=np.zeros((2, 2)), y=np.array([[0, 2, 0], [1, 0, 0]])), "'y'.*0 or 1"),
        (dict(x=np.zeros((2, 2)), y=np.array([[0, 1], [1, 0]])), "'y'.*columns"),
        (dict(x=np.zeros((2, 2)), y=np.zeros(2, int), is_test=np.zeros(3, bool)), "'is_test'"),
        (dict(x=np.zeros((2, 2)), y=np.zeros(2, int), num_classes=0), "'num_classes'"),
        (dict(x=np.zeros((2, 4, 4, 1), np.int16), y=np.zeros(2, int)), "'x'.*uint8"),
        (dict(x=np.array([["a"], ["b"]]), y=np.zeros(2, int)), "'x'.*numeric"),
    ],
)
def test_dataset_bad_inputs(kwargs, match):
    kwargs.setdefault("num_classes", 3)
    with pytest.raises(ValueError, match=match):
        jd.Dataset("bad", **kwargs)


def test_fingerprint_tracks_content():
    a = jd.Dataset("a", np.zeros((3, 2), np.float32), np.array([0, 1, 1]), 2)
    b = jd.Dataset("b", np.zeros((3, 2), np.float32), np.array([0, 1, 1]), 2)
    c = jd.Dataset("c", np.zeros((3, 2), np.float32), np.array([0, 1, 0]), 2)
    d = jd.Dataset("d", np.zeros((3, 2), np.float32), np.array([0, 1, 1]), 2, np.array([0, 0, 1], bool))
    assert a.fingerprint == b.fingerprint  # the name is not content
    assert len({a.fingerprint, c.fingerprint, d.fingerprint}) == 3
    assert len(a.fingerprint) == 64 and a.fingerprint is a.fingerprint  # cached


# ----------------------------------------------------------------------------- sources


def test_digits():
    ds = jd.load("digits")
    assert ds.name == "digits" and ds.x.shape == (1797, 64) and ds.x.dtype == np.float32
    assert 0.0 <= ds.x.min() and ds.x.max() == 1.0
    assert ds.y.shape == (1797,) and ds.num_classes == 10 and ds.is_test is None
    assert ds.class_counts().min() >= 170


@pytest.mark.parametrize("gz", [True, False])
def test_idx_roundtrip(tmp_path, gz):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    p = tmp_path / ("a.idx" + (".gz" if gz else ""))
    write_idx(p, a)
    np.testing.assert_array_equal(jd.read_idx(p), a)
    b = np.array([1, -2, 70000], np.int32)
    write_idx(tmp_path / "b.idx", b)
    out = jd.read_idx(tmp_path / "b.idx")
    np.testing.assert_array_equal(out, b)
    assert out.dtype.isnative


def test_idx_corrupt(tmp_path):
    write_idx(tmp_path / "a.idx", np.zeros((4, 5), np.uint8))
    raw = (tmp_path / "a.idx").read_bytes()
    (tmp_path / "t.idx").write_bytes(raw[:-3])
    with pytest.raises(ValueError, match="truncated"):
        jd.read_idx(tmp_path / "t.idx")
    (tmp_path / "m.idx").write_bytes(b"\x01\x02" + raw[2:])
    with pytest.raises(ValueError, match="not an IDX"):
        jd.read_idx(tmp_path / "m.idx")
    (tmp_path / "g.idx.gz").write_bytes(gzip.compress(raw)[:-6])
    with pytest.raises(ValueError, match="gzip"):
        jd.read_idx(tmp_path / "g.idx.gz")


@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_local(tmp_path, gz):
    arrays = make_mnist_dir(tmp_path / "mnist", gz=gz)
    for data_dir in (tmp_path, tmp_path / "mnist"):  # the parent or the folder itself
        ds = jd.load("mnist", data_dir=data_dir)
        assert ds.x.shape == (30, 28, 28, 1) and ds.x.dtype == np.uint8
        np.testing.assert_array_equal(ds.x[:20, ..., 0], arrays["train-images-idx3-ubyte"])
        np.testing.assert_array_equal(ds.x[20:, ..., 0], arrays["t10k-images-idx3-ubyte"])
        assert ds.y.tolist() == list(range(10)) * 3
        assert ds.is_test.tolist() == [False] * 20 + [True] * 10


def test_load_fashion_mnist_local(tmp_path, monkeypatch):
    make_mnist_dir(tmp_path / "fashion_mnist")
    monkeypatch.setenv("JHASH_DATA_DIR", str(tmp_path))
    ds = jd.load("fashion_mnist")
    assert ds.name == "fashion_mnist" and len(ds) == 30


def test_mnist_checksums(tmp_path):
    make_mnist_dir(tmp_path / "mnist")
    files = sorted((tmp_path / "mnist").iterdir())
    write_sums(tmp_path, files)  # SHA256SUMS one level above, paths relative to it
    assert len(jd.load("mnist", data_dir=tmp_path)) == 30
    # Same size, different bytes: must be caught by the checksum, not by the parser.
    p = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    write_idx(p, (np.arange(10)[::-1] % 10).astype(np.uint8))
    with pytest.raises(ValueError, match="checksum mismatch.*t10k-labels"):
        jd.load("mnist", data_dir=tmp_path)


def test_mnist_missing_file(tmp_path):
    make_mnist_dir(tmp_path / "mnist")
    (tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte.*data_dir="):
        jd.load_mnist(tmp_path)
    with pytest.raises(FileNotFoundError, match="data_dir"):
        jd.load_mnist(tmp_path / "nowhere")


def test_load_mnist_real(shared_data):
    ds = jd.load("mnist", data_dir=shared_data)
    assert ds.x.shape == (70_000, 28, 28, 1) and ds.x.dtype == np.uint8
    assert int(ds.is_test.sum()) == 10_000 and not ds.is_test[:60_000].any()
    # Known MNIST class counts (train, test).
    assert ds.class_counts(~ds.is_test).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert ds.class_counts(ds.is_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    split = jd.make_split(ds, "mnist", seed=0)
    assert split.sizes() == {"query": 1000, "train": 5000, "database": 69000}


def test_image_tarball(tmp_path, monkeypatch):
    tar = tmp_path / "cifar10-jpeg" / "cifar10-jpeg.tar.gz"
    tar.parent.mkdir()
    pixels = make_image_tarball(tar, per_class=2, prefix="cifar10/")
    ds = jd.load("cifar10", data_dir=tmp_path)
    assert ds.x.shape == (40, 8, 8, 3) and ds.x.dtype == np.uint8 and ds.num_classes == 10
    order = sorted(n for n in pixels if "/train/" in n) + sorted(n for n in pixels if "/test/" in n)
    np.testing.assert_array_equal(ds.x, np.stack([pixels[n] for n in order]))  # PNG: exact pixels
    assert ds.y.tolist() == [jd.CIFAR10_CLASSES.index(n.split("/")[-2]) for n in order]
    assert ds.y[:2].tolist() == [0, 0] and ds.y[18:20].tolist() == [9, 9]  # airplane=0 ... truck=9
    assert ds.is_test.tolist() == [False] * 20 + [True] * 20
    assert list((tmp_path / "cache").glob("*.npz"))

    # The second load comes from the cache, without decoding the tarball.
    def boom(*a, **k):
        raise AssertionError("tarball was decoded again")

    monkeypatch.setattr(sources, "_read_tree", boom)
    again = jd.load("cifar10", data_dir=tmp_path / "cifar10-jpeg")
    assert again.fingerprint == ds.fingerprint


def test_image_tarball_jpeg_and_checksum(tmp_path):
    tar = tmp_path / "cifar10-jpeg" / "cifar10-jpeg.tar.gz"
    tar.parent.mkdir()
    pixels = make_image_tarball(tar, per_class=1, fmt="JPEG")
    write_sums(tmp_path, [tar])
    ds = jd.load_cifar10(tar)
    assert ds.x.shape == (20, 8, 8, 3)
    first = pixels["train/airplane/0000.jpeg"].astype(int)
    assert np.abs(ds.x[0].astype(int) - first).mean() < 60  # lossy, but the same image
    raw = tar.read_bytes()
    tar.write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))
    with pytest.raises(ValueError, match="checksum mismatch"):
        jd.load_cifar10(tmp_path)


def test_image_folder_corrupt_cache_and_tarball(tmp_path):
    tar = tmp_path / "t.tar.gz"
    make_image_tarball(tar, per_class=1, classes=("b", "a"))
    ds = jd.load_image_folder(tar)
    assert ds.name == "t" and ds.num_classes == 2 and ds.y.tolist() == [0, 1, 0, 1]  # sorted names
    for f in (tmp_path / "cache").glob("*.npz"):
        f.write_bytes(f.read_bytes()[:100])
    with pytest.warns(UserWarning, match="cache"):
        assert jd.load_image_folder(tar).fingerprint == ds.fingerprint
    tar.write_bytes(tar.read_bytes()[: tar.stat().st_size // 2])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        jd.load_image_folder(tar)


def test_image_folder_directory(tmp_path):
    from PIL import Image

    for c in ("cat", "dog"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((4, 5), 10 * i, np.uint8)).save(tmp_path / "imgs" / c / f"{i}.png")
    ds = jd.load("image_folder", data_dir=tmp_path / "imgs")
    assert ds.x.shape == (6, 4, 5, 3) and ds.is_test is None and ds.y.tolist() == [0, 0, 0, 1, 1, 1]
    gray = jd.load_image_folder(tmp_path / "imgs", mode="L", use_cache=False)
    assert gray.x.shape == (6, 4, 5, 1) and gray.x[:3, 0, 0, 0].tolist() == [0, 10, 20]
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(tmp_path / "imgs" / "cat" / "odd.png")
    with pytest.raises(ValueError, match="different shapes"):
        jd.load_image_folder(tmp_path / "imgs", use_cache=False)
    with pytest.raises(ValueError, match="not in class_names"):
        jd.load_image_folder(tmp_path / "imgs", class_names=("cat",), use_cache=False)


def test_load_cifar10_real(shared_data, monkeypatch):
    """Decodes the 60,000 JPEGs once (~15 s on 2 cores), then reads the cache (<1 s)."""
    monkeypatch.setenv("JHASH_CACHE", str(USER_CACHE))  # the user's cache, kept between runs
    ds = jd.load("cifar10", data_dir=shared_data)
    assert ds.x.shape == (60_000, 32, 32, 3) and ds.x.dtype == np.uint8
    assert ds.class_counts(~ds.is_test).tolist() == [5000] * 10
    assert ds.class_counts(ds.is_test).tolist() == [1000] * 10
    assert not ds.is_test[:50_000].any() and ds.is_test[50_000:].all()
    assert ds.y[0] == 0 and ds.y[49_999] == 9  # airplane first, truck last
    assert jd.load("cifar10", data_dir=shared_data).fingerprint == ds.fingerprint


def test_npz_source(tmp_path):
    rng = np.random.default_rng(0)
    y = (rng.random((50, 21)) < 0.2).astype(np.uint8)
    np.savez(tmp_path / "nus_wide_21.npz", x=rng.standard_normal((50, 7)).astype(np.float32), y=y)
    ds = jd.load("nus_wide_21", data_dir=tmp_path)
    assert ds.name == "nus_wide_21" and ds.multilabel and ds.num_classes == 21 and ds.is_test is None
    ds2 = jd.load(str(tmp_path / "nus_wide_21.npz"))
    assert ds2.fingerprint == ds.fingerprint
    np.savez(tmp_path / "f.npz", x=np.zeros((4, 2)), y=np.array([0, 1, 2, 1]), is_test=np.array([0, 0, 1, 1], bool))
    ds3 = jd.load("npz", data_dir=tmp_path / "f.npz")
    assert ds3.name == "f" and ds3.num_classes == 3 and ds3.is_test.sum() == 2
    np.savez(tmp_path / "g.npz", x=np.zeros((4, 2)))
    with pytest.raises(ValueError, match="missing array"):
        jd.load_npz(tmp_path / "g.npz")
    with pytest.raises(FileNotFoundError):
        jd.load("nothing_here", data_dir=tmp_path, source="npz")


def test_load_dispatch_errors(tmp_path):
    # any other name goes to TFDS (with data_dir as its data_dir); a name TFDS does not know either:
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'.*cifar10.*digits.*mnist.*TFDS"):
        jd.load("imagenet", data_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown local dataset 'imagenet'"):
        jd.load("imagenet", data_dir=tmp_path, source="local")
    with pytest.raises(ValueError, match="unknown source"):
        jd.load("mnist", source="ftp")
    with pytest.raises(FileNotFoundError, match="data_dir"):
        jd.load("mnist", data_dir=tmp_path, source="local")


def test_tfds_mock_data(tmp_path):
    """tfds.testing.mock_data (tfds 4.9.x) mocks tfds.data_source too: random examples per split."""
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=12):
        ds = jd.load("mnist", source="tfds")
        cifar = jd.load_tfds("cifar10", jhash_name="cifar10")
        auto = jd.load("fashion_mnist", data_dir=tmp_path)  # no local files: auto falls back to TFDS
    assert auto.name == "fashion_mnist" and len(auto) == 24
    assert ds.name == "mnist" and ds.x.shape == (24, 28, 28, 1) and ds.x.dtype == np.uint8
    assert ds.num_classes == 10 and ds.y.dtype == np.int32 and ds.y.max() < 10
    assert ds.is_test.tolist() == [False] * 12 + [True] * 12
    assert cifar.x.shape == (24, 32, 32, 3)


def test_import_is_cheap():
    code = "import sys, jhash.data; print('tensorflow_datasets' in sys.modules, 'tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# ----------------------------------------------------------------------------- protocols


def test_declared_protocols():
    P = jd.PROTOCOLS
    assert set(P) == {"cifar10", "cifar10_54k", "cifar10_50k", "mnist", "fashion_mnist", "digits",
                      "nus_wide_21", "ms_coco", "imagenet100",
                      "lists", "lists:nuswide_21", "lists:coco", "lists:imagenet100", "lists:cifar10"}  # fmt: skip
    # the list protocols take the lists' split; they differ in the literature's mAP cut-off
    assert {k: P[k].map_k for k in P if P[k].given} == {"lists": None, "lists:nuswide_21": 5000, "lists:coco": 5000,
                                                       "lists:imagenet100": 1000, "lists:cifar10": None}
    assert jd.get_protocol("imagelist:/any/dir") is P["lists"]
    sizes = {k: (p.n_query, p.n_train, p.n_database, p.map_k) for k, p in P.items()}
    assert sizes["cifar10"] == (1000, 5000, 59000, None)
    assert sizes["cifar10_54k"] == (1000, 5000, 54000, None)
    assert sizes["cifar10_50k"] == (10000, 50000, 50000, None)
    assert sizes["mnist"] == sizes["fashion_mnist"] == (1000, 5000, 69000, None)
    assert sizes["nus_wide_21"] == (2100, 10500, 195_834 - 2100, 5000)
    assert sizes["ms_coco"] == (5000, 10000, 117_218, 5000) and 117_218 + 5000 == 122_218
    assert sizes["imagenet100"] == (5000, 10000, 128_503, 1000)
    assert jd.get_protocol("cifar10") is P["cifar10"] and P["ms_coco"].map_name == "mAP@5000"
    assert all(p.reference and p.description for p in P.values())
    with pytest.raises(ValueError, match="unknown protocol 'cifar100'.*cifar10_54k"):
        jd.get_protocol("cifar100")


@pytest.mark.parametrize("name", sorted(PROTOCOL_DATA))
def test_protocol_split(name):
    proto = jd.get_protocol(name)
    ds = PROTOCOL_DATA[name]()
    split = jd.make_split(ds, proto, seed=3)
    q, t, db = split.query, split.train, split.database
    assert (len(q), len(t), len(db)) == (proto.n_query, proto.n_train, proto.n_database)
    for a in (q, t, db):
        assert a.dtype == np.int64 and np.all(np.diff(a) > 0) and a[0] >= 0 and a[-1] < len(ds)
    assert not np.intersect1d(q, db).size and not np.intersect1d(q, t).size
    if proto.database == "rest":  # cifar10, mnist, ...: train is drawn from the database
        assert np.isin(t, db).all() and len(q) + len(db) == len(ds)
    elif proto.database == "rest_minus_train":
        assert not np.intersect1d(t, db).size and len(q) + len(t) + len(db) == len(ds)
    else:
        np.testing.assert_array_equal(t, db)
    if proto.query_from == "test":
        assert ds.is_test[q].all()
    if proto.query_per_class:
        assert np.bincount(ds.y[q], minlength=ds.num_classes).tolist() == [proto.query_per_class] * ds.num_classes
    if proto.train_per_class:
        assert np.bincount(ds.y[t], minlength=ds.num_classes).tolist() == [proto.train_per_class] * ds.num_classes
    assert split.protocol == name and split.seed == 3 and split.fingerprint == ds.fingerprint


def test_cifar10_50k_is_the_official_split():
    ds = PROTOCOL_DATA["cifar10"]()
    s = jd.make_split(ds, "cifar10_50k", seed=0)
    np.testing.assert_array_equal(s.query, np.arange(50_000, 60_000))
    np.testing.assert_array_equal(s.train, np.arange(50_000))


def test_split_determinism():
    ds = jd.load_digits()
    a, b = jd.make_split(ds, "digits", 7), jd.make_split(ds, "digits", 7)
    c = jd.make_split(ds, "digits", 8)
    for k in ("query", "train", "database"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
    assert a == b and a.checksum == b.checksum and a != c and not np.array_equal(a.query, c.query)
    # The same seed gives the same queries under cifar10 and cifar10_54k.
    cf = PROTOCOL_DATA["cifar10"]()
    np.testing.assert_array_equal(jd.make_split(cf, "cifar10", 1).query, jd.make_split(cf, "cifar10_54k", 1).query)


def test_split_errors():
    digits = jd.load_digits()
    with pytest.raises(ValueError, match="no is_test"):
        jd.make_split(digits, "mnist", 0)
    small = synthetic("mnist", 50, 100, 10)
    with pytest.raises(ValueError, match="class 0.*only"):
        jd.make_split(small, "mnist", 0)
    nine = synthetic("mnist", 600, 100, 9)
    with pytest.raises(ValueError, match="10 classes.*9 classes"):
        jd.make_split(nine, "mnist", 0)
    right_shape_wrong_size = synthetic("mnist", 5900, 1000, 10)
    with pytest.raises(ValueError, match="expects a database of 69000"):
        jd.make_split(right_shape_wrong_size, "mnist", 0)
    tiny_ml = multilabel_dataset("ms_coco", 4000, 80)
    with pytest.raises(ValueError, match="needs 5000 query items.*only 4000"):
        jd.make_split(tiny_ml, "ms_coco", 0)
    with pytest.raises(ValueError, match="seed"):
        jd.make_split(digits, "digits", -1)
    with pytest.raises(ValueError, match="multiple"):
        dataclasses.replace(jd.get_protocol("digits"), n_query=101)
    with pytest.raises(ValueError, match="database"):
        dataclasses.replace(jd.get_protocol("digits"), database="all")
    # A scaled-down variant works through dataclasses.replace.
    var = dataclasses.replace(jd.get_protocol("ms_coco"), n_query=50, n_train=100, n_database=None)
    s = jd.make_split(tiny_ml, var, 0)
    assert s.sizes() == {"query": 50, "train": 100, "database": 3950}


def test_split_save_load(tmp_path):
    ds = jd.load_digits()
    split = jd.make_split(ds, "digits", 0)
    path = tmp_path / "split.npz"
    jd.save_split(split, path)
    back = jd.load_split(path, dataset=ds)
    assert back == split and back.checksum == split.checksum
    for k in ("query", "train", "database"):
        np.testing.assert_array_equal(getattr(back, k), getattr(split, k))
    x, y = jd.subset(ds, back.query)
    assert x.shape == (100, 64) and y.shape == (100,)

    other = jd.Dataset("digits", ds.x[::-1], ds.y[::-1], 10)
    with pytest.raises(ValueError, match="fingerprint"):
        jd.load_split(path, dataset=other)


def test_split_file_corruption(tmp_path):
    split = jd.make_split(jd.load_digits(), "digits", 0)
    path = tmp_path / "s.npz"
    jd.save_split(split, path)
    raw = path.read_bytes()

    (tmp_path / "trunc.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        jd.load_split(tmp_path / "trunc.npz")

    flipped = bytearray(raw)
    flipped[300] ^= 0xFF  # inside the first array's data: the zip CRC or the checksum catches it
    (tmp_path / "flip.npz").write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="corrupt"):
        jd.load_split(tmp_path / "flip.npz")

    # Edited indices, re-saved with the old checksum: only the checksum can tell.
    with np.load(path) as z:
        arrays = dict(z)
    arrays["query"] = arrays["query"].copy()
    arrays["query"][0] += 1 if arrays["query"][1] - arrays["query"][0] > 1 else -1
    np.savez(tmp_path / "edit.npz", **arrays)
    with pytest.raises(ValueError, match="checksum mismatch"):
        jd.load_split(tmp_path / "edit.npz")
    with pytest.raises(FileNotFoundError):
        jd.load_split(tmp_path / "missing.npz")


def test_subset_errors():
    ds = jd.load_digits()
    with pytest.raises(ValueError, match="out of range"):
        jd.subset(ds, np.array([0, 1797]))
    with pytest.raises(ValueError, match="1-D integer"):
        jd.subset(ds, np.array([0.5]))


# ----------------------------------------------------------------------------- pipeline


def test_batch_indices_epochs():
    n, bs, seed = 10, 3, 5
    spe = jd.steps_per_epoch(n, bs)
    assert spe == 3
    for epoch in range(3):
        batches = [jd.batch_indices(n, bs, seed, epoch * spe + i) for i in range(spe)]
        flat = np.concatenate(batches)
        assert len(set(flat.tolist())) == 9  # no repeats within an epoch, remainder dropped
        np.testing.assert_array_equal(flat, np.random.default_rng([seed, epoch]).permutation(n)[:9])
        assert all(b.shape == (bs,) and b.dtype == np.int64 for b in batches)
    np.testing.assert_array_equal(jd.batch_indices(n, bs, seed, 4), jd.batch_indices(n, bs, seed, 4))
    assert not np.array_equal(jd.batch_indices(n, bs, 5, 0), jd.batch_indices(n, bs, 6, 0))
    assert not np.array_equal(jd.batch_indices(n, bs, 5, 0), jd.batch_indices(n, bs, 5, spe))


def test_iterate_batches_resume():
    x = np.arange(23 * 2).reshape(23, 2)
    y = np.arange(23) % 4
    full = list(itertools.islice(jd.iterate_batches(x, y, 4, seed=1), 17))
    for s in (0, 1, 5, 10, 16):
        tail = list(jd.iterate_batches(x, y, 4, seed=1, start_step=s, num_steps=17 - s))
        assert len(tail) == 17 - s
        for a, b in zip(full[s:], tail):
            for k in ("x", "y", "index"):
                np.testing.assert_array_equal(a[k], b[k])
    for b in full:
        np.testing.assert_array_equal(b["x"], x[b["index"]])
        np.testing.assert_array_equal(b["y"], y[b["index"]])
    assert "y" not in next(jd.iterate_batches(x, None, 4, seed=1))
    assert list(jd.iterate_batches(x, y, 4, seed=1, num_steps=0)) == []


@pytest.mark.parametrize(
    "args, match",
    [((10, 11, 0, 0), "larger"), ((10, 0, 0, 0), "batch_size"), ((10, -2, 0, 0), "batch_size"),
     ((10, 2, -1, 0), "seed"), ((10, 2, 0, -1), "step"), ((0, 1, 0, 0), "n"), ((10, 2.0, 0, 0), "batch_size")],
)  # fmt: skip
def test_batch_indices_errors(args, match):
    with pytest.raises(ValueError, match=match):
        jd.batch_indices(*args)


def test_iterate_batches_errors():
    with pytest.raises(ValueError, match="x has 5 items but y has 4"):
        next(jd.iterate_batches(np.zeros(5), np.zeros(4), 2, 0))
    with pytest.raises(ValueError, match="larger"):
        next(jd.iterate_batches(np.zeros(5), np.zeros(5), 6, 0))


def test_to_float():
    u = np.array([0, 51, 255], np.uint8)
    np.testing.assert_allclose(jd.to_float(u), [0.0, 0.2, 1.0])
    assert jd.to_float(u).dtype == np.float32
    f = np.array([0.5, 2.0], np.float64)
    assert jd.to_float(f).dtype == np.float32 and jd.to_float(f).tolist() == [0.5, 2.0]
    import jax.numpy as jnp

    assert jd.to_float(jnp.asarray(u)).dtype == jnp.float32
    with pytest.raises(ValueError, match="dtype"):
        jd.to_float(np.array([1, 2], np.int32))


def test_mnist_files_under_another_name_are_refused(shared_data):
    """MNIST's IDX files loaded as fashion_mnist (or other full-size files loaded as mnist) are a clear error."""
    with pytest.raises(ValueError, match=r"fashion_mnist: the IDX files found in .*mnist are MNIST's"):
        jd.load("fashion_mnist", data_dir=shared_data / "mnist")


def test_full_size_files_that_are_not_mnist_are_refused_as_mnist(tmp_path):
    make_mnist_dir(tmp_path / "mnist", n_train=60_000, n_test=10_000, gz=False)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.* are not MNIST's files.*fashion_mnist"):
        jd.load("mnist", data_dir=tmp_path)
    assert len(jd.load("fashion_mnist", data_dir=tmp_path / "mnist")) == 70_000  # any other name takes them
