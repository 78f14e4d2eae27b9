"""Backbones (an MLP for feature vectors, a small CNN for images) and :class:`HashNetwork`, which puts a
hash head of :mod:`jhash.models.heads` on any backbone."""
from __future__ import annotations

import dataclasses
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jhash.models.backbones import BACKBONES
from jhash.models.heads import CONFIG_FIELDS, HeadOptions


class MLP(nn.Module):
    """Fully connected ReLU network on flat inputs (images are flattened): the features ``(batch, hidden[-1])``
    (the flat input itself with ``hidden=()``, as the hash head on cached features uses it)."""

    hidden: Sequence[int] = (256, 256)

    @nn.compact
    def __call__(self, x, train: bool = False):
        del train  # no layer behaves differently in training
        h = x.reshape((x.shape[0], -1))
        for i, width in enumerate(self.hidden):
            h = nn.relu(nn.Dense(width, name=f"dense{i}")(h))
        return h


@jax.custom_vjp
def max_pool_2x2(x):
    """``nn.max_pool(x, (2, 2), strides=(2, 2))`` on NHWC (an odd last row or column dropped), with the same
    values and gradient: each window's gradient goes to its first maximum in row-major order, as XLA's
    select-and-scatter with ``>=`` picks it (tests/test_models.py checks both bit for bit, and a training
    run's codes are byte-identical). Written out for speed: XLA's CPU lowering of ``nn.max_pool``'s
    gradient (a reduce-window over four int32 index maps, then a scatter) took about a third of the small
    CNN's training step (experiments/results/speed_floor.md, train_step); here the forward pass keeps
    each window's argmax and the gradient is one elementwise select."""
    return _pool_argmax(x)[0]


def _pool_argmax(x):
    """(maxima, position 0..3 of each window's first maximum in row-major order).

    Elementwise over the window's four strided slices, kept left to right: a later value replaces
    the kept one only when it is larger, or NaN while the kept one is not (NaN propagates, the
    first NaN wins), so equal values (-0.0 and +0.0 included) keep the first. The previous form, XLA's CPU
    reduction over the two window axes of a 6-d view, made the small CNN's step 1.27x slower
    (experiments/results/speed_floor.md)."""
    n, h, w, c = x.shape
    x = x[:, : h - h % 2, : w - w % 2]
    best, arg = x[:, 0::2, 0::2], jnp.zeros((n, h // 2, w // 2, c), jnp.int32)
    for pos, (i, j) in enumerate(((0, 1), (1, 0), (1, 1)), start=1):
        v = x[:, i::2, j::2]
        take = (v > best) | (jnp.isnan(v) & ~jnp.isnan(best))
        best, arg = jnp.where(take, v, best), jnp.where(take, jnp.int32(pos), arg)
    return best, arg


def _max_pool_fwd(x):
    y, arg = _pool_argmax(x)
    return y, (arg, x.shape)


def _max_pool_bwd(res, g):
    arg, shape = res
    n, h2, w2, c = g.shape
    pos = jax.lax.broadcasted_iota(jnp.int32, (n, h2, 2, w2, 2, c), 2) * 2 + \
        jax.lax.broadcasted_iota(jnp.int32, (n, h2, 2, w2, 2, c), 4)
    dx = jnp.where(pos == arg[:, :, None, :, None, :], g[:, :, None, :, None, :], jnp.zeros((), g.dtype))
    dx = dx.reshape(n, 2 * h2, 2 * w2, c)
    return (jnp.pad(dx, ((0, 0), (0, shape[1] - 2 * h2), (0, shape[2] - 2 * w2), (0, 0))),)


max_pool_2x2.defvjp(_max_pool_fwd, _max_pool_bwd)


class CNN(nn.Module):
    """A small VGG-style CNN for 28x28 / 32x32 images, trained from scratch: the features ``(batch, dense)``.

    Blocks of ``convs_per_block`` x (3x3 conv, batch norm, ReLU) and a 2x2 max-pool, then a
    dense layer (batch norm, ReLU). Batch norm (``batch_norm=True``) uses
    the statistics of the batch it is applied to in training, which the trainer makes each
    reduction group of batch / ``config.reduction_groups`` items ("ghost batch norm", the
    same on any number of devices; the whole global batch, one all-reduce, with
    ``config.deterministic_reductions=false``), and running averages at evaluation. Without it, pairwise losses such as DPSH's tend to shrink the outputs of a
    network trained from scratch to the trivial point u = 0 before any class structure
    emerges (seen on MNIST: every code the same).
    """

    channels: Sequence[int] = (32, 64)
    convs_per_block: int = 1
    dense: int = 256
    batch_norm: bool = True

    def _norm(self, h, train: bool, name: str):
        if not self.batch_norm:
            return h
        return nn.BatchNorm(use_running_average=not train, momentum=0.9, name=name)(h)

    @nn.compact
    def __call__(self, x, train: bool = False):
        if x.ndim != 4:
            raise ValueError(f"CNN expects images of shape (batch, H, W, C); got x with shape {x.shape}")
        h = x
        for i, c in enumerate(self.channels):
            for j in range(self.convs_per_block):
                h = nn.Conv(c, (3, 3), use_bias=not self.batch_norm, name=f"conv{i}_{j}")(h)
                h = nn.relu(self._norm(h, train, f"bn{i}_{j}"))
            h = max_pool_2x2(h)
        h = h.reshape((h.shape[0], -1))
        h = nn.Dense(self.dense, use_bias=not self.batch_norm, name="dense")(h)
        return nn.relu(self._norm(h, train, "bn_dense"))


class HashNetwork(nn.Module):
    """A backbone (features ``(batch, d)``) and a hash head (``outputs`` real outputs): ``(batch, outputs)``.

    ``outputs`` is the width of the network's output. For binary hashing methods it is the code
    length q (``config.bits``); quantization methods (DQN, DEPQ, DSQ, SPDAQ) quantize an
    embedding of their hyperparameter ``dim`` units, so their network has ``outputs = dim``
    while ``config.bits`` (M log2 K) is the length of the quantized code; CNNH+ asks for q plus
    its class outputs. ``head``: the head's options (:class:`jhash.models.heads.HeadOptions`).

    The backbone's features are sown as ``'features'`` (what :func:`jhash.evaluate.extract_features`
    reads). The backbone shares this module's variable scope (``nn.share_scope``), so the
    parameter tree is the one of the backbones that carried their head before this module
    existed (``dense0``, ..., ``HashHead_0``): checkpoints of older runs restore unchanged.
    """

    backbone: nn.Module
    outputs: int
    head: HeadOptions = HeadOptions()

    def setup(self):
        nn.share_scope(self, self.backbone)

    @nn.compact
    def __call__(self, x, train: bool = False):
        h = self.backbone(x, train=train)
        self.sow("intermediates", "features", h)
        return self.head.make(self.outputs)(h)


class CodeClassifier(nn.Module):
    """A hashing network with a linear classifier on its codes: returns ``{'u': u, 'logits': W d(u) + c}``.

    ``d`` is the discretizer called ``on`` (:mod:`jhash.discretize`; a step-independent one:
    ``'sign_ste'`` for GreedyHash's classifier on the binary codes, ``'tanh'`` or
    ``'identity'`` for a classifier on relaxed codes). Methods with pointwise supervision
    (GreedyHash, DHAG, DSEH) wrap their :class:`HashNetwork` in it; ``u`` is what gets encoded.
    The field keeps its name ``backbone`` because it names the network's place in the parameter
    tree (``backbone/...``, ``classifier``) that older checkpoints hold; :func:`hash_network` finds it.
    """

    backbone: nn.Module  # the HashNetwork
    num_classes: int
    on: str = "sign_ste"
    use_bias: bool = True

    @nn.compact
    def __call__(self, x, train: bool = False):
        from jhash.discretize import get_discretizer

        u = self.backbone(x, train=train)
        logits = nn.Dense(self.num_classes, use_bias=self.use_bias, name="classifier")(get_discretizer(self.on)(u))
        return {"u": u, "logits": logits}


_MODELS = {"mlp": MLP, "cnn": CNN, **BACKBONES}  # the backbones by name


COMPUTE_DTYPES = {"float32": None, "bfloat16": jnp.bfloat16}  # config.dtype -> apply_model's dtype


def compute_dtype(name: str):
    """``apply_model``'s ``dtype`` for ``config.dtype`` (``'float32'`` or ``'bfloat16'``)."""
    if name not in COMPUTE_DTYPES:
        raise ValueError(f"config.dtype must be one of {', '.join(COMPUTE_DTYPES)}, got {name!r}")
    return COMPUTE_DTYPES[name]


def init_model(model: nn.Module, key, sample_x):
    """``(params, model_state)``: the trainable parameters and the other variable collections (e.g. batch_stats)."""
    variables = dict(model.init(key, sample_x, train=False))
    return variables.pop("params"), variables


def apply_model(model: nn.Module, params, model_state, x, *, train: bool, dtype=None):
    """``(outputs, new_model_state)``; in training, collections such as batch_stats are updated.

    ``dtype`` (e.g. ``jnp.bfloat16``): mixed precision. The network computes in ``dtype`` (the
    floating parameters and the input are cast to it where they are used, so gradients reach
    the float32 parameters cast back), while the model state (batch-norm statistics, updated
    with float32 reductions) stays float32 and the outputs are returned as float32, so losses
    and codes are computed in float32. None or float32: everything in float32."""
    if dtype is not None and jnp.dtype(dtype) != jnp.float32:
        low = lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a  # noqa: E731
        u, model_state = apply_model(model, jax.tree.map(low, params), model_state, low(x), train=train)
        high = lambda a: a.astype(jnp.float32) if jnp.issubdtype(a.dtype, jnp.floating) else a  # noqa: E731
        return jax.tree.map(high, u), jax.tree.map(high, model_state)
    variables = {"params": params, **model_state}
    if train and model_state:
        u, updated = model.apply(variables, x, train=True, mutable=list(model_state))
        return u, dict(updated)
    return model.apply(variables, x, train=train), model_state


def hash_network(model: nn.Module) -> HashNetwork:
    """The :class:`HashNetwork` of ``model``: itself, or the one a wrapper (:class:`CodeClassifier`, DSQ's and
    DEPQ's modules) holds in its ``backbone`` field."""
    while not isinstance(model, HashNetwork):
        if not isinstance(getattr(model, "backbone", None), nn.Module):
            raise ValueError(f"{type(model).__name__} is neither a HashNetwork nor a module wrapping one as its backbone")
        model = model.backbone
    return model


def get_backbone(name: str, **kwargs) -> nn.Module:
    """The feature extractor called ``name`` (``'mlp'``, ``'cnn'`` or a backbone of :mod:`jhash.models.backbones`:
    ``'alexnet'``, ``'vgg16'``, ``'resnet18'``, ``'resnet50'``) with its keyword arguments."""
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(_MODELS)}")
    cls = _MODELS[name]
    fields = {f.name for f in dataclasses.fields(cls)} - {"parent", "name"}
    unknown = sorted(set(kwargs) - fields)
    if unknown:
        raise ValueError(f"model {name!r} takes no argument(s) {unknown}; its arguments are "
                         f"{sorted(fields | set(CONFIG_FIELDS))}")
    return cls(**kwargs)


def network(model_config, *, outputs: int) -> HashNetwork:
    """The :class:`HashNetwork` of a ``config.model`` dict (``name``, the backbone's keyword arguments and
    the ``head_*`` options) with ``outputs`` outputs."""
    if not isinstance(outputs, int) or isinstance(outputs, bool) or outputs <= 0:
        raise ValueError(f"bits must be a positive integer, got {outputs!r}")
    kwargs = {k: v for k, v in dict(model_config).items() if k != "name" and k not in CONFIG_FIELDS}
    backbone = get_backbone(model_config["name"], **kwargs)
    head = HeadOptions.from_config(model_config)
    head.check(outputs)
    return HashNetwork(backbone, outputs, head)


def get_model(name: str, *, bits: int, **kwargs) -> HashNetwork:
    """The backbone called ``name`` (:func:`get_backbone`, its keyword arguments) under the hash head of the
    ``head_*`` keyword arguments, with ``bits`` outputs (:class:`HashNetwork`)."""
    return network({"name": name, **kwargs}, outputs=bits)
