"""One paper-ready matplotlib style for every dpecnn figure.

PDF/PS with embedded TrueType fonts (``fonttype 42``, editable text in the PDF), readable
sizes for a single-column figure, and the Okabe–Ito colour-blind-safe palette.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]

STYLE = {
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.prop_cycle": matplotlib.cycler(color=OKABE_ITO),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 150,
    "savefig.dpi": 300,
    "savefig.bbox": "tight",
    "image.cmap": "viridis",
}


def apply_style() -> None:
    """Install the style globally (figure functions use :func:`styled` instead)."""
    plt.rcParams.update(STYLE)


def styled():
    """Context manager applying the style to the figures made inside it."""
    return plt.rc_context(STYLE)


def arch_colour(arch: str) -> str:
    """A fixed colour per architecture, so e / C_N / O2 look the same in every figure."""
    order = ["e", "C1", "C4", "C8", "C16", "O2"]
    return OKABE_ITO[order.index(arch) % len(OKABE_ITO)] if arch in order else OKABE_ITO[-1]


def save_figure(fig, folder: str | os.PathLike, name: str) -> dict[str, Path]:
    """Write ``<folder>/<name>.pdf`` and ``.png`` atomically; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for ext in ("pdf", "png"):
        buf = io.BytesIO()
        with plt.rc_context(STYLE):
            fig.savefig(buf, format=ext)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=f".{ext}")
        with os.fdopen(fd, "wb") as fh:
            fh.write(buf.getvalue())
        paths[ext] = folder / f"{name}.{ext}"
        os.replace(tmp, paths[ext])
    return paths
