"""The contract between a method and the one trainer."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import numpy as np

from jhash.codes import sign
from jhash.models import HashNetwork, network

# config.regularize: code regularizers that any method can add to its loss (off by default).
REGULARIZE_DEFAULTS = {"balance": 0.0, "decorrelation": 0.0, "on": "tanh"}


def _no_state():
    return {}


@dataclasses.dataclass(frozen=True)
class Method:
    """What the trainer needs from a method; a method module's ``build(config, train_labels=...)`` returns one.

    Attributes:
      name: the method's name.
      model: a flax module mapping a batch of inputs to (batch, bits) real outputs.
      loss: a pure function ``loss(u, batch, method_state, *, step, key) -> (scalar, (new_method_state, metrics))``
        where ``u`` are the model's outputs for ``batch`` (a dict with ``'y'`` and ``'index'``,
        the positions of the batch items in the training set; ``'x'`` only with
        ``config.deterministic_reductions=false``), ``method_state``
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
    encode: Callable[[Any], Any] = sign
    batches: Callable[[int], Any] | None = None
    num_steps: int | None = None
    database_codes: Callable[[Any], Any] | None = None
    sharded_state: tuple[str, ...] = ()
    quantizer: Any = None


def training_index(config, split, train_index, validation_index):
    """The dataset positions the trainer trains on (its training set, whose rows ``build`` gets as
    ``train_labels`` and a method's ``database_codes`` cover).

    ``train_index``: the protocol's training items less the validation ones; that is the answer
    unless the method's module says, through ``trains_on_database(config) -> bool``, that it
    learns over the whole labelled database (ADSH, as its authors' code does: its V covers every
    database item). Then it is the database followed by any training items outside it (protocols
    whose database excludes the training set), validation items left out.
    """
    from jhash.methods import get_method  # here: jhash.methods imports this module

    asks = getattr(get_method(config.method), "trains_on_database", None)
    if asks is None or not asks(config):
        return train_index
    items = np.concatenate([split.database, train_index[~np.isin(train_index, split.database)]])
    return items[~np.isin(items, validation_index)]


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
        value, (state, metrics) = inner(u, batch, state, step=step, key=key)
        t = relax(u["u"] if isinstance(u, dict) else u, step=step)
        q = t.shape[1]
        balance = bit_balance_penalty(t) / q
        decorrelation = bit_decorrelation_penalty(t) / (q * q)
        total = value + weights["balance"] * balance + weights["decorrelation"] * decorrelation
        metrics = {**metrics, "loss": total, "method_loss": value, "balance_penalty": balance,
                   "decorrelation_penalty": decorrelation}
        return total, (state, metrics)

    return dataclasses.replace(method, loss=loss)
