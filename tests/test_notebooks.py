"""Executes every notebook of colab/ end to end on CPU (with small settings) and checks its outputs.

The notebook runs in a fresh kernel started from this interpreter (a kernelspec written to
a temporary folder, so no installed or user kernelspec is needed or used), in a temporary
working directory. Skips when nbclient / nbformat / ipykernel are not installed
(``pip install -e '.[test]'`` installs them).
"""
import json
import os
import pathlib
import re
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402  (a dependency of nbclient)
from jupyter_client.manager import KernelManager  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "colab" / "quickstart.ipynb"
EPOCHS = 100  # 700 steps of 64: mAP@ALL about 0.97 (30 epochs: about 0.5; random 32-bit codes: about 0.1)
KERNEL = "jhash-test-python"


def _kernel_manager(tmp_path: pathlib.Path) -> KernelManager:
    """A kernel manager whose only kernelspec runs ipykernel in this interpreter."""
    spec_dir = tmp_path / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "jhash test (this interpreter)",
        "language": "python",
    }))
    ksm = KernelSpecManager(kernel_dirs=[str(spec_dir.parent)], ensure_native_kernel=False)
    return KernelManager(kernel_name=KERNEL, kernel_spec_manager=ksm)


def _kernel_env(tmp_path: pathlib.Path, devices: int = 1) -> dict:
    env = dict(os.environ)
    # conftest.py asks for 8 fake CPU devices; the notebooks run faster on the real one.
    flags = re.sub(r"--xla_force_host_platform_device_count=\d+", "", env.get("XLA_FLAGS", "")).strip()
    if devices > 1:
        flags = f"{flags} --xla_force_host_platform_device_count={devices}".strip()
    if flags:
        env["XLA_FLAGS"] = flags
    else:
        env.pop("XLA_FLAGS", None)
    env["JAX_PLATFORMS"] = "cpu"
    env["TMPDIR"] = str(tmp_path)  # the notebook's work dir (tempfile.mkdtemp) lands here
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def test_quickstart_notebook_runs(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = [c for c in nb.cells if c.cell_type == "code" and re.search(r"^EPOCHS = 300$", c.source, re.M)]
    assert len(params) == 1, "the notebook must have one parameter cell with the line 'EPOCHS = 300'"
    params[0].source = re.sub(r"^EPOCHS = 300$", f"EPOCHS = {EPOCHS}", params[0].source, flags=re.M)

    workdir = tmp_path / "cwd"
    workdir.mkdir()
    client = nbclient.NotebookClient(nb, km=_kernel_manager(tmp_path), timeout=600,
                                     resources={"metadata": {"path": str(workdir)}})
    client.execute(env=_kernel_env(tmp_path))

    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    assert all(c.execution_count for c in code), "a code cell did not run"
    text = "\n".join(_text(c) for c in code)

    assert "jhash is already installed" in text  # never reaches for the network here
    assert "cpu" in text
    m = re.search(r"^\| map@all \| ([0-9.]+) \|$", text, re.M)
    assert m, text
    assert float(m.group(1)) > 0.8, text
    assert f"{EPOCHS} epochs" in text
    # the search cell: a query label, ten retrieved labels, the radius-2 count
    assert re.search(r"top-10 labels: +\[[\d ]+\]", text), text
    assert re.search(r"within radius 2: \d+ items, \d+ with the query's label", text), text
    # the curves: printed when matplotlib is absent, a figure otherwise
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "precision@k:" in text
    else:
        assert any(o.output_type == "display_data" for c in code for o in c.outputs)


def _execute(name: str, tmp_path: pathlib.Path, params: dict, devices: int = 1):
    """Runs colab/<name> with the parameter cell's ``NAME = value`` lines replaced; returns (notebook, text)."""
    nb = nbformat.read(REPO / "colab" / name, as_version=4)
    for key, value in params.items():
        cells = [c for c in nb.cells if c.cell_type == "code" and re.search(rf"^{key} = ", c.source, re.M)]
        assert len(cells) == 1, f"{name} must set {key} in one parameter cell"
        cells[0].source = re.sub(rf"^{key} = .*$", f"{key} = {value}", cells[0].source, flags=re.M)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    client = nbclient.NotebookClient(nb, km=_kernel_manager(tmp_path), timeout=900,
                                     resources={"metadata": {"path": str(workdir)}})
    client.execute(env=_kernel_env(tmp_path, devices))
    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    assert all(c.execution_count for c in code), "a code cell did not run"
    return nb, "\n".join(_text(c) for c in code)


def test_ablation_notebook_runs(tmp_path):
    nb, text = _execute("ablation.ipynb", tmp_path, {"EPOCHS": 8, "SEEDS": [0, 1]})
    assert "jhash is already installed" in text
    assert "8 of 8 runs finished" in text and "4 of 4 runs finished" in text
    assert re.search(r"^\| dch \| 32 \| 2 \| [0-9.]+ ± [0-9.]+ \|", text, re.M), text
    assert re.search(r"^\| 20.0 \| 2 \|.*\| ✓ \|$|^\| 2.0 \| 2 \|.*\| ✓ \|$", text, re.M), text  # a best setting
    assert "IDENTICAL" in text
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "display_data"]
    assert len(images) == 2 and all("image/png" in o.data for o in images)


def test_data_parallel_notebook_runs_on_four_devices(tmp_path):
    _, text = _execute("data_parallel.ipynb", tmp_path, {"EPOCHS": 20}, devices=4)
    assert "4 device(s):" in text
    assert "4 device(s) vs 1 device: codes identical: True; database codes equal: 1.0000" in text, text
