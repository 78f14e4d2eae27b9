"""The ``jhash`` command (thin: parse, then call the trainer, evaluator, sweep runner).

  jhash train [--config experiments/configs/dpsh.py:dataset=digits,bits=32] [--workdir DIR] [--config.FIELD=VALUE ...]
  jhash eval --workdir DIR
  jhash train|eval ... --coordinator=HOST:PORT --num_processes=N --process_id=I
                                                   one of N processes of a multi-host run (jhash.distributed);
                                                   --distributed: JAX detects them (Cloud TPU, SLURM)
  jhash sweep --config 'experiments/configs/{method}.py:dataset=mnist' --grid method=dpsh,dch --grid seed=0,1,2 \
      --workdir DIR [--config.FIELD=VALUE ...]      (resumable; see jhash.sweep)
  jhash aggregate DIR                              results.md, results.csv, plots/ of a sweep
  jhash reproduce RUN_DIR [--workdir DIR]          rerun a finished run; exit 0 when bit-identical, 1 otherwise

With no arguments ``jhash train`` runs DPSH on scikit-learn's bundled digits (no download)
at 32 bits (``method:dpsh``, the config file installed with jhash) and prints a results table. ``--config``
and ``--config.FIELD=VALUE`` are read by ``ml_collections.config_flags`` (through :mod:`jhash.config`, the
same path the sweep runner and library code take): a typo in a field is an error with a "did you mean".
"""
from __future__ import annotations

import argparse
import gc
import os
import pathlib
import re
import sys
import time

DEFAULT_CONFIG = "method:dpsh"  # experiments/configs/dpsh.py, installed with jhash as jhash/configs/dpsh.py


def format_table(metrics: dict, title: str = "") -> str:
    """A two-column Markdown table of ``metrics``."""
    rows = [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items()]
    head = [title, ""] if title else []
    return "\n".join(head + ["| metric | value |", "|---|---|", *rows])


def _split_overrides(extra: list[str]) -> list[str]:
    out, i = [], 0
    while i < len(extra):
        m = re.fullmatch(r"--config\.([\w.]+)(?:=(.*))?", extra[i])
        if not m:
            raise SystemExit(f"jhash: unknown argument {extra[i]!r} (overrides look like --config.FIELD=VALUE)")
        value = m.group(2)
        if value is None:
            if i + 1 >= len(extra):
                raise SystemExit(f"jhash: {extra[i]} needs a value")
            value, i = extra[i + 1], i + 1
        out.append(f"{m.group(1)}={value}")
        i += 1
    return out


def _start_distributed(args) -> None:
    """Joins a multi-process run when the command asks for one (before anything else starts JAX)."""
    given = [args.coordinator, args.num_processes, args.process_id]
    if args.distributed and any(v is not None for v in given):
        raise ValueError("--distributed detects the cluster; give it alone or give --coordinator, --num_processes "
                         "and --process_id without it")
    if args.distributed or any(v is not None for v in given):
        from jhash import distributed

        distributed.initialize(*given)


def main(argv=None) -> int:
    """Runs a command; a bad config, input, data folder or work dir prints one line (``jhash: error: ...``)
    and exits 2; Ctrl-C prints one line and exits 130. In a multi-process run, a process that fails
    (or whose peer died) prints one line and exits at once (code 1 when a peer failed) rather than
    waiting at JAX's shutdown barrier for processes that will not come."""
    try:
        return _main(argv)
    except (ValueError, OSError, FloatingPointError) as e:  # includes CheckpointError, DataUnavailableError, WorkdirError
        print(f"jhash: error: {e}", file=sys.stderr)
        return _leave(2)
    except KeyboardInterrupt:
        print("jhash: interrupted; a training run resumes from its last checkpoint when the command is run again",
              file=sys.stderr)
        # Under `python -m`, CPython marks a KeyboardInterrupt raised inside exec() of a string (dataclasses does
        # that while a module is imported) as never caught even when it was, and at exit ends the process by SIGINT
        # instead of this exit code; running any string clears that mark.
        exec("None")
        return _leave(130)
    except Exception as e:
        if not _multi_process() or type(e).__name__ != "JaxRuntimeError":
            raise
        first = re.sub(r"(Error dispatching computation: )+", "", (str(e).strip().splitlines() or [""])[0])[:300]
        print(f"jhash: error: this process of a multi-process run stopped ({first}); another process probably "
              "failed or was killed: start all of them again and the run resumes from its last checkpoint",
              file=sys.stderr)
        return _leave(1)


def _multi_process() -> bool:
    return "jax" in sys.modules and sys.modules["jax"].distributed.is_initialized()


def _leave(code: int) -> int:
    """``code``, or, in a multi-process run, exits now without JAX's shutdown barrier (which waits for the
    other processes; they may be waiting in a collective for this one)."""
    if _multi_process():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _interrupted(signum, frame) -> None:
    """The SIGINT handler of ``jhash train``: sets ``trainer.INTERRUPTED`` (the training loop checks it every step, so
    a Ctrl-C that library code swallowed still stops the run) and raises KeyboardInterrupt, except inside a garbage
    collector callback (such as JAX's), where Python would only print it as "Exception ignored in ..."."""
    from jhash.train import trainer

    trainer.INTERRUPTED.set()
    callbacks = {getattr(c, "__code__", None) for c in gc.callbacks}
    while frame is not None:
        if frame.f_code in callbacks:
            return
        frame = frame.f_back
    raise KeyboardInterrupt


def _main(argv) -> int:  # deterministic GPU kernels: asked for by `import jhash` (jhash/_determinism.py)
    parser = argparse.ArgumentParser(prog="jhash", description="jhash: supervised learning to hash in JAX")
    sub = parser.add_subparsers(dest="command", required=True)
    p_train = sub.add_parser("train", help="train a method (resumes from the work dir's checkpoint), then evaluate")
    p_train.add_argument("--config", default=None, help=f"PATH[:ARG] (a config file and its argument), method:NAME[:ARG] or features:ARG "
                         f"(default {DEFAULT_CONFIG})")
    p_train.add_argument("--workdir", default=None, help="the run's folder (default runs/METHOD-DATASET-BITSb)")
    p_eval = sub.add_parser("eval", help="evaluate the latest checkpoint of a work dir")
    p_eval.add_argument("--workdir", required=True)
    for p in (p_train, p_eval):
        g = p.add_argument_group("multi-host (jhash.distributed; run the same command once per process)")
        g.add_argument("--coordinator", default=None, help="HOST:PORT of process 0's coordination service")
        g.add_argument("--num_processes", type=int, default=None, help="the number of processes")
        g.add_argument("--process_id", type=int, default=None, help="this process's id, 0 .. num_processes-1")
        g.add_argument("--distributed", action="store_true",
                       help="join a multi-process run whose settings JAX detects (Cloud TPU, SLURM, ...)")
    p_sweep = sub.add_parser("sweep", help="a grid of runs, each in its own folder; resumable")
    p_sweep.add_argument("--config", required=True, help="PATH[:ARG] with {key} placeholders filled from the grid")
    p_sweep.add_argument("--grid", action="append", default=[], help="key=v1,v2,... (repeatable)")
    p_sweep.add_argument("--workdir", required=True)
    p_sweep.add_argument("--no-aggregate", action="store_true", help="do not write the tables and plots at the end")
    p_agg = sub.add_parser("aggregate", help="tables (Markdown, CSV) and plots of a sweep folder")
    p_agg.add_argument("sweep_dir")
    p_agg.add_argument("--no-plots", action="store_true")
    p_rep = sub.add_parser("reproduce", help="rerun a finished run from its config and compare bit for bit")
    p_rep.add_argument("run_dir")
    p_rep.add_argument("--workdir", default=None, help="where to rerun (default: a new temporary folder)")
    args, extra = parser.parse_known_args(argv)

    from jhash import config as jconfig

    if args.command in ("train", "eval"):
        _start_distributed(args)

    if args.command != "train" and args.command != "sweep" and extra:
        parser.error(f"unknown arguments {extra}")
    if args.command == "sweep":
        from jhash import sweep

        spec = {"config": args.config, "grid": sweep.parse_grid(args.grid), "overrides": _split_overrides(extra)}
        sweep.run_sweep(spec, args.workdir)
        if not args.no_aggregate:
            print(sweep.aggregate(args.workdir)["markdown"].read_text())
        return 0
    if args.command == "aggregate":
        from jhash import sweep

        out = sweep.aggregate(args.sweep_dir, plots=not args.no_plots)
        print(out["markdown"].read_text())
        return 0
    if args.command == "reproduce":
        from jhash.reproduce import format_report, reproduce

        report = reproduce(args.run_dir, args.workdir)
        print(format_report(report))
        return 0 if report["identical"] else 1

    if args.command == "eval":
        from jhash.experiment import read_config
        from jhash.run import evaluate, validate_config

        start = time.time()
        config = read_config(args.workdir)
        validate_config(config)
        metrics = evaluate(config, args.workdir)
        import jax

        if jax.process_index() == 0:
            print(format_table(metrics, f"jhash eval {args.workdir} ({time.time() - start:.1f} s)"))
        return 0

    config = jconfig.load_config(args.config or DEFAULT_CONFIG)
    config = jconfig.apply_overrides(config, _split_overrides(extra))
    workdir = args.workdir or f"runs/{config.method}-{config.dataset}-{config.bits}b"
    import jax

    from jhash.io import read_json
    from jhash.run import train

    import signal

    from jhash.train import trainer

    trainer.INTERRUPTED.clear()
    signal.signal(signal.SIGINT, _interrupted)
    start = time.time()
    metrics = train(config, workdir)
    if jax.process_index() != 0:  # process 0 of a multi-process run prints the results
        return 0
    timing = read_json(pathlib.Path(workdir) / "timing.json")
    title = f"{config.method} on {config.dataset}, {config.bits} bits, workdir {workdir} ({time.time() - start:.1f} s"
    if "epoch_s" in timing:
        title += f"; {timing['epoch_s']:.2f} s per epoch, evaluation {timing['eval_s']:.1f} s"
    if "lookup_s" in timing:
        title += f"; radius-{config.eval.radius} lookup {1e3 * timing['lookup_s']:.1f} ms"
    print(format_table(metrics, title + ")"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
