"""The ``train`` and ``train_flags`` sections of speed_floor.py: jhash's CPU training step against PyTorch.

The jhash contender is the step the trainer runs (:func:`jhash.train.trainer.training_setup`:
the method, optimizer, train state and jitted, donated step of ``jhash train``), on random
inputs of the dataset's shape already on the device, the same batch every step. The torch
contender is the same function written in PyTorch (:class:`TorchNet` and :func:`torch_dpsh`):
the network of ``config.model``, batch norm over the batch's reduction groups ("ghost" batch
norm, jhash's default ``reduction_groups=8``: ``torch_ghost``) or over the whole batch
(``torch``, what ``deterministic_reductions=false`` computes, and what a torch user writes),
DPSH's loss with its memory bank of the training set's outputs written before the loss, and
Adam. :func:`check` copies jhash's initial parameters into the torch network and compares
the losses of two steps (same parameter count, losses equal to ~1e-6).

Cases (:data:`SHAPES`): the issue's figure (the mnist CNN at batch 64), the mnist config as it
runs (batch 128) and bare ``jhash train`` (DPSH on digits: the MLP at batch 64).

Threads: 1 thread is ``taskset -c 0`` for both contenders plus
``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1`` for jhash and
``torch.set_num_threads(1)`` for torch (inter-op threads 1 in both cases); 2 threads is
``taskset -c 0,1`` and 2 threads each. Each worker times ``STEPS`` steps one by one (blocking
on the result) after ``WARMUP`` steps and reports the minimum and the median.

``train_flags`` (1 thread, jhash only): what each change gives, one process per variant
(:data:`VARIANTS`): XLA CPU flags, ``deterministic_reductions=false``, no donation of the state,
the batch copied from the host every step, float32 matmul precision ``highest``, and the code before
each change kept (flax's ``nn.max_pool``, the pooling's forward pass as one reduction, glibc's malloc
defaults: ``JHASH_SYSTEM_MALLOC=1``, jhash/_malloc.py).

The torch interpreter: ``--torch-python PATH`` (or the environment variable ``JHASH_TORCH_PYTHON``),
else this interpreter when it imports torch; without one the torch columns say so. PyPI's
``torch`` wheel for Linux is the CUDA build (it does not import without the CUDA libraries): use a
``+cpu`` wheel in a venv of its own, installed with ``--no-deps`` plus its pure-Python dependencies.
"""
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
SHAPES = {  # case -> (config argument of method:dpsh, batch size)
    "cnn-b64": ("dataset=mnist", 64),
    "cnn-b128": ("dataset=mnist", 128),
    "mlp-b64": ("dataset=digits", 64),
}
WARMUP, STEPS = 5, 40
CONTENDERS = ["jhash", "jhash_flat", "torch_ghost", "torch"]
SINGLE = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
VARIANTS = {  # train_flags: name -> (extra XLA flags, jhash-side change)
    "default": ("", None),
    "flax nn.max_pool (before: XLA's select-and-scatter gradient)": ("", "flax_pool"),
    "pooling forward as one reduction over a 6-d view (before)": ("", "reduce_pool"),
    "glibc malloc defaults (JHASH_SYSTEM_MALLOC=1, before)": ("", "system_malloc"),
    "flat (deterministic_reductions=false)": ("", "flat"),
    "no donation": ("", "nodonate"),
    "batch from the host each step": ("", "host_batch"),
    "matmul precision highest": ("", "highest"),
    "xla_cpu_use_onednn": ("--xla_cpu_use_onednn=true", None),
    "xla_cpu_use_xnnpack": ("--xla_cpu_use_xnnpack=true", None),
    "xla_cpu_use_thunk_runtime=false": ("--xla_cpu_use_thunk_runtime=false", None),
    "xla_cpu_enable_fast_math (may change bits)": ("--xla_cpu_enable_fast_math=true", None),
}
PROFILED = ["default", "glibc malloc defaults (JHASH_SYSTEM_MALLOC=1, before)",
            "flat (deterministic_reductions=false)"]  # train_profile: the steps traced op by op
SECTIONS = {"train": CONTENDERS, "train_flags": [f"variant:{v}" for v in VARIANTS],
            "train_profile": ["parts_jax", "parts_torch"] + [f"profile:{v}" for v in PROFILED]}
THREADS = {"train_flags": (1,), "train_profile": (1,)}
FAILED = {}  # train_flags variant -> the last line its worker printed when it failed
TORCH_PYTHON = os.environ.get("JHASH_TORCH_PYTHON", "")  # set by speed_floor.py's --torch-python


def torch_python():
    """The interpreter that runs the torch worker, or None."""
    if TORCH_PYTHON:
        return TORCH_PYTHON
    try:
        import torch  # noqa: F401

        return sys.executable
    except ImportError:
        return None


# ------------------------------------------------------------------ jhash side
def jhash_setup(case, change=None, batch_size=None):
    """(step_fn, state, batch on the device, config, method) of the trainer for ``case``."""
    import jax
    import numpy as np

    from jhash import config as jconfig
    from jhash import methods
    from jhash.methods.base import Schedule, regularized
    from jhash.train.state import data_sharded, make_mesh
    from jhash.train.trainer import training_setup

    arg, batch = SHAPES[case]
    config = jconfig.load_config(f"method:dpsh:{arg}")
    config.batch_size = batch_size or batch
    if change == "flat":
        config.deterministic_reductions = False
    if change == "flax_pool":  # the CNN's pooling as it was before jhash.models.nets.max_pool_2x2
        import flax.linen as nn

        from jhash.models import nets

        nets.max_pool_2x2 = lambda h: nn.max_pool(h, (2, 2), strides=(2, 2))
    if change == "reduce_pool":  # the pooling's forward pass as it was before the four strided slices
        from jhash.models import nets

        nets._pool_argmax = _pool_argmax_by_reduction
    if change == "highest":
        jax.config.update("jax_default_matmul_precision", "highest")
    n_train, shape = (5000, (28, 28, 1)) if "mnist" in arg else (500, (64,))
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, n_train).astype(np.int32)
    mesh = make_mesh(config.num_devices)
    schedule = Schedule.of(config, n_train)
    method = regularized(methods.build(config, train_labels=labels, schedule=schedule), config)
    x = rng.random((config.batch_size, *shape), np.float32)
    state, step_fn = training_setup(method, config, mesh, x[:1], steps_per_epoch=schedule.steps_per_epoch,
                                    num_steps=schedule.num_steps, load_pretrained=False)
    idx = rng.choice(n_train, config.batch_size, replace=False).astype(np.int32)
    host = {"x": x, "y": labels[idx], "index": idx}
    if change == "nodonate":  # the same function, jitted without donate_argnums
        step_fn = jax.jit(step_fn.__wrapped__)
    on_device = jax.device_put(host, data_sharded(mesh))
    return step_fn, state, host, on_device, config, mesh


def _pool_argmax_by_reduction(x):
    """jhash.models.nets._pool_argmax before the strided slices: one XLA reduction over the window axes."""
    import jax
    import jax.numpy as jnp

    n, h, w, c = x.shape
    win = x[:, : h - h % 2, : w - w % 2].reshape(n, h // 2, 2, w // 2, 2, c)
    pos = jax.lax.broadcasted_iota(jnp.int32, win.shape, 2) * 2 + jax.lax.broadcasted_iota(jnp.int32, win.shape, 4)

    def first_max(a, b):
        take_a = (a[0] > b[0]) | ((a[0] == b[0]) & (a[1] < b[1])) | jnp.isnan(a[0])
        return jnp.where(take_a, a[0], b[0]), jnp.where(take_a, a[1], b[1])

    return jax.lax.reduce((win, pos), (jnp.array(-jnp.inf, x.dtype), jnp.array(4, jnp.int32)), first_max, (2, 4))


def time_steps(one_step):
    """(seconds of each of ``STEPS`` calls after ``WARMUP`` calls, seconds of the first call)."""
    times = []
    t0 = time.perf_counter()
    for i in range(WARMUP + STEPS):
        if i == 1:
            first = time.perf_counter() - t0
        t = time.perf_counter()
        one_step()
        if i >= WARMUP:
            times.append(time.perf_counter() - t)
    return times, first


def run_jhash(case, change=None):
    import jax
    import numpy as np

    from jhash.train.state import data_sharded

    step_fn, state, host, batch, config, mesh = jhash_setup(case, change)
    sharding = data_sharded(mesh)
    last = {"state": state}

    def one_step():
        b = jax.device_put(host, sharding) if change == "host_batch" else batch
        last["state"], last["metrics"] = step_fn(last["state"], b)
        jax.block_until_ready(last["metrics"]["loss"])

    times, first = time_steps(one_step)
    metrics = last["metrics"]
    return times, first, float(np.asarray(metrics["loss"]))


def transfers_per_step(case):
    """True when a step (after the first) runs under ``jax.transfer_guard('disallow')``: no implicit
    host<->device copy per step."""
    import jax

    step_fn, state, host, batch, *_ = jhash_setup(case)
    state, _ = step_fn(state, batch)
    try:
        with jax.transfer_guard("disallow"):
            state, m = step_fn(state, batch)
            jax.block_until_ready(m["loss"])
        return True
    except Exception as e:  # noqa: BLE001  (the guard's error names the transfer)
        return f"{type(e).__name__}: {str(e)[:200]}"


def check_dump(case, path):
    """jhash side of :func:`check`: initial parameters, the batch and the losses of two steps -> ``path``."""
    import jax
    import numpy as np
    from flax.traverse_util import flatten_dict

    res = {}
    for flat in (False, True):
        step_fn, state, host, batch, config, _ = jhash_setup(case, "flat" if flat else None)
        params = {"/".join(k): np.asarray(v) for k, v in flatten_dict(jax.device_get(state.params)).items()}
        losses = []
        for _ in range(2):
            state, metrics = step_fn(state, batch)
            losses.append(float(np.asarray(metrics["loss"])))
        res["flat" if flat else "ghost"] = losses
    np.savez(path, **{"p:" + k: v for k, v in params.items()}, **host)
    return {"losses": res, "params": int(sum(v.size for v in params.values())),
            "model": dict(config.model), "groups": config.reduction_groups, "n_train": int(n_train_of(case))}


def n_train_of(case):
    return 5000 if "mnist" in SHAPES[case][0] else 500


# ------------------------------------------------------------------ torch side
def torch_net(case, groups):
    """The torch network of ``case``'s ``config.model`` (read from jhash's config files without importing jax)."""
    import torch
    from torch import nn
    import torch.nn.functional as F

    mnist = "mnist" in SHAPES[case][0]

    def bn(h, mod):  # batch norm over each of ``groups`` groups of the batch (1: the whole batch)
        if groups == 1 or not mod.training:
            return mod(h)
        return torch.cat([F.batch_norm(c, None, None, mod.weight, mod.bias, True, 0.0, mod.eps)
                          for c in h.chunk(groups)])

    class CNN(nn.Module):  # jhash.models.CNN(channels=(32, 64), convs_per_block=1, dense=256) + hash head
        def __init__(self, bits=32):
            super().__init__()
            self.conv0, self.bn0 = nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32, momentum=0.1)
            self.conv1, self.bn1 = nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64, momentum=0.1)
            self.dense, self.bnd = nn.Linear(7 * 7 * 64, 256, bias=False), nn.BatchNorm1d(256, momentum=0.1)
            self.hash = nn.Linear(256, bits)

        def forward(self, x):
            h = F.max_pool2d(F.relu(bn(self.conv0(x), self.bn0)), 2)
            h = F.max_pool2d(F.relu(bn(self.conv1(h), self.bn1)), 2)
            h = F.relu(bn(self.dense(h.flatten(1)), self.bnd))
            return self.hash(h)

        def load_flax(self, p):
            t = lambda a: torch.from_numpy(a.copy())  # noqa: E731
            with torch.no_grad():
                for i in (0, 1):
                    getattr(self, f"conv{i}").weight.copy_(t(p[f"conv{i}_0/kernel"].transpose(3, 2, 0, 1)))
                    getattr(self, f"bn{i}").weight.copy_(t(p[f"bn{i}_0/scale"]))
                    getattr(self, f"bn{i}").bias.copy_(t(p[f"bn{i}_0/bias"]))
                k = p["dense/kernel"]  # rows in (h, w, c) order (NHWC flatten) -> torch's (c, h, w)
                self.dense.weight.copy_(t(k.reshape(7, 7, 64, -1).transpose(2, 0, 1, 3).reshape(k.shape[0], -1).T))
                self.bnd.weight.copy_(t(p["bn_dense/scale"]))
                self.bnd.bias.copy_(t(p["bn_dense/bias"]))
                self.hash.weight.copy_(t(p["HashHead_0/hash/kernel"].T))
                self.hash.bias.copy_(t(p["HashHead_0/hash/bias"]))

    class MLP(nn.Module):  # jhash.models.MLP(hidden=(256, 256)) + hash head
        def __init__(self, bits=32):
            super().__init__()
            self.dense0, self.dense1, self.hash = nn.Linear(64, 256), nn.Linear(256, 256), nn.Linear(256, bits)

        def forward(self, x):
            return self.hash(F.relu(self.dense1(F.relu(self.dense0(x)))))

        def load_flax(self, p):
            with torch.no_grad():
                for name in ("dense0", "dense1"):
                    getattr(self, name).weight.copy_(torch.from_numpy(p[f"{name}/kernel"].T.copy()))
                    getattr(self, name).bias.copy_(torch.from_numpy(p[f"{name}/bias"]))
                self.hash.weight.copy_(torch.from_numpy(p["HashHead_0/hash/kernel"].T.copy()))
                self.hash.bias.copy_(torch.from_numpy(p["HashHead_0/hash/bias"]))

    return CNN() if mnist else MLP()


def torch_step_fn(net, n_train, labels, eta=10.0):
    """One training step of DPSH (memory bank written before the loss, as jhash.methods.dpsh) with Adam."""
    import torch
    import torch.nn.functional as F

    bank = torch.zeros(n_train, 32)
    bank_labels = torch.from_numpy(labels).long()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step(x, y, idx):
        opt.zero_grad(set_to_none=True)
        u = net(x)
        bank[idx] = u.detach()
        theta = 0.5 * (u @ bank.T)
        s = (y[:, None] == bank_labels[None, :]).float()
        quant = torch.square(torch.where(u >= 0, 1.0, -1.0) - u).sum()
        loss = ((F.softplus(theta, threshold=1e9) - s * theta).sum() + eta * quant) / (u.shape[0] * n_train)
        loss.backward()
        opt.step()
        return loss.detach(), quant.detach() / u.numel()

    return step


def torch_inputs(case, batch, nchw):
    import numpy as np
    import torch

    n_train = n_train_of(case)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, n_train).astype(np.int32)
    x = rng.random((batch, *((28, 28, 1) if "mnist" in SHAPES[case][0] else (64,))), np.float32)
    idx = rng.choice(n_train, batch, replace=False)
    return n_train, labels, x, idx


def run_torch(case, ghost):
    import torch

    batch = SHAPES[case][1]
    n_train, labels, x, idx = torch_inputs(case, batch, True)
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy() if x.ndim == 4 else x)
    y, it = torch.from_numpy(labels[idx]).long(), torch.from_numpy(idx).long()
    net = torch_net(case, 8 if ghost else 1).train()
    step = torch_step_fn(net, n_train, labels)
    last = {}

    def one_step():
        last["loss"] = step(xt, y, it)[0]

    times, first = time_steps(one_step)
    loss = last["loss"]
    return times, first, float(loss)


def check_torch(case, path):
    """torch side of :func:`check`: the jhash parameters and batch from ``path``, two steps, both BN forms."""
    import numpy as np
    import torch

    d = np.load(path)
    p = {k[2:]: d[k] for k in d.files if k.startswith("p:")}
    x = d["x"]
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy() if x.ndim == 4 else x)
    n_train, labels, _, _ = torch_inputs(case, len(x), True)
    res = {}
    for name, groups in (("ghost", 8), ("flat", 1)):
        net = torch_net(case, groups).train()
        net.load_flax(p)
        step = torch_step_fn(net, n_train, labels)
        res[name] = [float(step(xt, torch.from_numpy(d["y"]).long(), torch.from_numpy(d["index"]).long())[0])
                     for _ in range(2)]
    return {"losses": res, "params": int(sum(q.numel() for q in net.parameters()))}


# ------------------------------------------------------------------ profile: the step's parts, op by op
def parts_jax():
    """{part: jitted zero-argument function} of the cnn-b64 step's parts in JAX (1 thread: where time goes)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    rng = np.random.default_rng(0)
    r = lambda *s: jnp.asarray(rng.standard_normal(s, np.float32))  # noqa: E731
    conv = lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",  # noqa: E731
                                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    x0, w0, x1, w1 = r(64, 28, 28, 1), r(3, 3, 1, 32), r(64, 14, 14, 32), r(3, 3, 32, 64)
    g0, g1 = r(64, 28, 28, 32), r(64, 14, 14, 64)
    h, wd, gd = r(64, 3136), r(3136, 256), r(64, 256)
    u, bank = r(64, 32), r(5000, 32)
    same = (jnp.arange(64)[:, None] % 10 == jnp.arange(5000)[None, :] % 10).astype(jnp.float32)
    params = {"a": r(3136, 256), "b": r(3, 3, 32, 64), "c": r(256, 32)}
    opt = optax.adam(1e-3)
    ostate = opt.init(params)

    def loss(u, bank, same):
        theta = 0.5 * (u @ bank.T)
        return jnp.sum(jax.nn.softplus(theta) - same * theta) + 10 * jnp.sum(jnp.square(jnp.sign(u) - u))

    parts = {  # (function, arguments): the inputs are arguments, else XLA folds the whole part into a constant
        "conv0 forward (64x28x28x1 -> 32)": (conv, x0, w0),
        "conv0 filter gradient": (lambda x, w, g: jax.vjp(lambda w: conv(x, w), w)[1](g)[0], x0, w0, g0),
        "conv1 forward (64x14x14x32 -> 64)": (conv, x1, w1),
        "conv1 input gradient": (lambda x, w, g: jax.vjp(lambda x: conv(x, w), x)[1](g)[0], x1, w1, g1),
        "conv1 filter gradient": (lambda x, w, g: jax.vjp(lambda w: conv(x, w), w)[1](g)[0], x1, w1, g1),
        "dense forward + both gradients (64x3136 @ 3136x256)": (
            lambda h, wd, gd: jax.vjp(lambda a, b: a @ b, h, wd)[1](gd), h, wd, gd),
        "DPSH loss + gradient (64 x 5000 bank)": (jax.grad(loss), u, bank, same),
        "Adam update (830k parameters)": (lambda p, s: opt.update(p, s, p), params, ostate),
    }
    return {k: (lambda j=jax.jit(f), a=a: j(*a)) for k, (f, *a) in parts.items()}


def parts_torch():
    """The same parts in torch (NCHW, as torch's conv layers are used)."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    r = lambda *s, grad=False: torch.randn(*s, generator=g).requires_grad_(grad)  # noqa: E731
    x0, w0 = r(64, 1, 28, 28), r(32, 1, 3, 3, grad=True)
    x1, w1 = r(64, 32, 14, 14, grad=True), r(64, 32, 3, 3, grad=True)
    g0, g1 = r(64, 32, 28, 28), r(64, 64, 14, 14)
    h, wd, gd = r(64, 3136, grad=True), r(3136, 256, grad=True), r(64, 256)
    u, bank = r(64, 32, grad=True), r(5000, 32)
    same = (torch.arange(64)[:, None] % 10 == torch.arange(5000)[None, :] % 10).float()
    params = [r(3136, 256, grad=True), r(64, 32, 3, 3, grad=True), r(256, 32, grad=True)]
    for p in params:
        p.grad = torch.randn_like(p)
    opt = torch.optim.Adam(params, lr=1e-3)

    def loss():
        theta = 0.5 * (u @ bank.T)
        return (F.softplus(theta, threshold=1e9) - same * theta).sum() + 10 * torch.square(torch.sign(u) - u).sum()

    def nograd(f):
        def run():
            with torch.no_grad():
                return f()
        return run

    return {
        "conv0 forward (64x28x28x1 -> 32)": nograd(lambda: F.conv2d(x0, w0, padding=1)),
        "conv0 filter gradient": lambda: torch.autograd.grad(F.conv2d(x0, w0, padding=1), w0, g0),
        "conv1 forward (64x14x14x32 -> 64)": nograd(lambda: F.conv2d(x1, w1, padding=1)),
        "conv1 input gradient": lambda: torch.autograd.grad(F.conv2d(x1, w1.detach(), padding=1), x1, g1),
        "conv1 filter gradient": lambda: torch.autograd.grad(F.conv2d(x1.detach(), w1, padding=1), w1, g1),
        "dense forward + both gradients (64x3136 @ 3136x256)": lambda: torch.autograd.grad(h @ wd, (h, wd), gd),
        "DPSH loss + gradient (64 x 5000 bank)": lambda: torch.autograd.grad(loss(), u),
        "Adam update (830k parameters)": opt.step,
    }


def run_parts(who):
    """{part: [min s, median s]} over ``STEPS`` calls after ``WARMUP``."""
    import statistics

    if who == "parts_jax":
        import jax

        parts = {k: (lambda f=f: jax.block_until_ready(f())) for k, f in parts_jax().items()}
    else:
        parts = parts_torch()
    res = {}
    for name, fn in parts.items():
        times = []
        for i in range(WARMUP + STEPS):
            t = time.perf_counter()
            fn()
            if i >= WARMUP:
                times.append(time.perf_counter() - t)
        res[name] = [min(times), statistics.median(times)]
    return res


def op_profile(case="cnn-b64", change=None, steps=10, top=12):
    """Where the jitted step's time goes (1 thread): XLA's thunks traced by jax.profiler
    (``--xla_cpu_enable_xprof_traceme=true``), ms per step by kind of op (the HLO names without their
    numbers; ``ynn_fusion``: convolutions and matrix products run by XNNPACK's YNN), the wall time and
    the minor page faults per step (untraced steps: a fresh buffer's first touch, jhash/_malloc.py)."""
    import collections
    import glob
    import resource

    import jax
    from jax.profiler import ProfileData

    step_fn, state, _, batch, *_ = jhash_setup(case, change)
    for _ in range(3):
        state, m = step_fn(state, batch)
        jax.block_until_ready(m["loss"])
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        state, m = step_fn(state, batch)
        jax.block_until_ready(m["loss"])
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / steps
    with tempfile.TemporaryDirectory() as tmp:
        jax.profiler.start_trace(tmp)
        t0 = time.perf_counter()
        for _ in range(steps):
            state, m = step_fn(state, batch)
            jax.block_until_ready(m["loss"])
        wall = (time.perf_counter() - t0) / steps
        jax.profiler.stop_trace()
        data = ProfileData.from_file(glob.glob(f"{tmp}/**/*.xplane.pb", recursive=True)[0])
    ops = collections.Counter()
    for plane in data.planes:
        for line in plane.lines:
            if line.name == "python":
                continue
            for e in line.events:
                if not e.name.startswith("ThunkExecutor"):
                    ops[e.name] += e.duration_ns / 1e6 / steps
    kinds = collections.Counter()  # the op names without their numbers: ynn_fusion.3 -> ynn_fusion
    for name, ms in ops.items():
        kinds[name.rsplit(".", 1)[0] if name.rsplit(".", 1)[-1].isdigit() else name] += ms
    res = {"wall (ms/step)": 1e3 * wall, "all ops (ms/step)": sum(ops.values()),
           "minor page faults per step (not ms)": faults}
    res.update((f"op kind {k}", v) for k, v in kinds.most_common(top))
    return {k: [v, v] for k, v in res.items()}


# ------------------------------------------------------------------ workers and driver
def worker(who, threads, quick):
    """Runs in the contender's process: {case: [min s, median s, first-call s, last loss]}."""
    import statistics

    global STEPS
    if quick:
        STEPS = 8
    if who.startswith("torch") or who == "parts_torch":
        import torch

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(1)
    if who.startswith("parts_"):
        return run_parts(who)
    if who.startswith("profile:"):
        return op_profile(change=VARIANTS[who[8:]][1])
    res = {}
    cases = ["cnn-b64"] if who.startswith("variant:") else list(SHAPES)
    for case in cases:
        if who.startswith("torch"):
            times, first, loss = run_torch(case, who == "torch_ghost")
        elif who.startswith("variant:"):
            times, first, loss = run_jhash(case, VARIANTS[who[8:]][1])
        else:
            times, first, loss = run_jhash(case, "flat" if who == "jhash_flat" else None)
        res[case] = [min(times), statistics.median(times), first, loss]
    return res


def spawn(section, who, threads, quick):
    """The result of ``who`` in its own pinned process (``{}`` when torch is not available)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), OMP_WAIT_POLICY="PASSIVE")
    python = sys.executable
    if who.startswith("torch") or who == "parts_torch":
        python = torch_python()
        if python is None:
            return {}
    else:
        flags = SINGLE if threads == 1 else f"--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={threads}"
        extra = VARIANTS[who.split(":", 1)[1]][0] if ":" in who else ""
        if ":" in who and VARIANTS[who.split(":", 1)[1]][1] == "system_malloc":  # read at `import jhash`
            env["JHASH_SYSTEM_MALLOC"] = "1"
        if who.startswith("profile:"):
            extra += " --xla_cpu_enable_xprof_traceme=true"
        # XLA stops reading XLA_FLAGS at a word without "--" (intra_op_parallelism_threads=N): it goes last
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {extra} {flags}".strip()
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parents[1]), env.get("PYTHONPATH", "")]))
    cpus = ",".join(str(c) for c in sorted(os.sched_getaffinity(0))[:threads])
    cmd = ["taskset", "-c", cpus, python, __file__, "--worker", who, "--threads", str(threads)]
    out = subprocess.run(cmd + (["--quick"] if quick else []), env=env, capture_output=True, text=True)
    lines = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
    if (out.returncode or not lines) and who.startswith("variant:"):  # e.g. a flag this jaxlib refuses
        FAILED[who[8:]] = (out.stderr.strip().splitlines() or ["no output"])[-1][:200]
        return {}
    if out.returncode or not lines:
        raise RuntimeError(f"worker {section}/{who}/{threads} failed:\n{out.stderr[-3000:]}")
    return json.loads(lines[-1][7:])


def check(case="cnn-b64"):
    """Same function? jhash's initial parameters copied into torch; parameter counts and the losses of two
    steps with ghost batch norm (jhash's default) and whole-batch batch norm (deterministic_reductions=false)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "init.npz")
        res = {}
        for who, python in (("check_jhash", sys.executable), ("check_torch", torch_python())):
            if python is None:
                return res
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(HERE.parents[1]),
                                                                            os.environ.get("PYTHONPATH", "")])))
            out = subprocess.run([python, __file__, "--worker", who, "--case", case, "--path", path], env=env,
                                 capture_output=True, text=True)
            lines = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
            if out.returncode or not lines:
                raise RuntimeError(f"{who} failed:\n{out.stderr[-3000:]}")
            res[who[6:]] = json.loads(lines[-1][7:])
        return res


def report(best, sections, quick):
    get = lambda sec, who, th: best.get((sec, who, th), {})  # noqa: E731
    has_torch = bool(get("train", "torch", 1))
    if "train" in sections:
        print("\n## CPU training step, DPSH (memory bank, Adam), jhash's jitted step vs the same function in torch "
              "(ms/step, minimum; speed ratio = torch time / jhash time, goal >= 1)")
        print("| case | threads | jhash (default: 8 ghost-BN groups) | torch, same ghost BN | ratio | "
              "jhash deterministic_reductions=false | torch, BN over the batch | ratio |")
        print("|---|---|---|---|---|---|---|---|")
        ms = lambda r: f"{1e3 * r[0]:.1f}" if r else "-"  # noqa: E731
        ratio = lambda t, j: f"**{t[0] / j[0]:.2f}**" if t and j else "-"  # noqa: E731
        for case in SHAPES:
            for th in (1, 2):
                jg, jf = get("train", "jhash", th).get(case), get("train", "jhash_flat", th).get(case)
                tg, tf = get("train", "torch_ghost", th).get(case), get("train", "torch", th).get(case)
                print(f"| {case} | {th} | {ms(jg)} | {ms(tg)} | {ratio(tg, jg)} | {ms(jf)} | {ms(tf)} | "
                      f"{ratio(tf, jf)} |")
        if not has_torch:
            print("\ntorch not found (--torch-python PATH or JHASH_TORCH_PYTHON): torch columns skipped")
        c = check()
        if "torch" in c:
            j, t = c["jhash"], c["torch"]
            print(f"\nsame function (cnn-b64, jhash's initial parameters copied into torch): parameters "
                  f"{j['params']:,} / {t['params']:,}; losses of steps 1, 2:")
            for bn in ("ghost", "flat"):
                diff = max(abs(a - b) for a, b in zip(j["losses"][bn], t["losses"][bn]))
                print(f"  {bn}: jhash {j['losses'][bn]}, torch {t['losses'][bn]}, max |diff| {diff:.2e}")
    if "train_profile" in sections:
        print("\n## Where the time goes, cnn-b64, 1 thread: the step's parts alone (ms, minimum)")
        print("| part | jax (XLA CPU) | torch | torch / jax |")
        print("|---|---|---|---|")
        pj, pt = get("train_profile", "parts_jax", 1), get("train_profile", "parts_torch", 1)
        for name, r in pj.items():
            t = pt.get(name)
            print(f"| {name} | {1e3 * r[0]:.2f} | {f'{1e3 * t[0]:.2f}' if t else '-'} | "
                  f"{f'{t[0] / r[0]:.2f}' if t else '-'} |")
        for who in PROFILED:
            r = get("train_profile", f"profile:{who}", 1)
            print(f"\njhash's step ({who}), XLA ops traced (ms/step):")
            print("| | ms/step |\n|---|---|")
            for name, v in r.items():
                print(f"| {name} | {v[0]:.2f} |")
    if "train_flags" in sections:
        print("\n## What each change gives, jhash's step, cnn-b64, 1 thread (ms/step, minimum; vs default)")
        print("| change | ms/step | median | vs default | last loss |")
        print("|---|---|---|---|---|")
        base = get("train_flags", "variant:default", 1).get("cnn-b64")
        for name in VARIANTS:
            r = get("train_flags", f"variant:{name}", 1).get("cnn-b64")
            if r:
                print(f"| {name} | {1e3 * r[0]:.1f} | {1e3 * r[1]:.1f} | {r[0] / base[0]:.2f}x | {r[3]:.6f} |")
            elif name in FAILED:
                print(f"| {name} | failed: {FAILED[name]} | | | |")
        print(f"\nno implicit host<->device transfer in a step (jax.transfer_guard('disallow')): "
              f"{transfers_per_step('cnn-b64')}")


def main():
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--case")
    ap.add_argument("--path")
    args = ap.parse_args()
    if args.worker == "check_jhash":
        res = check_dump(args.case, args.path)
    elif args.worker == "check_torch":
        res = check_torch(args.case, args.path)
    else:
        res = worker(args.worker, args.threads, args.quick)
    print("RESULT " + json.dumps(res))


if __name__ == "__main__":
    main()
