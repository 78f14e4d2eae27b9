"""The config files give exactly the configs they gave before issue 19 (tests/data/configs_before_i19.json.gz,
written from jhash.config.method_config / experiment_config / features_config as they were at d12bddd) for every
method, dataset, CPU budget and hash head."""
import gzip
import itertools
import json
import pathlib

import pytest

from jhash import methods
from jhash.config import load_config

REPO = pathlib.Path(__file__).resolve().parents[1]
SAVED = REPO / "tests/data/configs_before_i19.json.gz"
DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10")
HEADS = ("fc", "ninh", "weighted", "grouped")
OTHER = {  # the configs that take other arguments
    "backbone.py": ("", "method=dch,dataset=mnist,model=alexnet,weights=w.npz,resize=224,lr=1e-4,bits=64,cpu=true",
                    "dataset=digits,model=resnet50"),
    "lists.py": ("dir=/x", "dir=/x,method=dsh,lists=,images=/i,model=cnn,bits=16,epochs=3,lr=0.01,image_size=32",
                 "dir=/x,model=vgg16,weights=v.npz"),
    "features.py": ("features=f.npz,protocol=cifar10",
                    "method=dqn,features=f.npz,protocol=mnist,bits=16,epochs=5,head=ninh"),
}


def configs_of(method: str) -> dict:
    """Every config of ``method``'s file (and of ``method:NAME``) that the saved file holds, by its key there."""
    out = {}
    for ds, cpu, head in itertools.product(DATASETS, (False, True), HEADS):
        arg = f"dataset={ds},bits=32,cpu={str(cpu).lower()},head={head}"
        out[f"{method}:{arg}"] = load_config(f"{REPO}/experiments/configs/{method}.py:{arg}").to_dict()
    out[f"{method}:"] = load_config(f"{REPO}/experiments/configs/{method}.py").to_dict()
    out[f"method:{method}"] = load_config(f"method:{method}").to_dict()
    out[f"{method}:bits=64"] = load_config(f"{REPO}/experiments/configs/{method}.py:bits=64").to_dict()
    return out


def other_configs() -> dict:
    out = {}
    for file, args in OTHER.items():
        for arg in args:
            out[f"{file}:{arg}"] = load_config(f"{REPO}/experiments/configs/{file}:{arg}").to_dict()
    for arg in OTHER["features.py"]:
        out[f"features:{arg}"] = load_config(f"features:{arg}").to_dict()
    return out


def _json(d: dict) -> dict:
    return json.loads(json.dumps(d, sort_keys=True))  # tuples as lists, as saved


@pytest.fixture(scope="module")
def saved():
    with gzip.open(SAVED, "rt") as f:
        return json.load(f)


@pytest.mark.parametrize("method", methods.available())
def test_method_config_files_give_the_configs_of_before(method, saved):
    now = _json(configs_of(method))
    for key, config in now.items():
        assert config == saved[key], key


def test_backbone_lists_and_features_configs_give_the_configs_of_before(saved):
    now = _json(other_configs())
    for key, config in now.items():
        assert config == saved[key], key
    assert len(saved) == len(now) + 35 * len(methods.available())


@pytest.mark.parametrize("method", methods.available())
def test_a_method_file_writes_out_the_method_defaults(method):
    """The hyperparameters written in experiments/configs/<method>.py are jhash.methods.<method>.defaults()."""
    assert load_config(f"method:{method}")[method].to_dict() == methods.get_method(method).defaults()


def test_the_config_files_are_the_package_jhash_configs():
    import jhash.configs

    assert pathlib.Path(jhash.configs.__file__).resolve().parent == (REPO / "experiments/configs").resolve()
