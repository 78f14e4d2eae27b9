"""DSEH: Li, Li, Deng, Liu, Gao, "Deep joint semantic-embedding hashing", IJCAI 2018.

Two networks. LabNet maps an item's label vector to semantic features f (512-d) and hash
codes h = tanh(.) (q-d), trained so that the pairwise similarity of labels is preserved
by both (pairwise likelihoods over the whole training set), the codes are near-binary and
the labels can be read back from the codes. Its codes B^l = sign(h) then supervise the
image network (ImgNet): the image network's hash logits are fitted to B^l and its codes
keep the pairwise similarities with LabNet's codes of the whole training set.

Where we follow the authors' code (lelan-li/DSEH, DSEH.py): LabNet is label -> 2048 -> 512
(ReLU; the semantic feature f) -> q (tanh), plus a sigmoid label head on h; its loss is
gamma_l * J_label + J_hash + J_q + gamma_f * J_feat with J_hash, J_feat the pairwise
likelihoods (theta = <., .> / 2, similarity scaled by s) between the batch and memory banks
of the whole training set, J_q = 0.01 mean | |h| - 1 |, J_label = the half squared error
of the label head; Adam (lr 1e-3), batches of 32. For class ids we use the authors'
single-label (ImageNet) settings: s = 5, gamma_l = 0.1, gamma_f = 0. ImgNet's hash loss is
the mean sigmoid cross-entropy of 10 u against 0.999 [B^l >= 0]; codes are sign(u).

Where we differ: LabNet is trained once, when the run starts (``label_epochs`` epochs; the
authors alternate three rounds of LabNet and ImgNet and re-seed LabNet's banks from ImgNet);
our backbones have no 512-d semantic layer, so ImgNet's cross-network likelihood is taken
between its tanh codes and LabNet's codes B^l of the whole training set rather than between
semantic features.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jhash.losses import label_matrix, pairwise_likelihood, pairwise_similarity
from jhash.methods.base import Method, build_model, hyperparameters, write_rows


class LabNet(nn.Module):
    """Label vector -> (semantic feature f, codes h = tanh, label logits from h)."""

    bits: int
    num_classes: int

    @nn.compact
    def __call__(self, labels):
        f = nn.relu(nn.Dense(512)(nn.relu(nn.Dense(2048)(labels))))
        h = jnp.tanh(nn.Dense(self.bits)(f))
        return f, h, nn.Dense(self.num_classes)(h)


def defaults() -> dict:
    return {"label_epochs": 10, "label_batch": 32, "label_lr": 1e-3, "similarity_scale": 0.0,
            "label_weight": 0.0, "feature_weight": -1.0, "seed": 0}


def train_labnet(train_labels, *, bits, hp):
    """LabNet trained on the training set's labels; returns its codes (n, bits) for every training item."""
    single = jnp.asarray(train_labels).ndim == 1
    c = int(jnp.max(train_labels)) + 1 if single else int(jnp.asarray(train_labels).shape[1])
    y = label_matrix(train_labels, c)
    n = y.shape[0]
    s_scale = hp["similarity_scale"] or (5.0 if single else 0.999)
    w_label = hp["label_weight"] or (0.1 if single else 1.0)
    w_feat = hp["feature_weight"] if hp["feature_weight"] >= 0 else (0.0 if single else 1.0)
    net = LabNet(bits, c)
    key = jax.random.PRNGKey(hp["seed"])
    params = net.init(key, y[:1])
    opt = optax.adam(hp["label_lr"])
    f_all, h_all, _ = net.apply(params, y)
    batch = min(int(hp["label_batch"]), n)
    steps = max(1, int(hp["label_epochs"]) * (n // batch))

    def objective(params, idx, f_bank, h_bank):
        f, h, logits = net.apply(params, y[idx])
        f_bank = write_rows(f_bank, idx, f)
        h_bank = write_rows(h_bank, idx, h)
        s = s_scale * pairwise_similarity(y[idx], y)
        j_hash = pairwise_likelihood(h, h_bank, s) / (n * batch)
        j_feat = pairwise_likelihood(f, f_bank, s) / (n * batch)
        j_q = 0.01 * jnp.mean(jnp.abs(jnp.abs(h) - 1.0))
        j_label = 0.5 * jnp.sum(jnp.square(y[idx] - jax.nn.sigmoid(logits))) / (batch * c)
        return w_label * j_label + j_hash + j_q + w_feat * j_feat, (f_bank, h_bank)

    def body(t, carry):
        params, opt_state, f_bank, h_bank = carry
        idx = jax.random.choice(jax.random.fold_in(key, t), n, (batch,), replace=False)
        grads, (f_bank, h_bank) = jax.grad(objective, has_aux=True)(params, idx, f_bank, h_bank)
        grads = jax.tree_util.tree_map(lambda g: jnp.clip(g, -1.0, 1.0), grads)  # the authors clip to [-1, 1]
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, f_bank, h_bank

    params, *_ = jax.jit(lambda p: jax.lax.fori_loop(0, steps, body, (p, opt.init(p), f_all, h_all)))(params)
    return net.apply(params, y)[1]


def build(config, *, train_labels, schedule) -> Method:
    hp = hyperparameters(config, "dseh", defaults())
    model = build_model(config)

    def init_state():
        codes = jnp.where(train_labnet(train_labels, bits=config.bits, hp=hp) >= 0, 1.0, -1.0)
        return {"label_codes": codes, "labels": jnp.asarray(train_labels)}

    def loss(u, batch, state, *, step, key):
        target = state["label_codes"][batch["index"]]
        j_hash = jnp.mean(optax.sigmoid_binary_cross_entropy(10.0 * u, 0.999 * (target > 0)))
        s = pairwise_similarity(batch["y"], state["labels"])
        j_pair = pairwise_likelihood(jnp.tanh(u), state["label_codes"], s) / s.size
        return j_hash + j_pair, {"hash": j_hash, "pairs": j_pair}

    return Method(name="dseh", model=model, loss=loss, init_state=init_state)
