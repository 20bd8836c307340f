"""Architecture names, layouts and field counts: what a model is called and how wide it is.

Torch-free, so that the command line can list and check them without loading torch or escnn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

ARCHS = ("e", "C1", "C4", "C8", "C16", "O2")


def canonical_arch(name: str) -> str:
    """``name`` as spelt in :data:`ARCHS` when it matches one ignoring case (``c4`` → ``C4``), else unchanged."""
    return {a.lower(): a for a in ARCHS}.get(name.strip().lower(), name)


READOUTS = ("invariant", "orientation")  # the readouts of dpecnn.models.resnet9 (its docstring)
FIELD_RULES = ("layout", "fixed-params")
O2_FREQUENCY = 1  # the band limit of InducedO2Family's fields
DEFAULT_LAYOUT = (8, 16, 32)
PAPER_PARAMS = {"C4": 35_000, "C16": 90_000, "O2": 240_000}  # Hölzl et al. 2022, 8-16-32


def parse_layout(layout: str | Sequence[int]) -> tuple[int, int, int]:
    """``"8,16,32"`` or ``(8, 16, 32)`` → a tuple of three positive ints."""
    try:
        parts = tuple(int(v) for v in (layout.replace("-", ",").split(",") if isinstance(layout, str) else layout))
    except (TypeError, ValueError):
        parts = ()
    if len(parts) != 3 or min(parts) < 1:
        raise ValueError(f"layout must be three positive widths like 8,16,32, got {layout!r}")
    return parts


def field_counts(arch: str, layout=DEFAULT_LAYOUT, fields: str = "layout", restrict: bool = True) -> tuple[int, ...]:
    """Feature fields of the three stages for ``layout`` under the rule ``fields`` (module docstring)."""
    widths = parse_layout(layout)
    if fields not in FIELD_RULES:
        raise ValueError(f"unknown field rule '{fields}'; choose one of: {', '.join(FIELD_RULES)}")
    if fields == "layout" or arch == "e":
        return widths
    if arch == "O2":
        return tuple(max(1, int(w / math.sqrt(1.75 * O2_FREQUENCY))) for w in widths)
    order = int(arch[1:])
    counts = [max(1, int(w * math.sqrt(1.5 * order) / order)) for w in widths]
    if restrict and order > 1:
        counts[2] = max(1, int(widths[2] * math.sqrt(0.75 * order) / (order / 2)))
    return tuple(counts)
