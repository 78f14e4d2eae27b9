"""``import jhash`` tells glibc's malloc to keep freed memory (jhash/_malloc.py): XLA's per-call CPU buffers are then
reused instead of being page-faulted afresh in every call."""
import os
import subprocess
import sys

import pytest

from jhash import _malloc

GLIBC = sys.platform.startswith("linux") and "glibc" in (os.confstr("CS_GNU_LIBC_VERSION") or "")

# a jitted call with 64 MB temporaries (the sorted array and its input); prints the minor page faults of its fourth call
FAULTS = """
import resource, jhash, jax, jax.numpy as jnp
f = jax.jit(lambda x: jnp.sort(x * 2)[::4096].sum())
x = jnp.ones(1 << 24, jnp.float32)
for _ in range(3):
    jax.block_until_ready(f(x))
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
jax.block_until_ready(f(x))
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(**env):
    env = {**{k: v for k, v in os.environ.items() if k not in _malloc.OWN_ENV + ("JHASH_SYSTEM_MALLOC",)}, **env}
    out = subprocess.run([sys.executable, "-c", FAULTS], env=env, check=True, capture_output=True, text=True)
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt only")
def test_xla_cpu_buffers_are_reused_after_import_jhash_not_faulted_in_again():
    pages = (1 << 26) // os.sysconf("SC_PAGE_SIZE")  # one 64 MB buffer
    kept, system = _faults(), _faults(JHASH_SYSTEM_MALLOC="1")
    assert system > 3 * pages  # glibc's default: the temporaries faulted in again in every call (5 buffers here)
    assert kept < system / 3


def test_opt_outs(monkeypatch):
    monkeypatch.setenv("JHASH_SYSTEM_MALLOC", "1")
    assert not _malloc.keep_freed_memory()
    monkeypatch.delenv("JHASH_SYSTEM_MALLOC")
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")  # the user's own malloc settings win
    assert not _malloc.keep_freed_memory()
