"""DDSH: Jiang, Cui, Li, "Deep discrete supervised hashing", IEEE TIP 2018.

Column sampling splits the training set into a sample Omega (m points) and the rest Gamma.
The codes B_Omega of the sample are binary variables learned directly by discrete
optimisation, the codes of Gamma come from the network, B_Gamma = sign(F(x)); both sides are
tied by the pairwise objective ||q S - B B_Omega^T||^2 over the n x m sampled columns:

  * B-step (every ``update_every_epochs`` epochs, inside the jitted training step): with
    B_Gamma = sign of the network's latest outputs (a memory of every training item's
    outputs), B_Omega is updated bit by bit, each bit a binary quadratic problem solved by
    :func:`jhash.solvers.bqp_bitwise`;
  * network step: for the batch items outside Omega, sum_j in Omega (u_i^T b_j - q S_ij)^2
    with u = tanh of the outputs, the mean over the batch's pairs.
Codes for retrieval are sign(u) for queries and database.

Where we follow the authors' code (jiangqy/DDSH-TIP2018, trainDDSH.m, Solve.m): the
similarity rescaled to 1 (similar) and -r (dissimilar), r = #similar / #dissimilar; each
bit's BQP built from the residual of the codes, solved from the balanced partition of their
Solve.m. Where we differ: by default the residual of all other bits is used and the
partition is refined by local search with restarts (``solver='partition+local_search'``,
``residual='others'``: block coordinate descent that never increases the objective); the
authors' exact choice is ``solver='partition', residual='previous'`` (each bit fits the
residual of the bits before it only). m = 100 x (number of classes) in the paper's CIFAR
setting; we use m = 1,000 (``num_samples``), at most half the training set (the network
is trained on the points outside the sample). The authors fine-tune CNN-F; our configs train
the shared small CNN with Adam over the whole training set in the usual epoch order.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jhash.codes import sign
from jhash.methods.adsh import rescaled_similarity
from jhash.methods.base import DiscreteStep, MemoryBank, Method, build_model, hyperparameters
from jhash.solvers import bqp_bitwise


def defaults() -> dict:
    return {"num_samples": 1000, "update_every_epochs": 1, "solver": "partition+local_search",
            "residual": "others", "restarts": 2, "sweeps": 1, "seed": 0}


def build(config, *, train_labels, schedule) -> Method:
    hp = hyperparameters(config, "ddsh", defaults())
    n, q = len(train_labels), config.bits
    m = int(min(hp["num_samples"], n // 2))  # the network learns from the points outside the sample
    period = schedule.every_epochs(hp["update_every_epochs"])
    labels = jnp.asarray(train_labels)
    base_key = jax.random.PRNGKey(hp["seed"])

    def omega_of(t):
        return jax.random.permutation(jax.random.fold_in(base_key, t), n)[:m].astype(jnp.int32)

    def init_state():
        omega = omega_of(0)
        return {"memory": jnp.zeros((n, q), jnp.float32), "omega": omega,
                "in_omega": jnp.zeros((n,), jnp.float32).at[omega].set(1.0),
                "codes_omega": sign(jax.random.normal(jax.random.fold_in(base_key, 2 ** 31 - 1), (m, q))).astype(jnp.float32)}

    def b_step(state, *, step, key):
        omega = omega_of(step // period)
        b = sign(state["memory"]).astype(jnp.float32)  # B_Gamma from the network; B_Omega starts from it too
        s = rescaled_similarity(labels, labels[omega])   # (n, m)
        b = bqp_bitwise(b, s, omega, key=key, sweeps=int(hp["sweeps"]), method=hp["solver"],
                        restarts=int(hp["restarts"]), residual=hp["residual"])
        return {**state, "omega": omega, "in_omega": jnp.zeros((n,), jnp.float32).at[omega].set(1.0),
                "codes_omega": b[omega]}

    def loss(out, batch, state, *, step, key):
        u = jnp.tanh(out)
        idx = batch["index"]
        s = rescaled_similarity(batch["y"], labels[state["omega"]])  # (batch, m)
        outside = 1.0 - state["in_omega"][idx]
        residual = jnp.square(u @ state["codes_omega"].T - q * s)
        value = jnp.sum(outside[:, None] * residual) / (jnp.maximum(jnp.sum(outside), 1.0) * m)
        return value, {"pairs": value}

    # before the loss: the memory of the batch's outputs, then the B-step; the first period trains against
    # the initial random B_Omega
    b = DiscreteStep(b_step, when=lambda step: (step > 0) & (step % period == 0))
    return Method(name="ddsh", model=build_model(config), loss=loss, init_state=init_state,
                  banks=(MemoryBank("memory", of=jnp.tanh),), discrete_step=b)
