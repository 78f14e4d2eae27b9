"""Backbones (AlexNet, VGG-16, ResNet-18/50) and the torchvision weight converter.

Shapes and parameter counts against torchvision's published totals; pooling and batch norm
against NumPy loops; the converter's refusals; and, where torch + torchvision are installed,
a randomly initialised torchvision network saved to a .pth, converted, gives torchvision's
features to 1e-4 (skipped otherwise: torch is not a jhash dependency).
"""
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jhash.models import apply_model, get_backbone, get_model, init_model
from jhash.models import backbones, convert, pretrained

# Parameters of torchvision's models (its documentation's "num_params") minus ImageNet's
# 1000-way classifier (in_features * 1000 + 1000), which the hash head replaces.
TORCHVISION_PARAMS = {"alexnet": 61_100_840 - 4_097_000, "vgg16": 138_357_544 - 4_097_000,
                      "resnet18": 11_689_512 - 513_000, "resnet50": 25_557_032 - 2_049_000}
FEATURES = {"alexnet": 4096, "vgg16": 4096, "resnet18": 512, "resnet50": 2048}


def _shapes(model, x):
    """Output and sown-feature shapes, and the variable shapes, without computing anything."""

    def run(x):
        variables = model.init(jax.random.PRNGKey(0), x, train=False)
        u, sown = model.apply(variables, x, train=False, mutable=["intermediates"])
        return u, sown, variables

    return jax.eval_shape(run, x)


@pytest.mark.parametrize("arch", sorted(FEATURES))
@pytest.mark.parametrize("shape", [(3, 28, 28, 1), (3, 32, 32, 3), (2, 224, 224, 3)])
def test_every_backbone_gives_bits_outputs_and_its_features(arch, shape):
    model = get_model(arch, bits=12)
    u, sown, variables = _shapes(model, jax.ShapeDtypeStruct(shape, jnp.float32))
    assert u.shape == (shape[0], 12) and u.dtype == jnp.float32
    (features,) = jax.tree_util.tree_leaves(sown["intermediates"])
    assert features.shape == (shape[0], FEATURES[arch])
    trunk = {k: v for k, v in variables["params"].items() if not k.startswith("HashHead")}
    assert sum(int(np.prod(a.shape)) for a in jax.tree_util.tree_leaves(trunk)) == TORCHVISION_PARAMS[arch]
    assert ("batch_stats" in variables) == arch.startswith("resnet")


@pytest.mark.parametrize("kwargs, x_shape, match", [
    ({"resize": -1}, (1, 32, 32, 3), "resize must be an int >= 0"),
    ({}, (1, 32, 32, 2), r"expects images of shape \(batch, H, W, 1 or 3\)"),
    ({}, (1, 32, 3), r"expects images of shape"),
])
def test_bad_input_is_a_clear_error(kwargs, x_shape, match):
    with pytest.raises(ValueError, match=match):
        _shapes(get_model("resnet18", bits=4, **kwargs), jax.ShapeDtypeStruct(x_shape, jnp.float32))


def _np_upsample2(img, axis):
    """Bilinear x2 upsampling along ``axis`` with half-pixel centres: output 2i and 2i + 1 take 3/4 of
    input i and 1/4 of its neighbour i - 1, resp. i + 1 (the edge item repeated)."""
    x = np.moveaxis(img, axis, 0)
    prev, nxt = np.concatenate([x[:1], x[:-1]]), np.concatenate([x[1:], x[-1:]])
    out = np.stack([0.75 * x + 0.25 * prev, 0.75 * x + 0.25 * nxt], axis=1).reshape((2 * len(x),) + x.shape[1:])
    return np.moveaxis(out, 0, axis)


def test_grayscale_resize_and_normalisation_are_the_documented_input_transform():
    x = np.random.default_rng(1).random((2, 8, 8, 1)).astype(np.float32)
    out = get_backbone("alexnet", resize=16).bind({}).prepare(jnp.asarray(x))
    want = _np_upsample2(_np_upsample2(np.repeat(x, 3, axis=-1), 1), 2)
    want = (want - np.array(backbones.IMAGENET_MEAN)) / np.array(backbones.IMAGENET_STD)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    raw = get_backbone("alexnet", normalize=False).bind({}).prepare(jnp.asarray(x))
    np.testing.assert_array_equal(raw, np.repeat(x, 3, axis=-1))


# --------------------------------------------------------------------------- pooling, batch norm vs NumPy


def _np_max_pool(x, window, stride, padding):
    """torch's MaxPool2d by loops; maps smaller than the window pool over what there is."""
    n, h, w, c = x.shape
    xp = np.full((n, h + 2 * padding, w + 2 * padding, c), -np.inf)
    xp[:, padding:padding + h, padding:padding + w] = x
    oh = max(1, (h + 2 * padding - window) // stride + 1)
    ow = max(1, (w + 2 * padding - window) // stride + 1)
    out = np.empty((n, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            out[:, i, j] = xp[:, i * stride:i * stride + window, j * stride:j * stride + window].max(axis=(1, 2))
    return out


@pytest.mark.parametrize("size, window, stride, padding", [(7, 3, 2, 0), (8, 3, 2, 1), (9, 2, 2, 0), (1, 3, 2, 0),
                                                          (2, 3, 2, 0), (1, 2, 2, 0), (5, 3, 2, 1)])
def test_max_pool_is_torchs(size, window, stride, padding):
    x = np.random.default_rng(size).standard_normal((2, size, size + 1, 3)).astype(np.float32)
    got = backbones.max_pool(jnp.asarray(x), window, stride, padding)
    np.testing.assert_allclose(got, _np_max_pool(x, window, stride, padding), rtol=0, atol=0)


@pytest.mark.parametrize("size, out", [(1, 6), (1, 7), (2, 7), (5, 3), (6, 6), (13, 6), (10, 7)])
def test_adaptive_average_pool_is_torchs(size, out):
    x = np.random.default_rng(size).standard_normal((2, size, size, 4)).astype(np.float32)
    want = np.empty((2, out, out, 4))
    for i in range(out):  # torch: bin i covers [floor(i*H/out), ceil((i+1)*H/out))
        r0, r1 = int(np.floor(i * size / out)), int(np.ceil((i + 1) * size / out))
        for j in range(out):
            c0, c1 = int(np.floor(j * size / out)), int(np.ceil((j + 1) * size / out))
            want[:, i, j] = x[:, r0:r1, c0:c1].mean(axis=(1, 2))
    np.testing.assert_allclose(backbones.adaptive_avg_pool(jnp.asarray(x), out), want, rtol=1e-5, atol=1e-6)


def test_batch_norm_is_pytorchs():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3, 3, 5)).astype(np.float32) * 2 + 1
    scale, bias = rng.random(5) + 0.5, rng.standard_normal(5)
    mean0, var0 = rng.standard_normal(5), rng.random(5) + 0.5
    bn = backbones.BatchNorm(5)
    variables = {"params": {"scale": jnp.asarray(scale, jnp.float32), "bias": jnp.asarray(bias, jnp.float32)},
                 "batch_stats": {"mean": jnp.asarray(mean0, jnp.float32), "var": jnp.asarray(var0, jnp.float32)}}
    y_eval = bn.apply(variables, jnp.asarray(x), train=False)
    np.testing.assert_allclose(y_eval, (x - mean0) / np.sqrt(var0 + 1e-5) * scale + bias, rtol=1e-5, atol=1e-5)
    y_train, new = bn.apply(variables, jnp.asarray(x), train=True, mutable=["batch_stats"])
    flat = x.reshape(-1, 5).astype(np.float64)
    m, v = flat.mean(0), flat.var(0)
    np.testing.assert_allclose(y_train, (x - m) / np.sqrt(v + 1e-5) * scale + bias, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(new["batch_stats"]["mean"], 0.9 * mean0 + 0.1 * m, rtol=1e-5)
    np.testing.assert_allclose(new["batch_stats"]["var"], 0.9 * var0 + 0.1 * flat.var(0, ddof=1), rtol=1e-5)


# --------------------------------------------------------------------------- the converter without torch


def _resnet18_state_dict(rng):
    """torchvision's resnet18 state dict (keys and shapes as its source writes them), random values."""
    sd = {"conv1.weight": (64, 3, 7, 7)}
    bn = lambda p, c: {f"{p}.weight": (c,), f"{p}.bias": (c,), f"{p}.running_mean": (c,),  # noqa: E731
                       f"{p}.running_var": (c,), f"{p}.num_batches_tracked": ()}
    sd.update(bn("bn1", 64))
    cin = 64
    for stage, c in enumerate((64, 128, 256, 512), start=1):
        for b in range(2):
            p = f"layer{stage}.{b}"
            sd[f"{p}.conv1.weight"] = (c, cin if b == 0 else c, 3, 3)
            sd.update(bn(f"{p}.bn1", c))
            sd[f"{p}.conv2.weight"] = (c, c, 3, 3)
            sd.update(bn(f"{p}.bn2", c))
            if b == 0 and stage > 1:
                sd[f"{p}.downsample.0.weight"] = (c, cin, 1, 1)
                sd.update(bn(f"{p}.downsample.1", c))
        cin = c
    sd["fc.weight"], sd["fc.bias"] = (1000, 512), (1000,)

    def value(key, shape):
        if not shape:
            return np.array(7)  # num_batches_tracked
        if key.endswith("running_var") or (len(shape) == 1 and key.endswith("weight")):
            return rng.uniform(0.5, 1.5, shape).astype(np.float32)
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        return (rng.standard_normal(shape) * np.sqrt(2 / fan_in) if len(shape) > 1 else
                0.1 * rng.standard_normal(shape)).astype(np.float32)

    return {k: value(k, s) for k, s in sd.items()}


def test_converted_npz_state_dict_is_loaded_into_the_initialised_model(tmp_path):
    sd = _resnet18_state_dict(np.random.default_rng(0))
    np.savez(tmp_path / "sd.npz", **sd)
    meta = convert.convert_file(tmp_path / "sd.npz", tmp_path / "w.npz", arch="resnet18")
    assert meta["arch"] == "resnet18" and meta["parameters"] == TORCHVISION_PARAMS["resnet18"]
    model = get_model("resnet18", bits=4, weights=str(tmp_path / "w.npz"))
    random_params, random_state = init_model(model, jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3)))
    # initialising never reads the file: the same values as without it
    plain, _ = init_model(get_model("resnet18", bits=4), jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3)))
    jax.tree_util.tree_map(np.testing.assert_array_equal, random_params, plain)
    params, state = pretrained.load(model, random_params, random_state)
    np.testing.assert_array_equal(params["HashHead_0"]["hash"]["kernel"], random_params["HashHead_0"]["hash"]["kernel"])
    k = np.asarray(params["layer2_0"]["conv1"]["kernel"])  # HWIO from torch's OIHW
    np.testing.assert_array_equal(k[1, 2, 5, 7], sd["layer2.0.conv1.weight"][7, 5, 1, 2])
    np.testing.assert_array_equal(params["layer3_0"]["downsample_1"]["scale"], sd["layer3.0.downsample.1.weight"])
    np.testing.assert_array_equal(state["batch_stats"]["layer4_1"]["bn2"]["var"], sd["layer4.1.bn2.running_var"])
    np.testing.assert_array_equal(state["batch_stats"]["bn1"]["mean"], sd["bn1.running_mean"])
    assert params["HashHead_0"]["hash"]["kernel"].shape == (512, 4)  # the head starts random
    # It runs on MNIST-sized grayscale images; batch norm's statistics change in training only.
    x = jnp.asarray(np.random.default_rng(0).random((4, 28, 28, 1)), jnp.float32)
    run = jax.jit(lambda p, s, x: (apply_model(model, p, s, x, train=False), apply_model(model, p, s, x, train=True)))
    (u, same), (_, new) = run(params, state, x)
    assert u.shape == (4, 4) and bool(jnp.all(jnp.isfinite(u)))
    np.testing.assert_array_equal(same["batch_stats"]["bn1"]["mean"], sd["bn1.running_mean"])
    assert not np.allclose(new["batch_stats"]["bn1"]["mean"], sd["bn1.running_mean"])


def test_converter_refuses_foreign_and_mismatched_files(tmp_path):
    sd = _resnet18_state_dict(np.random.default_rng(1))
    np.savez(tmp_path / "sd.npz", **sd)
    with pytest.raises(ValueError, match="'layer1.0.conv1.weight' has shape .*is this a resnet50 state dict"):
        convert.convert_file(tmp_path / "sd.npz", tmp_path / "w.npz", arch="resnet50")
    with pytest.raises(ValueError, match=r"'features.0.weight' has shape \(64, 64, 3, 3\).*is this a alexnet"):
        convert.convert_state_dict({"features.0.weight": sd["layer1.0.conv1.weight"]}, "alexnet")
    with pytest.raises(ValueError, match=r"1 unexpected key\(s\) \['head.weight'\]"):
        convert.convert_state_dict({**sd, "head.weight": np.zeros((3, 3))}, "resnet18")
    del sd["layer4.1.bn2.running_var"]
    with pytest.raises(ValueError, match=r"1 missing variable\(s\) \['batch_stats/layer4_1/bn2/var'\]"):
        convert.convert_state_dict(sd, "resnet18")
    with pytest.raises(ValueError, match="arch must be one of"):
        convert.convert_state_dict(sd, "resnet34")
    np.savez(tmp_path / "foreign.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="not a converted jhash weights file"):
        convert.load_weights(tmp_path / "foreign.npz", arch="resnet18")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="cannot read it as .npz"):
        convert.load_weights(tmp_path / "junk.npz", arch="resnet18")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        convert.load_weights(tmp_path / "absent.npz", arch="resnet18")


def test_weights_of_another_architecture_are_refused(tmp_path):
    np.savez(tmp_path / "w.npz", **{convert.META_KEY: np.array(json.dumps({"format": convert.FORMAT, "arch": "vgg16"}))})
    model = get_model("resnet18", bits=4, weights=str(tmp_path / "w.npz"))
    params, state = init_model(model, jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3)))
    with pytest.raises(ValueError, match="holds 'vgg16' weights, not 'resnet18'"):
        pretrained.load(model, params, state)


# --------------------------------------------------------------------------- against torchvision


def _torch_features(arch, tm, x_nchw):
    import torch

    with torch.no_grad():
        if arch.startswith("resnet"):
            tm.fc = torch.nn.Identity()
            return tm(x_nchw).numpy()
        h = torch.flatten(tm.avgpool(tm.features(x_nchw)), 1)
        return tm.classifier[:-1](h).numpy()  # fc6, ReLU, dropout (off in eval), fc7, ReLU, dropout


@pytest.mark.parametrize("arch, size, channels", [
    ("alexnet", 64, 3), ("alexnet", 224, 3), ("vgg16", 32, 3), ("vgg16", 64, 1),
    ("resnet18", 32, 3), ("resnet18", 224, 3), ("resnet50", 64, 3), ("resnet50", 28, 1)])
def test_converted_torchvision_network_gives_its_features(tmp_path, arch, size, channels):
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(size)
    tm = getattr(torchvision.models, arch)(weights=None).eval()
    with torch.no_grad():  # non-trivial running statistics, so that converting them is tested too
        for m in tm.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    torch.save(tm.state_dict(), tmp_path / f"{arch}.pth")
    convert.convert_file(tmp_path / f"{arch}.pth", tmp_path / "w.npz", arch=arch)

    x = np.random.default_rng(size).random((2, size, size, channels)).astype(np.float32)
    rgb = np.repeat(x, 3, axis=-1) if channels == 1 else x
    normalized = (rgb - np.array(backbones.IMAGENET_MEAN)) / np.array(backbones.IMAGENET_STD)
    want = _torch_features(arch, tm, torch.from_numpy(normalized.transpose(0, 3, 1, 2).astype(np.float32)))

    model = get_model(arch, bits=8, weights=str(tmp_path / "w.npz"))
    params, state = pretrained.load(model, *init_model(model, jax.random.PRNGKey(0), jnp.asarray(x[:1])))
    _, sown = model.apply({"params": params, **state}, jnp.asarray(x), train=False, mutable=["intermediates"])
    (got,) = jax.tree_util.tree_leaves(sown["intermediates"])
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(np.asarray(got), want, rtol=0, atol=1e-4 * scale)


def test_pth_reader_without_torch_reads_what_torch_saves(tmp_path):
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    sd = torchvision.models.resnet18(weights=None).state_dict()
    sd["extra.half"] = torch.arange(6, dtype=torch.float16).reshape(2, 3).t()  # a non-contiguous view
    sd["extra.long"] = torch.arange(5)[1:4]  # a view with an offset into its storage
    torch.save(sd, tmp_path / "sd.pth")
    got = convert.read_pth(tmp_path / "sd.pth")
    assert list(got) == list(sd)
    for k, v in sd.items():
        np.testing.assert_array_equal(got[k], v.numpy())
        assert got[k].dtype == v.numpy().dtype and got[k].shape == tuple(v.shape)
    torch.save({"model": torch.nn.Linear(2, 2)}, tmp_path / "module.pth")
    with pytest.raises(ValueError, match="not just tensors"):
        convert.read_pth(tmp_path / "module.pth")
    np.savez(tmp_path / "x.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match="no single \\*/data.pkl"):
        convert.read_pth(tmp_path / "x.npz")


# --------------------------------------------------------------------------- a run from a weights file


@pytest.mark.slow
def test_run_from_a_weights_file_records_its_digest_evaluates_without_it_and_refuses_a_changed_one(tmp_path):
    """GreedyHash (its network sits under ``backbone`` in a CodeClassifier: loading finds it there, or fails)
    with a ResNet-18 from a file."""
    from jhash import cli
    from jhash.config import apply_overrides, load_config
    from jhash.train import train

    np.savez(tmp_path / "sd.npz", **_resnet18_state_dict(np.random.default_rng(0)))
    weights = tmp_path / "w.npz"
    convert.convert_file(tmp_path / "sd.npz", weights, arch="resnet18")
    rng = np.random.default_rng(0)
    labels = np.arange(300) % 3
    images = (rng.random((300, 8, 8, 1)) * 0.5 + labels[:, None, None, None] / 4).astype(np.float32)
    np.savez(tmp_path / "images.npz", x=images, y=labels)
    c = load_config(str(pathlib.Path(__file__).resolve().parents[1] / "experiments/configs/greedyhash.py")
                    + ":dataset=digits,bits=8")
    c = apply_overrides(c, [f"dataset={tmp_path / 'images.npz'}", "protocol=custom:n_query=50,n_train=200",
                            "num_epochs=1", "batch_size=40", "checkpoint_every=2", "log_every=1", "progress=false",
                            "num_devices=1"])
    c.model = {"name": "resnet18", "weights": str(weights)}
    run = tmp_path / "run"

    def stop(step, _):
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(c, run, on_step=stop)
    assert json.loads((run / "manifest.json").read_text())["pretrained"] == [
        {"path": str(weights), "arch": "resnet18", "sha256": convert.file_sha256(weights)}]
    weights.rename(tmp_path / "moved.npz")  # jhash eval restores the checkpoint: no file needed
    assert cli.main(["eval", "--workdir", str(run)]) == 0
    assert json.loads((run / "metrics.json").read_text())["map@all"] > 0

    np.savez(tmp_path / "sd2.npz", **_resnet18_state_dict(np.random.default_rng(1)))
    convert.convert_file(tmp_path / "sd2.npz", weights, arch="resnet18")  # another file at the same path
    with pytest.raises(ValueError, match="weights file .*w.npz changed since the run started"):
        train(c, run)


def test_resume_checks_the_digest_of_a_weights_file_that_is_there(tmp_path):
    np.savez(tmp_path / "sd.npz", **_resnet18_state_dict(np.random.default_rng(0)))
    convert.convert_file(tmp_path / "sd.npz", tmp_path / "w.npz", arch="resnet18")
    model = get_model("resnet18", bits=4, weights=str(tmp_path / "w.npz"))
    recorded = pretrained.record(model)
    assert recorded == [{"path": str(tmp_path / "w.npz"), "arch": "resnet18",
                         "sha256": convert.file_sha256(tmp_path / "w.npz")}]
    assert pretrained.check_unchanged(model, recorded) == recorded
    assert pretrained.check_unchanged(model, None) == []  # a run recorded before digests: nothing to check
    (tmp_path / "w.npz").write_bytes(b"changed")
    with pytest.raises(ValueError, match="changed since the run started"):
        pretrained.check_unchanged(model, recorded)
    (tmp_path / "w.npz").unlink()  # a missing file is fine: the checkpoint holds the parameters
    assert pretrained.check_unchanged(model, recorded) == recorded
    assert pretrained.record(get_model("resnet18", bits=4)) == []
