"""Sweeps: a grid of runs (methods x code lengths x seeds x any config field), resumable, and their aggregation.

  jhash sweep --config 'experiments/configs/{method}.py:dataset=mnist,cpu=true' \\
      --grid method=dpsh,dch --grid bits=16,32 --grid seed=0,1,2 --workdir runs/sweep [--config.FIELD=VALUE ...]
  jhash aggregate runs/sweep          # results.md, results.csv and plots/*.png in the sweep folder

Any method kind runs in a sweep (:func:`jhash.run.train`: deep, shallow and online methods,
e.g. ``--config 'method:{method}:dataset=digits' --grid method=dpsh,itq,sdh``), into one table.
A grid key that appears as ``{key}`` in the config spec is substituted there; every other
key is a config field set on each run (``bits``, ``seed``, ``dch.gamma``, ``optimizer.learning_rate``).
Each run trains in ``WORKDIR/<key=value,...>`` with its own manifest (``manifest.json``).
The sweep's spec is saved in ``WORKDIR/sweep.json``: running the same command again skips
the finished runs and resumes an interrupted one from its last checkpoint (so a killed
sweep, resumed, ends with the results of an uninterrupted one); another spec in the same
folder is refused. Every config of the grid is loaded and validated before anything is written;
a run whose result files do not parse counts as unfinished and is evaluated again. The sweep
folder and each run folder are locked while in use (:func:`jhash.io.workdir_lock`).

Aggregation groups runs by every grid key except the seeds (``seed``, ``split_seed``) and
gives mean +- std over the seeds. With ``--config.validation=N`` each run also reports
``val_map@all`` on held-out training items; ``best`` in the table marks, per method, the
setting with the highest validation mAP (model selection that never sees the query set).
"""
from __future__ import annotations

import csv
import io
import itertools
import json
import pathlib
import re
import sys
import time

import numpy as np

from jhash import io as jio

SEED_KEYS = ("seed", "split_seed")
TABLE_METRICS = ("map@all", "precision@r2", "recall@r2", "val_map@all", "train_s")


def parse_grid(items) -> dict:
    """``["method=dpsh,dch", "bits=16,32"]`` -> ``{"method": ["dpsh", "dch"], "bits": [16, 32]}`` (values as literals when they parse)."""
    from jhash.config import _coerce

    grid = {}
    for item in items or ():
        if "=" not in item:
            raise ValueError(f"--grid {item!r} must look like key=value1,value2")
        key, values = item.split("=", 1)
        key = key.strip()
        if key in grid:
            raise ValueError(f"--grid key {key!r} given twice")
        parsed = [_coerce(v.strip(), None, key) for v in values.split(",") if v.strip()]
        if not parsed:
            raise ValueError(f"--grid {key} has no values")
        grid[key] = parsed
    return grid


def run_name(point: dict) -> str:
    """``method=dch,bits=16,seed=0``: a run folder name (characters other than [A-Za-z0-9_.=,-] become _)."""
    return re.sub(r"[^A-Za-z0-9_.=,-]", "_", ",".join(f"{k}={v}" for k, v in point.items()))


def expand(spec: dict) -> list[tuple[str, dict, object]]:
    """``[(name, point, config)]`` for every point of the grid, configs loaded and overridden."""
    from jhash.config import apply_overrides, load_config
    from jhash.run import validate_config

    grid = spec["grid"]
    keys = list(grid)
    runs = []
    for values in itertools.product(*(grid[k] for k in keys)):
        point = dict(zip(keys, values))
        config_spec = spec["config"]
        placeholders = set(re.findall(r"{(\w+)}", config_spec))
        missing = placeholders - set(point)
        if missing:
            raise ValueError(f"the config spec uses {sorted(missing)} but the grid does not set them")
        config = load_config(config_spec.format(**point))
        fields = [f"{k}={v}" for k, v in point.items() if k not in placeholders]
        config = apply_overrides(config, list(spec.get("overrides", [])) + fields + ["progress=false"])
        try:
            validate_config(config)
        except ValueError as e:
            raise ValueError(f"run {run_name(point)}: {e}") from None
        runs.append((run_name(point), point, config))
    return runs


def _is_finished(workdir: pathlib.Path) -> bool:
    """Finished, with result files that are complete and parse (a damaged one is run again)."""
    from jhash.train.manifest import result_problem

    return result_problem(workdir) is None


def run_sweep(spec: dict, workdir, *, log=print) -> list[pathlib.Path]:
    """Runs (or resumes) every run of ``spec`` (``{"config": ..., "grid": {...}, "overrides": [...]}``) under ``workdir``."""
    workdir = pathlib.Path(workdir)
    spec = {"config": spec["config"], "grid": spec["grid"], "overrides": list(spec.get("overrides", []))}
    runs = expand(spec)  # every config is loaded and checked before anything is written or trained
    # One sweep process per folder (each run also holds its own lock); once a run has a checkpoint the folder stays.
    with jio.workdir_lock(workdir):
        saved = workdir / "sweep.json"
        if saved.exists():
            old = jio.read_json(saved, "delete it to start this sweep afresh")
            if old != json.loads(json.dumps(spec)):
                raise ValueError(f"{workdir} holds another sweep ({old}); use a new --workdir")
        else:
            jio.write_json(saved, spec)
        return _run_all(runs, workdir, log)


def _run_all(runs, workdir: pathlib.Path, log) -> list[pathlib.Path]:
    from jhash.run import train

    dirs = []
    for i, (name, _, config) in enumerate(runs):
        run_dir = workdir / name
        dirs.append(run_dir)
        if _is_finished(run_dir):
            log(f"[{i + 1}/{len(runs)}] {name}: finished, skipped")
            continue
        started = time.perf_counter()
        metrics = train(config, run_dir)
        log(f"[{i + 1}/{len(runs)}] {name}: mAP@ALL {metrics['map@all']:.4f} ({time.perf_counter() - started:.0f} s)")
    return dirs


# ------------------------------------------------------------------------------------------- aggregation


def collect(workdir) -> tuple[dict, list[dict]]:
    """The sweep's spec and one record per finished run: its grid point, metrics and train seconds."""
    from jhash.train.manifest import result_problem

    workdir = pathlib.Path(workdir)
    path = workdir / "sweep.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: is {workdir} a sweep folder (made by `jhash sweep`)?")
    spec = jio.read_json(path)
    records = []
    for values in itertools.product(*spec["grid"].values()):
        point = dict(zip(spec["grid"], values))
        run_dir = workdir / run_name(point)
        problem = result_problem(run_dir)
        if problem is not None:
            if (run_dir / "manifest.json").exists() and "is not finished" not in problem:
                print(f"jhash: warning: {problem}; {run_dir.name} counts as unfinished (run the sweep again "
                      "to re-evaluate it)", file=sys.stderr)
            continue
        metrics = jio.read_json(run_dir / "metrics.json")
        timing = jio.read_json(run_dir / "timing.json")
        records.append({"point": point, "dir": run_dir, "metrics": {**metrics, "train_s": timing.get("train_s")}})
    return spec, records


def group(spec: dict, records: list[dict]) -> list[dict]:
    """Records grouped by the grid keys other than the seeds, in grid order: ``[{"key": {...}, "runs": [...]}]``."""
    keys = [k for k in spec["grid"] if k not in SEED_KEYS]
    groups: dict = {}
    for r in records:
        gk = tuple((k, r["point"][k]) for k in keys)
        groups.setdefault(gk, []).append(r)
    return [{"key": dict(k), "runs": v} for k, v in groups.items()]


def _stats(runs, metric):
    values = [r["metrics"][metric] for r in runs if r["metrics"].get(metric) is not None]
    return (float(np.mean(values)), float(np.std(values)), len(values)) if values else None


def table(spec: dict, records: list[dict]) -> tuple[str, str]:
    """``(markdown, csv)`` of mean +- std over seeds per group."""
    groups = group(spec, records)
    keys = [k for k in spec["grid"] if k not in SEED_KEYS]
    metrics = [m for m in TABLE_METRICS if any(_stats(g["runs"], m) for g in groups)]
    extra = sorted({k for g in groups for r in g["runs"] for k in r["metrics"]
                    if k.startswith("map@") and k != "map@all"})
    metrics = metrics[:1] + extra + metrics[1:]
    best = _best_by_validation(groups) if "val_map@all" in metrics else set()
    md = ["| " + " | ".join(keys + ["seeds"] + metrics) + (" | best |" if best else " |"),
          "|" + "---|" * (len(keys) + 1 + len(metrics) + (1 if best else 0))]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(keys + ["seeds"] + [f"{m}_{s}" for m in metrics for s in ("mean", "std")])
    for i, g in enumerate(groups):
        cells, row = [], []
        for m in metrics:
            st = _stats(g["runs"], m)
            fmt = "{:.0f}" if m == "train_s" else "{:.4f}"
            cells.append("—" if st is None else f"{fmt.format(st[0])} ± {fmt.format(st[1])}")
            row += ["" if st is None else f"{st[0]:.6g}", "" if st is None else f"{st[1]:.6g}"]
        flag = ["✓" if i in best else ""] if best else []
        md.append("| " + " | ".join([str(g["key"][k]) for k in keys] + [str(len(g["runs"]))] + cells + flag) + " |")
        writer.writerow([g["key"][k] for k in keys] + [len(g["runs"])] + row)
    return "\n".join(md) + "\n", out.getvalue()


def _best_by_validation(groups) -> set:
    """Indices of the groups with the highest mean validation mAP among those of the same method and bits."""
    best: dict = {}
    for i, g in enumerate(groups):
        st = _stats(g["runs"], "val_map@all")
        if st is None:
            continue
        family = (g["key"].get("method"), g["key"].get("bits"))
        if family not in best or st[0] > best[family][1]:
            best[family] = (i, st[0])
    return {i for i, _ in best.values()}


def aggregate(workdir, *, plots: bool = True) -> dict:
    """Writes ``results.md``, ``results.csv`` and (with ``plots``) ``plots/*.png`` into the sweep folder; returns their paths."""
    workdir = pathlib.Path(workdir)
    spec, records = collect(workdir)
    if not records:
        raise ValueError(f"no finished run in {workdir} yet")
    md, csv_text = table(spec, records)
    n_total = int(np.prod([len(v) for v in spec["grid"].values()]))
    header = (f"# Sweep {workdir.name}\n\nConfig `{spec['config']}`, grid "
              + ", ".join(f"`{k}` = {v}" for k, v in spec["grid"].items())
              + (f", overrides {spec['overrides']}" if spec["overrides"] else "")
              + f". {len(records)} of {n_total} runs finished. mean ± std over seeds; train_s in seconds.\n\n")
    jio.write_text(workdir / "results.md", header + md)
    jio.write_text(workdir / "results.csv", csv_text)
    out = {"markdown": workdir / "results.md", "csv": workdir / "results.csv"}
    if plots:
        from jhash import plots as jplots

        out["plots"] = jplots.sweep_plots(spec, group(spec, records), workdir / "plots")
    return out
