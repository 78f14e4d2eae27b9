"""Digests of every method's codes on the bundled digits: a refactoring must leave them byte-identical.

    PYTHONPATH=. python experiments/codes_digest.py --out runs/digests.json            # record
    PYTHONPATH=. python experiments/codes_digest.py --compare runs/digests.json        # check; exit 1 on a change

For each deep method (jhash.methods.available()): its config file at 16 bits on digits with
tests/test_methods.py's small settings (MLP 64, 20 epochs, one device), trained through
``jhash.train.train`` in a temporary work dir; the digest is the SHA-256 of every array in
its codes.npz (query and database codes and labels). For each shallow method (the rows of
experiments/configs/shallow.py): fitted on the digits split at 16 bits, seed 0, with the
per-dataset settings of that config; the digest covers the query and database codes. For the
online methods: both stage runs of experiments/online_mnist.py on digits (2 stages of 5
classes), the digest covers every stage's figures and codes. ``--kinds`` and ``--methods``
restrict the set; ``--compare`` reports every method whose digest differs and exits 1.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import pathlib
import sys
import tempfile
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "experiments" / "configs"))

SMALL = ["model.hidden=(64,)", "num_epochs=20", "checkpoint_every=140", "log_every=35", "progress=false",
         "num_devices=1"]
EXTRA = {"mmhh": ["mmhh.memory_after=70"], "dseh": ["dseh.label_epochs=3"], "ddsh": ["ddsh.num_samples=100"],
         "adsh": ["adsh.num_samples=256"], "dsdh": ["dsdh.eta=5.5"]}


def _hash_arrays(arrays: dict) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(np.asarray(arrays[name]))
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def deep_digest(method: str) -> dict:
    from jhash.config import apply_overrides, load_config
    from jhash.train import train

    c = load_config(str(REPO / f"experiments/configs/{method}.py") + ":dataset=digits,bits=16")
    c = apply_overrides(c, SMALL + EXTRA.get(method, []))
    with tempfile.TemporaryDirectory() as tmp:
        results = train(c, tmp)
        with np.load(pathlib.Path(tmp) / "codes.npz") as z:
            digest = _hash_arrays({k: z[k] for k in z.files})
    return {"digest": digest, "map@all": results["map@all"]}


def shallow_digest(method: str) -> dict:
    import jax
    import shallow as shallow_config  # experiments/configs/shallow.py

    import jhash.data as jdata
    from jhash import metrics, shallow

    cfg = shallow_config.get_config(f"method={method},dataset=digits,bits=16,seed=0")
    ds = jdata.load("digits")
    split = jdata.make_split(ds, jdata.get_protocol(cfg.protocol), 0)
    flat = lambda idx: ds.x[idx].reshape(len(idx), -1).astype(np.float32) / cfg.scale  # noqa: E731
    hasher = shallow.get_method(cfg.fit_method)(flat(split.train), ds.y[split.train], bits=16,
                                                key=jax.random.key(0), **cfg.hyper)
    qc, dc = np.asarray(hasher.encode(flat(split.query))), np.asarray(hasher.encode(flat(split.database)))
    return {"digest": _hash_arrays({"query": qc, "database": dc}),
            "map@all": float(metrics.mean_average_precision(qc, dc, ds.y[split.query], ds.y[split.database], k=None))}


def online_digest(method: str) -> dict:
    from jhash.config import load_config
    from jhash.online import dihn, load_stage_data, mihash

    name = "online_mihash" if method == "mihash" else "dihn"
    config = load_config(str(REPO / f"experiments/configs/{name}.py") + ":dataset=digits,bits=16,seed=0")
    config.stages.first, config.stages.per_stage = 5, 5
    data = load_stage_data("digits", split_seed=0, first=5, per_stage=5)
    runs = (mihash if method == "mihash" else dihn).run_stages(config, data)
    arrays, maps = {}, []
    for s, r in enumerate(runs):
        maps.append(float(r["map"]))
        for k, v in r.items():
            if "seconds" in k or k.endswith("_s"):
                continue  # wall time differs run to run
            if isinstance(v, (np.ndarray, list)) or hasattr(v, "shape"):
                arrays[f"{s}/{k}"] = np.asarray(v)
            elif isinstance(v, dict):
                for kk, vv in v.items():
                    arrays[f"{s}/{k}/{kk}"] = np.asarray(vv)
            elif isinstance(v, (int, float)) and "seconds" not in k and not k.endswith("_s"):  # wall time differs
                arrays[f"{s}/{k}"] = np.asarray(v, np.float64)
    return {"digest": _hash_arrays(arrays), "map@all": maps[-1]}


def all_methods(kinds) -> list[tuple[str, str]]:
    out = []
    if "deep" in kinds:
        from jhash import methods

        out += [("deep", m) for m in methods.available()]
    if "shallow" in kinds:
        import shallow as shallow_config

        out += [("shallow", m) for m in shallow_config.method_names()]
    if "online" in kinds:
        out += [("online", "mihash"), ("online", "dihn")]
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", help="write the digests to this JSON file")
    p.add_argument("--compare", help="compare with the digests in this JSON file; exit 1 when one differs")
    p.add_argument("--kinds", default="deep,shallow,online")
    p.add_argument("--methods", default="", help="comma-separated names (default: every method of --kinds)")
    args = p.parse_args(argv)
    kinds = set(args.kinds.split(","))
    chosen = set(filter(None, args.methods.split(",")))
    runner = {"deep": deep_digest, "shallow": shallow_digest, "online": online_digest}
    expected = json.loads(pathlib.Path(args.compare).read_text()) if args.compare else {}
    found, changed = {}, []
    for kind, method in all_methods(kinds):
        if chosen and method not in chosen:
            continue
        key = f"{kind}/{method}"
        t0 = time.perf_counter()
        found[key] = runner[kind](method)
        found[key]["seconds"] = round(time.perf_counter() - t0, 1)
        same = ""
        if key in expected:
            same = "same" if expected[key]["digest"] == found[key]["digest"] else "CHANGED"
            if same == "CHANGED":
                changed.append(key)
        print(f"{key:24s} {found[key]['digest'][:16]} map {found[key]['map@all']:.4f} "
              f"{found[key]['seconds']:6.1f} s {same}", flush=True)
        if args.out:
            path = pathlib.Path(args.out)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(found, indent=1, sort_keys=True))
            tmp.replace(path)
    if changed:
        print(f"{len(changed)} changed: {', '.join(changed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
