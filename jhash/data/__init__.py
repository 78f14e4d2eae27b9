"""Data: sources (embedded digits, local files, the literature's split lists, TFDS), retrieval protocols,
the streaming input pipeline (grain).

    ds = jhash.data.load('cifar10', data_dir='../shared/data')
    split = jhash.data.make_split(ds, jhash.data.get_protocol('cifar10'), seed=0)
    for batch in jhash.data.iterate_batches(*jhash.data.subset(ds, split.train), 64, seed=0):
        ...
"""

from jhash.data.dataset import Dataset
from jhash.data.images import ImageArray
from jhash.data.lists import check_image_files, load_image_list, split_from_file
from jhash.data.pipeline import BatchReader, batch_indices, iterate_batches, num_workers, steps_per_epoch, stream, to_float
from jhash.data.protocols import (
    PROTOCOLS,
    Protocol,
    Split,
    get_protocol,
    parse_protocol,
    load_split,
    make_split,
    save_split,
    subset,
)
from jhash.data.sources import (
    CIFAR10_CLASSES,
    DATASETS,
    cache_dir,
    load,
    load_cifar10,
    load_digits,
    load_image_folder,
    load_mnist,
    load_npz,
    load_tfds,
    read_idx,
    verify_checksums,
)

__all__ = [
    "BatchReader",
    "ImageArray",
    "check_image_files",
    "load_image_list",
    "num_workers",
    "split_from_file",
    "stream",
    "CIFAR10_CLASSES",
    "DATASETS",
    "PROTOCOLS",
    "Dataset",
    "Protocol",
    "Split",
    "batch_indices",
    "cache_dir",
    "get_protocol",
    "iterate_batches",
    "load",
    "load_cifar10",
    "load_digits",
    "load_image_folder",
    "load_mnist",
    "load_npz",
    "load_split",
    "load_tfds",
    "parse_protocol",
    "make_split",
    "read_idx",
    "save_split",
    "steps_per_epoch",
    "subset",
    "to_float",
    "verify_checksums",
]
