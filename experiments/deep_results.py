"""Every deep method on one protocol, the same network and budget for all: the table of experiments/results/deep_<dataset>.md.

  python experiments/deep_results.py --dataset mnist --data-dir ../shared/data            # 16/32/64 bits x 3 seeds
  python experiments/deep_results.py --dataset cifar10 --data-dir ../shared/data --bits 32 --seeds 0 --epochs 3

Each (method, bits, seed) trains in its own work dir under --workdir with the method's
config (experiments/configs/<method>.py, the CPU-sized variant unless --full) and seed =
split seed = the run's seed; finished runs are skipped, so the script can be stopped and
started again. The LSH baseline hashes the same CNN's features (the layer before the hash
layer of the DPSH run at the same bits and seed) by random Gaussian projections of the
centred features. The table gives mean +- std over the seeds that finished, mAP@ALL,
precision within Hamming radius 2 and train seconds (timing.json, compilation included).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from jhash import evaluate, methods, run  # noqa: E402
from jhash.config import apply_overrides, load_config  # noqa: E402
from jhash.train import trainer  # noqa: E402


def run_one(method, dataset, bits, seed, args, workdir: pathlib.Path) -> dict:
    done = workdir / "metrics.json"
    if done.exists() and (workdir / "timing.json").exists():
        return json.loads(done.read_text())
    arg = f"dataset={dataset},bits={bits},cpu={'false' if args.full else 'true'}"
    config = load_config(str(REPO / f"experiments/configs/{method}.py") + ":" + arg)
    overrides = [f"seed={seed}", f"split_seed={seed}", "progress=false", f"num_devices={args.num_devices}",
                 "checkpoint_every=100000"]
    if args.data_dir:
        overrides.append(f"data_dir={args.data_dir}")
    if args.epochs:
        overrides.append(f"num_epochs={args.epochs}")
    config = apply_overrides(config, overrides)
    started = time.perf_counter()
    results = trainer.train(config, workdir)
    print(f"{method:10s} {bits:3d} bits seed {seed}: mAP {results['map@all']:.4f}  P@r2 {p_r2(results):.4f}"
          f"  {time.perf_counter() - started:.0f} s", flush=True)
    return results


def lsh_on_features(dpsh_dir: pathlib.Path, bits: int, seed: int) -> dict:
    """Random-projection LSH of the DPSH network's features (before its hash layer), scored like every method."""
    out = dpsh_dir / "lsh_metrics.json"
    if out.exists():
        return json.loads(out.read_text())
    method, state, data = run.restore_run(trainer.read_config(dpsh_dir), dpsh_dir)
    x = data.dataset.x
    feats = {name: evaluate.extract_features(method, state, x, index=getattr(data.split, name))
             for name in ("train", "query", "database")}
    mean = feats["train"].mean(axis=0)
    w = np.random.default_rng(seed).normal(size=(mean.shape[0], bits))
    codes = {k: np.where((v - mean) @ w >= 0, 1, -1).astype(np.int8) for k, v in feats.items()}
    results = evaluate.retrieval_metrics(codes["query"], codes["database"], data.labels("query"),
                                         data.labels("database"), map_k=None)
    results = {k: float(v) for k, v in results.items()}
    out.write_text(json.dumps(results, indent=2))
    return results


def p_r2(results) -> float:
    """Precision within Hamming radius 2; NaN for quantization methods (ranked by AQD, no Hamming ball)."""
    return float(results.get("precision@r2", float("nan")))


def _cell(values, fmt):
    values = [v for v in values if not np.isnan(v)]
    if not values:
        return "—"
    values = np.asarray(values, float)
    return f"{fmt.format(values.mean())} ± {fmt.format(values.std())}" + ("" if len(values) == 3 else f" (n={len(values)})")


def write_table(rows, args, path: pathlib.Path):
    """rows[(method, bits)] = list of (map, p@r2, train_s)."""
    bits_cols = sorted(args.bits)
    budget = "full configs" if args.full else "CPU-sized configs (cpu=true)"
    if args.epochs:
        budget += f", {args.epochs} epochs"
    lines = [
        f"# Deep methods on {args.dataset}",
        "",
        f"Made by `python experiments/deep_results.py {' '.join(a for a in sys.argv[1:] if a != '--table-only')}`.",
        "",
        f"Protocol `{args.dataset}`; every method trains the same network with the same budget: "
        f"{budget} (see `experiments/configs/common.py`), Adam lr 1e-3, each method's own defaults "
        "(jhash/methods/<method>.py). Seeds " + ", ".join(map(str, args.seeds)) + " (the seed of the "
        "split, the initialisation and the data order). mean ± std over seeds; mAP over the whole database; "
        "P@r2 = precision of the items within Hamming radius 2 (an empty ball counts 0; — for quantization "
        "methods, which rank by asymmetric quantizer distance, ties by index, with M log2 K = bits); train seconds "
        "include compilation, on the machine named below. LSH = random projections of the DPSH network's "
        "features (the layer before its hash layer) at the same bits and seed.",
        "",
        f"Machine: {args.machine}",
        "",
    ]
    for metric, idx, fmt in (("mAP@ALL", 0, "{:.4f}"), ("precision within radius 2", 1, "{:.4f}"),
                             ("train seconds", 2, "{:.0f}")):
        lines += [f"## {metric}", "", "| method | " + " | ".join(f"{b} bits" for b in bits_cols) + " |",
                  "|---|" + "---|" * len(bits_cols)]
        for m in args.methods + ["lsh"]:
            if m == "lsh" and idx == 2:
                continue
            lines.append(f"| {m} | " + " | ".join(_cell([r[idx] for r in rows.get((m, b), [])], fmt)
                                                   for b in bits_cols) + " |")
        lines.append("")
    beaten = [f"{m} at {b} bits" for m in args.methods for b in args.bits
              if rows.get((m, b)) and rows.get(("lsh", b))
              and np.mean([r[0] for r in rows[(m, b)]]) <= np.mean([r[0] for r in rows[("lsh", b)]])]
    lines += ["## Check", "", "Every method beats LSH at the same bits (mean mAP): "
              + ("yes." if not beaten else "no: " + ", ".join(beaten) + "."), ""]
    path.write_text("\n".join(lines))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--data-dir", default="")
    p.add_argument("--bits", default="16,32,64")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--methods", default="all", help="comma-separated, or 'all'")
    p.add_argument("--epochs", type=int, default=0, help="override the configs' epochs (0: keep)")
    p.add_argument("--full", action="store_true", help="the full configs instead of the CPU-sized ones")
    p.add_argument("--num-devices", type=int, default=1)
    p.add_argument("--workdir", default="")
    p.add_argument("--out", default="")
    p.add_argument("--machine", default="2-core shared CPU (no GPU)")
    p.add_argument("--table-only", action="store_true", help="write the table from the finished runs, train nothing")
    args = p.parse_args(argv)
    args.bits = [int(b) for b in args.bits.split(",")]
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.methods = methods.available() if args.methods == "all" else args.methods.split(",")
    if "dpsh" not in args.methods:
        args.methods = ["dpsh"] + args.methods  # the LSH baseline uses the DPSH network's features
    root = pathlib.Path(args.workdir or f"runs/deep_{args.dataset}")
    out = pathlib.Path(args.out or REPO / f"experiments/results/deep_{args.dataset}.md")
    rows: dict = {}
    for seed in args.seeds:  # every code length of a seed before the next seed: a full table early
        for bits in args.bits:
            for m in args.methods:
                wd = root / f"{m}-{bits}-{seed}"
                if args.table_only and not (wd / "timing.json").exists():
                    continue
                r = run_one(m, args.dataset, bits, seed, args, wd)
                timing = json.loads((wd / "timing.json").read_text())
                rows.setdefault((m, bits), []).append((r["map@all"], p_r2(r), timing["train_s"]))
                if m == "dpsh":
                    lsh = lsh_on_features(wd, bits, seed)
                    rows.setdefault(("lsh", bits), []).append((lsh["map@all"], lsh["precision@r2"], 0.0))
                if not args.table_only:
                    write_table(rows, args, out)
    write_table(rows, args, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
