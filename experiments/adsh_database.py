"""ADSH's database codes V over the training set ('train') or over the whole labelled database ('whole',
the authors' setting and jhash's default) on mnist: mAP, train seconds, peak memory, and the cost of
one V-step at each database size.

    PYTHONPATH=. python experiments/adsh_database.py --data_dir ../shared/data [--bits 32] [--seeds 0,1,2]

Each (setting, bits, seed) trains in its own subprocess (so its peak resident memory is its own)
with experiments/configs/adsh.py's CPU-sized mnist variant (cpu=true), seed = split seed, and
``adsh.database`` set; both settings make the same number of network updates (the budget of the
protocol's training set). Finished runs are kept in --workdir and skipped. The V-step
micro-benchmark times one jitted V update (similarity block + bitwise update, as inside the
training step) at n = 5,000 and n = 69,000 and reads XLA's temporary-buffer size for it.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import resource
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]


def train_one(mode: str, bits: int, seed: int, data_dir: str, workdir: pathlib.Path) -> dict:
    """Trains one run in this process; returns its figures (peak RSS of this process included)."""
    from jhash.config import apply_overrides, load_config
    from jhash.train import train

    config = load_config(f"{REPO}/experiments/configs/adsh.py:dataset=mnist,bits={bits},cpu=true")
    config = apply_overrides(config, [f"data_dir={data_dir}", f"adsh.database={mode}", f"seed={seed}",
                                      f"split_seed={seed}", "progress=false"])
    started = time.perf_counter()
    results = train(config, workdir)
    wall = time.perf_counter() - started
    timing = json.loads((workdir / "timing.json").read_text())
    return {"mode": mode, "bits": bits, "seed": seed, "map": results["map@all"], "train_s": timing["train_s"],
            "steps": timing["steps"], "wall_s": wall,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def v_step_cost(n: int, bits: int = 32, m: int = 2000, classes: int = 10, repeats: int = 3) -> dict:
    """Seconds and XLA temporary bytes of one V update of ADSH over a database of ``n`` items."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jhash.methods.adsh import rescaled_similarity
    from jhash.solvers import adsh_update_v

    rng = np.random.default_rng(0)
    labels = jnp.asarray(rng.integers(0, classes, n))
    v = jnp.asarray(np.where(rng.standard_normal((n, bits)) >= 0, 1.0, -1.0), jnp.float32)
    omega = jnp.asarray(rng.permutation(n)[:m], jnp.int32)
    u = jnp.asarray(np.tanh(rng.standard_normal((m, bits))), jnp.float32)

    def step(v, u, labels, omega):
        s = rescaled_similarity(labels[omega], labels)
        return adsh_update_v(v, u, s, omega, gamma=200.0)

    compiled = jax.jit(step).lower(v, u, labels, omega).compile()
    compiled(v, u, labels, omega).block_until_ready()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        compiled(v, u, labels, omega).block_until_ready()
        times.append(time.perf_counter() - t0)
    memory = compiled.memory_analysis()
    temp = getattr(memory, "temp_size_in_bytes", None) if memory is not None else None
    return {"n": n, "bits": bits, "m": m, "v_step_s": float(np.median(times)),
            "temp_mb": None if temp is None else temp / 2 ** 20, "v_and_u_mb": 2 * n * bits * 4 / 2 ** 20,
            "similarity_mb": m * n * 4 / 2 ** 20}


def table(rows, costs, bits_list, seeds) -> str:
    import numpy as np

    def cell(mode, b, key, fmt):
        v = [r[key] for r in rows if r["mode"] == mode and r["bits"] == b]
        if not v:
            return "—"
        return f"{np.mean(v):{fmt}} ± {np.std(v):{fmt}}" + (f" (n={len(v)})" if len(v) < len(seeds) else "")

    out = ["# ADSH: database codes V over the training set or over the whole database (mnist)", "",
           ("Made by `python experiments/adsh_database.py` (CPU-sized config `experiments/configs/adsh.py:dataset=mnist,"
           "cpu=true`: the shared small CNN, Adam 1e-3, 3 outer iterations of 3 epochs over 2,000 sampled items; "
           "seed = split seed; mean ± std over seeds "
           f"{', '.join(map(str, seeds))}). 'train': V for the 5,000 training items, the other 64,000 database items "
           "encoded by the network (jhash before this option). 'whole' (default; the authors' code, "
           "jiangqy/ADSH-AAAI2018): Omega sampled from and V learned for all 69,000 database items, queries ranked "
           "against V. The same number of network updates in both settings. Seconds and memory on a 2-core CPU "
           "shared with other jobs (noisy); peak RSS of the whole training + evaluation process."), ""]
    for title, key, fmt in [("mAP@ALL", "map", ".4f"), ("Train seconds (incl. compilation)", "train_s", ".0f"),
                            ("Peak resident memory, MiB", "peak_rss_mb", ".0f")]:
        out += [f"## {title}", "", "| database codes | " + " | ".join(f"{b} bits" for b in bits_list) + " |",
                "|---" * (len(bits_list) + 1) + "|"]
        for mode, name in (("train", "V over the training set (5,000)"), ("whole", "V over the whole database (69,000)")):
            out.append(f"| {name} | " + " | ".join(cell(mode, b, key, fmt) for b in bits_list) + " |")
        out.append("")
    out += ["## One V-step (similarity block + bitwise update, jitted, 2,000 sampled items)", "",
            "| database items | bits | seconds | XLA temporaries, MiB | V and U, MiB | similarity block, MiB |",
            "|---|---|---|---|---|---|"]
    for c in costs:
        temp = "—" if c["temp_mb"] is None else f"{c['temp_mb']:.0f}"
        out.append(f"| {c['n']:,} | {c['bits']} | {c['v_step_s']:.2f} | {temp} | {c['v_and_u_mb']:.1f} | "
                   f"{c['similarity_mb']:.0f} |")
    return "\n".join(out) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data_dir", default="../shared/data")
    p.add_argument("--bits", default="32")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--workdir", default="runs/adsh_database")
    p.add_argument("--out", default="experiments/results/adsh_database.md")
    p.add_argument("--one", nargs=3, metavar=("MODE", "BITS", "SEED"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    root = pathlib.Path(a.workdir)
    if a.one:
        mode, bits, seed = a.one[0], int(a.one[1]), int(a.one[2])
        r = train_one(mode, bits, seed, a.data_dir, root / f"{mode}-{bits}-{seed}")
        (root / f"{mode}-{bits}-{seed}.json").write_text(json.dumps(r))
        return
    bits_list, seeds = [int(b) for b in a.bits.split(",")], [int(s) for s in a.seeds.split(",")]
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for b in bits_list:
        for seed in seeds:
            for mode in ("train", "whole"):
                done = root / f"{mode}-{b}-{seed}.json"
                if not done.exists():
                    subprocess.run([sys.executable, __file__, "--one", mode, str(b), str(seed), "--data_dir", a.data_dir,
                                    "--workdir", str(root)], check=True)
                rows.append(json.loads(done.read_text()))
                print(json.dumps(rows[-1]), flush=True)
    costs = [v_step_cost(n, b) for b in bits_list for n in (5_000, 69_000)]
    text = table(rows, costs, bits_list, seeds)
    pathlib.Path(a.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
