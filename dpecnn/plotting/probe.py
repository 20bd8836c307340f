"""The symmetry probe's figure (:mod:`dpecnn.analysis.measures.symmetry_probe`): one validation image
under the 8 dihedral transforms, how well each transform is detected, and how much task
accuracy each one costs (95 % intervals)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dpecnn.plotting.figures import finish
from dpecnn.plotting.maps import _display
from dpecnn.plotting.style import plt, styled


def probe_figure(
    examples: np.ndarray,
    names: Sequence[str],
    detected: Sequence[float],
    drops: Sequence[float],
    intervals: Sequence[tuple[float, float]],
    breaks: Sequence[bool],
    chance: float,
    title: str,
    out_dir=None,
    name: str = "symmetry_probe",
):
    """``examples``: (8, C, H, W) in [-1, 1], one image under each transform; ``detected``: the
    detectors' accuracy per transform; ``drops`` and ``intervals``: validation accuracy lost
    by training with each transform as augmentation (fractions; mean over seeds and its 95 %
    interval across seeds); ``breaks``: whether the loss
    counts as a broken symmetry."""
    with styled():
        fig = plt.figure(figsize=(11, 3.4))
        grid = fig.add_gridspec(2, 8, width_ratios=[1, 1, 1, 1, 0.3, 3, 0.3, 3])
        for k in range(len(names)):
            ax = fig.add_subplot(grid[k // 4, k % 4])
            img, cmap = _display(examples[k])
            ax.imshow(img, cmap=cmap)
            ax.set_title(names[k], fontsize=7)
            ax.axis("off")
        x = np.arange(len(names))
        ax = fig.add_subplot(grid[:, 5])
        ax.bar(x, 100 * np.asarray(detected), color="0.5")
        ax.axhline(100 * chance, ls="--", color="k", lw=1, label="chance")
        ax.set(ylabel="transform detected (%)", ylim=(0, 100), title="which transform was applied?")
        ax.set_xticks(x, names, rotation=60, ha="right")
        ax.legend(loc="upper right")
        ax = fig.add_subplot(grid[:, 7])
        lo, hi = np.asarray(intervals).T
        drops = np.asarray(drops)
        colours = ["#D55E00" if b else "#0072B2" for b in breaks]
        ax.bar(x, 100 * drops, color=colours, yerr=100 * np.stack([drops - lo, hi - drops]), capsize=2)
        ax.axhline(0, color="k", lw=1)
        ax.set(
            ylabel="accuracy lost by augmenting (points, 95 % over seeds)", title="does the label survive? (orange: no)"
        )
        ax.set_xticks(x, names, rotation=60, ha="right")
        fig.suptitle(title)
        return finish(fig, out_dir, name)
