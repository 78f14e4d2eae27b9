"""A second fit of the same shapes and settings compiles nothing (issue 18: no recompilation per call).

SDH, FSDH, COSDISH, KSH and ITQ keep their numerical work in module-level jitted programs; before, SDH,
FSDH and KSH built a new ``jax.jit`` of a new ``functools.partial`` per fit and COSDISH a new jitted
closure, so every fit traced and compiled its solver again.
"""
import jax
import jax.monitoring
import numpy as np
import pytest

from jhash import shallow

_COMPILES = []
jax.monitoring.register_event_duration_secs_listener(
    lambda name, secs, **kw: _COMPILES.append(kw.get("fun_name")) if name.endswith("backend_compile_duration") else None)

SMALL = {"sdh": {"anchors": 20, "outer_iterations": 2}, "fsdh": {"anchors": 20, "outer_iterations": 2},
         "cosdish": {"anchors": 20, "num_samples": 30, "iterations": 2},
         "ksh": {"anchors": 20, "labelled": 40, "max_iterations": 5}, "itq": {"iters": 5}}


@pytest.mark.parametrize("method", sorted(SMALL))
def test_second_fit_compiles_nothing(method):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 12)).astype(np.float32)
    y = rng.integers(0, 3, 60)
    fit = shallow.get_method(method)
    first = fit(x, y, bits=6, key=jax.random.key(1), **SMALL[method])
    start = len(_COMPILES)
    second = fit(x, y, bits=6, key=jax.random.key(1), **SMALL[method])
    assert _COMPILES[start:] == []
    np.testing.assert_array_equal(first.encode(x), second.encode(x))


def _programs():
    """(the options-compiled program, the same function under a plain ``jax.jit``, its arguments)."""
    import functools

    from jhash.shallow import common, cosdish, itq, sdh

    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 12)).astype(np.float32)
    phi = np.exp(-rng.random((80, 20))).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 80)]
    b = np.where(rng.random((80, 6)) < 0.5, -1.0, 1.0).astype(np.float32)
    key = jax.random.key(3)
    solve = functools.partial(sdh.solve, lam=1.0, nu=1e-5, delta=1e-2, outer_iterations=2, max_sweeps=10)
    step = functools.partial(cosdish._step.__wrapped__, m=30, solver="partition+local_search", restarts=2,
                             residual="others")
    return {"sdh.solve": (functools.partial(sdh._solve, lam=1.0, nu=1e-5, delta=1e-2, outer_iterations=2,
                                            max_sweeps=10), solve, (phi, y, b)),
            "cosdish._step": (functools.partial(cosdish._step, m=30, solver="partition+local_search", restarts=2,
                                                residual="others"), step, (b, y, key, 1)),
            "itq.iterate": (itq.iterate, itq.iterate.__wrapped__, (x[:, :6], np.eye(6, dtype=np.float32), 5)),
            "kmeans": (functools.partial(common.kmeans, k=5, iters=3), functools.partial(common.kmeans.__wrapped__,
                                                                                         k=5, iters=3), (x, key)),
            "random_orthogonal": (common.random_orthogonal, common.random_orthogonal.__wrapped__, (key, 6))}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sdh.solve", "cosdish._step", "itq.iterate", "kmeans", "random_orthogonal"])
def test_compiler_options_keep_values(name):
    """jhash.shallow.common.COMPILER_OPTIONS change how XLA compiles a program, not its codes: the same
    function under a plain ``jax.jit`` (XLA's default emitters and codegen split) gives the same bytes,
    except SDH's objective history (a diagnostic sum of squares, not used by the fit), which may differ
    in its last bit."""
    with_options, plain, args = _programs()[name]
    static = [a for a in args if isinstance(a, int)]
    arrays = [a for a in args if not isinstance(a, int)]
    if name == "itq.iterate":
        ours, ref = with_options(*arrays, *static), jax.jit(plain, static_argnums=2)(*arrays, *static)
    elif name == "random_orthogonal":
        ours, ref = with_options(*arrays, *static), jax.jit(plain, static_argnums=1)(*arrays, *static)
    else:
        ours, ref = with_options(*args), jax.jit(plain)(*args)
    leaves = list(zip(jax.tree_util.tree_leaves(ours), jax.tree_util.tree_leaves(ref)))
    if name == "sdh.solve":  # (b, p, c, history)
        history, history_ref = leaves.pop()
        np.testing.assert_allclose(history, history_ref, rtol=1e-6)
    for a, r in leaves:
        a, r = np.asarray(a), np.asarray(r)
        assert a.dtype == r.dtype and a.tobytes() == r.tobytes()
