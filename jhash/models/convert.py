"""Converts torchvision ImageNet weights into the variables of :mod:`jhash.models.backbones`, once.

A torchvision state dict (``torch.save(model.state_dict(), 'x.pth')``; the files torchvision
downloads, e.g. ``resnet18-f37072fd.pth``) or an ``.npz`` of it (one array per state-dict key,
``np.savez('x.npz', **{k: v.numpy() for k, v in sd.items()})``, for machines without torch) is
converted into a jhash weights file, an ``.npz`` holding the trunk's variables by flax path
(``params/layer1_0/conv1/kernel``, ``batch_stats/bn1/mean``, ...) and a ``__jhash_weights__``
record (format, architecture, source file and its sha256). A backbone names it with
``weights=PATH`` (``--config.model.weights=PATH``) and :func:`jhash.models.pretrained.load`
puts it into the initialised model; nothing is downloaded at run time.

The rules: a conv weight (out, in, kh, kw) becomes an HWIO kernel; a linear weight (out, in)
a transposed kernel; batch norm's weight, bias, running_mean, running_var become scale, bias
and the batch statistics mean, var (``num_batches_tracked`` is dropped); torch's module path
``layer1.0.conv1`` becomes ``layer1_0/conv1``. ImageNet's 1000-way classifier (``fc``,
``classifier.6``) is dropped: the hash head replaces it. Every other key must be present with
its shape, and no key may be left over, so a file of another architecture (or not a state dict
at all) is refused with the keys that differ.

``.pth`` files are read with ``torch.load(weights_only=True)`` when torch is installed, and
otherwise by :func:`read_pth`, a reader of torch's zip format (``torch.save`` since PyTorch 1.6,
what torchvision publishes) that unpickles nothing but tensors, storages and ordered dicts;
torch is not a dependency of jhash.
"""
from __future__ import annotations

import collections
import hashlib
import io
import json
import os
import pathlib
import pickle
import re
import zipfile

import numpy as np

from jhash import io as jio

FORMAT = "jhash.backbone_weights.v1"
META_KEY = "__jhash_weights__"

#: torchvision state-dict keys of ImageNet's classifier, which the hash head replaces.
_CLASSIFIER = {"alexnet": "classifier.6.", "vgg16": "classifier.6.", "resnet18": "fc.", "resnet50": "fc."}


def architectures() -> list[str]:
    return sorted(_CLASSIFIER)


def _check_arch(arch: str) -> None:
    if arch not in _CLASSIFIER:
        raise ValueError(f"arch must be one of {architectures()}, got {arch!r}")


def expected_shapes(arch: str) -> dict[str, tuple]:
    """``{flax variable path: shape}`` of the trunk of ``arch`` (what a converted file must hold)."""
    import jax
    import jax.numpy as jnp

    from jhash.models.nets import get_backbone

    _check_arch(arch)
    model = get_backbone(arch)
    size = 64 if arch == "alexnet" else 32
    variables = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, size, size, 3)), train=False))
    flat = {}
    for collection in ("params", "batch_stats"):
        for path, leaf in jax.tree_util.tree_flatten_with_path(dict(variables.get(collection, {})))[0]:
            flat[f"{collection}/{'/'.join(str(p.key) for p in path)}"] = tuple(leaf.shape)
    return flat


def _flax_path(torch_key: str) -> str:
    """``layer1.0.bn1.running_var`` -> ``batch_stats/layer1_0/bn1/var`` (and so on for every rule)."""
    module, _, leaf = torch_key.rpartition(".")
    module = re.sub(r"\.(\d+)", r"_\1", module).replace(".", "/")
    collection, name = {"weight": ("params", "kernel"), "bias": ("params", "bias"),
                        "running_mean": ("batch_stats", "mean"), "running_var": ("batch_stats", "var")}[leaf]
    return f"{collection}/{module}/{name}"


def convert_state_dict(state_dict: dict, arch: str) -> dict[str, np.ndarray]:
    """The flax variables (``{path: float32 array}``) of the trunk of ``arch`` from a torchvision state dict."""
    _check_arch(arch)
    if not isinstance(state_dict, dict) or not state_dict:
        raise ValueError(f"state_dict must be a non-empty dict of arrays (a torchvision state dict), got {type(state_dict).__name__}")
    expected = expected_shapes(arch)
    out, unexpected = {}, []
    for key, value in state_dict.items():
        if key.endswith("num_batches_tracked") or key.startswith(_CLASSIFIER[arch]):
            continue
        leaf = key.rpartition(".")[2]
        if leaf not in ("weight", "bias", "running_mean", "running_var"):
            unexpected.append(key)
            continue
        path = _flax_path(key)
        if path.endswith("/kernel") and path.replace("/kernel", "/mean").replace("params/", "batch_stats/") in expected:
            path = path.replace("/kernel", "/scale")  # a batch norm's weight
        if path not in expected:
            unexpected.append(key)
            continue
        a = np.asarray(value, dtype=np.float32)
        if a.ndim == 4:
            a = a.transpose(2, 3, 1, 0)  # (out, in, kh, kw) -> (kh, kw, in, out)
        elif a.ndim == 2:
            a = a.T  # (out, in) -> (in, out)
        if a.shape != expected[path]:
            raise ValueError(f"state dict key {key!r} has shape {tuple(np.shape(value))}, which is not {arch}'s "
                             f"(flax {path} needs {expected[path]}); is this a {arch} state dict?")
        out[path] = np.ascontiguousarray(a)
    missing = sorted(set(expected) - set(out))
    if unexpected or missing:
        raise ValueError(f"the state dict does not match torchvision's {arch}: "
                         f"{len(unexpected)} unexpected key(s) {unexpected[:5]}, "
                         f"{len(missing)} missing variable(s) {missing[:5]}")
    return out


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A torchvision state dict from a ``.pth`` / ``.pt`` file (needs torch) or an ``.npz`` of it."""
    path = pathlib.Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"state dict file {path} does not exist")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                if META_KEY in z.files:
                    raise ValueError(f"{path} is already a converted jhash weights file; pass it as the model's weights")
                return {k: z[k] for k in z.files}
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise ValueError(f"{path}: cannot read the .npz ({e})") from e
    try:
        import torch
    except ImportError:
        return read_pth(path)
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"{path}: torch cannot read it as a state dict ({type(e).__name__}: {e})") from e
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]  # a training checkpoint wrapping the state dict
    if not isinstance(sd, dict) or not all(hasattr(v, "numpy") for v in sd.values()):
        raise ValueError(f"{path} does not hold a state dict (a dict of tensors)")
    return {k: v.detach().cpu().numpy() for k, v in sd.items()}


def _storage_dtypes():
    import ml_dtypes  # a dependency of jax

    return {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
            "BFloat16Storage": ml_dtypes.bfloat16, "LongStorage": np.int64, "IntStorage": np.int32,
            "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_}


def _rebuild_tensor(storage, offset, size, stride, *_):
    """``torch._utils._rebuild_tensor_v2``: a strided view of the storage, copied."""
    size, stride = tuple(size), tuple(stride)
    if not size:
        return np.array(storage[offset])
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=size,
                                           strides=[s * storage.itemsize for s in stride])
    return np.array(view)


def read_pth(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A state dict from a ``torch.save`` zip file, without torch: only tensors, storages and
    (ordered) dicts are unpickled, any other object is refused (as ``torch.load(weights_only=True)``)."""
    path = pathlib.Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise ValueError(f"{path}: not a torch.save zip file (the legacy pre-1.6 format needs torch to read) ({e})") from e
    with archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise ValueError(f"{path}: not a torch.save zip file (no single */data.pkl record)")
        prefix = pickles[0][: -len("data.pkl")]
        order = archive.read(prefix + "byteorder").decode() if prefix + "byteorder" in archive.namelist() else "little"
        dtypes = _storage_dtypes()

        class Unpickler(pickle.Unpickler):
            def find_class(self, module, name):
                if (module, name) == ("collections", "OrderedDict"):
                    return collections.OrderedDict
                if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                    return _rebuild_tensor
                if module == "torch" and name in dtypes:
                    return np.dtype(dtypes[name]).newbyteorder("<" if order == "little" else ">")
                raise ValueError(f"{path}: holds a {module}.{name}, not just tensors (not a state dict?)")

            def persistent_load(self, pid):
                kind, dtype, key, _location, numel = pid
                if kind != "storage":
                    raise ValueError(f"{path}: unknown persistent record {kind!r}")
                return np.frombuffer(archive.read(f"{prefix}data/{key}"), dtype=dtype, count=numel)

        try:
            sd = Unpickler(io.BytesIO(archive.read(pickles[0]))).load()
        except (pickle.UnpicklingError, EOFError, KeyError, TypeError) as e:
            raise ValueError(f"{path}: cannot read the state dict ({type(e).__name__}: {e})") from e
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, np.ndarray) for v in sd.values()):
        raise ValueError(f"{path} does not hold a state dict (a dict of tensors)")
    return dict(sd)


def file_sha256(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def convert_file(source: str | os.PathLike, out: str | os.PathLike, *, arch: str) -> dict:
    """Converts the state dict in ``source`` for ``arch`` and writes the jhash weights file ``out``; returns its record."""
    _check_arch(arch)
    source, out = pathlib.Path(source).expanduser(), pathlib.Path(out).expanduser()
    if out.suffix != ".npz":
        raise ValueError(f"out must be an .npz path, got {str(out)!r}")
    arrays = convert_state_dict(read_state_dict(source), arch)
    meta = {"format": FORMAT, "arch": arch, "source": source.name, "source_sha256": file_sha256(source),
            "variables": len(arrays), "parameters": int(sum(a.size for k, a in arrays.items() if k.startswith("params/")))}
    out.parent.mkdir(parents=True, exist_ok=True)
    jio.savez(out, **arrays, **{META_KEY: np.array(json.dumps(meta))})
    return meta


def load_weights(path: str | os.PathLike, *, arch: str) -> dict[str, np.ndarray]:
    """The variables of a jhash weights file written by :func:`convert_file`, checked to be ``arch``'s."""
    _check_arch(arch)
    path = pathlib.Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist (make it with experiments/convert_weights.py)")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise ValueError(f"weights file {path}: not a jhash weights file, cannot read it as .npz ({e})") from e
    if META_KEY not in arrays:
        raise ValueError(f"weights file {path} is not a converted jhash weights file (no {META_KEY} record); "
                         "convert the torchvision state dict first: python experiments/convert_weights.py")
    meta = json.loads(str(arrays.pop(META_KEY)))
    if meta.get("format") != FORMAT:
        raise ValueError(f"weights file {path}: unknown format {meta.get('format')!r} (expected {FORMAT})")
    if meta.get("arch") != arch:
        raise ValueError(f"weights file {path} holds {meta.get('arch')!r} weights, not {arch!r}")
    return arrays
