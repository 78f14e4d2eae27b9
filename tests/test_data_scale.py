"""Data at scale: images of any size read on demand, the literature's list files, external split files,
any TFDS dataset, and the grain pipeline's pure (seed, step) batches."""
import json
import pathlib

import numpy as np
import pytest
from PIL import Image

from jhash import data as jd
from jhash.config import apply_overrides, load_config
from jhash.data.images import ArrayImages, FileImages, ImageArray, ImageReadError
from jhash.train import train

from conftest import random_code_map

REPO = pathlib.Path(__file__).resolve().parents[1]

SIZES = [(40, 30), (48, 48), (64, 40), (30, 52)]  # (width, height): four different sizes
COLORS = np.array([[230, 30, 30], [30, 230, 30], [30, 30, 230], [230, 230, 30]])


def _image(labels, rng, size, mode):
    """A noisy image whose quadrant k is painted in colour k when it carries label k (learnable, multi-label)."""
    w, h = size
    img = rng.integers(0, 60, (h, w, 3)).astype(np.int64)
    for k in np.flatnonzero(labels):
        top, left = (k // 2) * h // 2, (k % 2) * w // 2
        img[top:top + h // 2, left:left + w // 2] += COLORS[k]
    im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    return im.convert(mode)


def make_image_lists(root: pathlib.Path, n: int = 320, seed: int = 0):
    """``root/images/*.jpg`` (4 sizes; grayscale, CMYK and RGB JPEGs) and ``root/lists/{test,train,database}.txt``
    with multi-hot labels over 4 concepts: 40 queries, the other 280 the database, 160 of them training."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "lists").mkdir()
    labels = rng.random((n, 4)) < 0.35
    labels[~labels.any(axis=1), rng.integers(0, 4)] = True
    lines = []
    for i in range(n):
        mode = "L" if i % 7 == 3 else "CMYK" if i % 11 == 5 else "RGB"
        path = f"images/{i:04d}.jpg"
        _image(labels[i], rng, SIZES[i % len(SIZES)], mode).save(root / path, quality=90)
        lines.append(f"{path} {' '.join(str(int(b)) for b in labels[i])}\n")
    order = rng.permutation(n)
    query, database = order[:40], order[40:]
    train = database[rng.permutation(len(database))[:160]]
    for name, part in (("test", query), ("database", database), ("train", train)):
        (root / "lists" / f"{name}.txt").write_text("".join(lines[i] for i in part))
    return {"query": query, "database": database, "train": train, "labels": labels.astype(np.uint8)}


@pytest.fixture(scope="module")
def image_lists(tmp_path_factory):
    root = tmp_path_factory.mktemp("lists")
    return root, make_image_lists(root)


def list_config(root, *overrides):
    c = load_config("method:dpsh:dataset=mnist")  # the small CNN
    return apply_overrides(c, [f"dataset=imagelist:{root / 'lists'}", f"data_dir={root}", "image_size=32",
                               "model.channels=(16,32)", "model.dense=64", "batch_size=32",
                               "num_epochs=15", "bits=16", "progress=false", "num_devices=1", "log_every=25",
                               "checkpoint_every=25", *overrides])


def test_image_list_dataset_keeps_the_lists_split(image_lists):
    root, made = image_lists
    ds = jd.load(f"imagelist:{root / 'lists'}", data_dir=root, image_size=32)
    assert isinstance(ds.x, ImageArray) and ds.x.shape == (320, 32, 32, 3) and ds.multilabel
    assert ds.num_classes == 4 and ds.is_test.sum() == 40
    # items: test.txt, then database.txt in its order, then training items not in the database (none here)
    expected = np.concatenate([made["query"], made["database"]])
    assert len(ds) == len(expected)
    np.testing.assert_array_equal(ds.y, made["labels"][expected])
    split = jd.make_split(ds, jd.get_protocol(ds.name), seed=0)
    np.testing.assert_array_equal(split.query, np.arange(40))
    np.testing.assert_array_equal(split.database, np.arange(40, 320))  # the list's order: the ranking's tie order
    position = {int(item): p for p, item in enumerate(expected)}
    np.testing.assert_array_equal(split.train, [position[int(i)] for i in made["train"]])  # unsorted, as listed
    # every view is 32x32 RGB whatever the file's size or mode
    batch = ds.x[np.array([0, 3, 5, 7, 200])]
    assert batch.shape == (5, 32, 32, 3) and batch.dtype == np.uint8


@pytest.mark.slow
def test_image_list_trains_and_evaluates_end_to_end(image_lists, tmp_path):
    root, made = image_lists
    metrics = train(list_config(root, "data.workers=2"), tmp_path)
    assert metrics["map@all"] > random_code_map(tmp_path) + 0.1, metrics
    split = jd.load_split(tmp_path / "split.npz")
    assert split.protocol == "lists" and split.sizes() == {"query": 40, "train": 160, "database": 280}
    codes = np.load(tmp_path / "codes.npz")
    np.testing.assert_array_equal(codes["query_index"], np.arange(40))
    np.testing.assert_array_equal(codes["database_labels"], made["labels"][made["database"]])
    # in-process reading (no workers) gives the same codes: the batches are a pure function of (seed, step)
    again = tmp_path / "again"
    train(list_config(root, "data.workers=0"), again)
    for key in ("query_codes", "database_codes"):
        np.testing.assert_array_equal(codes[key], np.load(again / "codes.npz")[key], err_msg=key)


def test_lists_config_runs_on_a_list_tree(image_lists, tmp_path):
    """experiments/configs/lists.py (the command README gives for NUS-WIDE / COCO / ImageNet-100), small CNN."""
    root, _ = image_lists
    c = load_config(str(REPO / "experiments/configs/lists.py") +
                    f":method=dpsh,lists=coco,dir={root / 'lists'},images={root},model=cnn,image_size=32,epochs=2")
    assert c.protocol == "lists:coco" and jd.get_protocol(c.protocol).map_k == 5000
    c = apply_overrides(c, ["progress=false", "num_devices=1", "data.workers=0"])
    metrics = train(c, tmp_path)
    assert "map@5000" in metrics  # the literature's cut-off (on this 280-item database: all of it, with a warning)
    with pytest.raises(ValueError, match="needs dir=PATH"):
        load_config(str(REPO / "experiments/configs/lists.py"))


def test_image_list_resume_mid_epoch_is_exact(image_lists, tmp_path):
    root, _ = image_lists
    full = tmp_path / "full"
    train(list_config(root, "num_epochs=3", "data.workers=0"), full)

    def crash(step, _):
        if step == 10:
            raise KeyboardInterrupt("simulated crash")

    part = tmp_path / "part"
    with pytest.raises(KeyboardInterrupt):
        train(list_config(root, "num_epochs=3", "data.workers=0", "log_every=5", "checkpoint_every=7"), part,
              on_step=crash)
    train(list_config(root, "num_epochs=3", "data.workers=0", "log_every=5", "checkpoint_every=7"), part)
    for key in ("query_codes", "database_codes"):
        np.testing.assert_array_equal(np.load(full / "codes.npz")[key], np.load(part / "codes.npz")[key])


def _copy_lists(root, dest):
    dest.mkdir()
    for f in ("test.txt", "train.txt", "database.txt"):
        (dest / f).write_text((root / "lists" / f).read_text())
    return dest


def test_missing_image_and_malformed_line_name_the_file_and_line(image_lists, tmp_path):
    root, _ = image_lists
    bad = _copy_lists(root, tmp_path / "missing")
    lines = (bad / "train.txt").read_text().splitlines(keepends=True)
    lines[4] = "images/nope.jpg 1 0 0 0\n"
    (bad / "train.txt").write_text("".join(lines))
    c = apply_overrides(list_config(root), [f"dataset=imagelist:{bad}"])
    with pytest.raises(ImageReadError, match=r"nope\.jpg \(listed at .*missing/train\.txt:5\) does not exist"):
        train(c, tmp_path / "run1")
    # without the up-front check, the step that reads it fails with the same file and line
    with pytest.raises(ImageReadError, match=r"nope\.jpg.*train\.txt:5"):
        train(apply_overrides(c, ["data.check_files=false", "data.workers=0"]), tmp_path / "run2")

    for text, match in (("images/0001.jpg 1 0 x 0\n", r"database\.txt:3: malformed line: the labels"),
                        ("images/0001.jpg\n", r"database\.txt:3: malformed line"),
                        ("images/0001.jpg 1 0 0\n", r"database\.txt:3: 3 labels, but earlier lines have 4")):
        broken = _copy_lists(root, tmp_path / f"broken{len(list(tmp_path.iterdir()))}")
        lines = (broken / "database.txt").read_text().splitlines(keepends=True)
        lines[2] = text
        (broken / "database.txt").write_text("".join(lines))
        with pytest.raises(ValueError, match=match):
            jd.load(f"imagelist:{broken}", data_dir=root, image_size=32)
    with pytest.raises(ValueError, match="set config.image_size"):
        jd.load(f"imagelist:{root / 'lists'}", data_dir=root)


def test_split_file_gives_codes_for_exactly_those_items(tmp_path):
    query = np.array([1700, 5, 900, 33])  # any order: kept
    train_items = np.arange(100, 400)
    database = np.array([1500, 10, 11, 12, 1000, 400, 401, 402, *range(100, 200)])
    np.savez(tmp_path / "mine.npz", query=query, train=train_items, database=database)
    c = load_config("method:dpsh")
    c = apply_overrides(c, [f"split_file={tmp_path / 'mine.npz'}", "num_epochs=5", "progress=false",
                            "num_devices=1"])
    train(c, tmp_path / "run")
    codes = np.load(tmp_path / "run" / "codes.npz")
    np.testing.assert_array_equal(codes["query_index"], query)
    np.testing.assert_array_equal(codes["database_index"], database)
    assert codes["database_codes"].shape == (len(database), 4)
    saved = jd.load_split(tmp_path / "run" / "split.npz")
    assert saved.protocol == "file:mine.npz"
    np.testing.assert_array_equal(saved.train, train_items)
    # checked against the dataset, with a clear error
    for arrays, match in ((dict(query=[0, 1797], train=[2], database=[3]), r"outside \[0, 1797\)"),
                          (dict(query=[0, 0], train=[2], database=[3]), "twice"),
                          (dict(query=[0], train=[], database=[3]), "'train' is empty"),
                          (dict(query=[0], database=[3]), "lacks the array")):
        np.savez(tmp_path / "bad.npz", **{k: np.asarray(v, np.int64) for k, v in arrays.items()})
        with pytest.raises(ValueError, match=match):
            jd.split_from_file(tmp_path / "bad.npz", jd.load("digits"))


def test_a_foreign_split_in_a_fresh_work_dir_is_refused(tmp_path):
    ds = jd.load("digits")
    other = jd.make_split(ds, "digits", seed=5)
    tmp_path.mkdir(exist_ok=True)
    jd.save_split(other, tmp_path / "split.npz")
    c = apply_overrides(load_config("method:dpsh"), ["num_epochs=1", "progress=false", "num_devices=1"])
    with pytest.raises(ValueError, match="holds another split.*split_file"):
        train(c, tmp_path)
    assert jd.load_split(tmp_path / "split.npz") == other  # not replaced


def test_image_array_views_against_pil(tmp_path):
    """The evaluation view is PIL's bilinear resize of the shorter side then the central crop; crops are
    seeded; a grayscale or CMYK file becomes RGB."""
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (60, 90, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    Image.fromarray(arr).convert("CMYK").save(tmp_path / "b.jpg")
    Image.fromarray(arr[..., 0]).save(tmp_path / "c.png")
    x = ImageArray(FileImages(tmp_path, ["a.png", "b.jpg", "c.png"]), size=32, resize=40)
    ref = np.asarray(Image.fromarray(arr).resize((60, 40), Image.BILINEAR))[4:36, 14:46]
    np.testing.assert_array_equal(x[0], ref)
    assert x[1].shape == x[2].shape == (32, 32, 3)
    assert (x[2][..., 0] == x[2][..., 1]).all()
    for crop in ("random", "random_resized"):
        a = x.train_item(0, np.random.default_rng(3), crop)
        b = x.train_item(0, np.random.default_rng(3), crop)
        assert a.shape == (32, 32, 3) and (a == b).all()
    with pytest.raises(TypeError, match="read on demand"):
        np.asarray(x)
    # an in-memory array shown at another size
    small = ImageArray(ArrayImages(arr[None]), size=60, resize=60)
    np.testing.assert_array_equal(small[0], arr[:, 15:75])


def test_image_folder_of_varying_sizes(tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for k, cls in enumerate(("cat", "dog")):
            (tmp_path / "tree" / split / cls).mkdir(parents=True)
            for i in range(3):
                w, h = SIZES[(i + k) % len(SIZES)]
                Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
                    tmp_path / "tree" / split / cls / f"{i}.png")
    with pytest.raises(ValueError, match="different shapes.*config.image_size"):
        jd.load("image_folder", data_dir=tmp_path / "tree")
    ds = jd.load("image_folder", data_dir=tmp_path / "tree", image_size=24)
    assert ds.x.shape == (12, 24, 24, 3) and ds.is_test.tolist() == [False] * 6 + [True] * 6
    assert ds.y.tolist() == [0, 0, 0, 1, 1, 1] * 2


def test_stream_is_the_schedule_in_order():
    x = np.arange(200 * 3, dtype=np.uint8).reshape(200, 3)
    reader = jd.BatchReader(x, np.arange(200) % 7, np.arange(200),
                            lambda s: jd.batch_indices(200, 16, 3, s))
    got = list(jd.stream(reader, 5, 30, workers=0))
    assert len(got) == 25
    for s, b in zip(range(5, 30), got):
        idx = jd.batch_indices(200, 16, 3, s)
        np.testing.assert_array_equal(b["x"], x[idx].astype(np.float32) / 255)
        np.testing.assert_array_equal(b["y"], idx % 7)


# ----------------------------------------------------------------------------- TFDS


def test_any_tfds_dataset_by_name(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=10):
        c100 = jd.load("tfds:cifar100", data_dir=tmp_path)
        bare = jd.load("cifar100", data_dir=tmp_path)  # a name jhash does not know: TFDS
        voc = jd.load("tfds:voc", image_size=24)
        objects = jd.load("tfds:voc", image_size=24, label_key="objects")
        grey = jd.load("cifar100", image_size=16)
        with pytest.raises(ValueError, match="no feature 'nope'"):
            jd.load("tfds:cifar100", label_key="nope")
        with pytest.raises(ValueError, match="varying size; set config.image_size"):
            jd.load("tfds:voc")
        voc_items = voc.x[np.arange(3)]
    assert c100.name == "tfds:cifar100" and bare.name == "cifar100"
    assert c100.x.shape == (20, 32, 32, 3) and c100.num_classes == 100 and c100.y.dtype == np.int32
    assert c100.is_test.tolist() == [False] * 10 + [True] * 10
    assert grey.x.shape == (20, 16, 16, 3)
    # VOC: images of varying size read on demand; 'labels' (a Sequence of ClassLabel) as multi-hot
    assert isinstance(voc.x, ImageArray) and voc.multilabel and voc.y.shape == (20, 20) and voc.num_classes == 20
    assert objects.y.shape == (20, 20) and objects.y.dtype == np.uint8
    assert voc_items.shape == (3, 24, 24, 3)
    assert voc.is_test.sum() == 10


def test_tfds_dataset_trains_with_a_test_query_protocol(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    c = load_config("method:dpsh:dataset=mnist")
    c = apply_overrides(c, ["dataset=tfds:cifar100", "protocol=custom:n_query=8,n_train=32,query_from=test",
                            "model.channels=(8,)", "model.dense=32", "batch_size=16",
                            "num_epochs=2", "progress=false", "num_devices=1", "data.workers=0"])
    with tfds.testing.mock_data(num_examples=20):
        metrics = train(c, tmp_path)
    assert 0 <= metrics["map@all"] <= 1
    split = jd.load_split(tmp_path / "split.npz")
    assert (split.query >= 20).all()  # the test split's items
    assert json.loads((tmp_path / "config.json").read_text())["dataset"] == "tfds:cifar100"


def test_a_failed_tfds_download_leaves_no_temporary_folders(tmp_path, monkeypatch):
    import tempfile

    from jhash.data.sources import DataUnavailableError

    pytest.importorskip("tensorflow_datasets")
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    with pytest.raises(DataUnavailableError, match="TFDS fallback failed"):
        jd.load("fashion_mnist", data_dir=tmp_path / "data")  # offline: no local files, no download
    assert list((tmp_path / "tmp").iterdir()) == []
