"""Online MIHash: Cakir, He, Bargal, Sclaroff, "MIHash: Online hashing with mutual information", ICCV 2017.

Linear hash functions h(x) = sign(W^T x) (W: d x q) are learned from a stream, one item at a
time, by stochastic gradient descent on minus the mutual information between the relaxed
Hamming distance from the item to a reservoir sample of the stream and the neighbour
indicator (same class). With phi(x) = 2 sigmoid(a W^T x) - 1 (a the steepness) and the
triangular-kernel histograms of the distances d(x, r) = (q - phi(x)^T phi(r)) / 2 over the
reservoir items r (eq. 7: K + 1 bin centres 0, q/K, ..., q),

    I(x) = H(D_x) - p+ H(D_x | +) - p- H(D_x | -)            (eq. 4-6, base 2)
    W <- W + lr grad_W I(x)                                    (eq. 9-11, one item per step)

The *reservoir* (Vitter's algorithm R in its priority form, as the authors' code does it)
keeps a uniform sample of the stream without replacement: every item gets a uniform key and
the reservoir holds the ``reservoir_size`` items with the smallest keys seen so far.

The *trigger update* (sec. 4): the database (hash table) is encoded with a snapshot W_s of
the mapping; every ``update_interval`` items the reservoir's codes under W_s and under the
current W are compared by the mutual information of their Hamming distances (hard codes,
every reservoir item a query against the others):

    re-encode the database  iff  W != W_s  and  I_res(W) - I_res(W_s) > threshold,

then W_s <- W. Queries are encoded with W_s, the mapping of the table (as the authors test).
Every check that does not fire is a database re-encoding avoided; ``trigger='fix'`` fires
at every check (the authors' baseline), so checks = re-encodings of a fixed schedule.

Where we follow the authors' code (fcakir/mihash, online-hashing/: +Methods/MIHash.m,
train_online.m, trigger_update.m, update_reservoir.m, demo_online.m, opts_online.m):
K = 16 bins, steepness 10, step size 1 with decay 0 (lr = 1 / (1 + decay t)), batch size 1
(the gradient is taken for the new item against the reservoir *before* the item is offered
to it), reservoir of 200 items started with ceil(200 / 10) = 20 random items, an update check
every 100 items, threshold 0, W initialised as unit-norm Gaussian columns (LSH), features
centred and scaled to unit length, the gradient taken with respect to the new item's codes
only (the reservoir's relaxed codes are constants, as in ``mi_gradients``), reservoir codes of
newly added items encoded with the snapshot W_s.

Where we differ, and why:
  * the gradient is JAX's autodiff of the forward objective above. The authors' hand-written
    gradient (``mi_gradients``) takes d d(x, r) / d s(x) = -s(r) / 2 with s = sigmoid(.) in
    [0, 1], while their forward distance (q - (2 s(x) - 1)^T (2 s(r) - 1)) / 2 has the
    derivative -(2 s(r) - 1); we use the exact gradient of the forward objective.
  * the trigger's mutual information leaves out each reservoir item's distance to itself and
    uses one bin per Hamming distance 0..q; the authors' ``eval_mutualinfo`` includes the self
    pair (distance 0, always a neighbour) and ``histcounts(.., 0:nbits)`` puts distances q - 1
    and q in one bin. Both only shift the estimate slightly; ours is the estimator of the loss.
  * the stream of a stage is ``stream_epochs`` random passes over its new items, rounded up to
    a whole number of update intervals (the authors stream ``numTrain`` items of a shuffled
    training set, 1 epoch); the features are centred with the mean of the items available at
    the start (stage 0), not of the whole data set, so no later stage is looked at early.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jhash.codes import sign
from jhash.losses.multiwise import _entropy2, relaxed_hamming
from jhash.methods.base import hyperparameters

__all__ = [
    "Reservoir", "StreamState", "defaults", "reservoir_init", "reservoir_add", "masked_mutual_information",
    "reservoir_mutual_information", "item_objective", "make_stream_chunk", "prepare_features", "stream_order",
    "init_learner", "run_stream", "run_stages", "sgd",
]


def defaults() -> dict:
    return {"reservoir_size": 200, "init_reservoir": 0, "update_interval": 100, "trigger": "mi",
            "trigger_threshold": 0.0, "num_bins": 16, "steepness": 10.0, "learning_rate": 1.0, "decay": 0.0,
            "stream_epochs": 1}


# --------------------------------------------------------------------------------- reservoir
class Reservoir(NamedTuple):
    """A fixed-capacity uniform sample of a stream: items, labels, priority keys, codes, and how many slots are used."""

    x: jnp.ndarray      # (R, d) items
    y: jnp.ndarray      # (R,) int32 class ids
    keys: jnp.ndarray   # (R,) float32 uniform keys; -inf in empty slots
    codes: jnp.ndarray  # (R, q) float32 +-1 codes under the table's snapshot mapping
    size: jnp.ndarray   # () int32 slots in use


def reservoir_init(capacity: int, dim: int, bits: int) -> Reservoir:
    """An empty reservoir of ``capacity`` items of dimension ``dim`` with ``bits``-bit codes."""
    for name, v in (("capacity", capacity), ("dim", dim), ("bits", bits)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return Reservoir(jnp.zeros((capacity, dim), jnp.float32), jnp.zeros((capacity,), jnp.int32),
                     jnp.full((capacity,), -jnp.inf, jnp.float32), jnp.zeros((capacity, bits), jnp.float32),
                     jnp.zeros((), jnp.int32))


def reservoir_add(res: Reservoir, x, y, draw, code):
    """Offers one stream item; returns ``(reservoir, accepted)``.

    ``draw`` is the item's uniform key in [0, 1). While the reservoir is not full the item is
    appended; afterwards it replaces the item with the largest key when its own key is
    smaller (the authors' ``update_reservoir``: pop the max of the priority queue). So the
    reservoir always holds the items with the smallest keys: a uniform sample without
    replacement of everything offered. ``code``: the item's (q,) codes to store with it.
    Pure and jittable.
    """
    capacity = res.keys.shape[0]
    full = res.size >= capacity
    top = jnp.argmax(res.keys)
    slot = jnp.where(full, top, jnp.minimum(res.size, capacity - 1))
    accept = jnp.where(full, res.keys[top] > draw, True)

    def put(a, v):
        return a.at[slot].set(jnp.where(accept, jnp.asarray(v, a.dtype), a[slot]))

    new = Reservoir(put(res.x, x), put(res.y, y), put(res.keys, draw), put(res.codes, code),
                    jnp.minimum(res.size + 1, capacity).astype(jnp.int32))
    return new, accept


# ------------------------------------------------------------------------ mutual information
def masked_mutual_information(phi_q, phi_db, sim, weight, *, num_bins: int):
    """Per-query mutual information (bits) between relaxed Hamming distance and neighbourhood, over weighted pairs.

    ``phi_q`` (nq, q) and ``phi_db`` (n, q): relaxed codes in [-1, 1]; ``sim`` (nq, n): 1 for
    neighbours, 0 otherwise; ``weight`` (nq, n): 1 for the pairs that count, 0 for those left
    out (an item against itself, empty reservoir slots). For query i, with triangular-kernel
    histograms c+ / c- of its distances to its counted neighbours / non-neighbours on
    ``num_bins + 1`` centres (Cakir et al., eq. 7):

        I_i = H(c / N) - (N+ / N) H(c+ / N+) - (N- / N) H(c- / N-),   c = c+ + c-, N = N+ + N-.

    With hard +-1 codes and ``num_bins = q`` the histograms count exact Hamming distances. A
    query with no counted pair gets 0. Returns (nq,).
    """
    for name, a in (("phi_q", phi_q), ("phi_db", phi_db), ("sim", sim), ("weight", weight)):
        if jnp.ndim(a) != 2:
            raise ValueError(f"{name} must be 2-D, got shape {jnp.shape(a)}")
    (nq, q), n = phi_q.shape, phi_db.shape[0]
    if phi_db.shape[1] != q:
        raise ValueError(f"phi_db has {phi_db.shape[1]} bits but phi_q has {q}")
    if sim.shape != (nq, n) or weight.shape != (nq, n):
        raise ValueError(f"sim and weight must have shape {(nq, n)}, got {sim.shape} and {weight.shape}")
    if isinstance(num_bins, bool) or not isinstance(num_bins, int) or num_bins <= 0:
        raise ValueError(f"num_bins must be a positive integer, got {num_bins!r}")
    width = q / num_bins
    centres = width * jnp.arange(num_bins + 1, dtype=phi_q.dtype)
    d = relaxed_hamming(phi_q, phi_db)
    w = jnp.maximum(0.0, 1.0 - jnp.abs(d[:, :, None] - centres) / width) * weight[:, :, None]
    sim = sim.astype(w.dtype)
    cp, cn = jnp.einsum("ijl,ij->il", w, sim), jnp.einsum("ijl,ij->il", w, 1.0 - sim)
    n_pos, n_neg = jnp.sum(weight * sim, axis=1), jnp.sum(weight * (1.0 - sim), axis=1)
    total = jnp.maximum(n_pos + n_neg, 1e-12)
    prior = n_pos / total
    h_all = _entropy2((cp + cn) / total[:, None])
    h_pos = _entropy2(cp / jnp.maximum(n_pos, 1e-12)[:, None])
    h_neg = _entropy2(cn / jnp.maximum(n_neg, 1e-12)[:, None])
    return h_all - prior * h_pos - (1.0 - prior) * h_neg


def reservoir_mutual_information(codes, labels, size):
    """The trigger's criterion: the mean over the used reservoir slots of the mutual information of
    their hard codes' Hamming distances to the other used slots (one bin per distance). ``codes``:
    (R, q) +-1; ``labels``: (R,) class ids; ``size``: slots in use (the first ``size``)."""
    capacity, q = codes.shape
    used = (jnp.arange(capacity) < size).astype(jnp.float32)
    weight = used[:, None] * used[None, :] * (1.0 - jnp.eye(capacity, dtype=jnp.float32))
    sim = (labels[:, None] == labels[None, :]).astype(jnp.float32)
    mi = masked_mutual_information(codes.astype(jnp.float32), codes.astype(jnp.float32), sim, weight, num_bins=q)
    return jnp.sum(mi * used) / jnp.maximum(jnp.sum(used), 1.0)


def _relax(z, steepness):
    return 2.0 * jax.nn.sigmoid(steepness * z) - 1.0


def item_objective(w, x, y, res: Reservoir, *, num_bins: int, steepness: float):
    """Minus the mutual information of the stream item (``x`` (d,), class ``y``) against the reservoir,
    a function of W through the item's relaxed codes only (the reservoir's are constants)."""
    phi_x = _relax(x @ w, steepness)[None]
    phi_r = jax.lax.stop_gradient(_relax(res.x @ w, steepness))
    used = (jnp.arange(res.keys.shape[0]) < res.size).astype(jnp.float32)[None]
    sim = (res.y == y).astype(jnp.float32)[None]
    return -masked_mutual_information(phi_x, phi_r, sim, used, num_bins=num_bins)[0]


# ------------------------------------------------------------------------------ the stream
class StreamState(NamedTuple):
    w: jnp.ndarray       # (d, q) current hash functions
    w_snap: jnp.ndarray  # (d, q) the mapping the database (hash table) is encoded with
    res: Reservoir
    t: jnp.ndarray       # () int32 items processed
    opt: Any             # the optimizer's state (:func:`sgd`; its step count is t)


def sgd(lr: float, decay: float) -> optax.GradientTransformation:
    """The authors' step size ``lr / (1 + decay t)`` (t = 1, 2, ... the item's position in the stream) as optax's
    plain SGD with that schedule (the same arithmetic as ``w - lr_t g`` written out)."""
    return optax.sgd(lambda count: lr / (1.0 + decay * (count + 1)))


def _codes(x, w):
    return sign(x @ w).astype(jnp.float32)


def make_stream_chunk(hp: dict):
    """The jitted ``chunk(state, xs, ys, draws) -> (state, fire, gain)``: SGD on each of the chunk's items
    (then offered to the reservoir with its key in ``draws``), then the trigger check.

    ``gain`` = I_res(W) - I_res(W_s) on the reservoir; ``fire`` says whether the database must be
    re-encoded (then W_s and the reservoir's codes are already updated in the returned state).
    Compiled once per set of hyperparameters (the threshold is a traced argument).
    """
    jitted = _stream_chunk(int(hp["num_bins"]), float(hp["steepness"]), float(hp["learning_rate"]),
                           float(hp["decay"]), hp["trigger"] == "fix")
    threshold = jnp.float32(hp["trigger_threshold"])
    return lambda state, xs, ys, draws: jitted(state, xs, ys, draws, threshold)


@functools.lru_cache(maxsize=8)
def _stream_chunk(num_bins: int, steepness: float, lr: float, decay: float, fixed: bool):
    grad = jax.grad(item_objective)
    optimizer = sgd(lr, decay)

    def body(st: StreamState, item):
        x, y, draw = item
        g = grad(st.w, x, y, st.res, num_bins=num_bins, steepness=steepness)
        updates, opt = optimizer.update(g, st.opt, st.w)
        res, _ = reservoir_add(st.res, x, y, draw, _codes(x, st.w_snap))
        return StreamState(optax.apply_updates(st.w, updates), st.w_snap, res, st.t + 1, opt), None

    @jax.jit
    def chunk(state: StreamState, xs, ys, draws, threshold):
        st, _ = jax.lax.scan(body, state, (xs, ys, draws))
        changed = jnp.sum(jnp.abs(st.w - st.w_snap)) >= 1e-6
        new_codes = _codes(st.res.x, st.w)
        gain = (reservoir_mutual_information(new_codes, st.res.y, st.res.size)
                - reservoir_mutual_information(st.res.codes, st.res.y, st.res.size))
        fire = changed & (jnp.bool_(True) if fixed else gain > threshold)
        res = st.res._replace(codes=jnp.where(fire, new_codes, st.res.codes))
        return StreamState(st.w, jnp.where(fire, st.w, st.w_snap), res, st.t, st.opt), fire, gain

    return chunk


def prepare_features(x, mean):
    """Flattened inputs centred by ``mean`` and scaled to unit length (zero rows stay zero), float32 (n, d)."""
    x = np.asarray(x, np.float32).reshape(len(x), -1) - np.asarray(mean, np.float32).reshape(1, -1)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def stream_order(n_items: int, epochs: int, interval: int, rng) -> np.ndarray:
    """Positions of a stream over ``n_items`` items: ``epochs`` random passes, rounded up to a multiple of ``interval``."""
    if n_items <= 0:
        raise ValueError(f"a stage needs at least one item, got n_items={n_items}")
    total = math.ceil(n_items * epochs / interval) * interval
    passes = math.ceil(total / n_items)
    return np.concatenate([rng.permutation(n_items) for _ in range(passes)])[:total]


def init_learner(rng, x_pool, y_pool, hp: dict, bits: int) -> StreamState:
    """Unit-norm Gaussian W (LSH) and a reservoir started with ``init_reservoir`` random items of the pool
    (default ceil(reservoir_size / 10), as the authors' code); ``rng``: a NumPy Generator."""
    d = x_pool.shape[1]
    w = rng.standard_normal((d, bits)).astype(np.float32)
    w = jnp.asarray(w / np.linalg.norm(w, axis=0, keepdims=True))
    size = int(hp["reservoir_size"])
    n_init = min(int(hp["init_reservoir"]) or math.ceil(size / 10), size, len(x_pool))
    pick = rng.choice(len(x_pool), n_init, replace=False)
    draws = rng.random(n_init).astype(np.float32)
    res = _offer_all(reservoir_init(size, d, bits), jnp.asarray(x_pool[pick]), jnp.asarray(y_pool[pick], jnp.int32),
                     jnp.asarray(draws), w)
    return StreamState(w, w, res, jnp.zeros((), jnp.int32), sgd(float(hp["learning_rate"]), float(hp["decay"])).init(w))


@jax.jit
def _offer_all(res: Reservoir, xs, ys, draws, w) -> Reservoir:
    """Offers the items ``xs`` in turn to the reservoir, their codes under ``w``."""

    def offer(r, item):
        x, y, draw = item
        return reservoir_add(r, x, y, draw, _codes(x, w))[0], None

    return jax.lax.scan(offer, res, (xs, ys, draws))[0]


def run_stream(state: StreamState, chunk, x, y, order, rng, interval: int, on_fire=None):
    """Streams ``x[order]`` through ``chunk`` a check interval at a time (reservoir keys drawn from the NumPy
    Generator ``rng``); calls ``on_fire(w_snap)`` after every check that fires. Returns
    ``(state, fires, gains)`` (one entry per check)."""
    fires, gains = [], []
    for c in range(len(order) // interval):
        idx = order[c * interval:(c + 1) * interval]
        draws = jnp.asarray(rng.random(interval).astype(np.float32))
        state, fire, gain = chunk(state, jnp.asarray(x[idx]), jnp.asarray(y[idx], jnp.int32), draws)
        fires.append(bool(fire))
        gains.append(float(gain))
        if fires[-1] and on_fire is not None:
            on_fire(state.w_snap)
    return state, fires, gains


# ------------------------------------------------------------------ classes arriving in stages
@dataclasses.dataclass
class _Table:
    """The database's hash table: codes of the seen items under the snapshot mapping, and its bookkeeping."""

    x: np.ndarray
    codes: np.ndarray
    reencodings: int = 0
    bits_recomputed: int = 0
    seconds: float = 0.0

    def reencode(self, w_snap):
        started = time.perf_counter()
        self.codes = np.asarray(_codes(jnp.asarray(self.x), w_snap), np.int8)
        self.seconds += time.perf_counter() - started
        self.reencodings += 1
        self.bits_recomputed += self.codes.size


def _check_config(config, stage_data):
    hp = hyperparameters(config, "online_mihash", defaults())
    if hp["trigger"] not in ("mi", "fix"):
        raise ValueError(f"online_mihash.trigger must be 'mi' or 'fix', got {hp['trigger']!r}")
    for name in ("reservoir_size", "update_interval", "num_bins", "stream_epochs"):
        if int(hp[name]) <= 0:
            raise ValueError(f"online_mihash.{name} must be positive, got {hp[name]!r}")
    if int(hp["init_reservoir"]) < 0:
        raise ValueError(f"online_mihash.init_reservoir must be >= 0, got {hp['init_reservoir']!r}")
    return hp


def run_stages(config, stage_data, *, retrain: bool = True, keep_codes: bool = False) -> list[dict]:
    """Online MIHash over the stages of ``stage_data`` (:class:`jhash.online.stages.StageData`).

    Stage s streams the training items of its new classes; their database items enter the hash
    table encoded with the current snapshot, and the trigger decides every ``update_interval``
    items whether the whole table is re-encoded. After each stage: mAP@all of the seen classes'
    queries (encoded with the snapshot) against the table, the re-encodings done and avoided,
    and, with ``retrain``, the mAP of a learner trained from scratch on a stream over all seen
    items (same passes per item), its database encoded once with its final W. With ``keep_codes``
    each stage also gives ``query_codes`` and ``database_codes`` (+-1 int8, in ``stage_data.queries(s)``
    / ``database(s)`` order), the codes its mAP is computed from.
    """
    from jhash.online.stages import stage_map

    hp = _check_config(config, stage_data)
    bits, interval = int(config.bits), int(hp["update_interval"])
    chunk = make_stream_chunk(hp)
    mean = stage_data.x_train[stage_data.new_train(0)].reshape(len(stage_data.new_train(0)), -1).mean(axis=0)
    x, y = prepare_features(stage_data.x_train, mean), np.asarray(stage_data.y_train, np.int32)
    xq = prepare_features(stage_data.x_query, mean)
    seed = int(config.seed)
    first = stage_data.new_train(0)
    state = init_learner(np.random.default_rng([seed, 0]), x[first], y[first], hp, bits)
    table = _Table(x[:0], np.zeros((0, bits), np.int8))
    results = []
    for s in range(len(stage_data.stages)):
        started = time.perf_counter()
        new = stage_data.new_train(s)
        table.x = np.concatenate([table.x, x[new]])  # new database items enter under the current snapshot
        table.codes = np.concatenate([table.codes, np.asarray(_codes(jnp.asarray(x[new]), state.w_snap), np.int8)])
        rng = np.random.default_rng([seed, 1, s])
        order = new[stream_order(len(new), int(hp["stream_epochs"]), interval, rng)]
        state, fires, gains = run_stream(state, chunk, x, y, order, rng, interval, on_fire=table.reencode)
        q = stage_data.queries(s)
        db = stage_data.database(s)
        query_codes = _codes(jnp.asarray(xq[q]), state.w_snap)
        out = {"stage": s, "classes": int(len(stage_data.seen(s))), "stream_items": int(len(order)),
               "checks": len(fires), "reencodings": int(sum(fires)), "avoided": len(fires) - int(sum(fires)),
               "total_reencodings": table.reencodings, "bits_recomputed": table.bits_recomputed,
               "map": stage_map(query_codes, table.codes, stage_data.y_query[q], y[db]),
               "seconds": time.perf_counter() - started}
        if keep_codes:
            out.update(query_codes=np.asarray(query_codes, np.int8), database_codes=table.codes.copy())
        if retrain:
            out.update(_retrain(config, hp, chunk, x, y, xq, stage_data, s))
        results.append(out)
    return results


def _retrain(config, hp, chunk, x, y, xq, stage_data, s) -> dict:
    """A fresh learner on a stream over all items seen by stage ``s`` (the same passes per item)."""
    from jhash.online.stages import stage_map

    started = time.perf_counter()
    db = stage_data.database(s)
    interval = int(hp["update_interval"])
    seed = int(config.seed)
    state = init_learner(np.random.default_rng([seed, 0]), x[db], y[db], hp, int(config.bits))
    rng = np.random.default_rng([seed, 2, s])
    order = db[stream_order(len(db), int(hp["stream_epochs"]), interval, rng)]
    state, _, _ = run_stream(state, chunk, x, y, order, rng, interval)
    q = stage_data.queries(s)
    return {"retrain_map": stage_map(_codes(jnp.asarray(xq[q]), state.w), _codes(jnp.asarray(x[db]), state.w),
                                     stage_data.y_query[q], y[db]),
            "retrain_stream_items": int(len(order)), "retrain_seconds": time.perf_counter() - started}
