"""Hash heads and code regularizers on one method: the table of experiments/results/codes_<dataset>.md.

  nice -n 10 python experiments/codes_ablation.py --data-dir ../shared/data             # 32, 16, 64 bits x 3 seeds
  python experiments/codes_ablation.py --data-dir ../shared/data --bits 32 --seeds 0    # a first pass

DPSH (the project's reference method, jhash/methods/dpsh.py, its defaults) on the shared
network and CPU budget of the dataset (``experiments/configs/dpsh.py:...,cpu=true``), with
  * the hash head (jhash/models/heads.py): FC, NINH's divide-and-encode, grouped sub-networks
    (4 groups);
  * the code regularizers of every method (``config.regularize``, jhash.methods.base.regularized):
    none, bit balance, bit decorrelation, both (weight --weight each, on tanh(u)).
Each code length is one resumable sweep (jhash.sweep) in ``--workdir/bits=<q>``, its grid ordered
so that every setting of seed 0 runs before seed 1; finished runs are skipped, so the script can
be stopped and started again. The split is the protocol's split of seed 0 for every run; the
seed changes the initialisation and the data order.

Per run the table reads mAP@ALL and the evaluator's bit balance (mean over bits of
|mean of the bit| over the database codes: 0 = every bit +1 on half of the items) from
metrics.json, and computes the bit correlation (mean |Pearson correlation| over pairs of
different bits of the database codes; 0 = uncorrelated) from codes.npz (cached in
code_stats.json). Cells: mean +- std over the seeds that finished (n when not 3).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from jhash import codes as jcodes  # noqa: E402
from jhash import sweep  # noqa: E402

HEADS = ("fc", "ninh", "grouped")
REGULARIZERS = ("none", "balance", "decorrelation", "both")


def spec_for(args, bits: int) -> dict:
    """The sweep of one code length: seed outermost, then balance, decorrelation, head."""
    return {
        # the built-in config of the method (what experiments/configs/<method>.py holds), so that the
        # saved sweep spec does not depend on where the repository is
        "config": f"method:{args.method}:dataset={args.dataset},bits={bits},cpu={'false' if args.full else 'true'}"
                  ",head={head}",
        "grid": {"seed": args.seeds, "regularize.balance": [0.0, args.weight],
                 "regularize.decorrelation": [0.0, args.weight], "head": list(HEADS)},
        "overrides": ([f"data_dir={args.data_dir}"] if args.data_dir else [])
                     + ["num_devices=1", "checkpoint_every=100000"] + [f"num_epochs={args.epochs}"] * bool(args.epochs),
    }


def code_stats(run_dir: pathlib.Path) -> dict:
    """Bit balance and bit correlation of the run's database codes (cached in code_stats.json)."""
    path = run_dir / "code_stats.json"
    if path.exists():
        return json.loads(path.read_text())
    z = np.load(run_dir / "codes.npz")
    b = np.asarray(jcodes.unpack(z["database_codes"], int(z["bits"])), np.float32)
    q = b.shape[1]
    corr = np.asarray(jcodes.bit_correlation(b, centered=True))
    stats = {"bit_balance": float(np.abs(b.mean(axis=0)).mean()),
             "bit_correlation": float(np.abs(corr[~np.eye(q, dtype=bool)]).mean()) if q > 1 else 0.0,
             "constant_bits": int(np.sum(np.abs(b.mean(axis=0)) == 1))}
    path.write_text(json.dumps(stats, indent=2))
    return stats


def _regularizer(point) -> str:
    on = (point["regularize.balance"] > 0, point["regularize.decorrelation"] > 0)
    return {(False, False): "none", (True, False): "balance", (False, True): "decorrelation", (True, True): "both"}[on]


def collect(args) -> dict:
    """rows[(bits, head, regularizer)] = list of per-seed dicts (map, p@r2, balance, correlation)."""
    rows: dict = {}
    for bits in args.bits:
        folder = pathlib.Path(args.workdir) / f"bits={bits}"
        if not (folder / "sweep.json").exists():
            continue
        _, records = sweep.collect(folder)
        for r in records:
            stats = code_stats(r["dir"])
            rows.setdefault((bits, r["point"]["head"], _regularizer(r["point"])), []).append({
                "map": r["metrics"]["map@all"], "p@r2": r["metrics"]["precision@r2"],
                "balance": stats["bit_balance"], "correlation": stats["bit_correlation"],
                "constant": stats["constant_bits"], "train_s": r["metrics"]["train_s"]})
    return rows


def _cell(values, fmt="{:.4f}", n_full=3):
    if not values:
        return "—"
    v = np.asarray(values, float)
    return f"{fmt.format(v.mean())} ± {fmt.format(v.std())}" + ("" if len(v) == n_full else f" (n={len(v)})")


def write_table(args, path: pathlib.Path) -> None:
    rows = collect(args)
    budget = "full configs" if args.full else "CPU-sized configs (cpu=true)"
    lines = [
        f"# Hash heads and code regularizers on {args.dataset}",
        "",
        "Made by `python experiments/codes_ablation.py " + " ".join(sys.argv[1:]) + "` (work dirs in "
        f"`{args.workdir}`).",
        "",
        f"{args.method.upper()} with its defaults on protocol `{args.dataset}`, the shared network and budget "
        f"({budget}, `jhash.config.experiment_config`; Adam lr 1e-3), split of seed 0 for every run, seeds "
        + ", ".join(map(str, args.seeds)) + " for the initialisation and the data order; mean ± std over the "
        "seeds that finished (n = their number when fewer than " + str(len(args.seeds)) + "). Heads "
        "(`config.model.head`, jhash/models/heads.py): `fc` one dense layer; `ninh` NINH's divide-and-encode "
        "(the 256 features cut into q slices, slice i -> bit i); `grouped` 4 sub-networks (hidden layer of "
        "256/4 units, ReLU) of q/4 bits each over the shared trunk. Regularizers (`config.regularize`, "
        f"jhash/methods/base.py `regularized`, on tanh(u), weight {args.weight:g} each): balance = mean over bits "
        "of (batch mean of the bit)^2; decorrelation = mean over bit pairs of (T^T T / n - I)^2.",
        "",
        "Measured on the database codes: **balance** = mean over bits of |mean of the bit| (0: each bit +1 on "
        "half of the items); **correlation** = mean |Pearson correlation| over pairs of different bits "
        "(0: uncorrelated; a constant bit counts 0). With 10 classes a code that is a function of the class "
        "can have at most 9 uncorrelated balanced bits, so the correlation cannot reach 0 at these lengths.",
        "",
        f"Machine: {args.machine}",
        "",
    ]
    for bits in args.bits:
        if not any(k[0] == bits for k in rows):
            continue
        lines += [f"## {bits} bits", "",
                  "| head | regularizer | mAP@ALL | precision@r2 | balance | correlation | train s |",
                  "|---|---|---|---|---|---|---|"]
        for head in HEADS:
            for reg in REGULARIZERS:
                rs = rows.get((bits, head, reg), [])
                if not rs:
                    continue
                lines.append(f"| {head} | {reg} | " + " | ".join([
                    _cell([r["map"] for r in rs], n_full=len(args.seeds)),
                    _cell([r["p@r2"] for r in rs], n_full=len(args.seeds)),
                    _cell([r["balance"] for r in rs], "{:.3f}", len(args.seeds)),
                    _cell([r["correlation"] for r in rs], "{:.3f}", len(args.seeds)),
                    _cell([r["train_s"] for r in rs], "{:.0f}", len(args.seeds))]) + " |")
        lines.append("")
    missing = [f"{b} bits" for b in args.bits if not any(k[0] == b for k in rows)]
    if missing:
        lines += ["Not run yet: " + ", ".join(missing) + ". Running the same command again trains only the "
                  "missing runs and rewrites this table.", ""]
    path.write_text("\n".join(lines))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--data-dir", default="")
    p.add_argument("--method", default="dpsh")
    p.add_argument("--bits", default="32,16,64", help="code lengths, in the order they are run")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--weight", type=float, default=1.0, help="weight of each regularizer when on")
    p.add_argument("--epochs", type=int, default=0, help="override the configs' epochs (0: keep)")
    p.add_argument("--full", action="store_true", help="the full configs instead of the CPU-sized ones")
    p.add_argument("--workdir", default="")
    p.add_argument("--out", default="")
    p.add_argument("--machine", default="2-core CPU shared with other jobs (no GPU)")
    p.add_argument("--table-only", action="store_true", help="write the table from the finished runs, train nothing")
    args = p.parse_args(argv)
    args.bits = [int(b) for b in args.bits.split(",")]
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.workdir = args.workdir or f"runs/codes_{args.dataset}"
    out = pathlib.Path(args.out or REPO / f"experiments/results/codes_{args.dataset}.md")
    if not args.table_only:
        for bits in args.bits:
            def log(message):
                print(f"{bits} bits {message}", flush=True)
                write_table(args, out)

            sweep.run_sweep(spec_for(args, bits), pathlib.Path(args.workdir) / f"bits={bits}", log=log)
    write_table(args, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
