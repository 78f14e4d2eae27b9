"""Plots of a sweep (PNG, matplotlib): mAP vs code length, precision-recall, precision@k,
precision vs Hamming radius, bit balance, training curves.

Every figure has one panel per code length (when the sweep varies ``bits``) and one line
per setting (the grid point without the seeds and bits), averaged over the seeds.
"""
from __future__ import annotations

import json
import pathlib

import numpy as np

from jhash import io as jio


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _label(key: dict) -> str:
    return ", ".join(f"{v}" if k == "method" else f"{k}={v}" for k, v in key.items() if k != "bits") or "runs"


def _panels(groups):
    """{bits: [(label, runs)]} (bits None when the sweep does not vary it)."""
    out: dict = {}
    for g in groups:
        out.setdefault(g["key"].get("bits"), []).append((_label(g["key"]), g["runs"]))
    return dict(sorted(out.items(), key=lambda kv: (kv[0] is None, kv[0])))


def _curve(runs, x_name, y_name):
    """Means over runs of curves.npz[x_name] and curves.npz[y_name] (curves of one protocol share their cut-offs)."""
    curves = [np.load(r["dir"] / "curves.npz") for r in runs]
    return np.mean([c[x_name] for c in curves], axis=0), np.mean([c[y_name] for c in curves], axis=0)


def _figure(panels, title):
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.8), squeeze=False)
    fig.suptitle(title)
    return plt, fig, axes[0]


def _finish(plt, fig, axes, path, xlabel, ylabel):
    for ax in axes:
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    with jio.atomic_file(path) as f:
        fig.savefig(f, dpi=110, format=pathlib.Path(path).suffix.lstrip(".") or "png")
    plt.close(fig)
    return path


def _panel_title(bits):
    return f"{bits} bits" if bits is not None else ""


def map_vs_bits(groups, path):
    """mAP@ALL (mean +- std over seeds) against the code length, a line per setting."""
    lines: dict = {}
    for g in groups:
        values = [r["metrics"]["map@all"] for r in g["runs"]]
        lines.setdefault(_label(g["key"]), []).append((g["key"]["bits"], np.mean(values), np.std(values)))
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for label, pts in lines.items():
        pts.sort()
        ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], marker="o", capsize=3,
                    label=label)
    ax.set_xticks(sorted({p[0] for pts in lines.values() for p in pts}))
    ax.set_title("mAP@ALL vs code length")
    return _finish(plt, fig, [ax], path, "bits", "mAP@ALL")


def _hamming_groups(groups):
    """The groups whose runs rank by Hamming distance: quantization runs (codes.npz ``kind``, no
    curves.npz: they rank by quantizer distance, see jhash.evaluate) have no radius or Hamming curves."""
    out = []
    for g in groups:
        runs = [r for r in g["runs"] if (r["dir"] / "curves.npz").exists()]
        if runs:
            out.append({**g, "runs": runs})
    return out


def curve_figure(groups, path, *, x_name, y_name, title, xlabel, ylabel, xmax=None, logx=False):
    """A curve of curves.npz per setting, a panel per code length; None when no run has curves."""
    panels = _panels(_hamming_groups(groups))
    if not panels:
        return None
    plt, fig, axes = _figure(panels, title)
    for ax, (bits, entries) in zip(axes, panels.items()):
        for label, runs in entries:
            x, y = _curve(runs, x_name, y_name)
            keep = slice(None) if xmax is None else x <= xmax
            ax.plot(x[keep], y[keep], marker="." if len(x[keep]) < 30 else None, label=label)
        ax.set_title(_panel_title(bits))
        if logx:
            ax.set_xscale("log")
    return _finish(plt, fig, axes, path, xlabel, ylabel)


def bit_balance(groups, path):
    """Histogram of each bit's mean over the database codes (0 = perfectly balanced), first seed of each
    setting with binary codes; None when there is none."""
    from jhash import codes as jcodes

    panels = _panels(_hamming_groups(groups))
    if not panels:
        return None
    plt, fig, axes = _figure(panels, "bit balance: mean of each bit over the database")
    for ax, (bits, entries) in zip(axes, panels.items()):
        for label, runs in entries:
            z = np.load(runs[0]["dir"] / "codes.npz")
            db = jcodes.unpack(z["database_codes"], int(z["bits"]))
            ax.hist(np.asarray(db, np.float64).mean(axis=0), bins=np.linspace(-1, 1, 21), alpha=0.5, label=label)
        ax.set_title(_panel_title(bits))
    return _finish(plt, fig, axes, path, "mean of the bit (+-1 codes)", "bits")


def training_curves(groups, path):
    """The logged training loss against the step, first seed of each setting."""
    panels = _panels(groups)
    plt, fig, axes = _figure(panels, "training loss")
    for ax, (bits, entries) in zip(axes, panels.items()):
        for label, runs in entries:
            rows = [json.loads(line) for line in (runs[0]["dir"] / "metrics.jsonl").read_text().splitlines()]
            ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], label=label)
        ax.set_title(_panel_title(bits))
    return _finish(plt, fig, axes, path, "step", "loss")


def sweep_plots(spec, groups, outdir) -> list[pathlib.Path]:
    """Every figure of the sweep into ``outdir``; returns their paths."""
    outdir = pathlib.Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = []
    if len(spec["grid"].get("bits", [])) > 1:
        paths.append(map_vs_bits(groups, outdir / "map_vs_bits.png"))
    paths.append(curve_figure(groups, outdir / "precision_recall.png", x_name="pr_recall", y_name="pr_precision",
                              title="precision-recall (Hamming ranking)", xlabel="recall", ylabel="precision"))
    paths.append(curve_figure(groups, outdir / "precision_at_k.png", x_name="k", y_name="precision_at_k",
                              title="precision@k", xlabel="k (items returned)", ylabel="precision", logx=True))
    paths.append(curve_figure(groups, outdir / "precision_vs_radius.png", x_name="radius",
                              y_name="precision_at_radius", title="precision within Hamming radius r",
                              xlabel="radius r", ylabel="precision", xmax=8))
    paths.append(bit_balance(groups, outdir / "bit_balance.png"))
    paths.append(training_curves(groups, outdir / "training_curves.png"))
    return [p for p in paths if p is not None]
