"""ADSH: Jiang & Li, "Asymmetric deep supervised hashing", AAAI 2018.

Queries and database are treated asymmetrically: the network learns the hash function for
queries only, and the codes V of the database (by default the whole labelled database, as in
the authors' code; see ``database`` below) are learned directly as binary variables. Each
outer iteration samples m database points Omega, trains the network on them for a few epochs
with

    sum_{i in Omega} sum_{j in Gamma} (u_i^T v_j - q S_ij)^2 + gamma sum_{i in Omega} (v_i - u_i)^2   (eq. 4)

(u = tanh of the network's outputs, Gamma the whole database), then updates V by the
closed-form bitwise step of :func:`jhash.solvers.adsh_update_v` (eq. 9-11). Retrieval ranks
the database codes V against the network's query codes; database items outside the training
set (protocols whose database is larger than the training set) are encoded by the network.

Where we follow the authors' code (jiangqy/ADSH-AAAI2018, ADSH_pytorch/ADSH_CIFAR_10.py):
gamma = 200, m = 2,000 sampled points, 3 epochs on each sample, V = 0 at the start, the similarity rescaled to 1 (similar) and -r
(dissimilar) with r = #similar / #dissimilar of the block, the loss divided by
(n_database x batch), and V updated once at the end of every outer iteration with the
outputs of the sample; ``use_sign_u`` builds V's update from sign(U) as their MATLAB code
does. The whole schedule is a pure function of the step: the sample of outer iteration t is
drawn from (seed, t) both on the host (batches) and inside the compiled step (V's update),
so a resumed run follows the same schedule, and the V update runs inside the jitted
training step. V and the bank U of outputs (n x q each) are split over the devices along the
database axis (``sharded_state``); the V update is row-local (see the solver), and the codes
equal those of one device (tests/test_adsh.py).

The database Gamma (``database``): ``'whole'`` (the default; the authors' setting when the
database is labelled, as in every jhash protocol) makes the trainer's training set the whole
database (:func:`trains_on_database`, :func:`jhash.experiment.training_index`): Omega is
sampled from all database items, V is learned for every one of them and the evaluator ranks
the queries' network codes against V (``database_codes``). ``'train'``: the protocol's
training set plays Gamma, and database items outside it are encoded by the network (jhash's
behaviour before this option; a saved config without the key gets it). On mnist (69,000
database items, 32 bits) 'whole' holds V and U as 2 x 8.4 MiB and forms the (m x n) similarity
of the V-step, 526 MiB in float32: one V-step 2.5 s and 535 MiB of XLA temporaries against
0.1 s and 39 MiB over 5,000 items, the run's peak resident memory 1,418 MiB against 1,089 MiB, and
mAP@ALL 0.978 against 0.972 (3 seeds, the CPU-sized config; experiments/results/adsh_database.md).

Budget: the authors run 50 outer iterations (``outer_iterations=50``); by default
(``outer_iterations=0``) we run as many as give the network the config's budget, num_epochs
passes over the protocol's training-set size (ceil(num_epochs n_train / (inner_epochs m)), at
least 1), in both settings, so ADSH is compared with the other methods, and its two settings
with each other, at the same number of network updates. Where we differ: the authors fine-tune
AlexNet/CNN-F; our configs train the shared small CNN with Adam.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jhash.codes import sign
from jhash.losses import pairwise_similarity
from jhash.methods.base import DiscreteStep, MemoryBank, Method, build_model, hyperparameters
from jhash.solvers import adsh_update_v


DATABASE = ("whole", "train")


def defaults() -> dict:
    return {"gamma": 200.0, "num_samples": 2000, "inner_epochs": 3, "outer_iterations": 0, "use_sign_u": False,
            "database": "whole"}


def _database_mode(config) -> str:
    """``config.adsh.database``; a config that has an ``adsh`` section without the key was made before the
    option existed and gets ``'train'``, which computes what it computed."""
    given = dict(config.get("adsh", {}) or {})
    mode = given.get("database", "train" if given else defaults()["database"])
    if mode not in DATABASE:
        raise ValueError(f"config.adsh.database must be one of {', '.join(DATABASE)}, got {mode!r}")
    return mode


def trains_on_database(config) -> bool:
    """Whether the trainer's training set is the whole labelled database (``adsh.database='whole'``,
    the authors' setting) rather than the protocol's training set (:func:`jhash.experiment.training_index`)."""
    return _database_mode(config) == "whole"


def _budget_items(config, n: int) -> int:
    """The number of items whose ``num_epochs`` passes make the default budget: the protocol's training
    set also when V covers the whole database, so both settings make the same number of network
    updates (a split file, whose training-set size the method does not see: ``n``)."""
    if _database_mode(config) == "train" or config.get("split_file", ""):
        return n
    from jhash import data as jdata

    try:
        n_train = int(jdata.get_protocol(config.get("protocol", "") or config.dataset).n_train)
    except ValueError:  # a dataset without a named protocol (e.g. a feature file): the items trained on
        return n
    return min(n, n_train or n)


def rescaled_similarity(labels_a, labels_b):
    """ADSH's similarity: 1 for similar and -r for dissimilar pairs, r = #similar / #dissimilar of the block."""
    s = pairwise_similarity(labels_a, labels_b)
    r = jnp.sum(s) / jnp.maximum(jnp.sum(1.0 - s), 1.0)
    return s * (1.0 + r) - r


def sample_schedule(name: str, config, schedule, num_samples: int, inner_epochs: int, outer_iterations: int = 0, *,
                    budget_items: int | None = None, sort: bool = False):
    """ADSH's schedule (also SPDAQ's): outer iteration ``t`` draws m = min(num_samples, n) of the n
    training items, Omega_t, from ``(config.seed, t)`` and trains ``inner_epochs`` epochs over them,
    each epoch in its own seeded order; a pure function of the step, so a resumed run sees the
    same batches. The step counts are the run's :meth:`~jhash.methods.base.Schedule.outer_loop`
    (``outer_iterations``, 0: as many as give ``num_epochs`` passes over ``budget_items``).

    Returns ``(loop, omega_of, batches)``: ``loop`` the :class:`~jhash.methods.base.OuterLoop`,
    ``omega_of(t)`` (traceable; sorted with ``sort``) gives Omega_t, ``batches(step)`` the
    positions of the step's batch (host side).
    """
    bs, n = schedule.batch_size, schedule.n_train
    m = int(min(num_samples, n))
    if m < bs:
        raise ValueError(f"{name}.num_samples ({m}) must be at least config.batch_size ({bs})")
    loop = schedule.outer_loop(m, inner_epochs, outer_iterations, budget_items)
    steps_per_epoch, steps_per_outer = loop.steps_per_epoch, loop.steps_per_outer
    sample_key = jax.random.PRNGKey(config.seed)

    @jax.jit
    def omega_of(t):
        """The sampled points of outer iteration ``t`` (positions in the training set)."""
        omega = jax.random.permutation(jax.random.fold_in(sample_key, t), n)[:m]
        return (jnp.sort(omega) if sort else omega).astype(jnp.int32)

    @functools.lru_cache(maxsize=4)
    def host_omega(t: int) -> np.ndarray:
        return np.asarray(omega_of(t))

    def batches(step: int) -> np.ndarray:
        t, within = divmod(int(step), steps_per_outer)
        epoch, b = divmod(within, steps_per_epoch)
        order = np.random.default_rng([config.seed, t, epoch]).permutation(m)
        return host_omega(t)[order[b * bs:(b + 1) * bs]]

    return loop, omega_of, batches


def build(config, *, train_labels, schedule) -> Method:
    hp = {**hyperparameters(config, "adsh", defaults()), "database": _database_mode(config)}
    n = len(train_labels)
    q = config.bits
    loop, omega_of, batches = sample_schedule("adsh", config, schedule, hp["num_samples"], hp["inner_epochs"],
                                              hp["outer_iterations"], budget_items=_budget_items(config, n))
    steps_per_outer = loop.steps_per_outer
    labels = jnp.asarray(train_labels)

    def init_state():
        return {"v": jnp.zeros((n, q), jnp.float32), "u": jnp.zeros((n, q), jnp.float32), "labels": labels}

    def update_v(state, *, step, key):
        omega = omega_of(step // steps_per_outer)
        s = rescaled_similarity(state["labels"][omega], state["labels"])
        v = adsh_update_v(state["v"], state["u"][omega], s, omega, gamma=hp["gamma"], use_sign_u=hp["use_sign_u"])
        return {**state, "v": v}

    def loss(out, batch, state, *, step, key):
        u = jnp.tanh(out)
        idx = batch["index"]
        s = rescaled_similarity(batch["y"], state["labels"])
        pairs = jnp.sum(jnp.square(u @ state["v"].T - q * s))
        quant = hp["gamma"] * jnp.sum(jnp.square(state["v"][idx] - u))
        value = (pairs + quant) / (n * u.shape[0])
        return value, {"pairs": pairs / (n * u.shape[0]), "quantization": quant / (n * u.shape[0])}

    # after the loss: the bank U of the sample's outputs, then the V-step closing each outer iteration
    bank = MemoryBank("u", of=jnp.tanh, after_loss=True)
    v_step = DiscreteStep(update_v, when=lambda step: (step + 1) % steps_per_outer == 0, after_loss=True)
    return Method(name="adsh", model=build_model(config), loss=loss, init_state=init_state, banks=(bank,),
                  discrete_step=v_step, batches=batches, num_steps=loop.num_steps,
                  database_codes=lambda state: sign(state["v"]), sharded_state=("v", "u"))
