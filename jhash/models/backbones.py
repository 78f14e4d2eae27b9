"""Standard ImageNet backbones in flax, laid out as torchvision's, with the hash head on top.

  alexnet   torchvision's AlexNet: the single-GPU variant of Krizhevsky, "One weird trick for
            parallelizing convolutional neural networks", arXiv:1404.5997 (2014), of Krizhevsky,
            Sutskever & Hinton, "ImageNet classification with deep convolutional neural networks",
            NIPS 2012. conv 64-11x11/4, pool, conv 192-5x5, pool, conv 384, 256, 256 (3x3), pool,
            adaptive average pool to 6x6, fc6 4096, fc7 4096.
  vgg16     Simonyan & Zisserman, "Very deep convolutional networks for large-scale image
            recognition", ICLR 2015, configuration D (13 3x3 convs in 5 blocks, 2x2 max-pools),
            adaptive average pool to 7x7, fc6 4096, fc7 4096 (torchvision's ``vgg16``, no batch norm).
  resnet18  He, Zhang, Ren & Sun, "Deep residual learning for image recognition", CVPR 2016:
  resnet50  7x7/2 stem, 3x3/2 max-pool, four stages of basic blocks [2, 2, 2, 2] (18) or bottleneck
            blocks [3, 4, 6, 3] (50), global average pool (512 or 2048 features). Batch norm in
            every block; downsampling in the 3x3 conv of a bottleneck (torchvision's "ResNet v1.5").

Each network sows its features before ImageNet's classifier (fc7 after ReLU for AlexNet and
VGG-16, the pooled vector for the ResNets) as ``'features'`` (what
:func:`jhash.evaluate.extract_features` reads), and maps them through
the hash head of :mod:`jhash.models.heads` (``head``, default FC) to ``bits`` outputs: the hash layer replaces the 1000-way
classifier, as in DPSH (Li et al., IJCAI 2016, on CNN-F), HashNet and DCH (on AlexNet) and
most later deep hashing papers.

Inputs are images (batch, H, W, C) in [0, 1] (``jhash.data.to_float``). The model then:
replicates a single channel to RGB (torchvision's ``Grayscale(num_output_channels=3)``), resizes
to ``resize`` x ``resize`` when ``resize`` > 0 (bilinear; DPSH and DSDH resize CIFAR-10 to
224 x 224 for CNN-F), and, with ``normalize=True`` (the default), standardises with the
ImageNet mean and standard deviation as torchvision's pretrained weights expect.

Pretrained weights: ``weights=PATH`` names a file written by :mod:`jhash.models.convert`
(from a torchvision state dict). Its arrays are the initial values of the trunk's parameters
and batch-norm statistics (the hash head starts random), used wherever the backbone sits in
a bigger model (e.g. inside :class:`jhash.models.CodeClassifier`). The file is read when the
model is initialised (training, ``jhash eval`` rebuilding a run) and must stay where the
config points. With ``weights=''`` (the default) the trunk is initialised as torchvision
initialises it (He normal, fan-out, for convolutions).

Where we differ from the papers / torchvision, and why:
  * Small inputs (CIFAR's 32 x 32, MNIST's 28 x 28) are accepted as they are: a max-pool whose
    window is larger than its input map pools over what there is (the map is padded with -inf
    up to the window; torchvision raises instead: AlexNet below 63 x 63, VGG-16 below 32 x 32).
    Wherever torchvision runs, the outputs are the same (tested against it).
  * No dropout in AlexNet / VGG-16's fc6 and fc7: the one trainer applies models without a
    dropout PRNG stream. Equal to torchvision in evaluation mode (where dropout is off).
  * CNN-F (Chatfield et al., "Return of the devil in the details", BMVC 2014), the network of
    DPSH and DSDH, has local response normalisation and 256 channels in conv2-5; there are no
    public torchvision weights of it, so ``alexnet`` follows torchvision's AlexNet layout, the
    closest network with weights a user can convert.
  * Batch norm (ResNets) follows PyTorch: epsilon 1e-5, running averages with momentum 0.1 and
    the unbiased batch variance. The global batch's statistics are used in training (one
    all-reduce when the batch is sharded over devices).
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jhash.models.heads import make_head

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_HE_FAN_OUT = nn.initializers.variance_scaling(2.0, "fan_out", "normal")  # torchvision's kaiming_normal_(fan_out)
_FC_INIT = nn.initializers.normal(0.01)  # torchvision's VGG classifier init (used for AlexNet's too)


# --------------------------------------------------------------------------- layers, initialised from a file


@functools.lru_cache(maxsize=2)
def _read_weights(path: str, arch: str) -> dict:
    from jhash.models.convert import load_weights

    return load_weights(path, arch=arch)


@dataclasses.dataclass(frozen=True)
class _Layers:
    """Makes the layers of one module: initialised by torchvision's rules, or from the converted file
    ``weights`` (variables ``<collection>/<prefix><layer>/<name>``). Call it inside a ``compact`` method."""

    weights: str
    arch: str
    prefix: str = ""

    def sub(self, name: str) -> "_Layers":
        return dataclasses.replace(self, prefix=f"{self.prefix}{name}/")

    def init(self, collection: str, path: str, default):
        if not self.weights:
            return default
        key = f"{collection}/{self.prefix}{path}"

        def init(_key, shape, dtype=jnp.float32):  # reads the file only for variables the model creates
            arrays = _read_weights(self.weights, self.arch)
            if key not in arrays:
                raise ValueError(f"weights file {self.weights!r} ({self.arch}) has no array {key!r}")
            if arrays[key].shape != tuple(shape):
                raise ValueError(f"weights file {self.weights!r}: {key} has shape {arrays[key].shape}, "
                                 f"the {self.arch} model needs {tuple(shape)}")
            return jnp.asarray(arrays[key], dtype)

        return init

    def conv(self, name, features, kernel, stride=1, padding=0, bias=True):
        return nn.Conv(features, (kernel, kernel), strides=(stride, stride), padding=[(padding, padding)] * 2,
                       use_bias=bias, name=name, kernel_init=self.init("params", f"{name}/kernel", _HE_FAN_OUT),
                       bias_init=self.init("params", f"{name}/bias", nn.initializers.zeros))

    def dense(self, name, features):
        return nn.Dense(features, name=name, kernel_init=self.init("params", f"{name}/kernel", _FC_INIT),
                        bias_init=self.init("params", f"{name}/bias", nn.initializers.zeros))

    def bn(self, name, features):
        inits = tuple(self.init(c, f"{name}/{v}", d) for c, v, d in (
            ("params", "scale", nn.initializers.ones), ("params", "bias", nn.initializers.zeros),
            ("batch_stats", "mean", nn.initializers.zeros), ("batch_stats", "var", nn.initializers.ones)))
        return BatchNorm(features, inits, name=name)


class BatchNorm(nn.Module):
    """PyTorch's ``BatchNorm2d`` on NHWC: epsilon 1e-5; in training, the batch's mean and (biased) variance,
    and running averages with momentum 0.1 of the mean and the unbiased variance; in evaluation, the
    running averages. ``inits``: initializers ``(key, shape, dtype)`` of scale, bias, mean, var."""

    features: int
    inits: Any
    epsilon: float = 1e-5
    momentum: float = 0.1

    @nn.compact
    def __call__(self, x, train: bool):
        scale_init, bias_init, mean_init, var_init = self.inits
        shape = (self.features,)
        scale = self.param("scale", scale_init, shape, jnp.float32)
        bias = self.param("bias", bias_init, shape, jnp.float32)
        ra_mean = self.variable("batch_stats", "mean", lambda: mean_init(None, shape, jnp.float32))
        ra_var = self.variable("batch_stats", "var", lambda: var_init(None, shape, jnp.float32))
        if train:  # statistics in float32 also when the network computes in bfloat16
            axes = tuple(range(x.ndim - 1))
            mean = jnp.mean(x, axis=axes, dtype=jnp.float32)
            var = jnp.mean(jnp.square(x.astype(jnp.float32) - mean), axis=axes)
            if not self.is_initializing():
                n = math.prod(x.shape[:-1])
                ra_mean.value = (1 - self.momentum) * ra_mean.value + self.momentum * mean
                ra_var.value = (1 - self.momentum) * ra_var.value + self.momentum * var * (n / max(n - 1, 1))
        else:
            mean, var = ra_mean.value, ra_var.value
        return ((x - mean) * (scale * jax.lax.rsqrt(var + self.epsilon)) + bias).astype(x.dtype)


# --------------------------------------------------------------------------- pooling as torch does it


def max_pool(x, window: int, stride: int, padding: int = 0):
    """torch's ``MaxPool2d(window, stride, padding)`` (floor mode) on NHWC; a map smaller than the window
    (where torch raises) is padded with -inf on its far side up to the window."""
    pads = [(padding, padding + max(0, window - (size + 2 * padding))) for size in x.shape[1:3]]
    return nn.max_pool(x, (window, window), strides=(stride, stride), padding=pads)


def adaptive_avg_pool(x, out: int):
    """torch's ``AdaptiveAvgPool2d((out, out))`` on NHWC: output cell i averages input rows
    floor(i H / out) .. ceil((i + 1) H / out) - 1 (bins overlap, or repeat rows, when H is not a multiple)."""
    if x.shape[1:3] == (out, out):
        return x

    def bins(size):
        return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]

    x = jnp.stack([jnp.mean(x[:, a:b], axis=1) for a, b in bins(x.shape[1])], axis=1)
    return jnp.stack([jnp.mean(x[:, :, a:b], axis=2) for a, b in bins(x.shape[2])], axis=2)


def _flatten_chw(x):
    """Flattens NHWC in torch's (C, H, W) order, so fc6 takes torchvision's weights as they are."""
    return jnp.transpose(x, (0, 3, 1, 2)).reshape((x.shape[0], -1))


# --------------------------------------------------------------------------- the backbones


class _Backbone(nn.Module):
    """Fields shared by the backbones: the input transform and the hash head (see the module docstring)."""

    bits: int
    weights: str = ""
    normalize: bool = True
    resize: int = 0
    head_activation: str = "none"
    head: str = "fc"          # jhash.models.heads: fc | ninh | weighted | grouped
    head_groups: int = 4      # grouped head: m groups of bits / m bits
    head_hidden: int = 0      # grouped head: hidden units per group (0: features // groups)

    arch = ""  # the architecture named in converted weight files

    def layers(self) -> _Layers:
        return _Layers(self.weights, self.arch)

    def prepare(self, x):
        if x.ndim != 4 or x.shape[-1] not in (1, 3):
            raise ValueError(f"{type(self).__name__} expects images of shape (batch, H, W, 1 or 3); "
                             f"got x with shape {x.shape}")
        if not isinstance(self.resize, int) or self.resize < 0:
            raise ValueError(f"resize must be an int >= 0 (0 = keep the input size), got {self.resize!r}")
        if x.shape[-1] == 1:
            x = jnp.repeat(x, 3, axis=-1)
        if self.resize and x.shape[1:3] != (self.resize, self.resize):
            x = jax.image.resize(x, (x.shape[0], self.resize, self.resize, 3), "bilinear")
        if self.normalize:
            x = (x - jnp.asarray(IMAGENET_MEAN, x.dtype)) / jnp.asarray(IMAGENET_STD, x.dtype)
        return x

    def hash_head(self, features):
        self.sow("intermediates", "features", features)
        return make_head(self.head, bits=self.bits, activation=self.head_activation, groups=self.head_groups,
                         hidden=self.head_hidden)(features)


class AlexNet(_Backbone):
    """torchvision's AlexNet trunk (see the module docstring): fc7 features (4096), then the hash head."""

    arch = "alexnet"

    @nn.compact
    def __call__(self, x, train: bool = False):
        del train  # no layer behaves differently in training (no dropout, no batch norm)
        make = self.layers()
        h = self.prepare(x)
        h = max_pool(nn.relu(make.conv("features_0", 64, 11, stride=4, padding=2)(h)), 3, 2)
        h = max_pool(nn.relu(make.conv("features_3", 192, 5, padding=2)(h)), 3, 2)
        h = nn.relu(make.conv("features_6", 384, 3, padding=1)(h))
        h = nn.relu(make.conv("features_8", 256, 3, padding=1)(h))
        h = max_pool(nn.relu(make.conv("features_10", 256, 3, padding=1)(h)), 3, 2)
        h = _flatten_chw(adaptive_avg_pool(h, 6))
        h = nn.relu(make.dense("classifier_1", 4096)(h))
        h = nn.relu(make.dense("classifier_4", 4096)(h))
        return self.hash_head(h)


#: VGG-16's convolutions (channels) and max-pools ("M"), in torchvision's order.
VGG16_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGG16(_Backbone):
    """VGG-16 (configuration D) as torchvision's ``vgg16``: fc7 features (4096), then the hash head."""

    arch = "vgg16"

    @nn.compact
    def __call__(self, x, train: bool = False):
        del train
        make = self.layers()
        h = self.prepare(x)
        index = 0  # position in torchvision's ``features`` Sequential (a conv and its ReLU take two)
        for spec in VGG16_LAYERS:
            if spec == "M":
                h, index = max_pool(h, 2, 2), index + 1
            else:
                h, index = nn.relu(make.conv(f"features_{index}", spec, 3, padding=1)(h)), index + 2
        h = _flatten_chw(adaptive_avg_pool(h, 7))
        h = nn.relu(make.dense("classifier_0", 4096)(h))
        h = nn.relu(make.dense("classifier_3", 4096)(h))
        return self.hash_head(h)


class _Block(nn.Module):
    """A residual block: basic (two 3x3 convs) or bottleneck (1x1, 3x3 with the stride, 1x1 to 4x width)."""

    width: int
    stride: int
    bottleneck: bool
    make: _Layers

    @nn.compact
    def __call__(self, x, train: bool):
        make = self.make
        if self.bottleneck:
            out_ch = 4 * self.width
            h = nn.relu(make.bn("bn1", self.width)(make.conv("conv1", self.width, 1, bias=False)(x), train))
            h = make.conv("conv2", self.width, 3, stride=self.stride, padding=1, bias=False)(h)
            h = nn.relu(make.bn("bn2", self.width)(h, train))
            h = make.bn("bn3", out_ch)(make.conv("conv3", out_ch, 1, bias=False)(h), train)
        else:
            out_ch = self.width
            h = make.conv("conv1", self.width, 3, stride=self.stride, padding=1, bias=False)(x)
            h = nn.relu(make.bn("bn1", self.width)(h, train))
            h = make.bn("bn2", self.width)(make.conv("conv2", self.width, 3, padding=1, bias=False)(h), train)
        if self.stride != 1 or x.shape[-1] != out_ch:
            x = make.conv("downsample_0", out_ch, 1, stride=self.stride, bias=False)(x)
            x = make.bn("downsample_1", out_ch)(x, train)
        return nn.relu(h + x)


class _ResNet(_Backbone):
    stages = ()  # blocks per stage (class constants, not fields: the architecture is fixed by the name)
    bottleneck = False

    @nn.compact
    def __call__(self, x, train: bool = False):
        make = self.layers()
        h = self.prepare(x)
        h = nn.relu(make.bn("bn1", 64)(make.conv("conv1", 64, 7, stride=2, padding=3, bias=False)(h), train))
        h = max_pool(h, 3, 2, padding=1)
        for stage, blocks in enumerate(self.stages):
            for b in range(blocks):
                name = f"layer{stage + 1}_{b}"
                stride = 2 if stage > 0 and b == 0 else 1
                h = _Block(64 * 2 ** stage, stride, self.bottleneck, make.sub(name), name=name)(h, train)
        return self.hash_head(jnp.mean(h, axis=(1, 2)))


class ResNet18(_ResNet):
    """ResNet-18 (He et al., CVPR 2016) as torchvision's ``resnet18``: 512 pooled features, then the hash head."""

    arch = "resnet18"
    stages = (2, 2, 2, 2)
    bottleneck = False


class ResNet50(_ResNet):
    """ResNet-50 (He et al., CVPR 2016) as torchvision's ``resnet50`` (v1.5): 2048 pooled features, then the hash head."""

    arch = "resnet50"
    stages = (3, 4, 6, 3)
    bottleneck = True


#: The backbones by name (each also registered in :data:`jhash.models.nets._MODELS`).
BACKBONES = {"alexnet": AlexNet, "vgg16": VGG16, "resnet18": ResNet18, "resnet50": ResNet50}
