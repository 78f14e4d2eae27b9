"""The method hooks the trainer composes: Schedule, MemoryBank, DiscreteStep, one-off init stages."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jhash import methods
from jhash.config import apply_overrides, load_config
from jhash.methods.base import DiscreteStep, MemoryBank, Method, Schedule, objective
from jhash.models import get_model


def _schedule(n=500, batch=32, epochs=20):
    return Schedule.of(ml_collections.ConfigDict({"batch_size": batch, "num_epochs": epochs}), n)


def test_schedule_arithmetic():
    s = _schedule()
    assert (s.steps_per_epoch, s.num_steps, s.last_step) == (15, 300, 299)
    assert (s.every_epochs(2), s.every_epochs(0), s.share(3)) == (30, 1, 100)
    loop = s.outer_loop(256, 3)  # ceil(20 * 500 / (3 * 256)) = 14 outer iterations of 3 x 8 steps
    assert (loop.steps_per_epoch, loop.steps_per_outer, loop.outer_iterations, loop.num_steps) == (8, 24, 14, 336)
    assert s.outer_loop(256, 3, outer_iterations=5).num_steps == 5 * 24
    assert s.outer_loop(256, 3, budget_items=1000).outer_iterations == 27


def _toy(banks=(), discrete=None):
    def loss(u, batch, state, *, step, key):
        return jnp.sum(u * state["bank"][batch["index"]]) + state["count"], {}

    return Method(name="toy", model=get_model("mlp", bits=2, hidden=(4,)), loss=loss, banks=banks,
                  discrete_step=discrete)


def _run(method, step):
    state = {"bank": jnp.full((4, 2), 10.0), "seen": jnp.zeros((4,), jnp.bool_), "count": jnp.zeros(())}
    u = jnp.ones((2, 2))
    batch = {"index": jnp.array([1, 3])}
    value, (state, _) = objective(method)(u, batch, state, step=jnp.int32(step), key=jax.random.PRNGKey(0))
    return float(value), state


def test_bank_written_before_or_after_the_loss():
    value, state = _run(_toy((MemoryBank("bank", of=lambda u: 2 * u, seen="seen"),)), 0)
    assert value == 8.0  # the loss saw the batch's rows (2 x 1) already
    np.testing.assert_array_equal(state["bank"], [[10, 10], [2, 2], [10, 10], [2, 2]])
    np.testing.assert_array_equal(state["seen"], [False, True, False, True])
    value, state = _run(_toy((MemoryBank("bank", after_loss=True, momentum=lambda step: 0.25),)), 0)
    assert value == 40.0  # the loss saw the bank as it was
    np.testing.assert_array_equal(state["bank"][1], [0.25 * 10 + 0.75, 0.25 * 10 + 0.75])


def test_bank_write_stops_the_gradient():
    method = _toy((MemoryBank("bank"),))
    state = {"bank": jnp.zeros((4, 2)), "count": jnp.zeros(())}
    grad = jax.grad(lambda u: objective(method)(u, {"index": jnp.array([0, 1])}, state, step=0, key=None)[0])(
        jnp.full((2, 2), 3.0))
    np.testing.assert_array_equal(grad, jnp.full((2, 2), 3.0))  # d/du sum(u * sg(u)) = sg(u)


def _counting(after_loss):
    def update(state, *, step, key):
        return {**state, "count": state["count"] + 1.0}

    return DiscreteStep(update, when=lambda step: step % 3 == 0, after_loss=after_loss)


def test_discrete_step_runs_when_due_before_or_after_the_loss():
    for step, due in ((0, True), (1, False), (3, True)):
        value, state = _run(_toy(discrete=_counting(after_loss=False)), step)
        assert (value, float(state["count"])) == ((41.0, 1.0) if due else (40.0, 0.0))
        value, state = _run(_toy(discrete=_counting(after_loss=True)), step)
        assert (value, float(state["count"])) == ((40.0, 1.0) if due else (40.0, 0.0))


def test_the_solver_is_a_cond_of_the_composed_step_and_not_of_the_loss():
    c = apply_overrides(load_config("method:dsdh:dataset=digits,bits=8"), ["batch_size=50"])
    labels = np.arange(200) % 10
    method = methods.build(c, train_labels=labels)
    assert method.discrete_step is not None and [b.name for b in method.banks] == ["memory"]
    state = method.init_state()
    u = jnp.zeros((50, 8))
    batch = {"y": jnp.asarray(labels[:50]), "index": jnp.arange(50)}
    step = jax.make_jaxpr(lambda u, st, s: objective(method)(u, batch, st, step=s, key=None))(u, state, 1)
    loss = jax.make_jaxpr(lambda u, st, s: method.loss(u, batch, st, step=s, key=None))(u, state, 1)
    assert "cond" in str(step) and "cond" not in str(loss)


def test_one_off_stage_runs_at_init_not_in_the_step():
    c = apply_overrides(load_config("method:hbmp:dataset=digits,bits=8"), ["batch_size=50"])
    labels = np.arange(200) % 10
    method = methods.build(c, train_labels=labels)
    state = method.init_state()
    codes = np.asarray(state["codes"])
    assert set(np.unique(codes)) == {-1.0, 1.0}  # the stage-1 codes, before any step
    assert all(np.array_equal(codes[i], codes[i % 10]) for i in range(200))  # one code per label vector
    batch = {"y": jnp.asarray(labels[:50]), "index": jnp.arange(50)}
    step = jax.make_jaxpr(lambda u, st: objective(method)(u, batch, st, step=0, key=None))(jnp.zeros((50, 8)), state)
    assert "cond" not in str(step)
