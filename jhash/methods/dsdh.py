"""DSDH: Li, Sun, He, Tan, "Deep supervised discrete hashing", NIPS 2017.

Pairwise and pointwise supervision together, with the codes B of the training set as
binary variables:

    min  -sum_ij (s_ij Theta_ij - log(1 + e^Theta_ij)) + mu ||Y - B W||^2 + nu ||W||^2 + eta ||B - U||^2,
         Theta_ij = u_i^T u_j / 2,  B in {-1, +1}                                   (eq. 6)

optimised by alternating the network step (the pairwise likelihood between the batch and
a memory of every training item's outputs, as DPSH, plus eta ||b_i - u_i||^2), the W-step
(ridge regression, W = (B^T B + nu / mu I)^-1 B^T Y) and the B-step by SDH's discrete cyclic
coordinate descent on mu ||Y - B W||^2 + eta ||B - U||^2 (:func:`jhash.solvers.sdh_dcc`);
the W- and B-steps run once an epoch inside the jitted training step, over the whole
training set. Codes for retrieval are sign(u).

Defaults mu = 1, nu = 0.1, eta = 55 and 10 DCC sweeps an epoch are the paper's CIFAR-10
values as a public PyTorch port (TreezzZ/DSDH_PyTorch) uses them; the authors' MATLAB code
was not read. Both terms of the network step are divided by the number of pairs (batch x
training set), as in DPSH, so eta's effect grows as the training set shrinks: 55 is for
5,000 training items (on the 500 of the digits, 5.5 gives mAP 0.91 where 55 gives 0.45).
Where we differ: before the first B-step (during the first
epoch) the quantization term ties u to sign(u) instead of to random initial codes; the
authors fine-tune CNN-F, our configs train the shared small CNN with Adam.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jhash.codes import sign
from jhash.losses import label_matrix, pairwise_likelihood, pairwise_similarity
from jhash.methods.base import DiscreteStep, MemoryBank, Method, build_model, hyperparameters
from jhash.solvers import ridge_regression, sdh_dcc


def defaults() -> dict:
    return {"mu": 1.0, "nu": 0.1, "eta": 55.0, "dcc_sweeps": 10}


def build(config, *, train_labels, schedule) -> Method:
    hp = hyperparameters(config, "dsdh", defaults())
    if hp["mu"] <= 0 or hp["nu"] < 0 or hp["eta"] < 0:
        raise ValueError(f"dsdh needs mu > 0, nu >= 0, eta >= 0; got {hp}")
    n, q = len(train_labels), config.bits
    period = schedule.every_epochs(1)
    labels = jnp.asarray(train_labels)
    y_all = label_matrix(train_labels)

    def init_state():
        return {"memory": jnp.zeros((n, q), jnp.float32), "codes": jnp.zeros((n, q), jnp.float32),
                "ready": jnp.zeros((), jnp.float32)}

    def wb_step(state, *, step, key):
        u = state["memory"]
        b = jnp.where(state["ready"] > 0, state["codes"], sign(u).astype(jnp.float32))
        w = ridge_regression(b, y_all, lam=hp["nu"] / hp["mu"])
        b = sdh_dcc(b, y_all, u, w, nu=hp["eta"] / hp["mu"], max_sweeps=int(hp["dcc_sweeps"]))
        return {**state, "codes": b, "ready": jnp.ones((), jnp.float32)}

    def loss(u, batch, state, *, step, key):
        idx = batch["index"]
        pairs_count = u.shape[0] * n
        s = pairwise_similarity(batch["y"], labels)
        likelihood = pairwise_likelihood(u, state["memory"], s) / pairs_count
        b = jnp.where(state["ready"] > 0, state["codes"][idx], jax.lax.stop_gradient(sign(u).astype(u.dtype)))
        quant = hp["eta"] * jnp.sum(jnp.square(b - u)) / pairs_count
        return likelihood + quant, {"likelihood": likelihood, "quantization": quant}

    # before the loss: the memory of the batch's outputs, then the W- and B-steps once an epoch
    wb = DiscreteStep(wb_step, when=lambda step: (step > 0) & (step % period == 0))
    return Method(name="dsdh", model=build_model(config), loss=loss, init_state=init_state,
                  banks=(MemoryBank("memory"),), discrete_step=wb)
