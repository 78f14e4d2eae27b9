"""The discrete-optimisation methods on one protocol: experiments/results/discrete_<dataset>.md.

  python experiments/discrete_mnist.py --data-dir ../shared/data               # 16/32/64 bits x 3 seeds

Deep methods whose codes come from a discrete sub-problem solved in the compiled training
step or before it (ADSH, DDSH, DSDH; the two-step CNNH, FTDSH, HBMP) train the shared CNN
with the budget of experiments/results/deep_<dataset>.md, through
``experiments/deep_results.py``'s runner and its run folders (a run finished there is not
trained again). DPSH is the reference: ADSH must reach at least its mAP (the literature's
ordering). The non-deep two-step methods (SDH, FSDH, KSH, LFH, COSDISH, TSH, FastH) are fitted
on the raw pixels scaled to [0, 1] by ``experiments/shallow_mnist.py``'s runner and its cache.
Methods not shipped by this checkout are left out of the table, and the table says so.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import deep_results  # noqa: E402  (experiments/deep_results.py)
import shallow_mnist  # noqa: E402  (experiments/shallow_mnist.py)

from jhash import methods, shallow  # noqa: E402

DEEP = ("dpsh", "adsh", "ddsh", "dsdh", "cnnh", "ftdsh", "hbmp")
SHALLOW = ("sdh", "fsdh", "ksh", "lfh", "cosdish", "tsh", "fasth")


def _cell(values, fmt):
    if not values:
        return "—"
    v = np.asarray(values, float)
    return f"{fmt.format(v.mean())} ± {fmt.format(v.std())}" + ("" if len(v) >= 3 else f" (n={len(v)})")


def write_table(rows, deep, flat, missing, args, path):
    """rows[(method, bits)] = list of (map, train seconds)."""
    bits = sorted(args.bits)
    lines = [f"# Discrete-optimisation methods on {args.dataset}", "",
             f"Made by `python experiments/discrete_mnist.py {' '.join(sys.argv[1:])}`.", "",
             f"Protocol `{args.dataset}`. Seeds {', '.join(map(str, args.seeds))} (split, initialisation and data "
             "order); mean ± std over seeds; mAP over the whole database (ties by database index). "
             "Deep methods: the shared small CNN, CPU-sized budget (cpu=true, see `experiments/configs/common.py`), "
             "Adam, each method's defaults; train seconds include compilation. Non-deep methods: raw pixels scaled "
             "to [0, 1], settings of `experiments/configs/shallow.py`; fit seconds include compilation.",
             f"Machine: {args.machine}", ""]
    for title, idx, fmt in (("mAP@ALL", 0, "{:.4f}"), ("train / fit seconds", 1, "{:.0f}")):
        lines += [f"## {title}", "", "| method | input | " + " | ".join(f"{b} bits" for b in bits) + " |",
                  "|---|---|" + "---|" * len(bits)]
        for m, kind in [(m, "CNN") for m in deep] + [(m, "pixels") for m in flat]:
            lines.append(f"| {m} | {kind} | " + " | ".join(_cell([r[idx] for r in rows.get((m, b), [])], fmt)
                                                         for b in bits) + " |")
        lines.append("")
    mean = {k: np.mean([r[0] for r in v]) for k, v in rows.items() if v}
    checks = [f"{b} bits: ADSH {mean[('adsh', b)]:.4f} vs DPSH {mean[('dpsh', b)]:.4f}: "
              + ("holds" if mean[("adsh", b)] >= mean[("dpsh", b)] else "DOES NOT HOLD")
              for b in bits if ("adsh", b) in mean and ("dpsh", b) in mean]
    lines += ["## Check", "", "ADSH reaches at least DPSH's mAP at the same budget (mean over seeds):", ""]
    lines += [f"- {c}" for c in checks] + [""]
    if missing:
        lines += [f"Not in this checkout (left out): {', '.join(missing)}.", ""]
    path.write_text("\n".join(lines))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--bits", default="16,32,64")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--deep-workdir", default="", help="deep_results.py's run folders (default runs/deep_<dataset>)")
    p.add_argument("--shallow-cache", default="", help="shallow_mnist.py's cache (default runs/shallow_<dataset>.jsonl)")
    p.add_argument("--out", default="")
    p.add_argument("--machine", default="2-core shared CPU (no GPU)")
    p.add_argument("--table-only", action="store_true", help="write the table from finished runs, train nothing")
    args = p.parse_args(argv)
    args.bits = [int(b) for b in args.bits.split(",")]
    args.seeds = [int(s) for s in args.seeds.split(",")]
    deep = [m for m in DEEP if m in methods.available()]
    flat = [m for m in SHALLOW if m in shallow.METHODS]
    missing = [m for m in DEEP + SHALLOW if m not in deep + flat]
    root = pathlib.Path(args.deep_workdir or f"runs/deep_{args.dataset}")
    cache = pathlib.Path(args.shallow_cache or f"runs/shallow_{args.dataset}.jsonl")
    cache.parent.mkdir(parents=True, exist_ok=True)
    done = [json.loads(line) for line in cache.read_text().splitlines()] if cache.exists() else []
    out = pathlib.Path(args.out or HERE / f"results/discrete_{args.dataset}.md")
    runner = argparse.Namespace(full=False, num_devices=1, data_dir=args.data_dir, epochs=0)
    rows: dict = {}
    for seed in args.seeds:
        for bits in args.bits:
            for m in deep:
                wd = root / f"{m}-{bits}-{seed}"
                if args.table_only and not (wd / "timing.json").exists():
                    continue
                r = deep_results.run_one(m, args.dataset, bits, seed, runner, wd)
                rows.setdefault((m, bits), []).append(
                    (r["map@all"], json.loads((wd / "timing.json").read_text())["train_s"]))
            for m in flat:
                r = shallow_mnist.run_cached(m, bits, seed, args.dataset, cache, done, data_dir=args.data_dir,
                                             fit=not args.table_only)
                if r is None:
                    continue
                rows.setdefault((m, bits), []).append((r["map"], r["fit_s"]))
            write_table(rows, deep, flat, missing, args, out)
    print(out.read_text())


if __name__ == "__main__":
    main()
