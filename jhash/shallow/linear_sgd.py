"""Stochastic (sub)gradient descent for linear hash functions ``sign(W^T (x - mean) + b)``,
shared by the ranking methods trained on sampled pairs / triplets (MLH, HDML, Top-RSBC, OPH).

A method supplies a pure ``loss(params, data, key) -> scalar`` over one mini-batch (its
batch drawn from ``key``); :func:`sgd` runs ``steps`` steps of SGD with momentum and weight
decay on ``W`` as one ``lax.scan`` under ``jit``, and returns the parameters and the
mini-batch loss of every step. For MLH and HDML ``loss`` is the structured upper bound
written with the loss-augmented maximisers held fixed (``stop_gradient``), so its gradient
is exactly the papers' subgradient update.

Why not optax: ``optax.chain(add_decayed_weights, scale(-lr), trace(momentum))`` is this update, but
inside the jitted scan XLA fuses (and contracts into FMAs) its products differently, and MLH's
discrete loss-augmented inference turns the last-bit differences into other codes (its digits
digest changed, mAP@all 0.6498 -> 0.6487; HDML's did not), so the three lines stay written out.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jhash.shallow.common import check_positive, sample_triplets

_HI = jax.lax.Precision.HIGHEST

__all__ = ["normalise", "unnormalise", "init_linear", "relaxed_codes", "sgd", "triplet_pool", "draw"]


def normalise(x):
    """``(x / s, s)`` with ``s`` the root mean squared norm of the centered rows, so that the SGD
    step sizes mean the same on every feature scale (undone by :func:`unnormalise`)."""
    s = jnp.sqrt(jnp.mean(jnp.sum((x - jnp.mean(x, 0)) ** 2, 1)))
    s = jnp.maximum(s, 1e-12)
    return x / s, s


def unnormalise(params, s):
    """Parameters for the original features: ``(x/s - m) W + b = (x - s m)(W / s) + b``."""
    return dict(params, mean=params["mean"] * s, w=params["w"] / s)


def init_linear(x, key, bits: int, scale: float = 1.0):
    """Random projections of the centered data (LSH) scaled so that every projection has
    standard deviation ``scale`` on the training set (our choice of starting point)."""
    mean = jnp.mean(x, 0)
    w = jax.random.normal(key, (x.shape[1], bits), jnp.float32)
    proj = jnp.matmul(x - mean, w, precision=_HI)
    w = w * (scale / jnp.maximum(jnp.std(proj, 0), 1e-12))
    return {"mean": mean, "w": w, "b": jnp.zeros((bits,), jnp.float32)}


def relaxed_codes(params, x):
    """``tanh(W^T (x - mean) + b)``: the smooth surrogate of the codes (Top-RSBC, OPH)."""
    return jnp.tanh(jnp.matmul(x - params["mean"], params["w"], precision=_HI) + params["b"])


def triplet_pool(key, labels, n_triplets: int):
    """Valid triplets ``(i, j, k)`` (``j`` similar to ``i``, ``k`` not) drawn uniformly, as a host array;
    a ``ValueError`` when no anchor has both a similar and a dissimilar item."""
    trip, ok = sample_triplets(key, labels, int(n_triplets))
    trip = trip[jnp.asarray(ok)]
    if trip.shape[0] == 0:
        raise ValueError("labels must give some item both a similar and a dissimilar item (one class only?)")
    return trip


def draw(key, pool, batch: int):
    """``batch`` rows of ``pool`` drawn uniformly with replacement."""
    return pool[jax.random.randint(key, (batch,), 0, pool.shape[0])]


@functools.partial(jax.jit, static_argnames=("loss", "steps"))
def _run(params, data, key, lr, momentum, weight_decay, *, loss, steps):
    grad = jax.value_and_grad(loss)

    def step(carry, t):
        p, vel = carry
        value, g = grad(p, data, jax.random.fold_in(key, t))
        g = dict(g, w=g["w"] + weight_decay * p["w"])     # weight decay on W only (not mean, bias)
        vel = jax.tree_util.tree_map(lambda v, gi: momentum * v - lr * gi, vel, g)
        p = jax.tree_util.tree_map(lambda a, v: a + v, p, vel)
        return (p, vel), value

    zero = jax.tree_util.tree_map(jnp.zeros_like, params)
    (params, _), hist = jax.lax.scan(step, (params, zero), jnp.arange(steps))
    return params, hist


def sgd(loss, params, data, key, *, steps: int, lr: float, momentum: float, weight_decay: float):
    """``steps`` steps of SGD with momentum on ``loss(params, data, key_t)``; returns ``(params, losses)``.

    ``params`` holds ``mean`` (kept fixed), ``w`` and ``b``; weight decay applies to ``w``. ``loss``
    must be hashable (a module-level function or a ``functools.partial`` of one with hashable keywords).
    """
    steps = check_positive(steps, "steps")
    if not float(lr) > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    if not 0.0 <= float(momentum) < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
    if not float(weight_decay) >= 0:
        raise ValueError(f"weight_decay must be non-negative, got {weight_decay!r}")
    mean = params["mean"]
    trainable = {"w": params["w"], "b": params["b"]}
    out, hist = _run(trainable, (mean, data), key, jnp.float32(lr), jnp.float32(momentum),
                     jnp.float32(weight_decay), loss=functools.partial(_with_mean, loss=loss), steps=steps)
    return dict(out, mean=mean), hist


def _with_mean(p, data, key, *, loss):
    mean, inner = data
    return loss(dict(p, mean=mean), inner, key)
