"""All jhash.shallow methods on one protocol, 16/32/64 bits, several seeds -> a markdown table.

    PYTHONPATH=. python experiments/shallow_mnist.py --data_dir ../shared/data \
        [--methods lsh,itq,...] [--bits 16,32,64] [--seeds 3] [--cache runs/shallow_mnist.jsonl]

For each (method, bits, seed): the protocol's split drawn with that seed
(jhash.data.make_split), the method fitted on the training set's raw pixels scaled to
[0, 1] with ``jax.random.key(seed)``, queries and database encoded with the fitted
encoder, then mAP@ALL (jhash.metrics.mean_average_precision, k=None) and precision within
Hamming radius 2 against the class labels. Fit seconds include JAX compilation (the first
call of a shape compiles); encode seconds are for queries + database. Each finished run
is appended to the cache file, so an interrupted run resumes and new methods are added
without rerunning the others.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

import jax
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "configs"))
import shallow as shallow_config  # noqa: E402  (experiments/configs/shallow.py)

import jhash.data as jdata  # noqa: E402
from jhash import metrics, shallow  # noqa: E402

LABEL = {"lsh": "LSH", "lfh": "LFH", "fsdh": "FSDH", "pcah": "PCAH", "itq": "ITQ", "sh": "SH", "agh": "AGH-1", "agh2": "AGH-2",
         "sgh": "SGH", "dgh": "DGH-I", "fth": "FTH", "sdh": "SDH", "ksh": "KSH", "cosdish": "COSDISH",
         "tsh": "TSH", "fasth": "FastH", "mlh": "MLH", "hdml": "HDML", "cgh": "CGH", "toprsbc": "Top-RSBC",
         "oph": "OPH",
         "rsh": "RSH", "rph": "RPH", "dserh": "DSeRH", "affhash": "AffHash"}


def run_one(cfg, ds, seed):
    split = jdata.make_split(ds, jdata.get_protocol(cfg.protocol), seed)
    flat = lambda idx: (ds.x[idx].reshape(len(idx), -1).astype(np.float32) / cfg.scale)  # noqa: E731
    xtr, xq, xdb = flat(split.train), flat(split.query), flat(split.database)
    if cfg.center:
        mu = xtr.mean(0)
        xtr, xq, xdb = xtr - mu, xq - mu, xdb - mu
    ytr, yq, ydb = ds.y[split.train], ds.y[split.query], ds.y[split.database]
    fit = shallow.get_method(cfg.fit_method)
    t0 = time.perf_counter()
    hasher = fit(xtr, ytr, bits=cfg.bits, key=jax.random.key(seed), **cfg.hyper)
    jax.block_until_ready(hasher.params)
    t1 = time.perf_counter()
    qc, dc = hasher.encode(xq), hasher.encode(xdb)
    t2 = time.perf_counter()
    p2, _ = metrics.precision_recall_at_radius(qc, dc, yq, ydb, radius=2)
    return {"method": cfg.method, "bits": cfg.bits, "seed": seed, "dataset": cfg.dataset,
            "map": metrics.mean_average_precision(qc, dc, yq, ydb, k=None), "p_r2": p2,
            "fit_s": t1 - t0, "encode_s": t2 - t1, "hyper": dict(cfg.hyper)}


def _feature_loader(pattern: str, dataset: str, data_dir: str):
    """seed -> the feature file of that seed (``{seed}`` in ``pattern``), checked to hold one row per
    item of ``dataset`` with its labels (so the dataset's protocol draws the same split)."""
    source = jdata.load(dataset, data_dir=data_dir if dataset != "digits" else None)

    def load(seed):
        path = pattern.format(seed=seed)
        feats = jdata.load(path)
        if len(feats.y) != len(source.y) or not np.array_equal(np.asarray(feats.y), np.asarray(source.y)):
            raise ValueError(f"--features {path}: its {len(feats.y)} labels are not those of {dataset}'s "
                             f"{len(source.y)} items in order (extract it from {dataset} itself)")
        return feats

    return load


def run_cached(method, bits, seed, ds, dataset, cache: pathlib.Path, done: list, center=False, fit=True,
               features=""):
    """The run of (method, bits, seed): from ``done`` (the cache's rows) if it is there with the
    same settings, else (with ``fit``) fitted now and appended to ``done`` and to the ``cache``
    file, else None. ``ds``: the dataset, or a function of the seed giving it (loaded only when
    a fit is needed). ``features``: the feature file's name pattern when ``ds`` holds features
    (kept in the row's ``features``; rows on pixels have none)."""
    cfg = shallow_config.get_config(f"method={method},dataset={dataset},bits={bits},center={center},"
                                    f"features={features}")
    for r in done:
        if (r["method"], r["bits"], r["seed"], r["dataset"], r["hyper"], r.get("features", "")) == (
                method, bits, seed, dataset, dict(cfg.hyper), features):
            return r
    if not fit:
        return None
    r = run_one(cfg, ds(seed) if callable(ds) else ds, seed)
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
    if a.features:
        ds = _feature_loader(a.features, a.dataset, a.data_dir)
    else:
        ds = jdata.load(a.dataset, data_dir=a.data_dir if a.dataset != "digits" else None)
    cache = pathlib.Path(a.cache)
    cache.parent.mkdir(parents=True, exist_ok=True)
    done = [json.loads(line) for line in cache.read_text().splitlines()] if cache.exists() else []
    if not a.table_only:
        for m in methods:
            for b in bits_list:
                for seed in range(a.seeds):
                    run_cached(m, b, seed, ds, a.dataset, cache, done, center=a.center, features=a.features)
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
