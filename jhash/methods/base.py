"""The contract between a method and the one trainer."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn

from jhash.codes import sign
from jhash.models import get_model


def _no_state():
    return {}


@dataclasses.dataclass(frozen=True)
class Method:
    """What the trainer needs from a method; a method module's ``build(config, train_labels=...)`` returns one.

    Attributes:
      name: the method's name.
      model: a flax module mapping a batch of inputs to (batch, bits) real outputs.
      loss: a pure function ``loss(u, batch, method_state, *, step, key) -> (scalar, (new_method_state, metrics))``
        where ``u`` are the model's outputs for ``batch`` (a dict with ``'x'``, ``'y'`` and
        ``'index'``, the positions of the batch items in the training set), ``method_state``
        is the method's own pytree (e.g. a memory bank, kept in the train state and in
        checkpoints), ``step`` the traced global step and ``key`` a PRNG key for this step.
        ``metrics`` is a dict of scalars to log.
      init_state: returns the initial method state (default: an empty dict).
      encode: maps real outputs to +-1 codes for retrieval (default: sign, with sign(0) = +1).
      batches: ``batches(step) -> positions in the training set`` of the step's batch, a pure
        function of the step (so a resumed run sees the same batches); default: the trainer's
        seeded epoch order over the whole training set. For methods that train on samples
        (ADSH's Omega).
      num_steps: the number of training steps when ``batches`` defines its own schedule
        (default: epochs x steps per epoch).
      database_codes: ``database_codes(method_state) -> (n_train, bits)`` +-1 codes that the
        evaluator uses for the database items that are training items, instead of encoding
        them with the network (ADSH's learned database codes V); default: none. With a
        ``quantizer``: ``(n_train, M)`` codeword indices (SPDAQ's learned codes B).
      sharded_state: keys of ``method_state`` (a dict) whose leading axis runs over the
        training set (e.g. ADSH's V and U): the trainer splits that axis over the mesh's
        ``'data'`` axis instead of replicating the array on every device, so each device
        holds n / devices rows (kept replicated when n is not a multiple of the devices).
      quantizer: a :class:`jhash.quantization.Quantizer` for quantization methods (DQN, DEPQ, DSQ,
        SPDAQ): the evaluator then ranks the database by asymmetric quantizer distance from the
        queries' real vectors to the database's codewords instead of by Hamming distance
        (``encode`` is not used); default: none (binary codes).
    """

    name: str
    model: nn.Module
    loss: Callable[..., Any]
    init_state: Callable[[], Any] = _no_state
    encode: Callable[[Any], Any] = sign
    batches: Callable[[int], Any] | None = None
    num_steps: int | None = None
    database_codes: Callable[[Any], Any] | None = None
    sharded_state: tuple[str, ...] = ()
    quantizer: Any = None


def hyperparameters(config, name: str, defaults: dict) -> dict:
    """``defaults`` updated with ``config.<name>``; unknown keys are a clear error (a typo must not pass silently)."""
    given = dict(config.get(name, {}) or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"config.{name} has unknown key(s) {unknown}; {name} takes {sorted(defaults)}")
    return {**defaults, **given}


def build_model(config) -> nn.Module:
    """The backbone of ``config.model`` (name plus keyword arguments) with ``config.bits`` outputs."""
    kwargs = {k: v for k, v in config.model.items() if k != "name"}
    return get_model(config.model.name, bits=config.bits, **kwargs)


def encode_u(out):
    """sign of ``out['u']``: the encoder of methods whose model returns a dict (e.g. with classifier logits)."""
    return sign(out["u"])
