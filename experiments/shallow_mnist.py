"""All jhash.shallow methods on one protocol, 16/32/64 bits, several seeds -> a markdown table.

    PYTHONPATH=. python experiments/shallow_mnist.py --data_dir ../shared/data \
        [--methods lsh,itq,...] [--bits 16,32,64] [--seeds 3] [--cache runs/shallow_mnist.jsonl]

Each (method, bits, seed) is a jhash run (jhash.run.train of ``jhash train --config
method:NAME:dataset=mnist,bits=B,seed=S``, jhash.config.shallow_config) in a folder next to the
cache (``runs/shallow_mnist/method=M,bits=B,seed=S``): the protocol's split drawn with that seed
(jhash.data.make_split), the method fitted on the training set's raw pixels scaled to [0, 1]
with ``jax.random.key(seed)``, queries and database encoded with the fitted encoder, then
mAP@ALL (ties by database index) and precision within Hamming radius 2 against the class labels
by the evaluator. Fit seconds include JAX compilation (the first call of a shape compiles);
encode seconds are for queries + database. Each finished run is appended to the cache file, so
an interrupted run resumes and new methods are added without rerunning the others. The same
runs as a sweep with jhash's own table: ``jhash sweep --config
'method:{method}:dataset=mnist,bits={bits},seed={seed}' --grid method=lsh,itq --grid bits=16,32,64
--grid seed=0,1,2 --workdir DIR --config.data_dir=../shared/data``.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "configs"))
import shallow as shallow_config  # noqa: E402  (experiments/configs/shallow.py)

import jhash.data as jdata  # noqa: E402
from jhash import io as jio  # noqa: E402
from jhash import run, shallow, sweep  # noqa: E402
from jhash.config import apply_overrides, load_config  # noqa: E402

LABEL = {"lsh": "LSH", "lfh": "LFH", "fsdh": "FSDH", "pcah": "PCAH", "itq": "ITQ", "sh": "SH", "agh": "AGH-1", "agh2": "AGH-2",
         "sgh": "SGH", "dgh": "DGH-I", "fth": "FTH", "sdh": "SDH", "ksh": "KSH", "cosdish": "COSDISH",
         "tsh": "TSH", "fasth": "FastH", "mlh": "MLH", "hdml": "HDML", "cgh": "CGH", "toprsbc": "Top-RSBC",
         "oph": "OPH",
         "rsh": "RSH", "rph": "RPH", "dserh": "DSeRH", "affhash": "AffHash"}


def run_one(method, bits, seed, dataset, run_dir, *, data_dir="", center=False, features=""):
    """The jhash run of (method, bits, seed) in ``run_dir`` and its table row (``features``: the feature file of
    this seed, or "" for the pixels)."""
    arg = f"dataset={dataset},bits={bits},seed={seed},center={center}" + (f",features={features}" if features else "")
    config = apply_overrides(load_config(f"method:{method}:{arg}"),
                             [f"data_dir={data_dir if dataset != 'digits' else ''}", "progress=false"])
    results = run.train(config, run_dir)
    timing = jio.read_json(pathlib.Path(run_dir) / "timing.json")
    return {"method": method, "bits": bits, "seed": seed, "dataset": dataset, "map": results["map@all"],
            "p_r2": results["precision@r2"], "fit_s": timing["fit_s"], "encode_s": timing["encode_s"]}


def check_features(pattern: str, dataset: str, data_dir: str, seeds: int) -> None:
    """Each seed's feature file (``{seed}`` in ``pattern``) holds one row per item of ``dataset`` with its labels
    in order (so the dataset's protocol draws the same split)."""
    source = jdata.load(dataset, data_dir=data_dir if dataset != "digits" else None)
    for seed in range(seeds):
        path = pattern.format(seed=seed)
        feats = jdata.load(path)
        if len(feats.y) != len(source.y) or not np.array_equal(np.asarray(feats.y), np.asarray(source.y)):
            raise ValueError(f"--features {path}: its {len(feats.y)} labels are not those of {dataset}'s "
                             f"{len(source.y)} items in order (extract it from {dataset} itself)")


def run_cached(method, bits, seed, dataset, cache: pathlib.Path, done: list, *, data_dir="", center=False, fit=True,
               features=""):
    """The run of (method, bits, seed): from ``done`` (the cache's rows) if it is there with the
    same settings, else (with ``fit``) run now (:func:`run_one`, in the folder named like the cache
    without its suffix) and appended to ``done`` and to the ``cache`` file, else None.
    ``features``: the feature files' name pattern (``{seed}`` replaced by the seed; kept in the
    row's ``features``; rows on pixels have none)."""
    cfg = shallow_config.get_config(f"method={method},dataset={dataset},bits={bits},center={center},"
                                    f"features={features}")
    for r in done:
        if (r["method"], r["bits"], r["seed"], r["dataset"], r["hyper"], r.get("features", "")) == (
                method, bits, seed, dataset, dict(cfg.hyper), features):
            return r
    if not fit:
        return None
    name = sweep.run_name({"method": method, "bits": bits, "seed": seed}) + (",center" if center else "")
    run_dir = cache.with_suffix("") / (name + (",features=" + pathlib.Path(features).stem if features else ""))
    r = run_one(method, bits, seed, dataset, run_dir, data_dir=data_dir, center=center,
                features=features.format(seed=seed))
    r["hyper"] = dict(cfg.hyper)
    if features:
        r["features"] = features
    print(json.dumps(r), flush=True)
    done.append(r)
    with cache.open("a") as f:
        f.write(json.dumps(r) + "\n")
    return r


def table(rows, methods, bits_list, dataset, n_seeds):
    def cell(vals, fmt):
        if not vals:
            return "—"
        return f"{np.mean(vals):{fmt}} ± {np.std(vals):{fmt}}" + (f" (n={len(vals)})" if len(vals) < n_seeds else "")

    out = []
    for title, key, fmt in [("mAP@ALL", "map", ".3f"), ("Precision within Hamming radius 2", "p_r2", ".3f"),
                            ("Fit seconds (training set, incl. compilation)", "fit_s", ".1f"),
                            ("Encode seconds (queries + database)", "encode_s", ".1f")]:
        out += [f"### {title}", "", "| method | " + " | ".join(f"{b} bits" for b in bits_list) + " |",
                "|---" * (len(bits_list) + 1) + "|"]
        for m in methods:
            vals = [[r[key] for r in rows if r["method"] == m and r["bits"] == b] for b in bits_list]
            out.append(f"| {LABEL.get(m, m)} | " + " | ".join(cell(v, fmt) for v in vals) + " |")
        out.append("")
    return out


def ordering(rows, bits_list):
    """The literature's ordering, checked on the mean mAP: supervised > ITQ > LSH at each code length."""
    def mean_map(m, b):
        v = [r["map"] for r in rows if r["method"] == m and r["bits"] == b]
        return float(np.mean(v)) if v else None

    out = ["### Ordering (mean mAP@ALL)", ""]
    for b in bits_list:
        sup = {m: mean_map(m, b) for m in shallow.SUPERVISED if mean_map(m, b) is not None}
        itq, lsh = mean_map("itq", b), mean_map("lsh", b)
        if not sup or itq is None or lsh is None:
            continue
        ok = min(sup.values()) > itq > lsh
        names = ", ".join(f"{LABEL.get(m, m.upper())} {v:.3f}" for m, v in sup.items())
        out.append(f"- {b} bits: supervised ({names}) > ITQ {itq:.3f} > LSH {lsh:.3f}: {'holds' if ok else 'DOES NOT HOLD'}")
    return out + [""]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--data_dir", default=os.environ.get("JHASH_SHARED_DATA", "../shared/data"))
    p.add_argument("--methods", default=",".join(shallow_config.method_names()))
    p.add_argument("--bits", default="16,32,64")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--center", action="store_true", help="subtract the training mean from all features")
    p.add_argument("--cache", default="runs/shallow_mnist.jsonl")
    p.add_argument("--out", default="experiments/results/shallow_mnist.md")
    p.add_argument("--table_only", action="store_true", help="only write the table from the cached runs")
    p.add_argument("--machine", default="2-core CPU (no GPU)", help="the machine, for the table's header")
    p.add_argument("--features", default="",
                   help="fit on a feature file of the dataset (experiments/extract_features.py) instead of its "
                        "pixels; '{seed}' in the name is replaced by the seed (one network per split)")
    a = p.parse_args(argv)
    methods, bits_list = a.methods.split(","), [int(b) for b in a.bits.split(",")]
    if a.features and not a.table_only:
        check_features(a.features, a.dataset, a.data_dir, a.seeds)
    cache = pathlib.Path(a.cache)
    cache.parent.mkdir(parents=True, exist_ok=True)
    done = [json.loads(line) for line in cache.read_text().splitlines()] if cache.exists() else []
    if not a.table_only:
        for m in methods:
            for b in bits_list:
                for seed in range(a.seeds):
                    run_cached(m, b, seed, a.dataset, cache, done, data_dir=a.data_dir, center=a.center,
                               features=a.features)
    rows = [r for r in done if r["dataset"] == a.dataset and r["seed"] < a.seeds
            and r.get("features", "") == a.features
            and r["hyper"] == dict(shallow_config.get_config(
                f"method={r['method']},dataset={a.dataset},bits={r['bits']},center={a.center}").hyper)]
    proto = jdata.get_protocol(a.dataset)
    head = [f"# Shallow hashing on {a.dataset}", "",
            f"Protocol `{proto.name}`: {proto.description}",
            (f"Features: `{a.features}` (seed s: the file with s in its name)" if a.features else
             "Features: raw pixels scaled to [0, 1]")
            + f"{' and centered' if a.center else ''}, the same for every method. "
            f"Mean ± std over {a.seeds} seeds (seed s: split seed s and jax.random.key(s)). "
            "mAP@ALL by jhash.metrics.mean_average_precision (ties by database index); precision within radius 2 "
            "counts an empty ball as 0. Produced by `experiments/shallow_mnist.py`; per-method settings in "
            "`experiments/configs/shallow.py` and each method's docstring.", "", f"Machine: {a.machine}", ""]
    text = "\n".join(head + table(rows, methods, bits_list, a.dataset, a.seeds) + ordering(rows, bits_list)) + "\n"
    pathlib.Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(a.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
