"""The notebooks' install cell (the same in each): jhash already importable -> nothing; else the checkout the notebook
sits in; else JHASH_REPO; else a clear error. Run here with pip and the import check replaced."""
import importlib.util
import json
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "colab").glob("*.ipynb"))


def install_cell(notebook: pathlib.Path) -> str:
    cells = [c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]
    return "".join(cells[0]["source"])


def run_cell(monkeypatch, cwd, repo_variable=None):
    """Runs the cell in ``cwd`` as if jhash were not installed; returns the pip commands it ran."""
    calls = []
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "jhash" else find_spec(name, *a))
    monkeypatch.setattr(subprocess, "check_call", lambda argv: calls.append(argv[3:]))
    monkeypatch.chdir(cwd)
    if repo_variable is None:
        monkeypatch.delenv("JHASH_REPO", raising=False)
    else:
        monkeypatch.setenv("JHASH_REPO", repo_variable)
    exec(install_cell(NOTEBOOKS[0]), {})
    return calls


def test_every_notebook_has_the_same_install_cell_without_an_invented_url():
    assert len(NOTEBOOKS) == 3
    assert all(install_cell(nb) == install_cell(NOTEBOOKS[0]) for nb in NOTEBOOKS)
    assert all("github.com/jhash-dev" not in nb.read_text() for nb in NOTEBOOKS)


def test_the_install_cell_installs_the_checkout_around_the_notebook(monkeypatch):
    assert run_cell(monkeypatch, REPO / "colab") == [["install", "-q", str(REPO)]]


def test_the_install_cell_takes_jhash_repo_outside_a_checkout_and_stops_without_it(monkeypatch, tmp_path):
    assert run_cell(monkeypatch, tmp_path, "git+https://example.org/me/jhash") == [
        ["install", "-q", "git+https://example.org/me/jhash"]]
    with pytest.raises(RuntimeError, match="set JHASH_REPO in this cell to your copy of the repository"):
        run_cell(monkeypatch, tmp_path)
