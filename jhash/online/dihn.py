"""DIHN: Wu, Dai, Liu, Li, Wang, "Deep incremental hashing network for efficient image retrieval", CVPR 2019.

New classes arrive while a retrieval system is running. The original database D^o already has
binary codes B^o (learned, e.g. by ADSH, for the original classes); DIHN keeps them fixed
and learns, for the incremental database D^n of the new classes, its codes B^n directly, and a
new query network F that matches all of them. With Omega a sample of m points of the whole
database D = D^o + D^n, u_i = tanh(F(x_i)), Gamma all database items and k the code length,

    min_{F, B^n}  sum_{i in Omega} sum_{j in Gamma} (u_i^T b_j - k S_ij)^2     (incremental similarity)
                + gamma sum_{i in Omega} ||b_i - u_i||^2                       (quantization)
                + mu sum_{i in Omega} (u_i^T 1)^2                               (bit balance)
    s.t. b_j = b^o_j fixed for j in D^o,  B^n in {-1, +1}^(n^n x k).

The problem is ADSH's (``jhash.methods.adsh``, eq. 4) with the rows of D^o frozen and a
balance term, and it is optimised the same way: outer iterations, each training the network
for a few epochs on a fresh sample Omega, then the closed-form bitwise B^n step
(``jhash.solvers.adsh_update_v``, ADSH eq. 11 = DIHN's ``solve_dcc``). That update is
row-local over the database (each code row depends only on its own bits, U and S), so
running ADSH's sweep over all of D and putting the frozen rows back is exactly DIHN's update
of B^n. :func:`build` therefore wraps :func:`jhash.methods.adsh.build`: same batch schedule,
loss terms and V-step, plus the frozen rows, B^n's random initial codes and the balance term.

Classes arriving in stages (:func:`run_stages`): stage 0 learns the original codes with ADSH;
every later stage runs DIHN with the codes of all earlier stages frozen; the retraining
baseline runs ADSH from scratch on all seen items and re-encodes the whole database.

Where we follow the authors' code (github.com/IIE-MR/DIHN: dihn.py, models/dihn_loss.py,
run.py): gamma = 200, mu = 50, m = 2,000 samples from the whole database (old and new), 3
epochs per sample, B^n initialised as sign(randn), a new query network for the increment,
S = +1 / -r rescaled with r = #similar / #dissimilar (ADSH's), the quantization term over all
sampled points (old ones against their frozen codes), the loss divided by (m x n), the query
codes sign(F(x)). Where we differ: the authors' PyTorch code sums the balance term *linearly*
(``(F @ ones).sum()``, which only pushes outputs towards -1); we square it per item, the
bit-balance term as the paper writes it. The similarity rescaling r is computed per batch
(as jhash's ADSH does), not once per sample; the networks are jhash's shared small models
trained with Adam at the config's learning rate (the authors fine-tune AlexNet at 1e-4,
weight decay 1e-5, lr x 0.91 per outer iteration); the number of outer iterations follows
ADSH's default budget rule (``outer_iterations=0``: the config's num_epochs passes over the
stage's database size), the authors run 50.
"""
from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jhash import evaluate as jeval
from jhash.methods import adsh
from jhash.methods import build as build_method
from jhash.methods.base import Method, Schedule, hyperparameters
from jhash.models import compute_dtype
from jhash.online import settings
from jhash.train.state import data_sharded, make_mesh
from jhash.train.trainer import step_batch, training_setup

__all__ = ["defaults", "build", "train_stage", "run_stages"]


def defaults() -> dict:
    return settings.defaults("dihn")


def _adsh_config(config, hp: dict):
    c = ml_collections.ConfigDict(config.to_dict())
    c.method = "adsh"
    c.adsh = {**{k: hp[k] for k in adsh.defaults() if k != "database"}, "database": "train"}
    return c


def build(config, *, train_labels, old_codes) -> Method:
    """DIHN for a database whose first ``len(old_codes)`` items keep their +-1 codes ``old_codes`` (n_old, bits).

    ``train_labels``: class ids of the whole database (old items first, then the new ones).
    The returned method's ``database_codes`` are the frozen old codes followed by the learned B^n.
    """
    hp = hyperparameters(config, "dihn", defaults())
    n, q = len(train_labels), int(config.bits)
    old = np.asarray(old_codes)
    if old.ndim != 2 or old.shape[1] != q:
        raise ValueError(f"old_codes must be (n_old, {q}) +-1 codes, got shape {old.shape}")
    if not np.isin(old, (-1, 1)).all():
        raise ValueError("old_codes must hold only -1 and +1")
    n_old = old.shape[0]
    if n_old >= n:
        raise ValueError(f"old_codes has {n_old} rows but the database has {n} items: no new item to learn codes for")
    base = adsh.build(_adsh_config(config, hp), train_labels=train_labels, schedule=Schedule.of(config, n))
    frozen = jnp.asarray(old, jnp.float32)
    mu = float(hp["mu"])

    def init_state_fn():
        new = np.where(np.random.default_rng([int(config.seed), n_old]).standard_normal((n - n_old, q)) >= 0, 1.0, -1.0)
        return {**base.init_state(), "v": jnp.concatenate([frozen, jnp.asarray(new, jnp.float32)])}

    def loss(out, batch, state, *, step, key):
        value, metrics = base.loss(out, batch, state, step=step, key=key)
        u = jnp.tanh(out)
        balance = mu * jnp.sum(jnp.square(jnp.sum(u, axis=1))) / (n * u.shape[0])
        return value + balance, {**metrics, "balance": balance}

    def v_step(state, *, step, key):  # ADSH's V-step is row-local: B^o stays as it was
        state = base.discrete_step.update(state, step=step, key=key)
        return {**state, "v": state["v"].at[:n_old].set(frozen)}

    return dataclasses.replace(base, name="dihn", loss=loss, init_state=init_state_fn,
                               discrete_step=dataclasses.replace(base.discrete_step, update=v_step))


def train_stage(method: Method, config, x, y):
    """Trains ``method`` on the in-memory database ``x``, ``y`` with the trainer's setup, batches and jitted
    step (:func:`jhash.train.trainer.training_setup`, :func:`~jhash.train.trainer.step_batch`; one device).

    The method's own batch schedule (ADSH's samples) over ``method.num_steps`` steps; no
    checkpoints (a stage is short; jhash.train.train is for runs over a protocol's split).
    """
    mesh = make_mesh(1)
    state, step_fn = training_setup(method, config, mesh, x[:1], num_steps=method.num_steps,
                                    steps_per_epoch=Schedule.of(config, len(x)).steps_per_epoch)
    for step in range(method.num_steps):
        state, metrics = step_fn(state, jax.device_put(step_batch(method, config, x, y, step), data_sharded(mesh)))
    if not np.isfinite(float(metrics["loss"])):
        raise FloatingPointError(f"{method.name}: the loss became NaN or infinite; try a smaller learning rate")
    return state


def _fit(method, config, stage_data, s):
    """Trains ``method`` on the database of stage ``s``; returns (database codes, mAP, seconds, query codes)."""
    from jhash.online.stages import stage_map

    started = time.perf_counter()
    db, q = stage_data.database(s), stage_data.queries(s)
    state = train_stage(method, config, stage_data.x_train[db], stage_data.y_train[db])
    db_codes = np.asarray(method.database_codes(state.method_state), np.int8)
    seconds = time.perf_counter() - started
    query_codes = jeval.encode(method, state, stage_data.x_query[q], dtype=compute_dtype(config.get("dtype", "float32")))
    value = stage_map(query_codes, db_codes, stage_data.y_query[q], stage_data.y_train[db])
    return db_codes, value, seconds, query_codes


def run_stages(config, stage_data, *, retrain: bool = True, keep_codes: bool = False) -> list[dict]:
    """DIHN over the stages of ``stage_data`` (:class:`jhash.online.stages.StageData`).

    Stage 0: ADSH on the first classes' database. Stage s > 0: DIHN with the codes of the
    earlier stages' database items frozen. After each stage the mAP@all of the seen classes'
    queries and the database codes (``'codes'``, in ``stage_data.database(s)`` order); with
    ``retrain`` also ADSH trained from scratch on the whole seen database (stage 0 is the same
    run for both). With ``keep_codes`` each stage also gives ``query_codes`` (in ``stage_data.queries(s)``
    order) and ``database_codes`` (= ``codes``).
    """
    hp = hyperparameters(config, "dihn", defaults())
    adsh_config = _adsh_config(config, hp)
    results, codes = [], None
    for s in range(len(stage_data.stages)):
        labels = stage_data.y_train[stage_data.database(s)]
        if s == 0:
            method = build_method(adsh_config, train_labels=labels)
        else:
            method = build(config, train_labels=labels, old_codes=codes)
        new_codes, value, seconds, query_codes = _fit(method, config, stage_data, s)
        if codes is not None and not np.array_equal(new_codes[:len(codes)], codes):
            raise AssertionError("DIHN changed frozen database codes")  # guarded by construction; never silently
        codes = new_codes
        out = {"stage": s, "classes": int(len(stage_data.seen(s))), "database": int(len(labels)),
               "new_items": int(len(stage_data.new_train(s))), "steps": int(method.num_steps), "map": value,
               "seconds": seconds, "codes_kept": int(len(labels) - len(stage_data.new_train(s))), "codes": codes}
        if keep_codes:
            out.update(query_codes=np.asarray(query_codes, np.int8), database_codes=codes)
        if retrain:
            if s == 0:
                out.update(retrain_map=value, retrain_seconds=seconds)
            else:
                _, r_map, r_seconds, _ = _fit(build_method(adsh_config, train_labels=labels), config, stage_data, s)
                out.update(retrain_map=r_map, retrain_seconds=r_seconds)
        results.append(out)
    return results
