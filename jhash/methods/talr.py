"""TALR: He, Cakir, Bargal, Sclaroff, "Hashing as tie-aware learning to rank", CVPR 2018.

Hashing is trained to directly maximise a ranking metric that accounts for the ties of
integer Hamming distances: tie-aware AP (``objective='ap'``) or tie-aware NDCG
(``objective='ndcg'``), relaxed by soft histogram binning of the distances between relaxed
codes phi = 2 sigmoid(gamma u) - 1 (:func:`jhash.losses.tie_aware_ap_relaxed`,
:func:`jhash.losses.tie_aware_ndcg_relaxed`); each item of the batch is a query against
the rest. The loss is minus the mean over queries.

Where we follow the authors' code (kunhe/TALR, apr_s_forward.m / ndcgr_s_forward.m, the
"simplified" forms they train with): gamma = 1, q / 2 bins (their run scripts), the mean
over the batch's queries; codes are sign(u). Where we differ: the authors fine-tune VGG-F
with SGD (lr 1e-2, batch 250); our configs train the shared small CNN with Adam; the query
is left out of its own ideal DCG (see tie_aware_ndcg_relaxed).
"""
from __future__ import annotations

import jax.numpy as jnp

from jhash.discretize import sigmoid
from jhash.losses import tie_aware_ap_relaxed, tie_aware_ndcg_relaxed
from jhash.methods.base import Method, build_model, hyperparameters

_OBJECTIVES = {"ap": tie_aware_ap_relaxed, "ndcg": tie_aware_ndcg_relaxed}


def defaults() -> dict:
    return {"objective": "ap", "gamma": 1.0, "num_bins": 0}


def build(config, *, train_labels, schedule) -> Method:
    hp = hyperparameters(config, "talr", defaults())
    if hp["objective"] not in _OBJECTIVES:
        raise ValueError(f"talr.objective must be one of {sorted(_OBJECTIVES)}, got {hp['objective']!r}")
    metric = _OBJECTIVES[hp["objective"]]
    num_bins = int(hp["num_bins"]) or max(1, config.bits // 2)
    relax = sigmoid(hp["gamma"])

    def loss(u, batch, state, *, step, key):
        value = jnp.mean(metric(relax(u), batch["y"], num_bins=num_bins))
        return -value, {hp["objective"]: value}

    return Method(name="talr", model=build_model(config), loss=loss)
