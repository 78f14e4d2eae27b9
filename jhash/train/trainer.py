"""The one trainer: a jitted, data-parallel step over a device mesh, checkpoints, resume, logs, final evaluation.

A run lives in a work dir:

  config.json      the full config of the run
  split.npz        the query/train/database split (indices + checksum; reloaded exactly on resume)
  checkpoints/     orbax checkpoints of the train state (step, params, model state, optimizer, method state, key)
  metrics.jsonl    training metrics, one JSON object per logged step
  metrics.json     the final retrieval metrics by name (e.g. "map@all"), written by the evaluator
  codes.npz        query and database codes (packed) with their labels (see jhash.evaluate)
  curves.npz       precision/recall by Hamming radius, precision@k, precision-recall by rank
  timing.json      wall-clock seconds of the last call: training, per epoch (after compilation), evaluation,
                   the radius lookup of jhash.index in the evaluation (lookup_s)
  manifest.json    config, versions, git commit, devices, dataset and split checksums, one entry per call
  tensorboard/     the training metrics as TensorBoard event files
  .jhash.lock      the work dir's lock (jhash.io.workdir_lock): a second process is refused at once; the OS drops
                   the lock when its holder dies, so a killed run leaves none

Every result file is written to a temporary name and renamed (jhash.io), so a kill never leaves a
truncated one; a run counts as finished only when its result files parse
(jhash.train.manifest.result_problem). A call that fails before the run's first checkpoint
removes what it added to the work dir. When the newest checkpoint is damaged, training goes on
from the newest intact one (the damaged one is renamed damaged-STEP), saying so.

Everything a step does is a pure function of the train state and the batch; the batch of
step s is a pure function of (seed, s) and the step's randomness is fold_in(key, s), so a
run killed and resumed from its last checkpoint ends with the same codes as an
uninterrupted one.
"""
from __future__ import annotations

import functools
import json
import pathlib
import threading
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import PartitionSpec as P
from tqdm.auto import tqdm

from jhash import data as jdata
from jhash import distributed
from jhash import evaluate as jeval
from jhash import io as jio
from jhash import methods
from jhash.data.augment import get_augmentation
from jhash.experiment import (  # noqa: F401  (re-exported: the run's data and config, jhash.experiment)
    ExperimentData, _saved_config, check_same_config, load_dataset, load_experiment_data, read_config, run_split, validation_split)
from jhash.experiment import check_int as _check_int
from jhash.methods.base import Schedule, regularized
from jhash.models import apply_model, compute_dtype, init_model, pretrained
from jhash.train.checkpoint import Checkpointer
from jhash.train.logging import JsonlWriter, TensorBoardWriter, to_python
from jhash.train.manifest import Manifest, describe, recorded_pretrained
from jhash.train.state import TrainState, data_sharded, make_mesh, make_optimizer, replicated, state_shardings

INTERRUPTED = threading.Event()  # set by the CLI's SIGINT handler; the training loop stops at the next step


def validate_config(config) -> None:
    """Clear errors for values the trainer cannot use."""
    for name in ("bits", "batch_size", "num_epochs", "reduction_groups"):
        if name not in config:  # a config.json written before the field existed
            continue
        value = config[name]
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"config.{name} must be a positive integer, got {value!r}")
    for name in ("log_every", "checkpoint_every", "keep_checkpoints", "eval.batch_size"):
        _check_int(config, name, 1)
    for name in ("seed", "split_seed", "validation", "num_devices", "eval.radius"):
        _check_int(config, name, 0)
    _check_int(config, "eval.map_k", -1)
    for name in ("image_size", "data.resize", "data.prefetch"):
        _check_int(config, name, 0)
    _check_int(config, "data.workers", -1)
    if "data" in config:
        from jhash.data.images import TRAIN_CROPS

        if config.data.train_crop not in TRAIN_CROPS:
            raise ValueError(f"config.data.train_crop must be one of {', '.join(TRAIN_CROPS)}, "
                             f"got {config.data.train_crop!r}")
        if config.data.resize and config.data.resize < config.get("image_size", 0):
            raise ValueError(f"config.data.resize ({config.data.resize}) must be 0 or >= config.image_size "
                             f"({config.image_size})")
    if config.get("split_file", "") and not pathlib.Path(config.split_file).expanduser().is_file():
        raise ValueError(f"config.split_file: {config.split_file} does not exist")
    if config.eval.radius > config.bits:
        raise ValueError(f"config.eval.radius must be at most config.bits ({config.bits}), got {config.eval.radius}")
    lr = config.optimizer.learning_rate
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise ValueError(f"config.optimizer.learning_rate must be a positive number, got {lr!r}")
    if not isinstance(config.get("deterministic_reductions", True), bool):
        raise ValueError(f"config.deterministic_reductions must be true or false, got {config.deterministic_reductions!r}")
    if config.get("deterministic_reductions", True) and config.batch_size % config.get("reduction_groups", 8):
        raise ValueError(f"config.reduction_groups ({config.reduction_groups}) must divide config.batch_size "
                         f"({config.batch_size})")
    compute_dtype(config.get("dtype", "float32"))
    methods.get_method(config.method)  # unknown method -> ValueError
    get_augmentation(config.augment)


def check_mesh(config, mesh) -> None:
    """Clear errors for a device count that cannot split ``config``'s batch (or its groups) evenly."""
    if config.batch_size % mesh.size:
        raise ValueError(f"config.batch_size ({config.batch_size}) must be divisible by the number of devices ({mesh.size})")
    groups = config.get("reduction_groups", 8)
    if config.get("deterministic_reductions", True) and groups % mesh.size:
        raise ValueError(f"config.reduction_groups ({groups}) must be a multiple of the number of devices "
                         f"({mesh.size}); raise it (it must divide config.batch_size) or use fewer devices")


def make_train_step(method, optimizer, mesh, augment=get_augmentation("none"), state_sharding=None, *,
                    reduction_groups: int = 8, deterministic_reductions: bool = True, dtype=None) -> Callable:
    """The jitted step ``(state, batch) -> (state, metrics)``: batch split over ``'data'``, state donated.

    ``augment(key, x)`` transforms the batch's inputs first (with a key of its own for the step).
    ``state_sharding``: the state's shardings (:func:`jhash.train.state.state_shardings`);
    default: replicated on every device.

    With ``deterministic_reductions`` (the default) the step computes the same bits on any
    number of devices that divides ``reduction_groups`` (:func:`_canonical_objective`): the
    global batch is cut into ``reduction_groups`` groups, the network runs (forward and
    backward) on each group by itself, so batch norm normalizes with the statistics of its
    group of batch / groups items ("ghost batch norm"), and the per-group parameter gradients
    and batch-norm updates are summed in the groups' order; the method's loss runs on the whole
    batch's outputs, the same on every device. Without it, the step is one global-view program
    whose cross-device sums (XLA's all-reduce of the gradients, batch-norm statistics over the
    whole batch, the loss's sums) add in an order that depends on the device count.

    ``dtype`` (``config.dtype``, :func:`jhash.models.compute_dtype`): the network's compute dtype,
    e.g. bfloat16 with float32 parameters, optimizer state, batch-norm statistics and losses.
    """
    groups = int(reduction_groups)
    if deterministic_reductions and groups % mesh.size:
        raise ValueError(f"config.reduction_groups ({groups}) must be a multiple of the number of devices "
                         f"({mesh.size})")
    canonical = _canonical_objective(method, mesh, groups, dtype) if deterministic_reductions else None
    method_objective = methods.base.objective(method)

    def train_step(state: TrainState, batch):
        key, augment_key = jax.random.split(jax.random.fold_in(state.key, state.step))
        x = augment(augment_key, batch["x"])
        if canonical is not None:
            rest = {k: v for k, v in batch.items() if k != "x"}
            loss, grads, model_state, method_state, metrics = canonical(
                state.params, state.model_state, x, rest, state.method_state, state.step, key)
        else:
            def objective(params):
                u, model_state = apply_model(method.model, params, state.model_state, x, train=True, dtype=dtype)
                loss, (method_state, metrics) = method_objective(u, batch, state.method_state, step=state.step, key=key)
                return loss, (model_state, method_state, metrics)

            (loss, (model_state, method_state, metrics)), grads = jax.value_and_grad(objective, has_aux=True)(
                state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        new_state = state.replace(step=state.step + 1, params=params, model_state=model_state,
                                  opt_state=opt_state, method_state=method_state)
        return new_state, {"loss": loss, **metrics}

    repl = replicated(mesh)
    state_sharding = repl if state_sharding is None else state_sharding
    return jax.jit(train_step, in_shardings=(state_sharding, data_sharded(mesh)), out_shardings=(state_sharding, repl),
                   donate_argnums=0)


def _fixed_order_sum(stacked):
    """``stacked[0] + stacked[1] + ... + stacked[G-1]`` for every leaf, added left to right."""
    def add_up(a):
        total = a[0]
        for i in range(1, a.shape[0]):
            total = total + a[i]
        return total

    return jax.tree.map(add_up, stacked)


def _canonical_objective(method, mesh, groups: int, dtype=None) -> Callable:
    """``f(params, model_state, x, batch, method_state, step, key) -> (loss, grads, model_state, method_state,
    metrics)`` with results that do not depend on the number of devices of ``mesh``.

    Inside one ``shard_map`` over ``'data'``, every device holds ``groups / devices`` groups of
    the batch and runs the network on each group in turn (the same program per group, whatever
    the number of groups on the device), keeping the group's VJP. The groups'
    outputs are all-gathered, so every device computes the method's loss, its gradient with
    respect to the outputs and the new method state on the whole batch, exactly as one device
    would (the method state is gathered whole for this: rows named in ``sharded_state`` are
    stored split over the devices but the loss sees them all). Each device then pulls its
    groups' output gradients back through their VJPs, and the per-group parameter gradients
    and batch-norm updates are all-gathered and added in the groups' order (not ``psum``,
    whose order depends on the device count). Batch norm thus uses the statistics of its group
    of batch / groups items and its running averages move by the mean of the groups' updates.
    """
    model = method.model
    method_objective = methods.base.objective(method)

    def per_device(params, model_state, x, batch, method_state, step, key):
        local = x.shape[0]  # groups held by this device
        forward = lambda p, xg: apply_model(model, p, model_state, xg, train=True, dtype=dtype)  # noqa: E731
        outputs, pull_backs, model_states = zip(*(jax.vjp(forward, params, x[g], has_aux=True) for g in range(local)))
        stack = lambda trees: jax.tree.map(lambda *a: jnp.stack(a), *trees)  # noqa: E731
        gather = lambda tree: jax.lax.all_gather(tree, "data", tiled=True)  # noqa: E731  (groups in order)
        u = jax.tree.map(lambda a: a.reshape(-1, *a.shape[2:]), gather(stack(outputs)))

        def of_outputs(u):
            return method_objective(u, batch, method_state, step=step, key=key)

        # allow_int: a model may output integer leaves (e.g. codeword indices); their cotangents are float0
        (loss, (method_state, metrics)), du = jax.value_and_grad(of_outputs, has_aux=True, allow_int=True)(u)
        du = jax.tree.map(lambda d: d.reshape(groups, -1, *d.shape[1:]), du)
        first = jax.lax.axis_index("data") * local
        grads = stack(pull_backs[g](jax.tree.map(lambda d: d[first + g], du))[0] for g in range(local))
        grads = _fixed_order_sum(gather(grads))
        model_state = jax.tree.map(lambda s: s / groups, _fixed_order_sum(gather(stack(model_states))))
        return loss, grads, model_state, method_state, metrics

    mapped = jax.shard_map(per_device, mesh=mesh, in_specs=(P(), P(), P("data"), P(), P(), P(), P()),
                           out_specs=P(), check_vma=False)

    def objective(params, model_state, x, batch, method_state, step, key):
        if x.shape[0] % groups:
            raise ValueError(f"config.reduction_groups ({groups}) must divide the batch size ({x.shape[0]})")
        x = x.reshape(groups, x.shape[0] // groups, *x.shape[1:])
        return mapped(params, model_state, x, batch, method_state, step, key)

    return objective


def init_state(method, optimizer, config, sample_x, *, load_pretrained: bool = False) -> TrainState:
    """The initial train state; ``load_pretrained``: with the model's pretrained weights files put into the
    initialised parameters (:func:`jhash.models.pretrained.load`; not for a restore target, which the
    checkpoint fills)."""
    key = jax.random.PRNGKey(config.seed)
    init_key, step_key = jax.random.split(key)
    params, model_state = init_model(method.model, init_key, jnp.asarray(sample_x))
    if load_pretrained:
        params, model_state = pretrained.load(method.model, params, model_state)
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        model_state=model_state,
        opt_state=optimizer.init(params),
        method_state=method.init_state(),
        key=step_key,
    )


def training_setup(method, config, mesh, sample_x, *, steps_per_epoch: int, num_steps: int,
                   load_pretrained: bool = True):
    """``(state, step_fn)``: the optimizer's schedule, the initial train state (pretrained weights loaded
    unless ``load_pretrained=False``) placed with its shardings on ``mesh``
    (:func:`jhash.train.state.state_shardings`) and the jitted step."""
    optimizer = make_optimizer(config.optimizer, steps_per_epoch=steps_per_epoch, num_steps=num_steps)
    state = init_state(method, optimizer, config, sample_x, load_pretrained=load_pretrained)
    sharding = state_shardings(state, mesh, method.sharded_state)
    step_fn = make_train_step(method, optimizer, mesh, get_augmentation(config.augment), sharding,
                              reduction_groups=config.get("reduction_groups", 8),
                              deterministic_reductions=config.get("deterministic_reductions", True),
                              dtype=compute_dtype(config.get("dtype", "float32")))
    return jax.device_put(state, sharding), step_fn


def batch_schedule(method, config, n_train: int) -> Callable[[int], np.ndarray]:
    """``indices(step)``: the training-set indices of a step's batch, the method's own schedule
    (``method.batches``) or the seeded epoch order; a pure function of the step."""
    if method.batches is not None:
        return method.batches
    return functools.partial(jdata.batch_indices, n_train, config.batch_size, config.seed)


def step_batch(method, config, x, y, step: int) -> dict:
    """The batch of ``step`` over an in-memory training set ``x``, ``y`` (:func:`batch_schedule`), read by
    the pipeline's :class:`jhash.data.BatchReader` in this process."""
    return jdata.BatchReader(x, y, np.arange(len(x)), batch_schedule(method, config, len(x)))(step)


def training_batches(method, config, exp: ExperimentData, start: int, stop: int, rows: tuple[int, int] | None = None):
    """The model-ready batches of steps [start, stop) from the input pipeline (:func:`jhash.data.stream`):
    decoded and cropped in worker processes for datasets read from files, prefetched. ``rows``: only
    these rows of each batch (this process's share in a multi-process run)."""
    x = exp.dataset.x
    reader = jdata.BatchReader(x, exp.dataset.y, exp.train_index,
                               batch_schedule(method, config, len(exp.train_index)),
                               seed=config.seed, crop=config.data.train_crop, rows=rows)
    return jdata.stream(reader, start, stop, workers=jdata.num_workers(x, config.data.workers),
                        prefetch=config.data.prefetch)


def train(config, workdir, *, on_step: Callable[[int, dict], None] | None = None, evaluate: bool = True) -> dict:
    """Trains ``config`` in ``workdir`` (resuming from its latest checkpoint) and evaluates the result.

    Args:
      config: a ConfigDict with the fields of :func:`jhash.config.base_config`.
      workdir: the run's folder (created if needed).
      on_step: called on the host as ``on_step(step, metrics)`` after every step that is
        logged (``metrics`` as Python floats); an exception raised there stops training
        (the last checkpoint is kept).
      evaluate: run the evaluator at the end and return its metrics.
    Returns:
      The final metrics (see :func:`jhash.evaluate.evaluate_run`), or {} with ``evaluate=False``.
    Raises:
      jhash.io.WorkdirError: another process uses ``workdir``, or it is a file or not writable.

    In a multi-process run (:mod:`jhash.distributed`) every process calls this with the same
    arguments; the mesh spans all their devices, process 0 holds the lock and writes the files.
    """
    validate_config(config)
    mesh = make_mesh(config.num_devices)
    check_mesh(config, mesh)
    workdir = pathlib.Path(workdir)
    # one run per work dir; a failure before the first checkpoint leaves nothing
    with distributed.primary_only(jio.workdir_lock(workdir)):
        return _train(config, workdir, mesh, on_step=on_step, evaluate=evaluate)


def _train(config, workdir: pathlib.Path, mesh, *, on_step, evaluate: bool) -> dict:
    primary = distributed.is_primary()
    resuming = Checkpointer.latest_step_in(workdir / "checkpoints") is not None
    if resuming:
        check_same_config(config, workdir, "has checkpoints")
    exp = load_experiment_data(config, workdir, new_split=not resuming)
    n_train = len(exp.train_index)
    if config.batch_size > n_train:
        raise ValueError(f"config.batch_size ({config.batch_size}) is larger than the training set ({n_train})")
    schedule = Schedule.of(config, n_train)  # the step arithmetic every method's build gets
    steps_per_epoch = schedule.steps_per_epoch
    method = regularized(methods.build(config, train_labels=exp.y_train, schedule=schedule), config)
    num_steps = method.num_steps or schedule.num_steps
    # weights files: recorded by digest at the start; a resumed run's checkpoint holds the parameters
    weights = (pretrained.check_unchanged(method.model, recorded_pretrained(workdir)) if resuming
               else pretrained.record(method.model))
    state, step_fn = training_setup(method, config, mesh, exp.sample_x(), steps_per_epoch=steps_per_epoch,
                                    num_steps=num_steps, load_pretrained=not resuming)
    ckpt = Checkpointer(workdir / "checkpoints", max_to_keep=config.keep_checkpoints)
    if resuming:
        state = ckpt.restore_newest_intact(state, set_aside=True)
    elif primary:  # everything above accepted the config: this work dir is now its run's
        jio.write_json(workdir / "config.json", json.loads(config.to_json()), sort_keys=True)
    start = int(state.step)
    batch_sharding = data_sharded(mesh)
    manifest = Manifest(workdir, describe(config, dataset=exp.dataset, split=exp.split, mesh=mesh, pretrained=weights),
                        write=primary)
    writers = [JsonlWriter(workdir / "metrics.jsonl", resume_step=start),
               TensorBoardWriter(workdir / "tensorboard", resume_step=start)] if primary else []
    bar = tqdm(total=num_steps, initial=start, desc=f"{config.method} {config.dataset} {config.bits} bits",
               disable=not (config.progress and primary), leave=False, mininterval=1.0)
    started = time.perf_counter()
    first_step_done = None  # the first step includes compilation; speed is measured after it
    done = start
    batches = training_batches(method, config, exp, start, num_steps,
                               rows=distributed.local_rows(batch_sharding, config.batch_size))
    try:
        for step, batch in zip(range(start, num_steps), batches):
            if INTERRUPTED.is_set():  # a Ctrl-C that library code swallowed (jhash.cli installs the handler)
                raise KeyboardInterrupt
            state, metrics = step_fn(state, distributed.global_batch(batch, batch_sharding, config.batch_size))
            done = step + 1
            if first_step_done is None:
                jax.block_until_ready(state.step)
                first_step_done = time.perf_counter()
            host = None
            if done % config.log_every == 0 or done == num_steps:
                host = {k: to_python(v) for k, v in jax.device_get(metrics).items()}
                if host["loss"] is None:  # to_python maps NaN / inf to None
                    _diverged(config, "loss", done, ckpt)
                host["epoch"] = done / steps_per_epoch
                host["time_s"] = time.perf_counter() - started
                for writer in writers:
                    writer.write(done, host)
                bar.set_postfix(loss=f"{host['loss']:.4f}")
            if done % config.checkpoint_every == 0 or done == num_steps:
                if not _all_finite(state.params):  # never overwrite a good checkpoint with a diverged state
                    _diverged(config, "parameters", done, ckpt)
                ckpt.save(done, state)
            bar.update(1)
            if host is not None and on_step is not None:
                on_step(done, host)
    except BaseException as e:
        manifest.finish(status=f"stopped: {type(e).__name__}", steps=done - start,
                        wall_s=time.perf_counter() - started, train_s=time.perf_counter() - started)
        raise
    finally:
        batches.close()  # stops the input pipeline's workers
        bar.close()
        for writer in writers:
            writer.close()
        ckpt.close()
    jax.block_until_ready(state.step)
    call_s = time.perf_counter() - started
    earlier_s, earlier_known = manifest.earlier_train_s()
    # train_s covers every call of a resumed run; train_s_complete is false when a killed call's time is unknown
    timing = {"steps": num_steps - start, "train_s": earlier_s + call_s, "train_s_this_call": call_s,
              "train_s_complete": earlier_known}
    if first_step_done is not None and num_steps - start > 1:
        per_step = (time.perf_counter() - first_step_done) / (num_steps - start - 1)
        timing["epoch_s"] = per_step * steps_per_epoch  # excluding the first (compiling) step
    if not evaluate:
        _write_timing(workdir, timing)
        manifest.finish(status="trained", steps=num_steps - start, wall_s=time.perf_counter() - started, train_s=call_s)
        return {}
    started = time.perf_counter()
    results = jeval.evaluate_run(config, workdir, method=method, state=state, data=exp, mesh=mesh, timing=timing)
    timing["eval_s"] = time.perf_counter() - started
    _write_timing(workdir, timing)
    manifest.finish(status="finished", steps=num_steps - start, wall_s=call_s + timing["eval_s"], train_s=call_s)
    return results


@jax.jit
def _all_finite(tree):
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)]))


def _diverged(config, what: str, step: int, ckpt) -> None:
    last = ckpt.latest_step()
    kept = ("no checkpoint was saved before (the run starts over)" if last is None
            else f"the last good checkpoint (step {last}) is kept")
    raise FloatingPointError(f"the {what} of {config.method} became NaN or infinite by step {step}; {kept}. "
                             "Try a smaller optimizer.learning_rate.")


def _write_timing(workdir: pathlib.Path, timing: dict) -> None:
    """Wall-clock times of the last `train` call (timing.json; kept out of metrics.json, which is reproducible)."""
    if distributed.is_primary():
        jio.write_json(workdir / "timing.json", timing)
