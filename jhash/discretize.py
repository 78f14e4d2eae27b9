"""Discretizers: how real network outputs u become (relaxed) binary codes inside a loss.

Each factory returns a pure function ``fn(u, *, step) -> codes`` of the same shape as
``u``. ``step`` is the traced global step (an int32 array inside the jitted train step),
so a schedule such as HashNet's continuation changes its value every step without
recompiling. Choose one by name with :func:`get_discretizer`.

  sign_ste       sign(u) forward; the gradient passes straight through (optionally only where |u| <= clip)
  tanh, sigmoid  smooth relaxations tanh(scale u), 2 sigmoid(scale u) - 1
  continuation   HashNet's tanh(beta_t u) with beta_t raised on a schedule
  identity       u itself (the loss works on the real outputs, e.g. DPSH, DSH)

GreedyHash (Su et al., NeurIPS 2018) is ``sign_ste()`` (no clipping: the gradient of the
codes is handed to u unchanged) plus its cubic penalty :func:`jhash.losses.cubic_penalty`.
DMDH's discrepancy-minimisation surrogate is a loss on u and its codes rather than a
change of the forward pass, and lives in :mod:`jhash.methods.dmdh`.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jhash import codes


def identity():
    """u unchanged."""

    def fn(u, *, step=None):
        del step
        return u

    return fn


def sign_ste(clip: float | None = None):
    """sign(u) (sign(0) = +1) forward with a straight-through gradient.

    Bengio, Leonard, Courville, "Estimating or propagating gradients through stochastic
    neurons", 2013. With ``clip=None`` the backward pass is the identity, as in GreedyHash
    (Su et al., NeurIPS 2018, eq. 7: dL/dH := dL/dB); with ``clip=c`` the gradient is zeroed
    where |u| > c (the hard-tanh estimator of Hubara et al., NIPS 2016).
    """
    if clip is not None and clip <= 0:
        raise ValueError(f"clip must be positive or None, got {clip}")

    def fn(u, *, step=None):
        del step
        b = codes.sign(u).astype(u.dtype)
        through = u if clip is None else jnp.clip(u, -clip, clip)
        return through + jax.lax.stop_gradient(b - through)

    return fn


def tanh(scale: float = 1.0):
    """tanh(scale * u): the usual smooth relaxation of sign (DHN, DCH, DTSH, ...)."""

    def fn(u, *, step=None):
        del step
        return jnp.tanh(scale * u)

    return fn


def sigmoid(scale: float = 1.0):
    """2 sigmoid(scale * u) - 1 in [-1, 1] (the sigmoid relaxation of {0,1} codes, mapped to +-1)."""

    def fn(u, *, step=None):
        del step
        return 2.0 * jax.nn.sigmoid(scale * u) - 1.0

    return fn


def continuation_scale(step, *, init_scale: float = 1.0, gamma: float = 0.005, power: float = 0.5,
                       step_size: int = 200):
    """HashNet's beta_t = init_scale * (1 + gamma * t)^power, with t = step rounded down to a multiple of ``step_size``.

    Cao, Long, Wang, Yu, "HashNet: Deep learning to hash by continuation", ICCV 2017, sec. 3.3.
    The authors' code (thuml/HashNet, pytorch/src/network.py) raises the scale every
    ``step_size`` = 200 iterations with gamma = 0.005, power = 0.5, init_scale = 1.
    ``step`` may be traced.
    """
    t = (jnp.asarray(step) // step_size) * step_size
    return init_scale * jnp.power(1.0 + gamma * t.astype(jnp.float32), power)


def continuation(init_scale: float = 1.0, gamma: float = 0.005, power: float = 0.5, step_size: int = 200):
    """HashNet's continuation: tanh(beta_t u) with beta_t from :func:`continuation_scale`.

    As beta_t grows, tanh(beta_t u) approaches sign(u) and the smooth problem approaches
    the discrete one. ``beta_t`` is computed from the traced ``step``: changing it never
    recompiles the step (a copied Python attribute that the compiled graph captured once
    would freeze beta, a bug some ports shipped).
    """
    if step_size <= 0 or gamma < 0 or init_scale <= 0:
        raise ValueError("continuation needs init_scale > 0, gamma >= 0 and step_size > 0; "
                         f"got init_scale={init_scale}, gamma={gamma}, step_size={step_size}")

    def fn(u, *, step):
        beta = continuation_scale(step, init_scale=init_scale, gamma=gamma, power=power, step_size=step_size)
        return jnp.tanh(beta * u)

    return fn


_DISCRETIZERS = {"identity": identity, "sign_ste": sign_ste, "tanh": tanh, "sigmoid": sigmoid,
                 "continuation": continuation}


def get_discretizer(name: str, **kwargs):
    """The discretizer called ``name`` built with ``kwargs`` (e.g. ``get_discretizer('tanh', scale=2.0)``)."""
    if name not in _DISCRETIZERS:
        raise ValueError(f"unknown discretizer {name!r}; expected one of {sorted(_DISCRETIZERS)}")
    return _DISCRETIZERS[name](**kwargs)
