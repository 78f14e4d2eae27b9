"""SPDAQ: Chen & Cheung, "Similarity preserving deep asymmetric quantization for image retrieval", AAAI 2019.

Asymmetric, as ADSH: the network embeds the query side only, trained on a sampled subset
Omega of the training set, while every database item ``j`` (here: the training set Gamma,
whose labels are known) is represented directly by a composite-quantization code, ``x_j =
sum_m C_m[b_jm] = H_j C`` (M full-length codebooks of K codewords; ``H_j`` the one-hot choices;
M log2 K bits), learned as variables. Label similarity is preserved by the asymmetric inner
product between the two sides:

    min_{theta, C, B}  sum_{i in Omega} sum_{j in Gamma} (f_i^T x_j - r S_ij)^2 + gamma sum_{i in Omega} ||f_i - x_i||^2

(``f_i`` the network's embedding, ``S`` ADSH's similarity rescaled to 1 / -(#similar/#dissimilar)
of the block, :func:`jhash.methods.adsh.rescaled_similarity`). The optimisation alternates,
once per outer iteration (a new sample Omega, ``inner_epochs`` passes of the network over it):

* network: back-propagation of the objective for the batch (the codes and codebooks fixed);
* B-step (:func:`update_codes`): for every database item, iterated conditional modes over
  its M codewords; each move is the exact minimiser of the item's terms over one codebook's
  K codewords given the others (the objective never increases), for all items at once;
* C-step (:func:`update_codebooks`): the objective is a convex quadratic in C; conjugate
  gradient on its normal equations ``(H^T H) C G + gamma (H_O^T H_O) C = H^T (rS)^T F + gamma H_O^T F``
  (``G = F^T F``), started from the current C with exact step sizes, so every iteration lowers
  (never raises) the objective.

Retrieval ranks the database by the asymmetric inner product ``<f_q, x_j>`` (table lookups,
``metric="ip"``); database items outside the training set are encoded from the network's
embedding by additive encoding (:func:`jhash.quantization.additive_encode`).

Sources and differences: we could read only the paper's abstract and summaries (an image
subset and the labels of all database items, two different but correlated distributions,
composite quantization, an asymmetric quantizer distance, linear-in-database training cost)
and found no public code by the authors; the objective and the alternation above are our
reading of that description, built on ADSH (whose schedule we reuse: 2,000 sampled items,
3 epochs each, as many outer iterations as give the config's budget). Our choices: ``r`` = the
code length (``similarity_scale=0``; ADSH's target ``q S``; on digits, 16 bits, r = 1 let the
embedding and the codebooks shrink to the trivial ``f^T x = 0``, mAP 0.11, where r = 16 gives 0.98),
``gamma = 200`` (ADSH's), three ICM sweeps, ten CG iterations, random initial codes and
codebooks (seeded); composite quantization's constant inter-codebook product constraint is
not imposed (it matters for Euclidean AQD only; we rank by inner product).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jhash.methods._quant import build_backbone, codebook_layout
from jhash.methods.adsh import rescaled_similarity, sample_schedule
from jhash.methods.base import DiscreteStep, MemoryBank, Method, hyperparameters
from jhash.quantization import Quantizer, additive_decode, additive_encode

_HI = jax.lax.Precision.HIGHEST


def defaults() -> dict:
    return {"gamma": 200.0, "similarity_scale": 0.0, "num_samples": 2000, "inner_epochs": 3, "outer_iterations": 0,
            "icm_sweeps": 3, "cg_iterations": 10, "codebook_size": 256, "dim": 0}


def objective(f, omega, s, codes, codebooks, *, gamma, r):
    """The SPDAQ objective: ``||F X^T - r S||^2 + gamma ||F - X[omega]||^2`` with ``X = decode(codes)``.

    ``f (o, dim)`` embeddings of the sampled items, ``omega (o,)`` their positions in the database,
    ``s (o, n)`` the (rescaled) similarity, ``codes (n, M)``, ``codebooks (M, K, dim)``."""
    x = additive_decode(codes, codebooks)
    return (jnp.sum(jnp.square(jnp.matmul(f, x.T, precision=_HI) - r * s))
            + gamma * jnp.sum(jnp.square(f - x[omega])))


@functools.partial(jax.jit, static_argnames=("sweeps",))
def update_codes(codes, codebooks, f, omega, s, *, gamma, r, sweeps: int = 3):
    """B-step: ``sweeps`` sweeps of iterated conditional modes over the M codebooks for every database item.

    Item ``j``'s terms are ``x^T G x - 2 p_j^T x + gamma_j ||f_j - x||^2`` (``G = F^T F``,
    ``p_j = F^T r s_:j``, ``gamma_j = gamma`` for sampled items, else 0); with ``x = t + c``
    (``t`` the other codebooks' codewords) the cost of codeword ``c`` is
    ``c^T G c + gamma_j ||c||^2 + 2 c^T (G t - p_j + gamma_j (t - f_j))`` up to a constant: exact over K, so the
    objective never increases (the current codeword is kept on ties)."""
    n, m_books = codes.shape
    g = jnp.matmul(f.T, f, precision=_HI)
    p = r * jnp.matmul(s.T, f, precision=_HI)                               # (n, dim)
    gam = jnp.zeros((n,), f.dtype).at[omega].set(gamma)
    f_db = jnp.zeros((n, f.shape[1]), f.dtype).at[omega].set(f)
    cgc = jnp.einsum("mkd,de,mke->mk", codebooks, g, codebooks, precision=_HI)  # (M, K)
    cnorm = jnp.sum(codebooks ** 2, -1)                                        # (M, K)
    x = additive_decode(codes, codebooks)

    def one(i, carry):
        codes, x = carry
        m = i % m_books
        t = x - codebooks[m][codes[:, m]]
        lin = jnp.matmul(t, g, precision=_HI) - p + gam[:, None] * (t - f_db)
        cost = (cgc[m][None] + gam[:, None] * cnorm[m][None]
                + 2.0 * jnp.matmul(lin, codebooks[m].T, precision=_HI))
        now = codes[:, m]
        cur = jnp.take_along_axis(cost, now[:, None], 1)[:, 0]
        b = jnp.where(cur <= jnp.min(cost, 1), now, jnp.argmin(cost, 1).astype(jnp.int32))
        return codes.at[:, m].set(b), t + codebooks[m][b]

    codes, _ = jax.lax.fori_loop(0, sweeps * m_books, one, (codes, x))
    return codes


@functools.partial(jax.jit, static_argnames=("iterations",))
def update_codebooks(codebooks, codes, f, omega, s, *, gamma, r, iterations: int = 10):
    """C-step: ``iterations`` conjugate-gradient steps on the normal equations of the objective in C
    (a convex quadratic), from the current codebooks; exact step sizes, so it never increases."""
    m_books, k, dim = codebooks.shape
    g = jnp.matmul(f.T, f, precision=_HI)

    def h(y):          # (M, K, dim) -> (n, dim): H Y
        return additive_decode(codes, y)

    def ht(z):         # (n, dim) -> (M, K, dim): H^T Z
        return jax.vmap(lambda c: jax.ops.segment_sum(z, c, num_segments=k), in_axes=1)(codes)

    def ht_omega(z_o):  # (o, dim) -> (M, K, dim): H_O^T Z
        return jax.vmap(lambda c: jax.ops.segment_sum(z_o, c, num_segments=k), in_axes=1)(codes[omega])

    def a_op(y):
        return ht(jnp.matmul(h(y), g, precision=_HI)) + gamma * ht_omega(h(y)[omega])

    b = ht(r * jnp.matmul(s.T, f, precision=_HI)) + gamma * ht_omega(f)
    res = b - a_op(codebooks)

    def step(_, carry):
        c, res, d, rr = carry
        ad = a_op(d)
        dad = jnp.sum(d * ad)
        alpha = jnp.where(dad > 0, rr / jnp.where(dad > 0, dad, 1.0), 0.0)
        c = c + alpha * d
        res = res - alpha * ad
        rr_new = jnp.sum(res * res)
        beta = jnp.where(rr > 0, rr_new / jnp.where(rr > 0, rr, 1.0), 0.0)
        return c, res, res + beta * d, rr_new

    c, *_ = jax.lax.fori_loop(0, iterations, step, (codebooks, res, res, jnp.sum(res * res)))
    return c


def build(config, *, train_labels, schedule) -> Method:
    hp = hyperparameters(config, "spdaq", defaults())
    m_books, k, dim = codebook_layout(config, hp)
    if hp["gamma"] < 0 or hp["similarity_scale"] < 0:
        raise ValueError(f"spdaq needs gamma >= 0 and similarity_scale >= 0 (0: the code length); got {hp}")
    n = len(train_labels)
    loop, omega_of, batches = sample_schedule("spdaq", config, schedule, hp["num_samples"], hp["inner_epochs"],
                                              hp["outer_iterations"], sort=True)
    steps_per_outer = loop.steps_per_outer
    labels = jnp.asarray(train_labels)
    key0 = jax.random.PRNGKey(config.seed)
    gamma, r = float(hp["gamma"]), float(hp["similarity_scale"] or config.bits)
    sweeps = int(hp["icm_sweeps"])

    def init_state():
        kc, kb = jax.random.split(jax.random.fold_in(key0, 10**6))
        return {"codebooks": jax.random.normal(kc, (m_books, k, dim)) / jnp.sqrt(dim * m_books),
                "codes": jax.random.randint(kb, (n, m_books), 0, k, jnp.int32),
                "f": jnp.zeros((n, dim), jnp.float32), "labels": labels}

    def update(state, *, step, key):
        omega = omega_of(step // steps_per_outer)
        f = state["f"][omega]
        s = rescaled_similarity(state["labels"][omega], state["labels"])
        codes = update_codes(state["codes"], state["codebooks"], f, omega, s, gamma=gamma, r=r, sweeps=sweeps)
        cb = update_codebooks(state["codebooks"], codes, f, omega, s, gamma=gamma, r=r,
                              iterations=int(hp["cg_iterations"]))
        return {**state, "codes": codes, "codebooks": cb}

    def loss(f, batch, state, *, step, key):
        del key
        idx = batch["index"]
        x = additive_decode(state["codes"], state["codebooks"])
        s = rescaled_similarity(batch["y"], state["labels"])
        pairs = jnp.sum(jnp.square(f @ x.T - r * s))
        quant = gamma * jnp.sum(jnp.square(f - x[idx]))
        norm = n * f.shape[0]
        return (pairs + quant) / norm, {"pairs": pairs / norm, "quantization": quant / norm}

    # after the loss: the bank of the sample's embeddings, then the B- and C-steps closing each outer iteration
    bank = MemoryBank("f", after_loss=True)
    bc_step = DiscreteStep(update, when=lambda step: (step + 1) % steps_per_outer == 0, after_loss=True)
    quantizer = Quantizer(codebooks=lambda params, state: state["codebooks"],
                          encode=lambda f, cb: (f, additive_encode(f, cb, sweeps=sweeps)[0]),
                          kind="additive", metric="ip")
    return Method(name="spdaq", model=build_backbone(config, dim), loss=loss, init_state=init_state, banks=(bank,),
                  discrete_step=bc_step, batches=batches, num_steps=loop.num_steps,
                  database_codes=lambda state: state["codes"], quantizer=quantizer)
