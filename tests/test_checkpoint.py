"""Checkpoints: round trip, keep-last-N, and a clear error for damaged files."""
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jhash.train.checkpoint import CheckpointError, Checkpointer, tree_digest


def _state(seed):
    rng = np.random.default_rng(seed)
    return {"w": jnp.asarray(rng.normal(size=(64, 32)), jnp.float32), "step": jnp.asarray(seed, jnp.int32),
            "bank": {"u": jnp.asarray(rng.normal(size=(100, 8)), jnp.float32)}}


def test_round_trip_and_latest(tmp_path):
    ckpt = Checkpointer(tmp_path / "ckpt", max_to_keep=2)
    for step in (1, 2, 3):
        ckpt.save(step, _state(step))
    assert ckpt.all_steps() == [2, 3]  # keeps the last two
    restored = ckpt.restore(_state(0))
    jax.tree_util.tree_map(np.testing.assert_array_equal, restored, _state(3))
    restored2 = ckpt.restore(_state(0), step=2)
    assert tree_digest(restored2) == tree_digest(_state(2))
    ckpt.close()


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint found"):
        Checkpointer(tmp_path / "empty").restore(_state(0))


def _largest_data_file(root: pathlib.Path) -> pathlib.Path:
    files = [p for p in root.rglob("*") if p.is_file() and "state" in p.parts and p.parent.name == "d"]
    return max(files, key=lambda p: p.stat().st_size)


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_damaged_checkpoint_is_a_clear_error(tmp_path, damage):
    ckpt = Checkpointer(tmp_path / "ckpt")
    ckpt.save(5, _state(5))
    ckpt.close()
    target = _largest_data_file(tmp_path / "ckpt" / "5")
    data = bytearray(target.read_bytes())
    if damage == "flip":
        for i in range(len(data) // 2, len(data) // 2 + 64):
            data[i] ^= 0xFF
        target.write_bytes(bytes(data))
    elif damage == "truncate":
        target.write_bytes(bytes(data[: len(data) // 3]))
    else:
        target.unlink()
    with pytest.raises(CheckpointError, match="step 5"):
        Checkpointer(tmp_path / "ckpt").restore(_state(0))


def test_digest_sees_every_byte():
    a = _state(1)
    b = jax.tree_util.tree_map(lambda x: x, a)
    b["w"] = b["w"].at[3, 4].add(1e-6)
    assert tree_digest(a) != tree_digest(b)
    assert tree_digest(a) == tree_digest(_state(1))
