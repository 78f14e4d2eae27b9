"""DSQ: Eghbali & Tahvildari, "Deep spherical quantization for image search", CVPR 2019 (arXiv:1906.02865).

The network maps an image to ``z`` (``dim`` units) and L2-normalises it, ``x = z / ||z||``:
every point lies on the unit hypersphere, which removes the norm variance of deep features
that hurts codebook learning. ``x`` is quantized by multi-codebook (additive) quantization,
``x ~ x_hat = sum_m C_m[b_m]`` with M full-length codebooks of K codewords (M log2 K bits),
and the codebooks are learned in alternation with the network, with supervision:

    CE(s W_n x, y) + lambda_q ||x - x_hat||^2 + lambda_s ||W_n (x - x_hat)||^2,

``W_n`` the classifier's class vectors normalised to unit length and ``s`` a fixed scale
(a softmax on cosines: classes are directions on the sphere). The last term is the error
that quantization makes in the inner products between the points and the class directions,
the asymmetric distances that matter for retrieval on the sphere (its gradient moves the
codewords to preserve the class structure rather than only the geometry). The code ``b`` of
each item is found by greedy residual encoding then iterated conditional modes
(:func:`jhash.quantization.additive_encode`, the error never increases).
The alternation (as DQN's): the network and the classifier by back-propagation with codes
and codebooks fixed (the quantization terms weigh 0 until the first codebook fit); every
``update_every_epochs`` epochs and at the last step, on the latest embedding of every training
item, the codes by ICM and the codebooks by least squares, ``C = (H^T H + eps I)^-1 H^T X``
(the supervised term ``||(X - H C) W_n^T||^2`` has the same minimiser in C as the plain error
when combined with it, ``X - H C`` being weighted on the right by the full-rank
``I + lambda_s W_n^T W_n``), ``codebook_steps`` times; the first fit starts from residual
k-means (codebook m is k-means of what codebooks < m left). On the sphere
``||q - x_hat||^2 = 1 - 2 <q, x_hat> + ||x_hat||^2`` and ``x_hat`` approximates a unit vector, so retrieval ranks by the inner product ``<q, x_hat> =
sum_m <q, C_m[b_m]>``, a sum of per-codebook table lookups (``metric="ip"``).

Sources and differences: the paper's text beyond its abstract (L2-normalised features,
multi-codebook quantization for points on the unit hypersphere, a supervised quantization
term derived from the error of the reconstructed distances) was not available to us and we
found no public code from the authors; the loss above is our reading of that description,
and its weights ``lambda_q = 0.1``, ``lambda_s = 0.1``, the scale ``s = 10`` and three ICM sweeps
are our choices, and so is the alternation (a first version that learned the codebooks by
back-propagation through the hard codes collapsed to a few used codewords on digits). The
sparse-codebook extension of the paper is not implemented. Our configs
train the shared small CNN from scratch with Adam (the paper fine-tunes an ImageNet network).
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jhash.losses import classification_loss, num_classes_of
from jhash.methods._quant import build_backbone, codebook_layout
from jhash.methods.base import DiscreteStep, MemoryBank, Method, hyperparameters
from jhash.quantization import Quantizer, additive_decode, additive_encode, pq_kmeans

_HI = jax.lax.Precision.HIGHEST


def defaults() -> dict:
    return {"lambda_q": 0.1, "lambda_s": 0.1, "scale": 10.0, "codebook_size": 256, "dim": 0, "icm_sweeps": 3,
            "update_every_epochs": 1, "codebook_steps": 2, "kmeans_iters": 20}


def l2_normalize(z):
    return z / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), 1e-12)


class SphericalEmbedding(nn.Module):
    """Backbone, L2 normalisation and a cosine classifier: ``{'x' (n, dim) unit rows, 'classes' (c, dim) unit rows}``."""

    backbone: nn.Module  # a jhash.models.HashNetwork with dim outputs
    num_classes: int

    @nn.compact
    def __call__(self, x, train: bool = False):
        z = self.backbone(x, train=train)
        classes = self.param("classes", nn.initializers.normal(1.0), (self.num_classes, z.shape[1]))
        return {"x": l2_normalize(z), "classes": l2_normalize(classes)}


def dsq_loss(x, codes, codebooks, classes, labels, *, scale, lambda_q, lambda_s):
    """DSQ's objective on a batch (see the module docstring); returns ``(value, terms)``."""
    x_hat = additive_decode(codes, codebooks)
    ce = classification_loss(scale * x @ classes.T, labels)
    err = x - x_hat
    quant = jnp.mean(jnp.sum(jnp.square(err), 1))
    supervised = jnp.mean(jnp.sum(jnp.square(err @ classes.T), 1))
    return ce + lambda_q * quant + lambda_s * supervised, {"classification": ce, "quantization": quant,
                                                           "supervised_quantization": supervised}


def residual_kmeans(x, key, *, m: int, k: int, iters: int = 20):
    """Additive codebooks ``(m, k, D)`` by residual k-means: codebook ``i`` is k-means of what codebooks ``< i`` left."""
    books = []
    residual = x
    for i in range(m):
        cb, codes, _ = pq_kmeans(residual, jax.random.fold_in(key, i), m=1, k=k, iters=iters)
        books.append(cb[0])
        residual = residual - cb[0][codes[:, 0]]
    return jnp.stack(books)


def least_squares_codebooks(x, codes, k: int, eps: float = 1e-3):
    """``argmin_C ||X - H C||^2 + eps ||C||^2`` for one-hot blocks ``H`` of ``codes (n, M)``: codebooks ``(M, k, D)``."""
    n, m = codes.shape
    h = jax.nn.one_hot(codes, k, dtype=x.dtype).reshape(n, m * k)
    hh = jnp.matmul(h.T, h, precision=_HI) + eps * jnp.eye(m * k, dtype=x.dtype)
    c = jnp.linalg.solve(hh, jnp.matmul(h.T, x, precision=_HI))
    return c.reshape(m, k, x.shape[1])


def build(config, *, train_labels, schedule) -> Method:
    hp = hyperparameters(config, "dsq", defaults())
    m, k, dim = codebook_layout(config, hp)
    if hp["lambda_q"] < 0 or hp["lambda_s"] < 0 or hp["scale"] <= 0 or int(hp["icm_sweeps"]) < 0:
        raise ValueError(f"dsq needs lambda_q, lambda_s >= 0, scale > 0, icm_sweeps >= 0; got {hp}")
    n = len(train_labels)
    if k > n:
        raise ValueError(f"dsq.codebook_size ({k}) must not exceed the training set ({n} items)")
    sweeps = int(hp["icm_sweeps"])
    period, last = schedule.every_epochs(hp["update_every_epochs"]), schedule.last_step
    key0 = jax.random.PRNGKey(config.seed)
    model = SphericalEmbedding(build_backbone(config, dim), num_classes_of(train_labels))

    def init_state():
        return {"memory": jnp.zeros((n, dim), jnp.float32), "codes": jnp.zeros((n, m), jnp.int32),
                "codebooks": jnp.zeros((m, k, dim), jnp.float32), "ready": jnp.zeros((), jnp.float32)}

    def update(state, *, step, key):
        x = state["memory"]
        cb = jax.lax.cond(state["ready"] > 0, lambda: state["codebooks"],
                          lambda: residual_kmeans(x, jax.random.fold_in(key0, step), m=m, k=k,
                                                  iters=int(hp["kmeans_iters"])))
        codes = additive_encode(x, cb, sweeps=sweeps)[0]
        for _ in range(int(hp["codebook_steps"])):
            cb = least_squares_codebooks(x, codes, k)
            codes = additive_encode(x, cb, sweeps=sweeps)[0]
        return {**state, "codebooks": cb, "codes": codes, "ready": jnp.ones((), jnp.float32)}

    def loss(out, batch, state, *, step, key):
        del key
        idx = batch["index"]
        w = state["ready"]
        value, terms = dsq_loss(out["x"], state["codes"][idx], state["codebooks"], out["classes"], batch["y"],
                                scale=hp["scale"], lambda_q=w * hp["lambda_q"], lambda_s=w * hp["lambda_s"])
        return value, terms

    # before the loss: the memory of the batch's embeddings, then the codes and codebooks (and at the last step)
    refit = DiscreteStep(update, when=lambda step: (step > 0) & ((step % period == 0) | (step == last)))
    bank = MemoryBank("memory", of=lambda out: out["x"])

    quantizer = Quantizer(codebooks=lambda params, state: state["codebooks"],
                          encode=lambda out, cb: (out["x"], additive_encode(out["x"], cb, sweeps=sweeps)[0]),
                          kind="additive", metric="ip")
    return Method(name="dsq", model=model, loss=loss, init_state=init_state, banks=(bank,), discrete_step=refit,
                  quantizer=quantizer)
