"""DPSH: deep pairwise-supervised hashing.

Li, Wang, Kang, "Feature learning based deep supervised hashing with pairwise labels",
IJCAI 2016. Objective (eq. 3): the pairwise likelihood of the similarity labels given
theta_ij = u_i^T u_j / 2, plus eta * ||b_i - u_i||^2 with b_i = sign(u_i).

Where we follow the authors' code (jiangqy/DPSH-pytorch, DPSH_CIFAR_10.py):
  * a memory bank U of the network outputs of the whole training set, updated with the
    batch's outputs (as constants) before the loss, so the pairs are (batch x training
    set) rather than (batch x batch) (``memory_bank=True``, the default);
  * both terms divided by the number of pairs; eta (their ``lambda``) = 10 for CIFAR-10;
  * the database and the queries are encoded by the network (sign of its outputs).
Where we differ: the authors fine-tune a pretrained AlexNet/VGG-F with SGD (lr 0.05,
weight decay 1e-5, lr x0.1 every 50 epochs, 150 epochs); our configs train the small MLP
or CNN of :mod:`jhash.models` from scratch (the optimizer is a config choice).
"""
from __future__ import annotations

import jax.numpy as jnp

from jhash.losses import dpsh_loss, quantization_error
from jhash.methods.base import MemoryBank, Method, build_model, hyperparameters


def defaults() -> dict:
    """DPSH's hyperparameters (found in ``config.dpsh``)."""
    return {"eta": 10.0, "memory_bank": True}


def build(config, *, train_labels, schedule) -> Method:
    """DPSH for ``config`` (bits, model, dpsh.eta, dpsh.memory_bank); ``train_labels``: labels of the training set."""
    hp = hyperparameters(config, "dpsh", defaults())
    eta = float(hp["eta"])
    if eta < 0:
        raise ValueError(f"dpsh.eta must be >= 0, got {eta}")
    model = build_model(config)
    n_train = len(train_labels)

    def init_state():
        if not hp["memory_bank"]:
            return {}
        return {"bank_u": jnp.zeros((n_train, config.bits), jnp.float32), "bank_labels": jnp.asarray(train_labels)}

    def loss(u, batch, state, *, step, key):
        del step, key
        if hp["memory_bank"]:  # the bank holds the batch's outputs already (written before the loss)
            value = dpsh_loss(u, labels=batch["y"], eta=eta, bank_u=state["bank_u"], bank_labels=state["bank_labels"])
        else:
            value = dpsh_loss(u, labels=batch["y"], eta=eta)
        metrics = {"loss": value, "quantization": quantization_error(u) / u.size}
        return value, metrics

    banks = (MemoryBank("bank_u"),) if hp["memory_bank"] else ()
    return Method(name="dpsh", model=model, loss=loss, init_state=init_state, banks=banks)
