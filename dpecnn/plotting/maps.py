"""Figures of image-like panels: attributions (Fig. 2) and filter impulse responses. Each
takes plain numpy data, draws with the dpecnn style, saves ``<out_dir>/<name>.pdf`` and
``.png`` when ``out_dir`` is given and returns the matplotlib figure."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import numpy as np

from dpecnn.plotting.figures import finish
from dpecnn.plotting.style import plt, styled


def _display(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    img = np.clip((np.asarray(image) + 1) / 2, 0, 1)  # dpecnn images live in [-1, 1]
    return (img[0], "gray") if img.shape[0] == 1 else (img.transpose(1, 2, 0), None)


def attribution_grid(
    images: np.ndarray,
    attributions: Mapping[str, Mapping[str, np.ndarray]],
    out_dir=None,
    name: str = "attributions",
    headers: Mapping[str, str] | None = None,
    classes: Sequence[str] | None = None,
):
    """Fig. 2 in the paper's layout: one row per image, ``input | (Grad-CAM over the input,
    guided backprop) per model``, the same images for every model. ``images``: (N, C, H, W)
    in [-1, 1]; ``attributions``: label → {"gradcam": (N, H, W), "guided": (N, H, W)};
    ``headers``: label → text under the model's label, which stands centred over its two
    columns (which seed is shown, scores over seeds); ``classes``: each image's class name, under
    it. Each map is scaled to its own maximum
    (jet for Grad-CAM, grey for guided backprop): the figure shows where, not how strongly, a
    model draws its evidence."""
    with styled():
        n, labels = len(images), list(attributions)
        cols = 1 + 2 * len(labels)
        fig = plt.figure(figsize=(1.1 * cols, 1.15 * n + 0.6))
        grid = fig.add_gridspec(n + 1, cols, height_ratios=[0.45] + [1] * n)
        axes = np.array([[fig.add_subplot(grid[1 + i, j]) for j in range(cols)] for i in range(n)])
        for i in range(n):
            img, cmap = _display(images[i])
            axes[i][0].imshow(img, cmap=cmap)
            for j, label in enumerate(labels):
                cam, gbp = attributions[label]["gradcam"][i], attributions[label]["guided"][i]
                axes[i][1 + 2 * j].imshow(img, cmap=cmap)
                axes[i][1 + 2 * j].imshow(cam, cmap="jet", alpha=0.45)
                axes[i][2 + 2 * j].imshow(gbp, cmap="gray")
        for j, label in enumerate(labels):
            axes[0][1 + 2 * j].set_title("Grad-CAM", fontsize=6)
            axes[0][2 + 2 * j].set_title("guided BP", fontsize=6)
            header = fig.add_subplot(grid[0, 1 + 2 * j : 3 + 2 * j])  # spans the model's two columns
            header.text(
                0.5,
                0.0,
                label + (f"\n{headers[label]}" if headers and label in headers else ""),
                ha="center",
                va="bottom",
                fontsize=6,
            )
            header.axis("off")
        axes[0][0].set_title("input", fontsize=6)
        for ax in axes.flat:
            ax.axis("off")
        for i, name_of_class in enumerate(classes or []):
            axes[i][0].text(
                0.5,
                -0.04,
                textwrap.shorten(name_of_class, 24, placeholder="…"),
                fontsize=5,
                ha="center",
                va="top",
                transform=axes[i][0].transAxes,
            )
        return finish(fig, out_dir, name)


def fir_maps(rows: Mapping[str, Sequence[Mapping]], out_dir=None, name: str = "fir_maps"):
    """Filter impulse responses, one row per model. ``rows``: label → panels, each
    ``{"title": str, "map": (h, w) ≥ 0, "channels": (K, h, w) or None}``; the i-th panels of
    all rows share columns. A panel draws ``map`` (magma, 0 to its maximum, with a colour bar:
    the quantity whose mean its title reports) pixel for pixel, twice as wide when it is
    larger than 7×7; its ``channels`` follow as K signed maps on one symmetric blue–red scale
    with one colour bar (e.g. single filters, to show their spatial structure)."""
    slots = list(zip(*rows.values()))  # the i-th panel of every row
    n_channels = [max(0 if p.get("channels") is None else len(p["channels"]) for p in slot) for slot in slots]
    wide = [any(max(np.shape(p["map"])) > 7 for p in slot) for slot in slots]
    ratios = [r for w, k in zip(wide, n_channels) for r in [2 if w else 1] + [1] * k]
    starts = np.cumsum([0] + [1 + k for k in n_channels])
    with styled():
        fig, axes = plt.subplots(
            len(rows),
            len(ratios),
            figsize=(0.95 * sum(ratios) + 0.6, 1.5 * len(rows) + 0.3),
            squeeze=False,
            gridspec_kw={"width_ratios": ratios},
        )
        for ax_row, (label, panels) in zip(axes, rows.items()):
            for start, panel in zip(starts, panels):
                im = ax_row[start].imshow(panel["map"], cmap="magma", vmin=0, interpolation="nearest")
                ax_row[start].set_title(f"{label}\n{panel['title']}" if start == 0 else panel["title"], fontsize=5)
                fig.colorbar(im, ax=ax_row[start], fraction=0.046, pad=0.04).ax.tick_params(labelsize=5)
                if panel.get("channels") is not None:
                    _signed_strip(fig, ax_row[start + 1 :], np.asarray(panel["channels"]))
        for ax in axes.flat:
            ax.axis("off")
        return finish(fig, out_dir, name)


def _signed_strip(fig, axes, channels: np.ndarray) -> None:
    """Draw ``channels`` (K, h, w) into the first K of ``axes`` on one symmetric scale, one colour bar."""
    bound = float(np.abs(channels).max()) or 1.0
    for k, (ax, channel) in enumerate(zip(axes, channels)):
        im = ax.imshow(channel, cmap="RdBu_r", vmin=-bound, vmax=bound, interpolation="nearest")
        ax.set_title(f"filter {k}", fontsize=5)
    fig.colorbar(im, ax=axes[len(channels) - 1], fraction=0.046, pad=0.04).ax.tick_params(labelsize=5)
