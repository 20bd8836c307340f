"""Model zoo: ``build_model(arch, in_channels, num_classes, layout)``.

``arch`` is one of ``e`` (conventional ResNet-9), ``C1``, ``C4``, ``C8``, ``C16`` (regular
representations of C_N, restricted to C_{N/2} after the first residual layer) or ``O2``
(induced irreps of frequency ≤ 1). Every model maps plain tensors to logits.
"""

from __future__ import annotations

from typing import Sequence

import torch.nn as nn

from dpecnn.models.resnet9 import ConventionalFamily, ResNet9

ARCHS = ("e", "C1", "C4", "C8", "C16", "O2")
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


def build_model(arch: str, in_channels: int, num_classes: int, layout=DEFAULT_LAYOUT,
                restrict: bool = True) -> nn.Module:
    """Build a ResNet-9 of the given architecture family (see module docstring).

    ``restrict=False`` keeps the full C_N after the first residual layer (the paper restricts).
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown arch '{arch}'; choose one of: {', '.join(ARCHS)}")
    return ResNet9(family(arch, restrict), in_channels, num_classes, parse_layout(layout))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def parameter_table(layout=DEFAULT_LAYOUT, in_channels: int = 3, num_classes: int = 8) -> list[dict]:
    """Trainable parameter counts of every arch at ``layout``, beside the paper's."""
    rows = []
    for arch in ARCHS:
        model = build_model(arch, in_channels, num_classes, layout)
        rows.append({"arch": arch, "params": count_parameters(model), "paper": PAPER_PARAMS.get(arch)})
    return rows


__all__ = ["ARCHS", "DEFAULT_LAYOUT", "build_model", "count_parameters", "parameter_table", "parse_layout"]
