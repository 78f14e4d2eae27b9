"""An online method as a jhash run (``jhash train --config method:online_mihash`` or ``method:dihn``).

Classes arrive in stages (:mod:`jhash.online.stages`): ``config.stages.first`` classes, then
``config.stages.per_stage`` at a time, in class-id order. ``train(config, workdir)`` holds the work
dir's lock, loads the dataset and its split as every run does (:func:`jhash.experiment.load_experiment_data`,
``split.npz``), runs the method's stages on the split's training items (the database of a stage:
the training items of the classes seen so far) and query items, and writes

  stages.json     one entry per stage: its classes, database size, mAP@all of the seen classes'
                  queries and the method's own figures (re-encodings for online MIHash, codes kept
                  for DIHN; with ``config.retrain_stages`` the from-scratch baseline's mAP)
  metrics.json, codes.npz, curves.npz   the final stage (every class seen) scored by the evaluator
                  (:func:`jhash.evaluate.write_results`): its queries (all the split's queries) against its
                  database (the training items, in stage order; ``database_index`` gives their positions)
  timing.json     ``train_s`` (all the stages), ``eval_s``; config.json, manifest.json as for every run

The codes of an online run are the product of its stream (a database item keeps the code of the
mapping it was encoded with), so ``jhash eval`` scores the saved final codes again rather than
re-encoding. There is no checkpoint: a call on a work dir that holds a finished run runs the stages again.
"""
from __future__ import annotations

import pathlib
import time

import numpy as np

from jhash import data as jdata
from jhash import distributed
from jhash import evaluate as jeval
from jhash import io as jio
from jhash.codes import unpack
from jhash.experiment import check_int, run_once
from jhash.online import dihn, mihash
from jhash.online.settings import NAMES
from jhash.online.stages import StageData, class_stages

__all__ = ["validate_config", "stage_data", "train", "evaluate"]

_MODULES = {"online_mihash": mihash, "dihn": dihn}


def validate_config(config) -> None:
    """Clear errors for an online run's config: method, bits, stages, eval fields, no validation items."""
    if config.method not in NAMES:
        raise ValueError(f"config.method must be one of {', '.join(NAMES)}, got {config.method!r}")
    for name in ("bits", "stages.first", "stages.per_stage", "eval.batch_size"):
        check_int(config, name, 1)
    check_int(config, "eval.radius", 0)
    if config.get("validation", 0):
        raise ValueError("config.validation is not used by the online methods (their stages hold out no training "
                         "items); leave it 0")
    if not isinstance(config.get("retrain_stages", False), bool):
        raise ValueError(f"config.retrain_stages must be true or false, got {config.retrain_stages!r}")
    if config.eval.radius > config.bits:
        raise ValueError(f"config.eval.radius must be at most config.bits ({config.bits}), got {config.eval.radius}")


def stage_data(config, data) -> StageData:
    """The stages of a run's data (:class:`jhash.experiment.ExperimentData`): its training and query items,
    model-ready, and its classes in stages (single-label datasets only)."""
    y = np.asarray(data.dataset.y)
    if y.ndim != 1:
        raise ValueError(f"dataset {config.dataset!r} is multi-label; classes arriving in stages need class ids (n,)")
    return StageData(jdata.to_float(data.dataset.x[data.train_index]), y[data.train_index],
                     jdata.to_float(data.dataset.x[data.split.query]), y[data.split.query],
                     class_stages(np.arange(data.dataset.num_classes), first=config.stages.first,
                                  per_stage=config.stages.per_stage))


def train(config, workdir) -> dict:
    """Runs the stages of ``config.method`` on the run's split and scores the final stage (module docstring)."""
    validate_config(config)

    def run_and_score(data):
        started = time.perf_counter()
        stages = stage_data(config, data)
        runs = _MODULES[config.method].run_stages(config, stages, retrain=config.get("retrain_stages", False),
                                                  keep_codes=True)
        train_s = time.perf_counter() - started
        last = len(runs) - 1
        q, db = stages.queries(last), stages.database(last)
        if distributed.is_primary():
            jio.write_json(pathlib.Path(workdir) / "stages.json", [_figures(r) for r in runs])
        timing = {"train_s": train_s, "train_s_this_call": train_s, "train_s_complete": True}
        started = time.perf_counter()
        results = jeval.write_results(config, workdir, runs[last]["query_codes"], runs[last]["database_codes"],
                                      stages.y_query[q], stages.y_train[db], query_index=data.split.query[q],
                                      database_index=data.train_index[db], timing=timing)
        timing["eval_s"] = time.perf_counter() - started
        return results, timing, len(runs)

    return run_once(config, workdir, run_and_score)


def evaluate(config, workdir) -> dict:
    """Scores the run's saved final-stage codes again (``jhash eval``; see the module docstring)."""
    workdir = pathlib.Path(workdir)
    path = workdir / "codes.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {workdir} a finished online run (made by `jhash train`)?")
    with distributed.primary_only(jio.workdir_lock(workdir, create=False)):
        with np.load(path) as z:
            saved = {k: z[k] for k in z.files}
        bits = int(saved["bits"])
        return jeval.write_results(config, workdir, np.asarray(unpack(saved["query_codes"], bits)),
                                   np.asarray(unpack(saved["database_codes"], bits)), saved["query_labels"],
                                   saved["database_labels"], query_index=saved["query_index"],
                                   database_index=saved["database_index"])


def _figures(run: dict) -> dict:
    """A stage's numbers (its code arrays left out)."""
    return {k: v for k, v in run.items() if k not in ("codes", "query_codes", "database_codes")}
