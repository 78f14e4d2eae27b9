"""Accelerator benchmark: jhash's training step and evaluation on one device (a GPU or TPU chip).

  python experiments/bench/accelerator.py            the full run (meant for under 8 minutes on one GPU; not yet
                                                     run on one: the compile of ResNet-50's canonical step decides)
  python experiments/bench/accelerator.py --quick    small sizes: checks on a CPU that it runs (seconds)

Prints a Markdown report, starting with the device (platform, kind, count, JAX version):

1. Training step: DPSH's jitted step (:func:`jhash.train.trainer.training_setup`, the default
   canonical reductions, one device) on synthetic inputs, for the small CNN at 28 px (the mnist
   config, batch 128) and ResNet-50 at 224 px (from scratch, batch 64), each in float32 and in
   bfloat16 (``config.dtype``). Milliseconds per step (the minimum over rounds that alternate the
   contenders, after a warm-up that includes compilation, whose seconds are shown), images per
   second, and the bfloat16 / float32 step-time ratio.
2. Evaluation at 10^6 database items: encoding them with the small CNN (28 px synthetic images,
   ``jhash.evaluate.encode``, batch 1,024, both dtypes), and the retrieval metrics the evaluator
   computes (``jhash.evaluate.retrieval_metrics``: mAP@ALL, mAP@1000, tie-aware mAP, P/R at radius 2
   by ranking and by lookup) for 1,000 queries against 10^6 codes of 64 bits (on the host's CPU).
"""
from __future__ import annotations

import argparse
import pathlib
import time

import jax
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[2]

# name: (config.model, or None for the mnist config's small CNN; input shape; batch size); DPSH, 32 bits
JOBS = {
    "cnn-28px": (None, (28, 28, 1), 128),
    "resnet50-224px": ({"name": "resnet50"}, (224, 224, 3), 64),
}
QUICK = {"cnn-28px": ((28, 28, 1), 32), "resnet50-224px": ((64, 64, 3), 8)}  # --quick: smaller inputs and batches


def _config(job: str, dtype: str, batch: int):
    from jhash.config import apply_overrides, load_config

    c = load_config(str(REPO / "experiments/configs/dpsh.py") + ":dataset=mnist,bits=32")
    if JOBS[job][0] is not None:
        c.model = JOBS[job][0]
    return apply_overrides(c, [f"dtype={dtype}", f"batch_size={batch}", "num_devices=1"])


def _step_setup(job: str, dtype: str, shape, batch: int):
    """``(run(steps) -> seconds, compile_s)`` of the job's jitted step on 4 synthetic batches held on the device."""
    from jhash import methods
    from jhash.train.state import data_sharded, make_mesh
    from jhash.train.trainer import training_setup

    c = _config(job, dtype, batch)
    rng = np.random.default_rng(0)
    n = 4 * batch
    x = rng.random((n, *shape), dtype=np.float32)
    y = rng.integers(0, 10, n).astype(np.int32)
    method = methods.build(c, train_labels=y)
    mesh = make_mesh(1)
    state, step_fn = training_setup(method, c, mesh, x[:1], steps_per_epoch=4, num_steps=10 ** 6)
    batches = [jax.device_put({"x": x[i * batch:(i + 1) * batch], "y": y[i * batch:(i + 1) * batch],
                               "index": np.arange(i * batch, (i + 1) * batch, dtype=np.int32)}, data_sharded(mesh))
               for i in range(4)]
    holder = [state]
    start = time.perf_counter()
    holder[0], _ = step_fn(holder[0], batches[0])
    jax.block_until_ready(holder[0])
    compile_s = time.perf_counter() - start
    for s in range(1, 3):
        holder[0], _ = step_fn(holder[0], batches[s])
    jax.block_until_ready(holder[0])

    def run(steps: int) -> float:
        start = time.perf_counter()
        for s in range(steps):
            holder[0], _ = step_fn(holder[0], batches[s % 4])
        jax.block_until_ready(holder[0])
        return (time.perf_counter() - start) / steps

    return run, compile_s


def training_steps(quick: bool, rounds: int) -> list[str]:
    lines = ["| model | input | batch | dtype | compile + first step (s) | ms / step | images / s | bf16 / f32 |",
             "|---|---|---|---|---|---|---|---|"]
    for job in JOBS:
        shape, batch = QUICK[job] if quick else JOBS[job][1:]
        steps = 3 if quick else (50 if job.startswith("cnn") else 15)
        runs = {dt: _step_setup(job, dt, shape, batch) for dt in ("float32", "bfloat16")}
        best = {dt: float("inf") for dt in runs}
        for _ in range(rounds):  # the dtypes alternate, so that other load hits both alike
            for dt, (run, _) in runs.items():
                best[dt] = min(best[dt], run(steps))
        for dt in runs:
            ratio = f"{best[dt] / best['float32']:.3f}" if dt != "float32" else ""
            lines.append(f"| {job.split('-')[0]} | {'x'.join(map(str, shape))} | {batch} | {dt} | "
                         f"{runs[dt][1]:.1f} | {1e3 * best[dt]:.2f} | {batch / best[dt]:,.0f} | {ratio} |")
        del runs
    return lines


def evaluation(quick: bool) -> list[str]:
    from jhash import evaluate, methods
    from jhash.models import compute_dtype
    from jhash.train.state import make_mesh
    from jhash.train.trainer import init_state, make_optimizer

    n_db = 20_000 if quick else 1_000_000
    n_q = 200 if quick else 1_000
    lines = ["| what | items | dtype | seconds | items / s |", "|---|---|---|---|---|"]
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n_db, 28, 28, 1), dtype=np.uint8)
    for dt in ("float32", "bfloat16"):
        c = _config("cnn-28px", dt, 128)
        method = methods.build(c, train_labels=np.zeros(8, np.int32))
        state = init_state(method, make_optimizer(c.optimizer, steps_per_epoch=1, num_steps=1), c,
                           images[:1].astype(np.float32) / 255)
        enc = dict(batch_size=1024, mesh=make_mesh(1), workers=0, dtype=compute_dtype(dt))
        evaluate.encode(method, state, images[:2048], **enc)  # compiles
        start = time.perf_counter()
        evaluate.encode(method, state, images, **enc)
        seconds = time.perf_counter() - start
        lines.append(f"| encode (CNN, 28 px) | {n_db:,} | {dt} | {seconds:.2f} | {n_db / seconds:,.0f} |")
    bits, classes = 64, 10
    centres = np.where(rng.random((classes, bits)) < 0.5, -1, 1).astype(np.int8)
    yd, yq = rng.integers(0, classes, n_db), rng.integers(0, classes, n_q)
    flip = lambda y: np.where(rng.random((len(y), bits)) < 0.2, -centres[y], centres[y]).astype(np.int8)  # noqa: E731
    d, q = flip(yd), flip(yq)
    evaluate.retrieval_metrics(q[:10], d[:1000], yq[:10], yd[:1000], map_k=100)  # compiles the kernels
    start = time.perf_counter()
    evaluate.retrieval_metrics(q, d, yq, yd, map_k=1000)
    seconds = time.perf_counter() - start
    lines.append(f"| retrieval metrics, {n_q:,} queries, {bits} bits (host CPU) | {n_db:,} | - | {seconds:.2f} | "
                 f"{n_db * n_q / seconds:,.0f} pairs |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to check on a CPU that it runs")
    parser.add_argument("--rounds", type=int, default=3, help="alternating timing rounds per training job")
    args = parser.parse_args()
    started = time.perf_counter()
    device = jax.devices()[0]
    print(f"# jhash accelerator benchmark{' (--quick: small sizes)' if args.quick else ''}\n")
    print(f"Device: {device.platform}, {device.device_kind}, {jax.device_count()} device(s); JAX {jax.__version__}\n")
    print("## Training step (DPSH, synthetic inputs, one device)\n")
    print("\n".join(training_steps(args.quick, args.rounds)))
    print("\n## Evaluation\n")
    print("\n".join(evaluation(args.quick)))
    print(f"\nTotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
