"""Figure functions of the paper and its analyses. Each takes plain data (numbers, numpy
arrays), draws with the dpecnn style, saves ``<out_dir>/<name>.pdf`` and ``.png`` and
returns the matplotlib figure."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from dpecnn.plotting.style import arch_colour, plt, save_figure, styled


def _finish(fig, out_dir, name):
    fig.tight_layout()
    if out_dir is not None:
        save_figure(fig, out_dir, name)
    return fig


def sparsity_curves(curves: Mapping[str, tuple[Sequence[int], Sequence[float]]], out_dir=None,
                    name: str = "sparsity", threshold: float = 1e-5, arch_of: Mapping[str, str] | None = None):
    """ℓ0_ε sparsity of the averaged clipped gradient over training steps (Fig. 1 right).
    ``curves``: label → (steps, sparsity). The gradient is taken before noise, so the figure
    is a diagnostic of training data, not covered by ε; its title says so."""
    with styled():
        fig, ax = plt.subplots(figsize=(3.4, 2.4))
        for label, (steps, values) in curves.items():
            colour = arch_colour((arch_of or {}).get(label, label))
            ax.plot(steps, values, label=label, color=colour, lw=1.2)
        ax.set_xlabel("training step")
        ax.set_ylabel(rf"$\ell^0_{{{threshold:.0e}}}$ gradient sparsity")
        ax.set_title("pre-noise gradient (diagnostic, not covered by ε)", fontsize="small")
        ax.legend(frameon=False)
        return _finish(fig, out_dir, name)


def accuracy_vs_params(points: Sequence[Mapping], out_dir=None, name: str = "accuracy_vs_params"):
    """Accuracy against parameter count, one line per setting over widths (Fig. 1 left).
    ``points``: :func:`dpecnn.analysis.table.seed_groups` output — ``arch``, ``line``,
    ``params``, ``mean``, ``std`` (None for one seed), ``n`` and optional ``layout``; error
    bars are ± one standard deviation over seeds."""
    with styled():
        fig, ax = plt.subplots(figsize=(3.4, 2.4))
        for line in sorted({p["line"] for p in points}):
            pts = sorted((p for p in points if p["line"] == line), key=lambda p: p["params"])
            ax.errorbar([p["params"] for p in pts], [100 * p["mean"] for p in pts],
                        yerr=[100 * (p["std"] or 0.0) for p in pts], fmt="o-", label=line,
                        color=arch_colour(pts[0]["arch"]), ms=3, lw=1.2, capsize=2)
            for p in pts:
                if p.get("layout"):
                    ax.annotate("-".join(map(str, p["layout"])), (p["params"], 100 * p["mean"]), fontsize=6,
                                xytext=(2, 2), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("trainable parameters")
        ax.set_ylabel("validation accuracy (%)")
        ax.legend(frameon=False)
        return _finish(fig, out_dir, name)


def reliability_diagrams(reliability: Mapping[str, Mapping], out_dir=None, name: str = "reliability",
                         scores: Mapping[str, Mapping[str, float]] | None = None):
    """Accuracy against confidence per bin, one panel per run (with Brier / ECE in the title)."""
    with styled():
        n = len(reliability)
        fig, axes = plt.subplots(1, n, figsize=(2.3 * n, 2.4), squeeze=False)
        for ax, (label, bins) in zip(axes[0], reliability.items()):
            edges = np.asarray(bins["edges"])
            acc = np.nan_to_num(np.asarray(bins["accuracy"], dtype=float))
            ax.bar(edges[:-1], acc, width=np.diff(edges), align="edge", color=arch_colour(label.split()[0]),
                   edgecolor="white", lw=0.5, label="accuracy")
            ax.plot([0, 1], [0, 1], "--", color="grey", lw=0.8)
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_xlabel("confidence")
            title = label
            if scores and label in scores:
                title += "\n" + ", ".join(f"{k} {v:.3f}" for k, v in scores[label].items())
            ax.set_title(title)
        axes[0][0].set_ylabel("accuracy")
        return _finish(fig, out_dir, name)


def fir_maps(maps: Mapping[str, np.ndarray], out_dir=None, name: str = "fir_maps",
             magnitudes: Mapping[str, float] | None = None):
    """Spatial magnitude of filter impulse responses, one panel per (run, layer) label."""
    with styled():
        n = len(maps)
        fig, axes = plt.subplots(1, n, figsize=(1.7 * n, 1.9), squeeze=False)
        for ax, (label, m) in zip(axes[0], maps.items()):
            im = ax.imshow(_crop_to_support(np.asarray(m)), cmap="magma")
            ax.set_title(label + (f"\n|FIR| {magnitudes[label]:.3g}" if magnitudes and label in magnitudes else ""),
                         fontsize=7)
            ax.axis("off")
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        return _finish(fig, out_dir, name)


def _crop_to_support(m: np.ndarray, margin: int = 1) -> np.ndarray:
    """The smallest window (plus ``margin``) holding every entry above 1e-6 of the maximum."""
    rows, cols = np.nonzero(np.abs(m) > 1e-6 * np.abs(m).max())
    if not len(rows):
        return m
    return m[max(rows.min() - margin, 0):rows.max() + margin + 1, max(cols.min() - margin, 0):cols.max() + margin + 1]


def _display(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    img = np.clip((np.asarray(image) + 1) / 2, 0, 1)  # dpecnn images live in [-1, 1]
    return (img[0], "gray") if img.shape[0] == 1 else (img.transpose(1, 2, 0), None)


def attribution_grid(images: np.ndarray, attributions: Mapping[str, Mapping[str, np.ndarray]], out_dir=None,
                     name: str = "attributions"):
    """Fig. 2: per image a row ``input | (Grad-CAM, guided backprop) per model``.
    ``images``: (N, C, H, W) in [-1, 1]; ``attributions``: label → {"gradcam": (N, H, W),
    "guided": (N, H, W)}."""
    with styled():
        n, labels = len(images), list(attributions)
        cols = 1 + 2 * len(labels)
        fig, axes = plt.subplots(n, cols, figsize=(1.1 * cols, 1.15 * n), squeeze=False)
        for i in range(n):
            img, cmap = _display(images[i])
            axes[i][0].imshow(img, cmap=cmap)
            for j, label in enumerate(labels):
                cam, gbp = attributions[label]["gradcam"][i], attributions[label]["guided"][i]
                axes[i][1 + 2 * j].imshow(img, cmap=cmap)
                axes[i][1 + 2 * j].imshow(cam, cmap="jet", alpha=0.45)
                axes[i][2 + 2 * j].imshow(gbp, cmap="gray")
                if i == 0:
                    axes[0][1 + 2 * j].set_title(f"{label}\nGrad-CAM", fontsize=7)
                    axes[0][2 + 2 * j].set_title(f"{label}\nguided BP", fontsize=7)
        axes[0][0].set_title("input", fontsize=7)
        for ax in axes.flat:
            ax.axis("off")
        return _finish(fig, out_dir, name)


def training_curves(epochs: Sequence[int], val_acc: Sequence[float], epsilon: Sequence[float | None], out_dir=None,
                    name: str = "training", label: str = ""):
    """Validation accuracy and ε spent after each epoch (ε panel only for DP runs)."""
    dp = any(e is not None for e in epsilon)
    with styled():
        fig, axes = plt.subplots(1, 2 if dp else 1, figsize=(5.0 if dp else 2.6, 2.3), squeeze=False)
        axes[0][0].plot(epochs, [100 * a for a in val_acc], "o-", ms=3, color=arch_colour(label.split(" ")[0]))
        axes[0][0].set_xlabel("epoch")
        axes[0][0].set_ylabel("validation accuracy (%)")
        axes[0][0].set_title(label)
        if dp:
            axes[0][1].plot(epochs, epsilon, "o-", ms=3, color="black")
            axes[0][1].set_xlabel("epoch")
            axes[0][1].set_ylabel(r"$\varepsilon$ spent")
        return _finish(fig, out_dir, name)
