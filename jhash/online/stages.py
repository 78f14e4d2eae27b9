"""Classes arriving in stages: the data of a class-incremental retrieval experiment and its evaluation.

A protocol's split (``jhash.data.make_split``) gives query and training items. The classes
arrive in stages: stage 0 brings ``first`` classes, every later stage ``per_stage`` more
(in class-id order, or the order given). At stage s the *seen* classes are those of stages
0..s; the retrieval database is the training items of the seen classes (as in the online
hashing benchmark of Cakir et al., whose hash table holds the training stream, and in DIHN,
whose database is the set the codes are learned for), and the queries are the protocol's
query items of the seen classes. mAP is over the whole database of the stage (mAP@all).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from jhash import data as jdata
from jhash import metrics as jmetrics

__all__ = ["StageData", "class_stages", "load_stage_data", "stage_map"]


def class_stages(classes, *, first: int, per_stage: int) -> list[np.ndarray]:
    """Splits ``classes`` (in arrival order) into stages: ``first`` classes, then ``per_stage`` at a time."""
    classes = np.asarray(classes)
    if classes.ndim != 1 or classes.size == 0 or len(np.unique(classes)) != classes.size:
        raise ValueError(f"classes must be a non-empty 1-D array of distinct class ids, got {classes!r}")
    for name, v in (("first", first), ("per_stage", per_stage)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if first > classes.size:
        raise ValueError(f"first={first} is more than the {classes.size} classes")
    return [classes[:first]] + [classes[s:s + per_stage] for s in range(first, classes.size, per_stage)]


@dataclasses.dataclass(frozen=True)
class StageData:
    """Training items (inputs, class ids), query items, and the classes of each stage."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_query: np.ndarray
    y_query: np.ndarray
    stages: list

    def seen(self, stage: int) -> np.ndarray:
        """The classes seen by the end of ``stage``."""
        if not 0 <= stage < len(self.stages):
            raise ValueError(f"stage must be in [0, {len(self.stages)}), got {stage}")
        return np.concatenate(self.stages[:stage + 1])

    def new_train(self, stage: int) -> np.ndarray:
        """Positions (in ``x_train``) of the training items of the classes that arrive at ``stage``."""
        return np.flatnonzero(np.isin(self.y_train, self.stages[stage]))

    def database(self, stage: int) -> np.ndarray:
        """Positions of the database of ``stage``: the training items of stage 0's classes, then stage 1's, ...

        Items of earlier stages keep their positions, so database codes of stage s are a prefix of those of s + 1.
        """
        return np.concatenate([self.new_train(s) for s in range(stage + 1)])

    def queries(self, stage: int) -> np.ndarray:
        """Positions (in ``x_query``) of the queries of the seen classes."""
        return np.flatnonzero(np.isin(self.y_query, self.seen(stage)))


def load_stage_data(dataset: str, *, data_dir: str = "", protocol: str = "", split_seed: int = 0,
                    first: int = 5, per_stage: int = 1, class_order=None) -> StageData:
    """Loads ``dataset``, splits it by its protocol and arranges its classes in stages.

    Inputs are model-ready float32 (``jhash.data.to_float``). Single-label datasets only
    (a class-incremental setting needs each item to belong to one class).
    """
    ds = jdata.load(dataset, data_dir=data_dir or None)
    if np.ndim(ds.y) != 1:
        raise ValueError(f"dataset {dataset!r} is multi-label; classes arriving in stages need class ids (n,)")
    split = jdata.make_split(ds, jdata.get_protocol(protocol or dataset), seed=split_seed)
    order = np.arange(ds.num_classes) if class_order is None else np.asarray(class_order)
    return StageData(jdata.to_float(ds.x[split.train]), np.asarray(ds.y[split.train]),
                     jdata.to_float(ds.x[split.query]), np.asarray(ds.y[split.query]),
                     class_stages(order, first=first, per_stage=per_stage))


def stage_map(query_codes, db_codes, query_labels, db_labels) -> float:
    """mAP@all of a stage (``jhash.metrics.mean_average_precision``: Hamming ranking, ties by database index)."""
    return jmetrics.mean_average_precision(np.asarray(query_codes), np.asarray(db_codes),
                                           np.asarray(query_labels), np.asarray(db_labels))
