"""Test setup: 8 fake CPU devices (for the data-parallel tests) and the shared data dir."""
import os
import pathlib

# 8 fake CPU devices for the data-parallel tests. They share this machine's 2 cores: XLA's
# CPU client can then leave a device program unscheduled while the others wait for it in a
# collective, and it aborts the process after 40 s ("Termination timeout for all gather ...").
# Seen with the CNN on MNIST, never with the small MLP runs: heavy runs use 1 device.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from jhash import metrics  # noqa: E402

jax.config.update("jax_num_cpu_devices", 8)

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = pathlib.Path(os.environ.get("JHASH_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data():
    """Path of ../shared/data (real MNIST, CIFAR-10 JPEG); skips when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def digits():
    """The bundled digits, pixels scaled to [0, 1], as ``{part: (x (n, 64) float32, labels)}`` for the
    train, query and database parts of the digits protocol's split 0 (the shallow methods' tests)."""
    import jhash.data as jdata

    ds = jdata.load("digits")
    split = jdata.make_split(ds, jdata.get_protocol("digits"), 0)
    out = {}
    for part in ("train", "query", "database"):
        x, y = jdata.subset(ds, getattr(split, part))
        out[part] = (x.reshape(len(x), -1).astype(np.float32) / 16, y)
    return out


def random_code_map(workdir):
    """mAP@ALL of random 16-bit codes for a run's query and database labels (codes.npz): the chance
    level a trained method must clearly beat."""
    z = np.load(workdir / "codes.npz")
    rng = np.random.default_rng(0)
    q = np.where(rng.random((len(z["query_labels"]), 16)) < 0.5, -1, 1).astype(np.int8)
    d = np.where(rng.random((len(z["database_labels"]), 16)) < 0.5, -1, 1).astype(np.int8)
    return metrics.mean_average_precision(q, d, z["query_labels"], z["database_labels"])
