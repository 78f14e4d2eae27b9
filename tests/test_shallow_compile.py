"""A second fit of the same shapes and settings compiles nothing (issue 18: no recompilation per call).

SDH, COSDISH, KSH and ITQ keep their numerical work in module-level jitted programs; before, SDH
and KSH built a new ``jax.jit`` of a new ``functools.partial`` per fit and COSDISH a new jitted
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

SMALL = {"sdh": {"anchors": 20, "outer_iterations": 2}, "cosdish": {"anchors": 20, "num_samples": 30, "iterations": 2},
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
