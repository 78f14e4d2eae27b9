"""Online and incremental hashing on mnist with classes arriving in stages: online MIHash and DIHN
against retraining from scratch; writes experiments/results/online_mnist.md.

Stages: classes 0-4, then one class per stage (5, ..., 9). The database of a stage is the
protocol's training items of the seen classes (mnist protocol: 500 per class), the queries
the protocol's queries of the seen classes (100 per class); mAP@all after each stage.

  online MIHash    experiments/configs/online_mihash.py (linear hash functions on pixels; the
                   database re-encoded only when the reservoir's MI gain passes the threshold)
  MIHash retrain   a fresh online MIHash learner streamed over all seen items (same passes per item)
  DIHN             experiments/configs/dihn.py (stage 0: ADSH; then old database codes frozen)
  ADSH retrain     ADSH from scratch on the whole seen database (re-encodes everything)

Run from the repository root (2-core CPU: about 10 minutes per seed with ``--cpu``):
  PYTHONPATH=. python experiments/online_mnist.py --data_dir ../shared/data --seeds 0,1,2
"""
from __future__ import annotations

import argparse
import json
import pathlib
import platform
import time

import numpy as np

from jhash.config import load_config
from jhash.online import dihn, load_stage_data, mihash

REPO = pathlib.Path(__file__).resolve().parents[1]


def run_seed(dataset, data_dir, bits, seed, cpu, methods):
    arg = f":dataset={dataset},bits={bits},seed={seed}"
    mi_config = load_config(str(REPO / "experiments/configs/online_mihash.py") + arg)
    dihn_config = load_config(str(REPO / "experiments/configs/dihn.py") + arg + f",cpu={str(cpu).lower()}")
    data = load_stage_data(dataset, data_dir=data_dir, split_seed=seed, **dihn_config.stages.to_dict())
    out = {}
    if "mihash" in methods:
        out["mihash"] = mihash.run_stages(mi_config, data)
        fix_config = mi_config.copy_and_resolve_references()
        fix_config.online_mihash.trigger = "fix"  # the same learner, the database re-encoded at every check
        for r, f in zip(out["mihash"], mihash.run_stages(fix_config, data, retrain=False)):
            r.update(fix_map=f["map"], fix_reencodings=f["reencodings"])
    if "dihn" in methods:
        out["dihn"] = [{k: v for k, v in r.items() if k != "codes"} for r in dihn.run_stages(dihn_config, data)]
    out["configs"] = {"online_mihash": mi_config.to_dict(), "dihn": dihn_config.to_dict()}
    out["database"] = [int(len(data.database(s))) for s in range(len(data.stages))]
    out["queries"] = [int(len(data.queries(s))) for s in range(len(data.stages))]
    out["classes"] = [int(len(data.seen(s))) for s in range(len(data.stages))]
    return out


def _cell(values, fmt="{:.4f}"):
    values = [v for v in values if v is not None]
    if not values:
        return ""
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(np.mean(values))} ± {fmt.format(np.std(values))}"


def write_table(runs: dict, path: pathlib.Path, args, wall: float) -> None:
    seeds = sorted(runs)
    first = runs[seeds[0]]
    n_stages = len(first["database"])
    mi_cfg, dihn_cfg = first["configs"]["online_mihash"], first["configs"]["dihn"]
    lines = [
        f"# Online and incremental hashing on {args.dataset}: classes arriving in stages, {args.bits} bits",
        "",
        f"Command: `PYTHONPATH=. python experiments/online_mnist.py --dataset {args.dataset} --data_dir {args.data_dir} "
        f"--bits {args.bits} --seeds {args.seeds}{' --cpu' if args.cpu else ''}` "
        f"(the last invocation {wall / 60:.1f} min on {platform.node() or 'this machine'}, a 2-core CPU shared with "
        "other jobs; seconds below are wall-clock under that load).",
        "",
        f"Protocol `{args.dataset}` (split seed = run seed): stage 0 brings the first {first['classes'][0]} classes "
        "(0-4), every later stage one more class (5, ..., 9). Database of a stage = the protocol's training items of the seen classes; queries = the "
        "protocol's queries of the seen classes; mAP@all (Hamming ranking, ties by database index). Seeds "
        f"{', '.join(map(str, seeds))} (split, initialisation, stream order); mean ± std over seeds.",
        "",
        "- **MIHash online** (jhash/online/mihash.py, experiments/configs/online_mihash.py): linear hash functions on "
        "the pixels (centred with stage 0's mean, unit length), SGD one item at a time on the MI against a reservoir "
        f"of {mi_cfg['online_mihash']['reservoir_size']}, {mi_cfg['online_mihash']['num_bins']} bins, steepness "
        f"{mi_cfg['online_mihash']['steepness']}, step size {mi_cfg['online_mihash']['learning_rate']}; each stage "
        f"streams {mi_cfg['online_mihash']['stream_epochs']} passes over its new items; a trigger check every "
        f"{mi_cfg['online_mihash']['update_interval']} items, re-encoding when the MI gain > "
        f"{mi_cfg['online_mihash']['trigger_threshold']}. Queries are encoded with the table's snapshot mapping. "
        "**MIHash retrain**: a fresh learner streamed over all seen items with the same passes per item, its "
        "database encoded with its final mapping.",
        "- **DIHN** (jhash/online/dihn.py, experiments/configs/dihn.py): stage 0 is ADSH; each later stage keeps all "
        "earlier database codes bit-identical and learns the new items' codes and a new query network. **ADSH "
        "retrain**: ADSH from scratch on the whole seen database (stage 0 is the same run). Network "
        f"{dihn_cfg['model']}, Adam lr {dihn_cfg['optimizer']['learning_rate']}, batch {dihn_cfg['batch_size']}, "
        f"budget num_epochs = {dihn_cfg['num_epochs']} (ADSH's rule: ceil(num_epochs x n / (3 x 2,000)) outer "
        "iterations of 3 epochs on 2,000 samples, n the stage's database), gamma "
        f"{dihn_cfg['dihn']['gamma']}, mu {dihn_cfg['dihn']['mu']}.",
        "",
        "| stage | classes | database | MIHash online (MI trigger) | re-encodings done / checks | "
        "MIHash online, re-encode at every check | MIHash retrain | "
        "DIHN | ADSH retrain | DIHN codes kept | DIHN s | retrain s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in range(n_stages):
        mi = [runs[k]["mihash"][s] for k in seeds if "mihash" in runs[k]]
        dh = [runs[k]["dihn"][s] for k in seeds if "dihn" in runs[k]]
        lines.append("| " + " | ".join([
            str(s), str(first["classes"][s]), str(first["database"][s]),
            _cell([r["map"] for r in mi]),
            (_cell([r["reencodings"] for r in mi], "{:.1f}") + " / " + _cell([r["checks"] for r in mi], "{:.0f}"))
            if mi else "",
            _cell([r["fix_map"] for r in mi]), _cell([r["retrain_map"] for r in mi]),
            _cell([r["map"] for r in dh]), _cell([r["retrain_map"] for r in dh]),
            _cell([r["codes_kept"] for r in dh], "{:.0f}"),
            _cell([r["seconds"] for r in dh], "{:.0f}"), _cell([r["retrain_seconds"] for r in dh], "{:.0f}"),
        ]) + " |")
    mi_all = [runs[k]["mihash"] for k in seeds if "mihash" in runs[k]]
    if mi_all:
        done = [rs[-1]["total_reencodings"] for rs in mi_all]
        checks = [sum(r["checks"] for r in rs) for rs in mi_all]
        bits = [rs[-1]["bits_recomputed"] for rs in mi_all]
        fixed_bits = [sum(r["checks"] * n for r, n in zip(rs, first["database"])) * args.bits for rs in mi_all]
        lines += ["", "MIHash database re-encodings over all stages: "
                  f"{_cell(done, '{:.1f}')} done of {_cell(checks, '{:.0f}')} checks, i.e. "
                  f"{_cell([c - d for c, d in zip(checks, done)], '{:.1f}')} avoided; bits recomputed "
                  f"{_cell(bits, '{:.3g}')} against {_cell(fixed_bits, '{:.3g}')} for re-encoding at every check "
                  "(the authors' 'fix' trigger)."]
    lines += ["", "Raw results per seed: the JSON file next to this table.", ""]
    path.write_text("\n".join(lines))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--data_dir", default="../shared/data")
    p.add_argument("--bits", type=int, default=32)
    p.add_argument("--seeds", default="0")
    p.add_argument("--cpu", action="store_true", help="the CPU-sized deep budget (config cpu=true)")
    p.add_argument("--methods", default="mihash,dihn")
    p.add_argument("--out", default=str(REPO / "experiments/results/online_mnist.md"))
    args = p.parse_args(argv)
    out = pathlib.Path(args.out)
    raw_path = out.with_suffix(".json")
    runs = {}
    if raw_path.exists():  # resume: keep finished seeds of the same settings
        saved = json.loads(raw_path.read_text())
        keys = ("dataset", "bits", "cpu", "methods")  # what the results depend on (not paths, not seeds)
        if all(saved.get("settings", {}).get(k) == vars(args)[k] for k in keys):
            runs = {int(k): v for k, v in saved["runs"].items()}
    started = time.perf_counter()
    for seed in (int(s) for s in args.seeds.split(",")):
        if seed in runs:
            continue
        runs[seed] = run_seed(args.dataset, args.data_dir, args.bits, seed, args.cpu, args.methods.split(","))
        raw_path.write_text(json.dumps({"settings": vars(args), "runs": runs}, indent=1, default=float))
        write_table(runs, out, args, time.perf_counter() - started)
        print(out.read_text(), flush=True)


if __name__ == "__main__":
    main()
