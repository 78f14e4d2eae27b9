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

Bit-scalable codes (``--parts scalable``): DPSH with DRSCH's weighted-bits head at
``--scalable-bits`` (one sweep over the seeds in ``--workdir/scalable_bits=<q>``); its codes are
cut to their L bits of largest learned |w_k| (jhash.models.truncate_codes) and scored against
the L bits of smallest |w_k| and the first L bits (an arbitrary fixed subset), cached in
truncation.json.

Quantization against binary codes (``--parts quant``): per code length one sweep (in
``--workdir/quant_bits=<q>``) of the ablation's method, the best binary method of
experiments/results/deep_mnist.md (HashNet; ``--binary-reference``) and the quantizers DQN, DEPQ, DSQ, SPDAQ
(jhash/methods/, M log2 K = q), each with its defaults, over the seeds.

Feature-extraction mode (``--features FILE``, e.g. experiments/results/codes_cifar10.md): every
part trains the hash head alone on a cached feature file (experiments/extract_features.py,
experiments/configs/features.py) instead of the network on the images; ``--dataset`` names the
source dataset's protocol, so the split is the one drawn on the images. The table names the
backbone the file came from (a run trained here: its epochs and its own mAP; or a model and
its weights file).

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


def config_spec(args, bits: int, method: str, head: str | None = None) -> str:
    """The config of one run: the built-in config of the method (what experiments/configs/<method>.py
    holds) or, with --features, the built-in features config (experiments/configs/features.py), so
    that the saved sweep spec does not depend on where the repository is. ``method`` and ``head``
    may be sweep placeholders ("{method}", "{head}"); no head: the config's own (FC)."""
    with_head = f",head={head}" if head else ""
    if args.features:
        return f"features:method={method},features={args.features},protocol={args.dataset},bits={bits}" + with_head
    return f"method:{method}:dataset={args.dataset},bits={bits},cpu={'false' if args.full else 'true'}" + with_head


def spec_for(args, bits: int) -> dict:
    """The sweep of one code length: seed outermost, then balance, decorrelation, head."""
    return {
        "config": config_spec(args, bits, args.method, "{head}"),
        "grid": {"seed": args.seeds, "regularize.balance": [0.0, args.weight],
                 "regularize.decorrelation": [0.0, args.weight], "head": list(args.heads)},
        "overrides": ([f"data_dir={args.data_dir}"] if args.data_dir else [])
                     + ["num_devices=1", "checkpoint_every=100000"] + [f"num_epochs={args.epochs}"] * bool(args.epochs),
    }


def scalable_spec(args) -> dict:
    """The weighted-bits sweep: DPSH with head=weighted at --scalable-bits, one run per seed."""
    spec = spec_for(args, args.scalable_bits)
    spec["config"] = config_spec(args, args.scalable_bits, args.method, "weighted")
    spec["grid"] = {"seed": args.seeds}
    return spec


QUANT = ("dqn", "depq", "dsq", "spdaq")


def quant_spec(args, bits: int) -> dict:
    """Quantization methods against binary ones at ``bits`` (M log2 K = bits): one sweep over the
    method (the ablation's method, the best binary method, the four quantizers) and the seeds,
    each with its own defaults and the same network, budget and split as the main part."""
    spec = spec_for(args, bits)
    spec["config"] = config_spec(args, bits, "{method}")
    binary = [args.method] + [args.binary_reference] * (args.binary_reference != args.method)
    spec["grid"] = {"seed": args.seeds, "method": binary + list(QUANT)}
    return spec


def quant_table(args) -> list[str]:
    """The quantization part's table: mAP@ALL, and code statistics (bits: balance / correlation of the
    binary codes; quantizers: the fraction of the M x K codewords the database uses)."""
    lines = []
    for bits in args.bits:
        folder = pathlib.Path(args.workdir) / f"quant_bits={bits}"
        if not (folder / "sweep.json").exists():
            continue
        _, records = sweep.collect(folder)
        by_method: dict = {}
        for r in records:
            by_method.setdefault(r["point"]["method"], []).append(r)
        if not by_method:
            continue
        n = len(args.seeds)
        lines += [f"## Quantization against binary codes, {bits} bits", "",
                  "Each method with its defaults, the same network, budget and split as above (no head or "
                  "regularizer change). Binary methods rank by Hamming distance; the quantizers by asymmetric "
                  f"quantizer distance with M codebooks of K words, M log2 K = {bits} bits per database item "
                  "(jhash.quantization, jhash/evaluate.py). Code statistics: balance / correlation of the binary "
                  "database codes as above; for a quantizer, codebook usage = fraction of the M x K codewords "
                  "that some database item uses. SPDAQ is asymmetric, as ADSH: the database items that are "
                  "training items keep the codes it learned from their labels (jhash/methods/spdaq.py), the other "
                  "items are encoded from the network; every other method encodes every database item.", "",
                  "| method | kind | mAP@ALL | balance | correlation | codebook usage | train s |",
                  "|---|---|---|---|---|---|---|"]
        for method in sorted(by_method, key=lambda m: (m in QUANT, m)):
            rs = by_method[method]
            quant = method in QUANT
            stats = [] if quant else [code_stats(r["dir"]) for r in rs]
            lines.append(f"| {method} | {'quantizer' if quant else 'binary'} | " + " | ".join([
                _cell([r["metrics"]["map@all"] for r in rs], n_full=n),
                "—" if quant else _cell([st["bit_balance"] for st in stats], "{:.3f}", n),
                "—" if quant else _cell([st["bit_correlation"] for st in stats], "{:.3f}", n),
                _cell([r["metrics"]["codebook_usage"] for r in rs], "{:.3f}", n) if quant else "—",
                _cell([r["metrics"]["train_s"] for r in rs], "{:.0f}", n)]) + " |")
        lines.append("")
    return lines


def truncation_stats(run_dir: pathlib.Path) -> dict:
    """mAP@ALL of the run's codes cut to L bits: the L of largest |w|, the L of smallest |w|, the first L."""
    path = run_dir / "truncation.json"
    if path.exists():
        return json.loads(path.read_text())
    from jhash import evaluate, metrics, run
    from jhash.models import bit_weights, truncate_codes
    from jhash.train import trainer

    config = trainer.read_config(run_dir)
    method, state, data = run.restore_run(config, run_dir)
    x, yq, yd = data.dataset.x, data.labels("query"), data.labels("database")
    q = evaluate.encode(method, state, x, index=data.split.query, batch_size=config.eval.batch_size)
    db = evaluate.encode(method, state, x, index=data.split.database, batch_size=config.eval.batch_size)
    w = bit_weights(state.params)
    out = {"bits": int(config.bits), "weights": [float(v) for v in w],
           "full": metrics.mean_average_precision(q, db, yq, yd)}
    for length in (b for b in (8, 16, 32) if b < config.bits):
        low = np.argsort(np.abs(w), kind="stable")[:length]
        out[str(length)] = {
            "top": metrics.mean_average_precision(truncate_codes(q, w, length), truncate_codes(db, w, length), yq, yd),
            "bottom": metrics.mean_average_precision(q[:, low], db[:, low], yq, yd),
            "first": metrics.mean_average_precision(q[:, :length], db[:, :length], yq, yd)}
    out = json.loads(json.dumps(out, default=float))
    path.write_text(json.dumps(out, indent=2))
    return out


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


def _command_line() -> str:
    """This script's arguments without --table-only and --out (which only rewrite a table)."""
    argv, kept = sys.argv[1:], []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a == "--out":
            skip = True
        elif a != "--table-only" and not a.startswith("--out="):
            kept.append(a)
    return " ".join(kept)


def setting(args) -> tuple[str, int]:
    """What the runs train, in words, and the width d of the features the hash head sees."""
    if args.features:
        from jhash import features

        meta = features.read_meta(args.features)
        model = meta.get("model", {})
        if meta.get("from") == "run":  # a backbone trained here, on the training split only
            run = pathlib.Path(meta["workdir"])
            source = (f"the `{model.get('name')}` network trained by {meta.get('method', '?').upper()} on the "
                      f"{meta.get('trained_on', '?')} (its queries unseen; run `{run.name}`")
            if (run / "metrics.json").exists() and (run / "config.json").exists():  # the run is at hand
                config, metrics = (json.loads((run / f).read_text()) for f in ("config.json", "metrics.json"))
                source += (f": {config['num_epochs']} epochs, its own {config['bits']}-bit codes mAP@ALL "
                           f"{metrics['map@all']:.4f}")
            source += ")"
        else:
            source = f"`{model.get('name', '?')}` " + (f"with the weights of `{pathlib.Path(model['weights']).name}`"
                                                        if model.get("weights") else "with random weights")
        return (f"on the {meta['dim']}-d features of {meta.get('source_dataset', args.dataset)} cached from {source} "
                f"(`{args.features}`, experiments/extract_features.py); the hash head alone is trained on them "
                "(`experiments/configs/features.py`: MLP with no hidden layer, Adam lr 1e-3, batch 64, "
                f"{args.epochs or 50} epochs)", int(meta["dim"]))
    from jhash.configs.common import experiment_config

    model = experiment_config(args.method, dataset=args.dataset, bits=32, cpu=not args.full).model
    budget = "full configs" if args.full else "CPU-sized configs (cpu=true)"
    return (f"on the shared network and budget ({budget}, `experiments/configs/common.py`; Adam lr 1e-3)",
            int(model.get("dense", (model.get("hidden") or (0,))[-1])))


def write_table(args, path: pathlib.Path) -> None:
    rows = collect(args)
    trained, d = setting(args)
    lines = [
        f"# Hash heads and code regularizers on {args.dataset}" + (" (cached features)" if args.features else ""),
        "",
        "Made by `python experiments/codes_ablation.py " + _command_line() + "` (work dirs in "
        f"`{args.workdir}`).",
        "",
        f"{args.method.upper()} with its defaults, protocol `{args.dataset}`, {trained}; split of seed 0 for every "
        "run, seeds "
        + ", ".join(map(str, args.seeds)) + " for the initialisation and the data order; mean ± std over the "
        "seeds that finished (n = their number when fewer than " + str(len(args.seeds)) + "). Heads "
        "(`config.model.head`, jhash/models/heads.py): `fc` one dense layer; `ninh` NINH's divide-and-encode "
        f"(the {d} features cut into q slices, slice i -> bit i); `grouped` 4 sub-networks (hidden layer of "
        f"{d}/4 units, ReLU) of q/4 bits each over the shared {'features' if args.features else 'trunk'}. "
        "Regularizers (`config.regularize`, "
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
        for head in args.heads:
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
    lines += scalable_table(args)
    lines += quant_table(args)
    missing = [f"{b} bits" for b in args.bits if not any(k[0] == b for k in rows)]
    if not rows:
        lines += ["The heads x regularizers part (`--parts main`) was not run for this table.", ""]
    elif missing:
        lines += ["Not run yet: " + ", ".join(missing) + ". Running the same command again trains only the "
                  "missing runs and rewrites this table.", ""]
    path.write_text("\n".join(lines))


def scalable_table(args) -> list[str]:
    folder = pathlib.Path(args.workdir) / f"scalable_bits={args.scalable_bits}"
    if not (folder / "sweep.json").exists():
        return []
    _, records = sweep.collect(folder)
    if not records:
        return []
    stats = [truncation_stats(r["dir"]) for r in records]
    n = len(args.seeds)
    lines = [f"## Bit-scalable codes: weighted-bits head, {args.scalable_bits} bits", "",
             f"DPSH with DRSCH's weighted bits (`head=weighted`, jhash/models/heads.py) at {args.scalable_bits} bits, "
             "no regularizer. Its codes cut to L bits: the L bits of largest learned |w_k| (DRSCH's truncation), "
             "the L of smallest |w_k|, and the first L bits (a fixed arbitrary subset). mAP@ALL over the database; "
             f"seeds: {len(stats)} of {n}. Learned |w_k|: from {_cell([min(map(abs, s['weights'])) for s in stats], '{:.3f}', n)} "
             f"to {_cell([max(map(abs, s['weights'])) for s in stats], '{:.3f}', n)}.", "",
             "| L | top-weighted L bits | lowest-weighted L bits | first L bits |", "|---|---|---|---|"]
    for length in (b for b in (8, 16, 32) if b < args.scalable_bits):
        lines.append(f"| {length} | " + " | ".join(_cell([s[str(length)][k] for s in stats], n_full=n)
                                                   for k in ("top", "bottom", "first")) + " |")
    lines += [f"| {args.scalable_bits} (all) | " + _cell([s["full"] for s in stats], n_full=n) + " | | |", ""]
    return lines


def parse_args(argv=None) -> argparse.Namespace:
    """The command line, with --bits, --seeds, --heads and --parts as lists and --workdir filled in."""
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
    p.add_argument("--parts", default="main,scalable,quant",
                   help="main (heads x regularizers), scalable (weighted bits), quant (quantizers vs binary codes)")
    p.add_argument("--scalable-bits", type=int, default=32)
    p.add_argument("--features", default="",
                   help="train on this feature file (experiments/extract_features.py) instead of the images: the "
                        "hash head alone on the cached features (experiments/configs/features.py); --dataset names "
                        "the source dataset's protocol")
    p.add_argument("--heads", default=",".join(HEADS), help="the hash heads of the main part")
    p.add_argument("--binary-reference", default="hashnet",
                   help="the binary method next to --method in the quantization part (default: HashNet, the best "
                        "binary method of experiments/results/deep_mnist.md)")
    p.add_argument("--table-only", action="store_true", help="write the table from the finished runs, train nothing")
    args = p.parse_args(argv)
    args.bits = [int(b) for b in args.bits.split(",")]
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.heads = args.heads.split(",")
    if set(args.heads) - set(HEADS):
        raise ValueError(f"--heads takes {', '.join(HEADS)}, got {args.heads}")
    args.workdir = args.workdir or f"runs/codes_{args.dataset}"
    args.parts = args.parts.split(",")
    unknown = sorted(set(args.parts) - {"main", "scalable", "quant"})
    if unknown:
        raise ValueError(f"--parts takes main, scalable and/or quant, got {unknown}")
    return args


def main(argv=None):
    args = parse_args(argv)
    out = pathlib.Path(args.out or REPO / f"experiments/results/codes_{args.dataset}.md")
    parts = args.parts

    def logger(prefix):
        def log(message):
            print(f"{prefix} {message}", flush=True)
            write_table(args, out)
        return log

    if not args.table_only:
        if "scalable" in parts:
            sweep.run_sweep(scalable_spec(args), pathlib.Path(args.workdir) / f"scalable_bits={args.scalable_bits}",
                            log=logger(f"weighted head, {args.scalable_bits} bits"))
        for bits in args.bits:
            if "main" in parts:
                sweep.run_sweep(spec_for(args, bits), pathlib.Path(args.workdir) / f"bits={bits}",
                                log=logger(f"{bits} bits"))
            if "quant" in parts:
                sweep.run_sweep(quant_spec(args, bits), pathlib.Path(args.workdir) / f"quant_bits={bits}",
                                log=logger(f"quantizers, {bits} bits"))
    write_table(args, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
