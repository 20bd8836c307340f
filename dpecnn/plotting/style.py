"""One paper-ready matplotlib style for every dpecnn figure.

PDF/PS with embedded TrueType fonts (``fonttype 42``, editable text in the PDF), readable
sizes for a single-column figure, and the Okabe–Ito colour-blind-safe palette.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt

from dpecnn import io as dpecnn_io
from dpecnn.models import ARCHS

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


def arch_rank(arch: str) -> int:
    """Position of ``arch`` in :data:`dpecnn.models.ARCHS` (unknown ones last), for legends in that order."""
    return ARCHS.index(arch) if arch in ARCHS else len(ARCHS)


def arch_colour(arch: str) -> str:
    """A fixed colour per architecture, so e / C_N / O2 look the same in every figure."""
    return OKABE_ITO[arch_rank(arch) % len(OKABE_ITO)] if arch in ARCHS else OKABE_ITO[-1]


def save_figure(fig, folder: str | os.PathLike, name: str) -> dict[str, Path]:
    """Write ``<folder>/<name>.pdf`` and ``.png`` atomically (:func:`dpecnn.io.write_bytes`); returns their paths."""
    paths = {}
    for ext in ("pdf", "png"):
        buf = io.BytesIO()
        with plt.rc_context(STYLE):
            fig.savefig(buf, format=ext)
        paths[ext] = Path(folder) / f"{name}.{ext}"
        dpecnn_io.write_bytes(paths[ext], buf.getvalue())
    return paths
