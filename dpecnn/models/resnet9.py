"""ResNet-9 of Klause et al. (2022), written once for every architecture family.

Skeleton (widths ``w0-w1-w2`` from the layout, 8-16-32 by default)::

    conv1  block(in → w0)
    conv2  block(w0 → w1) + pool
    res1   block(w1 → w1), block(w1 → w1);   x = ScaleNorm(x + res1(x))
    [restriction C_N → C_{N/2} for regular-representation models]
    conv3  block(w1 → w2) + pool
    conv4  block(w2 → w2) + pool
    res2   block(w2 → w2), block(w2 → w2);   x = ScaleNorm(x + res2(x))
    readout: group pooling (invariant readout) or none (orientation readout),
    spatial max pooling, linear classifier

``block`` is conv 3×3 (no bias) → GroupNorm → non-linearity, then the optional pooling.
Pooling uses :func:`~dpecnn.models.layers.centred_max_pool` (28 → 14 → 7 → 3) so that
invariance to grid rotations and flips can be exact.

Readouts (``READOUTS``), the map from the last feature map to the logits:

* ``invariant`` (the paper's): group pooling, then spatial pooling. The pooled features are
  invariant to the group, and so are the logits: the prediction cannot depend on orientation.
* ``orientation``: spatial pooling only. The pooled features are still *equivariant* (the
  group acts on them by the last fields' representation), and the linear head reads their
  group dimension, so the prediction may depend on the input's orientation while every
  convolution keeps its parameter sharing.

The conventional net has no group: both readouts are its 2×2-grid head.

A *family* supplies the field types and the layers; the conventional family (``e``) lives
here, the steerable ones in :mod:`dpecnn.models.equivariant`.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from dpecnn.models.architecture import READOUTS
from dpecnn.models.layers import CentredMaxPool, Conv2d, GroupNorm

NORM_GROUPS = 8  # GroupNorm groups (at most; gcd with the number of fields)


def norm_groups(num_fields: int) -> int:
    return math.gcd(num_fields, NORM_GROUPS)


class ConvBlock(nn.Sequential):
    """conv → norm → non-linearity [→ pool]."""

    def __init__(self, conv: nn.Module, norm: nn.Module, act: nn.Module, pool: nn.Module | None):
        super().__init__(conv, norm, act, *([pool] if pool is not None else []))


class Residual(nn.Module):
    """``x ↦ ScaleNorm(x + body(x))`` (Klause et al.: GroupNorm after the addition)."""

    def __init__(self, body: nn.Module, scale_norm: nn.Module):
        super().__init__()
        self.body, self.scale_norm = body, scale_norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale_norm(x + self.body(x))


class ConventionalFamily:
    """Plain CNN layers (group ``e``): types are channel counts."""

    name = "e"

    def input_type(self, in_channels: int) -> int:
        return in_channels

    def hidden_type(self, width: int, restricted: bool) -> int:
        return width

    def block(self, t_in: int, t_out: int, pool: bool) -> ConvBlock:
        conv = Conv2d(t_in, t_out, 3, padding=1, bias=False)
        return ConvBlock(conv, self.norm(t_out), nn.Mish(), CentredMaxPool() if pool else None)

    def norm(self, t: int) -> nn.Module:
        return GroupNorm(norm_groups(t), t)

    def restrict(self, t: int) -> int:
        return t

    def readout(self, t: int, kind: str) -> tuple[nn.Module, nn.Module, int]:
        """Klause et al.'s AdaptiveMaxPool2d((2, 2)) for both kinds: there is no group to pool."""
        return nn.Identity(), nn.AdaptiveMaxPool2d(2), 4 * t


class ResNet9(nn.Module):
    """ResNet-9 over plain tensors ``(B, C, 28, 28) → (B, num_classes)`` for any family."""

    def __init__(self, family, in_channels: int, num_classes: int, layout=(8, 16, 32), readout: str = "invariant"):
        super().__init__()
        if readout not in READOUTS:
            raise ValueError(f"unknown readout '{readout}'; choose one of: {', '.join(READOUTS)}")
        w0, w1, w2 = layout
        self.family_name, self.readout = family.name, readout
        t_in = family.input_type(in_channels)
        t0, t1 = family.hidden_type(w0, False), family.hidden_type(w1, False)
        self.conv1 = family.block(t_in, t0, pool=False)
        self.conv2 = family.block(t0, t1, pool=True)
        self.res1 = Residual(nn.Sequential(family.block(t1, t1, False), family.block(t1, t1, False)), family.norm(t1))
        t1r, t2 = family.restrict(t1), family.hidden_type(w2, True)
        self.conv3 = family.block(t1r, t2, pool=True)
        self.conv4 = family.block(t2, t2, pool=True)
        self.res2 = Residual(nn.Sequential(family.block(t2, t2, False), family.block(t2, t2, False)), family.norm(t2))
        self.group_pool, self.spatial_pool, n_features = family.readout(t2, readout)
        self.classifier = nn.Linear(n_features, num_classes)

    @property
    def attribution_layer(self) -> nn.Module:
        """Last layer whose output is a spatial map (for Grad-CAM): the group pooling's
        invariant channels, or the last residual stage when there is no group pooling."""
        return self.res2 if isinstance(self.group_pool, nn.Identity) else self.group_pool

    def attribution_features(self, x: torch.Tensor) -> torch.Tensor:
        """The output of :attr:`attribution_layer`: the last spatial map, from which the head reads."""
        x = self.res1(self.conv2(self.conv1(x)))
        return self.group_pool(self.res2(self.conv4(self.conv3(x))))

    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, n_features)``: what the linear head reads (invariant or equivariant, see the
        module docstring)."""
        return torch.flatten(self.spatial_pool(self.attribution_features(x)), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pooled_features(x))
