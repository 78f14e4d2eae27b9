"""Hash heads: the layer(s) between a backbone's features h (n, d) and its q real outputs u (n, q).

:class:`jhash.models.HashNetwork` puts the head that its :class:`HeadOptions` name on any
backbone (``config.model.head`` and the other ``head_*`` fields of ``config.model``), so every
head works with every backbone and every method; the sign of u is the code, and what happens
between (tanh, straight-through, ...) stays the method's choice. Heads:

``'fc'`` -- :class:`HashHead`: one dense layer, u = W^T h + c (every bit sees all features).

``'ninh'`` -- :class:`DivideEncodeHead`, the divide-and-encode module of NINH: Lai, Pan, Liu,
  Yan, "Simultaneous feature learning and hash coding with deep neural networks", CVPR 2015,
  section 3.2. The features are divided into q slices h = [h^(1); ...; h^(q)] and slice i is
  fully connected to bit i alone: u_i = w_i^T h^(i) + c_i, so that the bits are computed from
  disjoint parts of the representation and are less redundant. In the paper the shared
  sub-network's last layer is sized for the slices (50 units per bit as we read it; no copy of
  the paper was reachable here to re-check); here the slices split whatever the backbone gives
  (d units; when q does not divide d, the first d mod q slices have one unit more, as
  ``numpy.array_split``), so the trunk stays the same across heads in an ablation. The paper
  squashes each u_i by a sigmoid and a piecewise threshold (0 below 0.5 - eps, 1 above
  0.5 + eps, the sigmoid in between) to push outputs to {0, 1}; that activation is
  ``head_activation='ninh_threshold'`` (mapped to [-1, 1], eps = 0.1: the paper only asks for a
  small positive eps). The default (``'none'``) leaves the relaxation to the method, as for
  every head.

``'weighted'`` -- :class:`WeightedBitsHead`, the weighted bits of DRSCH: Zhang, Lin, Zhang,
  Zuo, Zhang, "Bit-scalable deep hashing with regularized similarity learning for image
  retrieval and person re-identification", IEEE TIP 24(12), 2015, section III. After the
  (tanh-like) hash layer r an element-wise layer multiplies bit k by a learned weight w_k, so
  the affinity the loss sees is the weighted Hamming affinity sum_k w_k^2 r_ik r_jk. At
  retrieval the codes are sign(r) with the weighted Hamming distance
  sum_k w_k^2 [b_ik != b_jk] (:func:`weighted_hamming_distance`), or, for a shorter code, only
  the L bits of largest |w_k| are kept (:func:`truncate_codes`): one network gives codes of
  every length. :func:`bit_weights` reads w from trained parameters. The weights start at 1.
  The paper's tanh-like hash layer is ``head_activation='tanh'``; with the default
  (``'none'``) the method's own relaxation applies to w * u. The paper trains these weights
  with its own triplet loss; here any method's loss trains them.

``'grouped'`` -- :class:`GroupedHead`: m sub-networks over the shared trunk, sub-network g
  mapping h to the g-th group of q/m bits through its own hidden layer (ReLU) and output
  layer, as the THDSH-style grouped heads of jhash issue 8 ("Guo et al., AAAI 2018: m groups
  of q/m bits"). That reference could not be checked here (no copy of the paper or the
  authors' code was reachable), so the sub-network shape is ours: one hidden layer of
  ``head_hidden`` units (default d / m, so the m groups together are as wide as the trunk),
  m = ``head_groups`` (default 4). The groups share no parameter: given the trunk features,
  each group's bits are a function of its own parameters alone. (Without the hidden layer
  the m linear groups would be exactly the FC head.)
"""
from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

NINH_EPS = 0.1
DEFAULT_GROUPS = 4  # the grouped head's m when none is given


def ninh_threshold(u, eps: float = NINH_EPS):
    """NINH's sigmoid + piecewise threshold, mapped from [0, 1] to [-1, 1]: 2 g(sigmoid(u)) - 1 with
    g(s) = 0 for s < 0.5 - eps, 1 for s > 0.5 + eps, s otherwise (zero gradient outside the band)."""
    s = nn.sigmoid(u)
    g = jnp.where(s < 0.5 - eps, 0.0, jnp.where(s > 0.5 + eps, 1.0, s))
    return 2.0 * g - 1.0


ACTIVATIONS = {"none": None, "tanh": jnp.tanh, "sigmoid": nn.sigmoid, "ninh_threshold": ninh_threshold}


def _activate(u, activation: str):
    act = ACTIVATIONS[activation]
    return u if act is None else act(u)


class HashHead(nn.Module):
    """A dense layer with ``bits`` outputs, optionally squashed (``'none'``, ``'tanh'``, ``'sigmoid'``, ``'ninh_threshold'``)."""

    bits: int
    activation: str = "none"

    @nn.compact
    def __call__(self, h):
        return _activate(nn.Dense(self.bits, name="hash")(h), self.activation)


def slice_ids(d: int, bits: int) -> np.ndarray:
    """``(d,)`` the slice (bit) of each feature for NINH: ``bits`` contiguous slices, sizes as ``numpy.array_split``."""
    if bits > d:
        raise ValueError(f"the divide-and-encode head needs at least one feature per bit: {d} features < {bits} bits")
    sizes = np.full(bits, d // bits)
    sizes[: d % bits] += 1
    return np.repeat(np.arange(bits), sizes)


class DivideEncodeHead(nn.Module):
    """NINH's divide-and-encode head: features split into ``bits`` slices, slice i -> bit i alone (module docstring)."""

    bits: int
    activation: str = "none"

    @nn.compact
    def __call__(self, h):
        d = h.shape[-1]
        ids = slice_ids(d, self.bits)
        fan_in = np.bincount(ids, minlength=self.bits)[ids].astype(np.float32)  # each weight's slice size

        def init(key, shape, dtype=jnp.float32):  # LeCun normal per slice, as a dense layer on that slice
            return jax.random.normal(key, shape, dtype) / jnp.sqrt(jnp.asarray(fan_in, dtype))

        w = self.param("kernel", init, (d,))
        c = self.param("bias", nn.initializers.zeros, (self.bits,))
        assign = jnp.asarray(np.eye(self.bits, dtype=np.float32)[ids])  # (d, bits): feature j belongs to slice ids[j]
        return _activate((h * w) @ assign + c, self.activation)


class WeightedBitsHead(nn.Module):
    """DRSCH's weighted bits: the hash layer's outputs times learned per-bit weights w (module docstring)."""

    bits: int
    activation: str = "none"

    @nn.compact
    def __call__(self, h):
        r = _activate(nn.Dense(self.bits, name="hash")(h), self.activation)
        return r * self.param("bit_weights", nn.initializers.ones, (self.bits,))


class GroupedHead(nn.Module):
    """``groups`` independent sub-networks over the shared features, each giving bits / groups bits (module docstring)."""

    bits: int
    activation: str = "none"
    groups: int = DEFAULT_GROUPS
    hidden: int = 0

    @nn.compact
    def __call__(self, h):
        _check_groups(self.bits, self.groups)
        width = self.hidden or max(1, h.shape[-1] // self.groups)
        per_group = self.bits // self.groups
        out = [nn.Dense(per_group, name=f"group{g}_hash")(nn.relu(nn.Dense(width, name=f"group{g}_hidden")(h)))
               for g in range(self.groups)]
        return _activate(jnp.concatenate(out, axis=-1), self.activation)


HEADS = {"fc": HashHead, "ninh": DivideEncodeHead, "weighted": WeightedBitsHead, "grouped": GroupedHead}


def _check_groups(bits: int, groups: int) -> None:
    if not isinstance(groups, int) or isinstance(groups, bool) or groups <= 0 or bits % groups:
        raise ValueError(f"head_groups must be a positive integer dividing bits ({bits}), got {groups!r}")


@dataclasses.dataclass(frozen=True)
class HeadOptions:
    """The hash head's options, in one place: which head (``name``), the squashing of its outputs
    (``activation``), and the grouped head's number of groups and hidden units per group.

    In a config they are the ``head_*`` fields of ``config.model`` (:data:`CONFIG_FIELDS`:
    ``model.head``, ``model.head_activation``, ``model.head_groups``, ``model.head_hidden``),
    absent fields taking the defaults below."""

    name: str = "fc"               # fc | ninh | weighted | grouped
    activation: str = "none"       # none | tanh | sigmoid | ninh_threshold
    groups: int = DEFAULT_GROUPS   # grouped head: m groups of outputs / m outputs
    hidden: int = 0                # grouped head: hidden units per group (0: features // groups)

    @classmethod
    def from_config(cls, model_config) -> HeadOptions:
        """The options given by the ``head_*`` keys of ``model_config`` (other keys are ignored)."""
        return cls(**{field: model_config[key] for key, field in CONFIG_FIELDS.items() if key in model_config})

    def check(self, bits: int) -> None:
        """Clear errors for a head that cannot be built with ``bits`` outputs."""
        if self.name not in HEADS:
            raise ValueError(f"head must be one of {sorted(HEADS)}, got {self.name!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"head_activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.name == "grouped":
            _check_groups(bits, self.groups)
            if not isinstance(self.hidden, int) or isinstance(self.hidden, bool) or self.hidden < 0:
                raise ValueError(f"head_hidden must be an integer >= 0 (0: features // groups), got {self.hidden!r}")

    def make(self, bits: int) -> nn.Module:
        """The head module with ``bits`` outputs (checked first)."""
        self.check(bits)
        if self.name == "grouped":
            return GroupedHead(bits, self.activation, groups=self.groups, hidden=self.hidden)
        return HEADS[self.name](bits, self.activation)


#: ``config.model`` key -> :class:`HeadOptions` field (the names configs have always used).
CONFIG_FIELDS = {"head": "name", "head_activation": "activation", "head_groups": "groups", "head_hidden": "hidden"}


def make_head(head: str, *, bits: int, activation: str = "none", groups: int = DEFAULT_GROUPS, hidden: int = 0) -> nn.Module:
    """The head called ``head`` (``'fc'``, ``'ninh'``, ``'weighted'``, ``'grouped'``) with ``bits`` outputs."""
    return HeadOptions(head, activation, groups, hidden).make(bits)


# ------------------------------------------------------------------------------ weighted bits at retrieval


def bit_weights(params) -> np.ndarray:
    """The per-bit weights w ``(q,)`` of a model with the ``'weighted'`` head, read from its parameters."""
    found = [leaf for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]
             if getattr(path[-1], "key", None) == "bit_weights"]
    if len(found) != 1:
        raise ValueError(f"params must hold exactly one 'bit_weights' leaf (a model with head='weighted'); "
                         f"found {len(found)}")
    return np.asarray(found[0], np.float32)


def _check_weighted(a, b, weights):
    a, b, w = np.asarray(a), np.asarray(b), np.asarray(weights, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must be +-1 code matrices (n, q) with the same q; got shapes {a.shape} and {b.shape}")
    if w.shape != (a.shape[1],):
        raise ValueError(f"weights must have shape ({a.shape[1]},) (one per bit), got {w.shape}")
    return a, b, w


def weighted_hamming_distance(a, b, weights) -> np.ndarray:
    """``(n_a, n_b)`` sum_k w_k^2 [a_ik != b_jk] for +-1 codes (DRSCH's weighted Hamming distance).

    Computed as (sum_k w_k^2 - sum_k w_k^2 a_ik b_jk) / 2, one matrix product.
    """
    a, b, w = _check_weighted(a, b, weights)
    w2 = w * w
    return (w2.sum() - (a * w2) @ b.T.astype(np.float64)) / 2.0


def top_bits(weights, length: int) -> np.ndarray:
    """Indices of the ``length`` bits of largest |w| (ties: the lower index first), most important first."""
    w = np.abs(np.asarray(weights, np.float64))
    if w.ndim != 1:
        raise ValueError(f"weights must be a vector (q,), got shape {w.shape}")
    if not isinstance(length, (int, np.integer)) or not 1 <= length <= len(w):
        raise ValueError(f"length must be an integer in [1, {len(w)}], got {length!r}")
    return np.argsort(-w, kind="stable")[:length]


def truncate_codes(codes, weights, length: int) -> np.ndarray:
    """``codes (n, q)`` cut to their ``length`` most important bits (largest |w|), most important first."""
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[1] != np.shape(weights)[0]:
        raise ValueError(f"codes must be (n, q) with q = len(weights) = {np.shape(weights)[0]}, got {codes.shape}")
    return codes[:, top_bits(weights, length)]
