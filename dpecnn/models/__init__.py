"""Model zoo: ``build_model(arch, in_channels, num_classes, layout, fields=..., readout=...)``.

``arch`` is one of ``e`` (conventional ResNet-9), ``C1``, ``C4``, ``C8``, ``C16`` (regular
representations of C_N, restricted to C_{N/2} after the first residual layer) or ``O2``
(induced irreps of frequency ≤ 1). Every model maps plain tensors to logits.

``fields`` turns the layout's three widths into numbers of feature fields per stage
(:func:`field_counts`):

* ``"layout"`` (default): fields = width, so a C_N model has N times the channels of ``e``;
* ``"fixed-params"``: the rule of the authors' later public code, which keeps the parameter
  count near that of ``e``: ``⌊w·√(1.5·|G|)/|G|⌋`` fields for C_N with ``|G| = N``, the
  restricted third stage ``⌊w·√(0.75·|G|)/(|G|/2)⌋``; for O(2) ``⌊w/√(1.75·L)⌋`` with the
  frequency cut-off ``L = 1`` (at least one field each).

``readout`` (:data:`READOUTS`) is ``"invariant"`` (the paper's group pooling: predictions
invariant to the group) or ``"orientation"`` (no group pooling: equivariant features, a head
that may use orientation); see :mod:`dpecnn.models.resnet9`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch.nn as nn

from dpecnn.models.resnet9 import READOUTS, ConventionalFamily, ResNet9

ARCHS = ("e", "C1", "C4", "C8", "C16", "O2")


def canonical_arch(name: str) -> str:
    """``name`` as spelt in :data:`ARCHS` when it matches one ignoring case (``c4`` → ``C4``), else unchanged."""
    return {a.lower(): a for a in ARCHS}.get(name.strip().lower(), name)


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


def family(arch: str, restrict: bool = True):
    if arch == "e":
        return ConventionalFamily()
    from dpecnn.models import equivariant  # escnn import is slow; only when needed

    if arch == "O2":
        return equivariant.InducedO2Family()
    if arch in ARCHS:
        return equivariant.RegularFamily(int(arch[1:]), restrict=restrict)
    raise ValueError(f"unknown arch '{arch}'; choose one of: {', '.join(ARCHS)}")


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


def build_model(
    arch: str,
    in_channels: int,
    num_classes: int,
    layout=DEFAULT_LAYOUT,
    restrict: bool = True,
    fields: str = "layout",
    readout: str = "invariant",
) -> nn.Module:
    """Build a ResNet-9 of the given architecture family (see module docstring).

    ``restrict=False`` keeps the full C_N after the first residual layer (the paper restricts).
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown arch '{arch}'; choose one of: {', '.join(ARCHS)}")
    return ResNet9(
        family(arch, restrict), in_channels, num_classes, field_counts(arch, layout, fields, restrict), readout
    )


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def parameter_table(
    layout=DEFAULT_LAYOUT,
    in_channels: int = 3,
    num_classes: int = 8,
    fields: str = "layout",
    readout: str = "invariant",
) -> list[dict]:
    """Fields per stage and trainable parameter counts of every arch at ``layout`` under the
    field rule ``fields`` and ``readout``, beside the paper's counts (8-16-32, 3 colour
    channels, 8 classes, invariant readout)."""
    rows = []
    for arch in ARCHS:
        model = build_model(arch, in_channels, num_classes, layout, fields=fields, readout=readout)
        rows.append(
            {
                "arch": arch,
                "fields": field_counts(arch, layout, fields),
                "params": count_parameters(model),
                "paper": PAPER_PARAMS.get(arch),
            }
        )
    return rows


__all__ = [
    "ARCHS",
    "DEFAULT_LAYOUT",
    "FIELD_RULES",
    "READOUTS",
    "build_model",
    "count_parameters",
    "field_counts",
    "parameter_table",
    "parse_layout",
]
