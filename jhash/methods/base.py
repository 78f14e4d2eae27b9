"""The contract between a method and the one trainer.

A method module's ``build(config, *, train_labels, schedule)`` returns a :class:`Method`: a model,
a pure loss and the hooks the trainer composes around it inside the jitted step
(:func:`objective`): per-item :class:`MemoryBank` s, a periodic :class:`DiscreteStep` under
the trainer's ``lax.cond``, and one-off stages in ``init_state``. The step arithmetic comes
from the run's :class:`Schedule`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jhash.codes import sign
from jhash.models import HashNetwork, network

# config.regularize: code regularizers that any method can add to its loss (off by default).
REGULARIZE_DEFAULTS = {"balance": 0.0, "decorrelation": 0.0, "on": "tanh"}


def _no_state():
    return {}


def _identity(u):
    return u


def write_rows(bank, index, values):
    """``bank`` with rows ``index`` set to ``stop_gradient(values)``: a memory of per-item values the
    gradient never reaches (the write of :class:`MemoryBank`)."""
    return bank.at[index].set(jax.lax.stop_gradient(values))


@dataclasses.dataclass(frozen=True)
class Schedule:
    """The step arithmetic of a run, computed once by the trainer (:meth:`of`) from the config and the
    training-set size and handed to every method's ``build``: no method derives its periods from
    ``config.batch_size`` itself.

    ``steps_per_epoch``: steps of one pass over the ``n_train`` training items (at least 1; the
    trainer refuses a batch larger than the training set); ``num_steps``: the run's steps by
    the default schedule, ``num_epochs`` epochs.
    """

    n_train: int
    batch_size: int
    num_epochs: int

    @classmethod
    def of(cls, config, n_train: int) -> "Schedule":
        return cls(int(n_train), int(config.batch_size), int(config.num_epochs))

    @property
    def steps_per_epoch(self) -> int:
        return max(1, self.n_train // self.batch_size)

    @property
    def num_steps(self) -> int:
        return self.steps_per_epoch * self.num_epochs

    @property
    def last_step(self) -> int:
        return self.num_steps - 1

    def every_epochs(self, epochs) -> int:
        """The period in steps of something done every ``epochs`` epochs (at least 1)."""
        return max(1, int(epochs) * self.steps_per_epoch)

    def share(self, parts: int) -> int:
        """Steps of each of ``parts`` equal shares of the run (at least 1)."""
        return max(1, self.num_steps // int(parts))

    def outer_loop(self, sample_size: int, inner_epochs: int, outer_iterations: int = 0,
                   budget_items: int | None = None) -> "OuterLoop":
        """Outer iterations over samples of ``sample_size`` items, ``inner_epochs`` epochs each (ADSH, SPDAQ).

        ``outer_iterations`` (0: as many as give the budget): the default budget is
        ``num_epochs`` passes over ``budget_items`` items (default: the training set),
        ceil(num_epochs budget_items / (inner_epochs sample_size)) outer iterations, at least 1.
        """
        m = int(sample_size)
        per_epoch = m // self.batch_size
        budget = self.n_train if budget_items is None else int(budget_items)
        outer = int(outer_iterations) or max(1, -(-self.num_epochs * budget // (int(inner_epochs) * m)))
        return OuterLoop(m, per_epoch, int(inner_epochs) * per_epoch, outer)


@dataclasses.dataclass(frozen=True)
class OuterLoop:
    """The arithmetic of :meth:`Schedule.outer_loop`: ``sample_size`` items a sample, ``steps_per_epoch``
    steps a pass over it, ``steps_per_outer`` steps an outer iteration, ``outer_iterations`` of them."""

    sample_size: int
    steps_per_epoch: int
    steps_per_outer: int
    outer_iterations: int

    @property
    def num_steps(self) -> int:
        return self.outer_iterations * self.steps_per_outer


@dataclasses.dataclass(frozen=True)
class MemoryBank:
    """A per-item bank of training outputs: ``method_state[name]``, one row per training item,
    whose rows of the step's batch the trainer sets to ``stop_gradient(of(u))`` (``u`` the model's
    outputs for the batch; :func:`write_rows`).

    ``seen``: the key of a per-item flag in the method state set for the written items.
    ``momentum``: ``momentum(step) -> mu``; the rows become ``mu * row + (1 - mu) * of(u)``
    (MMHH's semi-batch memory) instead. ``after_loss``: written after the loss (the loss sees
    the bank before the batch is written) instead of before it.
    """

    name: str
    of: Callable[[Any], Any] = _identity
    seen: str = ""
    momentum: Callable[[Any], Any] | None = None
    after_loss: bool = False

    def write(self, state: dict, index, u, step) -> dict:
        values = self.of(u)
        if self.momentum is not None:
            mu = self.momentum(step)
            values = mu * state[self.name][index] + (1.0 - mu) * jax.lax.stop_gradient(values)
        state = {**state, self.name: write_rows(state[self.name], index, values)}
        if self.seen:
            flags = state[self.seen]
            state[self.seen] = flags.at[index].set(jnp.ones((), flags.dtype))
        return state


@dataclasses.dataclass(frozen=True)
class DiscreteStep:
    """A method's periodic discrete sub-problem (a B-step, a codebook fit, ADSH's V-step).

    ``update(method_state, *, step, key) -> method_state`` runs on the steps where ``when(step)``
    (a traced bool) holds; the trainer places it under its own ``lax.cond`` inside the jitted
    step, after the memory banks are written, before the loss (the loss sees its result) or,
    with ``after_loss``, after it (the step's loss sees the state before the update: ADSH's and
    SPDAQ's update closing an outer iteration). ``key`` is the step's PRNG key (the loss's).
    """

    update: Callable[..., Any]
    when: Callable[[Any], Any]
    after_loss: bool = False

    def __call__(self, state, *, step, key):
        return jax.lax.cond(self.when(step), lambda st: self.update(st, step=step, key=key), lambda st: st, state)


@dataclasses.dataclass(frozen=True)
class Method:
    """What the trainer needs from a method; a method module's
    ``build(config, *, train_labels, schedule) -> Method`` returns one (``schedule``: the run's
    :class:`Schedule`; :func:`jhash.methods.build` makes it for callers outside the trainer).

    The trainer composes a step's method computation (:func:`objective`) from the declared
    parts, inside the jitted step: write the ``banks`` (before the loss), run the
    ``discrete_step`` under ``lax.cond``, compute the ``loss``, then the parts marked
    ``after_loss``. A one-off stage (CNNH's and HBMP's target codes, DSEH's label network) runs
    in ``init_state``, once, compiled by itself.

    Attributes:
      name: the method's name.
      model: a flax module mapping a batch of inputs to (batch, bits) real outputs.
      loss: a pure function ``loss(u, batch, method_state, *, step, key) -> (scalar, metrics)``
        where ``u`` are the model's outputs for ``batch`` (a dict with ``'y'`` and ``'index'``,
        the positions of the batch items in the training set; ``'x'`` only with
        ``config.deterministic_reductions=false``), ``method_state``
        is the method's own pytree (e.g. a memory bank, kept in the train state and in
        checkpoints) as the banks and the discrete step left it, ``step`` the traced global
        step and ``key`` a PRNG key for this step. ``metrics`` is a dict of scalars to log.
        It reads the method state and never changes it.
      init_state: returns the initial method state (default: an empty dict); called once,
        before the first step (a method's one-off stage runs here, jitted by itself).
      banks: the :class:`MemoryBank` s of the method state that the trainer writes every step.
      discrete_step: a :class:`DiscreteStep` the trainer runs under ``lax.cond`` (default: none).
      encode: maps real outputs to +-1 codes for retrieval (default: sign, with sign(0) = +1).
      batches: ``batches(step) -> positions in the training set`` of the step's batch, a pure
        function of the step (so a resumed run sees the same batches); default: the trainer's
        seeded epoch order over the whole training set. For methods that train on samples
        (ADSH's Omega).
      num_steps: the number of training steps when ``batches`` defines its own schedule
        (:meth:`Schedule.outer_loop`; default: the schedule's, epochs x steps per epoch).
      database_codes: ``database_codes(method_state) -> (n_train, bits)`` +-1 codes that the
        evaluator uses for the database items that are training items, instead of encoding
        them with the network (ADSH's learned database codes V); default: none. With a
        ``quantizer``: ``(n_train, M)`` codeword indices (SPDAQ's learned codes B).
      sharded_state: keys of ``method_state`` (a dict) whose leading axis runs over the
        training set (e.g. ADSH's V and U): the trainer splits that axis over the mesh's
        ``'data'`` axis instead of replicating the array on every device, so each device
        holds n / devices rows (kept replicated when n is not a multiple of the devices). With
        ``config.deterministic_reductions`` (the default) the loss still sees every row: they are
        gathered for the step and stored split again.
      quantizer: a :class:`jhash.quantization.Quantizer` for quantization methods (DQN, DEPQ, DSQ,
        SPDAQ): the evaluator then ranks the database by asymmetric quantizer distance from the
        queries' real vectors to the database's codewords instead of by Hamming distance
        (``encode`` is not used); default: none (binary codes).
    """

    name: str
    model: nn.Module
    loss: Callable[..., Any]
    init_state: Callable[[], Any] = _no_state
    banks: tuple[MemoryBank, ...] = ()
    discrete_step: DiscreteStep | None = None
    encode: Callable[[Any], Any] = sign
    batches: Callable[[int], Any] | None = None
    num_steps: int | None = None
    database_codes: Callable[[Any], Any] | None = None
    sharded_state: tuple[str, ...] = ()
    quantizer: Any = None


def objective(method: Method) -> Callable:
    """``f(u, batch, method_state, *, step, key) -> (loss, (new_method_state, metrics))``: a step's method
    computation as the trainer differentiates it (with respect to ``u``; the method state is
    an auxiliary output), composed from the method's declared parts in this order: the banks
    written before the loss, the discrete step before the loss (under its ``lax.cond``), the
    loss, the banks written after it, the discrete step after it."""
    discrete = method.discrete_step

    def run(u, batch, state, *, step, key):
        for bank in method.banks:
            if not bank.after_loss:
                state = bank.write(state, batch["index"], u, step)
        if discrete is not None and not discrete.after_loss:
            state = discrete(state, step=step, key=key)
        value, metrics = method.loss(u, batch, state, step=step, key=key)
        for bank in method.banks:
            if bank.after_loss:
                state = bank.write(state, batch["index"], u, step)
        if discrete is not None and discrete.after_loss:
            state = discrete(state, step=step, key=key)
        return value, (state, metrics)

    return run


def hyperparameters(config, name: str, defaults: dict) -> dict:
    """``defaults`` updated with ``config.<name>``; unknown keys are a clear error (a typo must not pass silently)."""
    given = dict(config.get(name, {}) or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"config.{name} has unknown key(s) {unknown}; {name} takes {sorted(defaults)}")
    return {**defaults, **given}


def build_model(config, *, outputs: int | None = None, **model) -> HashNetwork:
    """The network of ``config.model`` (:func:`jhash.models.network`: the backbone's name and keyword
    arguments, the ``head_*`` options), entries of ``model`` overriding it, with ``outputs`` outputs
    (default ``config.bits``; see :class:`jhash.models.HashNetwork` for what else it can be)."""
    return network({**config.model, **model}, outputs=config.bits if outputs is None else outputs)


def encode_u(out):
    """sign of ``out['u']``: the encoder of methods whose model returns a dict (e.g. with classifier logits)."""
    return sign(out["u"])


def regularized(method: Method, config) -> Method:
    """``method`` with the bit balance and decorrelation penalties of ``config.regularize`` added to its loss.

    The trainer applies this to every method, so any method can ask for codes whose bits are
    balanced (each bit +1 on half of the items) and uncorrelated (the constraints 1^T B = 0 and
    B^T B = n I of spectral hashing, Weiss et al., NIPS 2008, relaxed as in BDNN, Do et al.,
    ECCV 2016). With
    t = d(u), d the discretizer ``config.regularize.on`` (default ``'tanh'``: bounded relaxed
    codes whatever the scale of the method's outputs; ``'sign_ste'`` for the binary codes with
    a straight-through gradient; ``'identity'``), the loss gains, over the batch of n items,

      balance * (1/q)   sum_k (mean_i t_ik)^2                      (jhash.losses.bit_balance_penalty / q)
      decorrelation * (1/q^2) || T^T T / n - I ||_F^2              (jhash.losses.bit_decorrelation_penalty / q^2)

    the penalties averaged over bits (and bit pairs) so that one weight means the same at
    every code length. Both weights default to 0, which returns ``method`` itself (the
    compiled step and the results of existing configs are unchanged). The penalties and the
    method's own loss are logged (``balance_penalty``, ``decorrelation_penalty``,
    ``method_loss``). A model returning a dict is regularized on its ``'u'``.
    """
    from jhash.discretize import get_discretizer
    from jhash.losses import bit_balance_penalty, bit_decorrelation_penalty

    hp = hyperparameters(config, "regularize", REGULARIZE_DEFAULTS)
    weights = {}
    for name in ("balance", "decorrelation"):
        value = hp[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ValueError(f"config.regularize.{name} must be a number >= 0, got {value!r}")
        weights[name] = float(value)
    relax = get_discretizer(hp["on"])  # unknown name -> ValueError
    if weights["balance"] == 0 and weights["decorrelation"] == 0:
        return method
    inner = method.loss

    def loss(u, batch, state, *, step, key):
        value, metrics = inner(u, batch, state, step=step, key=key)
        t = relax(u["u"] if isinstance(u, dict) else u, step=step)
        q = t.shape[1]
        balance = bit_balance_penalty(t) / q
        decorrelation = bit_decorrelation_penalty(t) / (q * q)
        total = value + weights["balance"] * balance + weights["decorrelation"] * decorrelation
        metrics = {**metrics, "loss": total, "method_loss": value, "balance_penalty": balance,
                   "decorrelation_penalty": decorrelation}
        return total, metrics

    return dataclasses.replace(method, loss=loss)
