"""Deterministic GPU kernels are asked for by ``import jhash`` (jhash/_determinism.py), not only by the CLI."""
import os
import subprocess
import sys
import types
import warnings

import pytest

from jhash import _determinism


def _flags_after_import(**env):
    env = {**{k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JHASH_NONDETERMINISTIC")}, **env}
    return subprocess.run([sys.executable, "-c", "import os, jhash.train; print(os.environ.get('XLA_FLAGS', ''))"],
                          env=env, check=True, capture_output=True, text=True).stdout.strip()


def test_importing_jhash_asks_for_deterministic_gpu_kernels_unless_opted_out():
    assert _flags_after_import() == _determinism.FLAG
    assert _flags_after_import(XLA_FLAGS="--xla_force_host_platform_device_count=2") == \
        f"--xla_force_host_platform_device_count=2 {_determinism.FLAG}"
    assert _flags_after_import(JHASH_NONDETERMINISTIC="1") == ""


@pytest.mark.parametrize("backend", ["cuda", "cpu"])
def test_a_gpu_backend_started_before_jhash_gets_a_warning(monkeypatch, backend):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.delenv("JHASH_NONDETERMINISTIC", raising=False)
    monkeypatch.setitem(sys.modules, "jax._src.xla_bridge", types.SimpleNamespace(_backends={backend: object()}))
    if backend == "cpu":  # CPU kernels are deterministic already: nothing to say
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert _determinism.request()
    else:
        with pytest.warns(RuntimeWarning, match="deterministic GPU kernels .* are not in effect"):
            assert not _determinism.request()
    assert os.environ["XLA_FLAGS"] == _determinism.FLAG  # still set, for the processes this one starts
