"""Building models: ``build_model`` (the module docstring of :mod:`dpecnn.models`), parameter counts."""

from __future__ import annotations

import torch.nn as nn

from dpecnn.models.architecture import ARCHS, DEFAULT_LAYOUT, PAPER_PARAMS, field_counts
from dpecnn.models.resnet9 import ConventionalFamily, ResNet9


def family(arch: str, restrict: bool = True):
    if arch == "e":
        return ConventionalFamily()
    from dpecnn.models import equivariant  # escnn import is slow; only when needed

    if arch == "O2":
        return equivariant.InducedO2Family()
    if arch in ARCHS:
        return equivariant.RegularFamily(int(arch[1:]), restrict=restrict)
    raise ValueError(f"unknown arch '{arch}'; choose one of: {', '.join(ARCHS)}")


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
