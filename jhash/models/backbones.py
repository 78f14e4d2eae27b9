"""Standard ImageNet backbones in flax, laid out as torchvision's: feature extractors for :class:`jhash.models.HashNetwork`.

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

Each network returns its features before ImageNet's classifier (fc7 after ReLU for AlexNet and
VGG-16, the pooled vector for the ResNets); :class:`jhash.models.HashNetwork` sows them as
``'features'`` (what :func:`jhash.evaluate.extract_features` reads) and maps them through the
hash head of :mod:`jhash.models.heads` (default FC): the hash layer replaces the 1000-way
classifier, as in DPSH (Li et al., IJCAI 2016, on CNN-F), HashNet and DCH (on AlexNet) and
most later deep hashing papers.

Inputs are images (batch, H, W, C) in [0, 1] (``jhash.data.to_float``). The model then:
replicates a single channel to RGB (torchvision's ``Grayscale(num_output_channels=3)``), resizes
to ``resize`` x ``resize`` when ``resize`` > 0 (bilinear; DPSH and DSDH resize CIFAR-10 to
224 x 224 for CNN-F), and, with ``normalize=True`` (the default), standardises with the
ImageNet mean and standard deviation as torchvision's pretrained weights expect.

Pretrained weights: ``weights=PATH`` names a file written by :mod:`jhash.models.convert`
(from a torchvision state dict). The network is always initialised as torchvision initialises
it (He normal, fan-out, for convolutions); :func:`jhash.models.pretrained.load` then replaces
the trunk's parameters and batch-norm statistics by the file's arrays (the hash head stays
random), wherever the backbone sits in a bigger model (e.g. inside
:class:`jhash.models.CodeClassifier`). The trainer does that when a run starts and records the
file's SHA-256 in the run's manifest; the checkpoints then hold the parameters, so ``jhash eval``
and a resumed run do not need the file (a resumed run refuses a file that changed since).

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

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_HE_FAN_OUT = nn.initializers.variance_scaling(2.0, "fan_out", "normal")  # torchvision's kaiming_normal_(fan_out)
_FC_INIT = nn.initializers.normal(0.01)  # torchvision's VGG classifier init (used for AlexNet's too)


# --------------------------------------------------------------------------- layers, initialised as torchvision's


def conv(name, features, kernel, stride=1, padding=0, bias=True):
    return nn.Conv(features, (kernel, kernel), strides=(stride, stride), padding=[(padding, padding)] * 2,
                   use_bias=bias, name=name, kernel_init=_HE_FAN_OUT)


def dense(name, features):
    return nn.Dense(features, name=name, kernel_init=_FC_INIT)


def bn(name, features):
    return BatchNorm(features, name=name)


class BatchNorm(nn.Module):
    """PyTorch's ``BatchNorm2d`` on NHWC: epsilon 1e-5; in training, the batch's mean and (biased) variance,
    and running averages with momentum 0.1 of the mean and the unbiased variance; in evaluation, the
    running averages. Scale and variance start at 1, bias and mean at 0."""

    features: int
    epsilon: float = 1e-5
    momentum: float = 0.1

    @nn.compact
    def __call__(self, x, train: bool):
        shape = (self.features,)
        scale = self.param("scale", nn.initializers.ones, shape, jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, shape, jnp.float32)
        ra_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros(shape, jnp.float32))
        ra_var = self.variable("batch_stats", "var", lambda: jnp.ones(shape, jnp.float32))
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
    """Fields shared by the backbones: the pretrained weights file and the input transform (module docstring)."""

    weights: str = ""  # a converted file that jhash.models.pretrained.load puts into the initialised trunk
    normalize: bool = True
    resize: int = 0

    arch = ""  # the architecture named in converted weight files

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


class AlexNet(_Backbone):
    """torchvision's AlexNet trunk (see the module docstring): its fc7 features (4096)."""

    arch = "alexnet"

    @nn.compact
    def __call__(self, x, train: bool = False):
        del train  # no layer behaves differently in training (no dropout, no batch norm)
        h = self.prepare(x)
        h = max_pool(nn.relu(conv("features_0", 64, 11, stride=4, padding=2)(h)), 3, 2)
        h = max_pool(nn.relu(conv("features_3", 192, 5, padding=2)(h)), 3, 2)
        h = nn.relu(conv("features_6", 384, 3, padding=1)(h))
        h = nn.relu(conv("features_8", 256, 3, padding=1)(h))
        h = max_pool(nn.relu(conv("features_10", 256, 3, padding=1)(h)), 3, 2)
        h = _flatten_chw(adaptive_avg_pool(h, 6))
        h = nn.relu(dense("classifier_1", 4096)(h))
        h = nn.relu(dense("classifier_4", 4096)(h))
        return h


#: VGG-16's convolutions (channels) and max-pools ("M"), in torchvision's order.
VGG16_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGG16(_Backbone):
    """VGG-16 (configuration D) as torchvision's ``vgg16``: its fc7 features (4096)."""

    arch = "vgg16"

    @nn.compact
    def __call__(self, x, train: bool = False):
        del train
        h = self.prepare(x)
        index = 0  # position in torchvision's ``features`` Sequential (a conv and its ReLU take two)
        for spec in VGG16_LAYERS:
            if spec == "M":
                h, index = max_pool(h, 2, 2), index + 1
            else:
                h, index = nn.relu(conv(f"features_{index}", spec, 3, padding=1)(h)), index + 2
        h = _flatten_chw(adaptive_avg_pool(h, 7))
        h = nn.relu(dense("classifier_0", 4096)(h))
        h = nn.relu(dense("classifier_3", 4096)(h))
        return h


class _Block(nn.Module):
    """A residual block: basic (two 3x3 convs) or bottleneck (1x1, 3x3 with the stride, 1x1 to 4x width)."""

    width: int
    stride: int
    bottleneck: bool

    @nn.compact
    def __call__(self, x, train: bool):
        if self.bottleneck:
            out_ch = 4 * self.width
            h = nn.relu(bn("bn1", self.width)(conv("conv1", self.width, 1, bias=False)(x), train))
            h = conv("conv2", self.width, 3, stride=self.stride, padding=1, bias=False)(h)
            h = nn.relu(bn("bn2", self.width)(h, train))
            h = bn("bn3", out_ch)(conv("conv3", out_ch, 1, bias=False)(h), train)
        else:
            out_ch = self.width
            h = conv("conv1", self.width, 3, stride=self.stride, padding=1, bias=False)(x)
            h = nn.relu(bn("bn1", self.width)(h, train))
            h = bn("bn2", self.width)(conv("conv2", self.width, 3, padding=1, bias=False)(h), train)
        if self.stride != 1 or x.shape[-1] != out_ch:
            x = conv("downsample_0", out_ch, 1, stride=self.stride, bias=False)(x)
            x = bn("downsample_1", out_ch)(x, train)
        return nn.relu(h + x)


class _ResNet(_Backbone):
    stages = ()  # blocks per stage (class constants, not fields: the architecture is fixed by the name)
    bottleneck = False

    @nn.compact
    def __call__(self, x, train: bool = False):
        h = self.prepare(x)
        h = nn.relu(bn("bn1", 64)(conv("conv1", 64, 7, stride=2, padding=3, bias=False)(h), train))
        h = max_pool(h, 3, 2, padding=1)
        for stage, blocks in enumerate(self.stages):
            for b in range(blocks):
                name = f"layer{stage + 1}_{b}"
                stride = 2 if stage > 0 and b == 0 else 1
                h = _Block(64 * 2 ** stage, stride, self.bottleneck, name=name)(h, train)
        return jnp.mean(h, axis=(1, 2))


class ResNet18(_ResNet):
    """ResNet-18 (He et al., CVPR 2016) as torchvision's ``resnet18``: its 512 pooled features."""

    arch = "resnet18"
    stages = (2, 2, 2, 2)
    bottleneck = False


class ResNet50(_ResNet):
    """ResNet-50 (He et al., CVPR 2016) as torchvision's ``resnet50`` (v1.5): its 2048 pooled features."""

    arch = "resnet50"
    stages = (3, 4, 6, 3)
    bottleneck = True


#: The backbones by name (with MLP and CNN, what :func:`jhash.models.get_backbone` builds).
BACKBONES = {"alexnet": AlexNet, "vgg16": VGG16, "resnet18": ResNet18, "resnet50": ResNet50}
