"""The input pipeline against the old in-memory path and a plain PIL loop, and its peak memory.

Throughput (images/s of the pipeline alone, model-ready float32 batches of 64, evaluation view):

  python experiments/bench/input_pipeline.py throughput [--images 2000] [--repeat 3]

builds a tree of JPEGs of varying size (32 px: 32-48 px sides; 224 px: 250-500 px sides, as
NUS-WIDE / ImageNet files), then times, alternating the contenders, best of ``--repeat``:

  grain w=N   jhash.data.stream over a lazy ImageArray (decode, resize the shorter side, centre
              crop, to_float) with N grain worker processes (N = 1, 2), or in-process (w=0):
              images/s after the first batch, and the time to the first batch (start-up:
              spawning the workers, importing grain) printed apart
  PIL loop    one process: open, convert, resize, crop, stack, divide: the same work, no pipeline
  in-memory   the old path: batches gathered from a uint8 array decoded up front (only possible
              for same-size images; its up-front decode time is printed separately)

and the ResNet-18 DPSH training step on this CPU (batch 32 at 224 px, 64 at 32 px) in images/s,
so the pipeline's rate can be compared with what the step consumes.

Peak RSS (``rss``): trains DPSH (small CNN, 32 px) on an ``imagelist:`` tree of 10,000 and of
100,000 synthetic JPEGs (2,000 training items, 500 queries, the rest the database) and prints the
peak resident memory of the training process (and of its largest worker) for each:

  python experiments/bench/input_pipeline.py rss [--sizes 10000 100000]

Results: experiments/results/input_pipeline.md.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np


def make_tree(root: pathlib.Path, n: int, lo: int, hi: int, seed: int = 0) -> list[str]:
    """n JPEGs of random sizes in [lo, hi] under root/images; returns their relative paths."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    paths = []
    base = rng.integers(0, 256, (hi, hi, 3), dtype=np.uint8)
    for i in range(n):
        w, h = (int(v) for v in rng.integers(lo, hi + 1, 2))
        rel = f"images/{i // 1000:03d}/{i:06d}.jpg"
        (root / rel).parent.mkdir(exist_ok=True)
        img = np.roll(base, i, axis=0)[:h, :w]
        Image.fromarray(img).save(root / rel, quality=85)
        paths.append(rel)
    return paths


def pil_loop(root, paths, idx, size, resize):
    """The plain loop every PyTorch collection runs per item (torchvision's Resize + CenterCrop), in one process."""
    from PIL import Image

    out = np.empty((len(idx), size, size, 3), np.float32)
    for k, i in enumerate(idx):
        with Image.open(os.path.join(root, paths[i])) as im:
            im = im.convert("RGB")
            w, h = im.size
            s = resize / min(w, h)
            im = im.resize((max(resize, round(w * s)), max(resize, round(h * s))), Image.BILINEAR)
            w, h = im.size
            left, top = (w - size) // 2, (h - size) // 2
            out[k] = np.asarray(im.crop((left, top, left + size, top + size)), np.float32) / 255
    return out


def throughput(args):
    from jhash import data as jd
    from jhash.data.images import FileImages, ImageArray

    batch, n_batches = 64, args.images // 64
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size, (lo, hi) in ((32, (32, 48)), (224, (250, 500))):
            root = pathlib.Path(tmp) / str(size)
            paths = make_tree(root, args.images, lo, hi)
            x = ImageArray(FileImages(root, paths), size)
            order = np.random.default_rng(0).permutation(args.images)[: n_batches * batch].reshape(n_batches, batch)

            def grain(workers):
                reader = jd.BatchReader(x, None, np.arange(args.images), lambda s: order[s])
                t0 = time.perf_counter()
                for s, b in enumerate(jd.stream(reader, 0, n_batches, workers=workers, prefetch=2)):
                    b["x"].sum()
                    if s == 0:
                        first = time.perf_counter()
                startup[workers] = min(startup.get(workers, 1e9), first - t0)
                return (n_batches - 1) * batch / (time.perf_counter() - first)

            t0 = time.perf_counter()
            memory = x[np.arange(args.images)]  # the old path: every image decoded and resized up front
            decode_s = time.perf_counter() - t0

            def in_memory():
                for idx in order:
                    jd.to_float(memory[idx]).sum()

            def pil():
                for idx in order:
                    pil_loop(root, paths, idx, size, x.resize).sum()

            contenders = {"grain w=0": lambda: grain(0), "grain w=1": lambda: grain(1), "grain w=2": lambda: grain(2),
                          "PIL loop": pil, "in-memory (old)": in_memory}
            rate, startup = {k: 0.0 for k in contenders}, {}
            for _ in range(args.repeat):  # alternate the contenders; best rate of each
                for name, fn in contenders.items():
                    t0 = time.perf_counter()
                    steady = fn()  # grain: images/s after its first batch (its start-up is reported apart)
                    rate[name] = max(rate[name], steady or n_batches * batch / (time.perf_counter() - t0))
            for name, r in rate.items():
                w = int(name[-1]) if name.startswith("grain") else None
                label = name if w is None else f"{name} (first batch after {startup[w]:.1f} s)"
                rows.append({"size": size, "contender": label, "images_per_s": r, "vs_PIL": r / rate["PIL loop"]})
            rows.append({"size": size, "contender": "old path's up-front decode", "images_per_s": args.images / decode_s,
                         "vs_PIL": None})
            rows.append({"size": size, "contender": "ResNet-18 DPSH step (consumes)",
                         "images_per_s": resnet_step_rate(size), "vs_PIL": None})
    print(f"| size | contender | images/s | x PIL loop |\n|---|---|---|---|")
    for r in rows:
        ratio = "" if r["vs_PIL"] is None else f"{r['vs_PIL']:.2f}"
        print(f"| {r['size']} | {r['contender']} | {r['images_per_s']:.0f} | {ratio} |")


def resnet_step_rate(size: int, steps: int = 3) -> float:
    """Images/s of jhash's jitted DPSH step with ResNet-18 (random weights) on this CPU."""
    import jax

    from jhash import methods
    from jhash.config import base_config
    from jhash.train.state import data_sharded, make_mesh
    from jhash.train.trainer import training_setup

    batch = 32 if size >= 224 else 64
    c = base_config()
    c.model = {"name": "resnet18", "weights": "", "resize": 0}
    c.batch_size = batch
    c.dpsh = methods.get_method("dpsh").defaults()
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 1000).astype(np.int32)
    method = methods.build(c, train_labels=labels)
    mesh = make_mesh(1)
    x = rng.random((batch, size, size, 3), dtype=np.float32)
    state, step = training_setup(method, c, mesh, x[:1], steps_per_epoch=10, num_steps=100)
    b = {"x": x, "y": labels[:batch], "index": np.arange(batch, dtype=np.int32)}
    state, _ = step(state, jax.device_put(b, data_sharded(mesh)))  # compile
    jax.block_until_ready(state.step)
    t0 = time.perf_counter()
    for _ in range(steps):
        state, _ = step(state, jax.device_put(b, data_sharded(mesh)))
    jax.block_until_ready(state.step)
    return steps * batch / (time.perf_counter() - t0)


RSS_CHILD = r"""
import json, resource, sys
from jhash.config import apply_overrides, load_config
from jhash.train import train
root, workdir = sys.argv[1], sys.argv[2]
c = load_config("method:dpsh:dataset=mnist")
c = apply_overrides(c, [f"dataset=imagelist:{root}/lists", f"data_dir={root}", "image_size=32", "batch_size=64",
                        "num_epochs=2", "progress=false", "num_devices=1", "eval.batch_size=512"])
m = train(c, workdir)
print(json.dumps({"map@all": m["map@all"],
                  "rss_self_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rss_largest_child_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def rss(args):
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            root = pathlib.Path(tmp) / str(n)
            t0 = time.perf_counter()
            paths = make_tree(root, n, 32, 48)
            labels = np.random.default_rng(1).integers(0, 10, n)
            lines = [f"{p} {' '.join('1' if k == y else '0' for k in range(10))}\n" for p, y in zip(paths, labels)]
            (root / "lists").mkdir()
            (root / "lists" / "test.txt").write_text("".join(lines[:500]))
            (root / "lists" / "database.txt").write_text("".join(lines[500:]))
            (root / "lists" / "train.txt").write_text("".join(lines[500:2500]))
            made_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", RSS_CHILD, str(root), str(root / "run")], check=True,
                                 capture_output=True, text=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            r.update(images=n, tree_s=made_s, run_s=time.perf_counter() - t0)
            rows.append(r)
            print(json.dumps(r), flush=True)
    print("| images | peak RSS, training process (MiB) | largest worker (MiB) | train + eval (s) | mAP@ALL |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['images']:,} | {r['rss_self_mib']:.0f} | {r['rss_largest_child_mib']:.0f} | {r['run_s']:.0f} | "
              f"{r['map@all']:.3f} |")
    if len(rows) == 2:
        print(f"ratio of peak RSS, {rows[1]['images']:,} / {rows[0]['images']:,} images: "
              f"{rows[1]['rss_self_mib'] / rows[0]['rss_self_mib']:.3f}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--images", type=int, default=2048)
    t.add_argument("--repeat", type=int, default=3)
    r = sub.add_parser("rss")
    r.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = p.parse_args()
    throughput(args) if args.what == "throughput" else rss(args)


if __name__ == "__main__":
    main()
