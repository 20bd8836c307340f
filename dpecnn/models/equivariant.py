"""Steerable ResNet-9 families on escnn field types (Weiler & Cesa 2019).

* ``C_N`` (:class:`RegularFamily`): regular representations of the rotation group C_N on
  every hidden layer, pointwise Mish (regular representations act by permuting channels,
  so any pointwise non-linearity commutes with them), group max-pooling before the head
  (invariant readout), and restriction of the fields to C_{N/2} after the first residual layer.
* ``O2`` (:class:`InducedO2Family`): O(2) fields induced from the SO(2) irreps of frequency
  0 and 1 (``Ind ψ0`` is 2-dim, a flip permutes its two entries; ``Ind ψ1`` is 4-dim, two
  2-dim blocks that rotate with ±θ and that a flip swaps), induced gated non-linearities
  (one ``Ind ψ0`` gate per ``Ind ψ1`` field) and induced norm pooling (invariant readout).

escnn builds the steerable kernel bases; the network itself runs on plain tensors, so the
rest of dpecnn (per-sample gradients, Captum) never sees a ``GeometricTensor``.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.profiler import record_function

from dpecnn.models.escnn_import import import_escnn

import_escnn()
import escnn.group._numerical as _escnn_numerical  # noqa: E402  (after import_escnn)
from escnn import gspaces  # noqa: E402
from escnn import nn as enn  # noqa: E402

from dpecnn.models.layers import (  # noqa: E402
    CentredMaxPool,
    FieldGroupNorm,
    FieldRMSNorm,
    GroupMaxPool,
    centred_max_pool,
    centred_norm_max_pool,
    global_norm_max_pool,
    per_sample_output,
)
from dpecnn.models.resnet9 import ConvBlock, norm_groups  # noqa: E402

# scikit-learn ≥ 1.7 rejects the np.matrix escnn passes to randomized_svd while building
# O(2) bases (escnn issue #112); without it escnn falls back to an exact scipy SVD.
_escnn_numerical.randomized_svd = None


# An entry counts as structural above this fraction of its element's largest entry. Every
# basis dpecnn builds has structural entries ≥ 1e-2 of the largest and rounding below 1e-6
# (tests/test_models.py checks the gap), so the choice below never rides on rounding.
SIGN_ENTRY_FRACTION = 1e-3


def canonicalise_basis_signs_(expansion: nn.Module) -> None:
    """Flip every basis element of ``expansion`` so that its first structural entry is positive.

    escnn fixes some bases only up to the sign of each element: O(2)'s come from
    Clebsch–Gordan coefficients that escnn finds numerically from randomly sampled group
    elements (global numpy RNG) and caches inside its installation. The same weights then
    compute different functions in two installations, and the same seed trains a different
    model. Any sign gives an equally valid basis (the span is what equivariance fixes), so
    this choice costs nothing and makes the layer one function everywhere. Checkpoints keep
    their bases (``sampled_basis`` is in the state dict), so loading one restores its signs.
    """
    for module in expansion.modules():
        basis = getattr(module, "sampled_basis", None)
        if basis is None:
            continue
        flat = basis.reshape(basis.shape[0], -1)
        structural = flat.abs() > SIGN_ENTRY_FRACTION * flat.abs().amax(1, keepdim=True)
        first = structural.to(torch.uint8).argmax(1, keepdim=True)  # argmax returns the first maximum
        basis.mul_(flat.gather(1, first).sign().reshape(-1, *[1] * (basis.dim() - 1)))


class SteerableConv2d(nn.Module):
    """3×3 convolution whose filter is a learned combination of an escnn steerable basis.

    ``filter = Σ_i weight_i · basis_i`` with the basis of ``R2Conv(in_type, out_type)``, so
    ``conv(ρ_in(g)·x∘g⁻¹) = ρ_out(g)·conv(x)∘g⁻¹`` for every ``g`` of the field types' group
    that maps the pixel grid onto itself (90° rotations, flips). ``weight`` is the only
    parameter; the basis expansion (escnn ``BlocksBasisExpansion``) is a fixed linear map,
    which is what lets :mod:`dpecnn.privacy` turn per-sample filter gradients into
    per-sample weight gradients (``∂L/∂w = Bᵀ ∂L/∂filter``). Unlike escnn's ``R2Conv`` the
    filter is never cached in eval mode, so swapped weights (EMA, loaded checkpoints) act at once.
    """

    per_sample_only = False  # see dpecnn.models.layers.Conv2d

    def __init__(self, in_type: enn.FieldType, out_type: enn.FieldType, kernel_size: int = 3):
        super().__init__()
        conv = enn.R2Conv(in_type, out_type, kernel_size, padding=kernel_size // 2, bias=False)
        self.in_type, self.out_type = in_type, out_type
        self.kernel_size, self.padding = kernel_size, kernel_size // 2
        # escnn caches and shares expansion modules between layers with the same field types;
        # a private copy keeps .double()/.to() of one model from changing another's basis.
        self.expansion = copy.deepcopy(conv.basisexpansion)  # data-independent buffers only
        canonicalise_basis_signs_(self.expansion)
        self.weight = nn.Parameter(conv.weights.detach().clone())  # escnn's generalised He init (sign-blind)

    def expand_filter(self, weight: torch.Tensor | None = None) -> torch.Tensor:
        w = self.weight if weight is None else weight
        k = self.kernel_size
        with record_function("dpecnn::filter_expansion"):
            return self.expansion(w).reshape(self.out_type.size, self.in_type.size, k, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.detach() if self.per_sample_only else self.weight
        filt = self.expand_filter(weight)
        with record_function("dpecnn::conv_forward"):
            return per_sample_output(x, F.conv2d(x, filt, padding=self.padding), self.per_sample_only)


class RegularFamily:
    """C_N with regular fields; ``restrict`` halves the group after the first residual layer."""

    def __init__(self, n: int, restrict: bool = True):
        self.n = n
        self.name = f"C{n}"
        self.restrict_after_res1 = restrict and n > 1
        self.gspace = gspaces.rot2dOnR2(n)
        self.sub_gspace = self.gspace.restrict(n // 2)[0] if self.restrict_after_res1 else self.gspace

    def input_type(self, in_channels: int) -> enn.FieldType:
        return enn.FieldType(self.gspace, [self.gspace.trivial_repr] * in_channels)

    def hidden_type(self, width: int, restricted: bool) -> enn.FieldType:
        gs = self.sub_gspace if restricted else self.gspace
        return enn.FieldType(gs, [gs.regular_repr] * width)

    def block(self, t_in, t_out, pool: bool) -> ConvBlock:
        return ConvBlock(SteerableConv2d(t_in, t_out), self.norm(t_out), nn.Mish(), CentredMaxPool() if pool else None)

    def norm(self, t: enn.FieldType) -> nn.Module:
        return FieldGroupNorm(len(t), t.representations[0].size, norm_groups(len(t)))

    def restrict(self, t: enn.FieldType) -> enn.FieldType:
        # Restriction reinterprets the same channels under the subgroup: no data changes.
        return t.restrict(self.n // 2) if self.restrict_after_res1 else t

    def readout(self, t: enn.FieldType, kind: str) -> tuple[nn.Module, nn.Module, int]:
        """Group pooling (if ``invariant``), then a global spatial max (a 2×2 grid of quadrants
        would be permuted by rotations). Without group pooling each regular field keeps its
        ``|G|`` channels, which a rotation ``g`` permutes cyclically: the features are
        equivariant, ``f(g·x) = ρ_reg(g) f(x)``."""
        spatial = nn.AdaptiveMaxPool2d(1)
        if kind == "invariant":
            return GroupMaxPool(t.representations[0].size), spatial, len(t)
        return nn.Identity(), spatial, t.size


class InducedGate(nn.Module):
    """Induced gated non-linearity with Mish on the ``Ind ψ0`` fields.

    Input channels ``[scalars (n·2) | gates (n·2) | vectors (n·4)]``, output
    ``[Mish(scalars) | vectors · σ(gates)]`` where gate entry ``j`` of field ``f`` scales
    2-dim block ``j`` of vector field ``f``. A flip swaps gate entries and vector blocks
    alike, a rotation leaves gates fixed and rotates each block, so the map is equivariant.
    """

    def __init__(self, n_fields: int):
        super().__init__()
        self.n = n_fields

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        scalars, gates, vectors = torch.split(x, [2 * self.n, 2 * self.n, 4 * self.n], dim=1)
        gated = vectors.view(b, 2 * self.n, 2, h, w) * torch.sigmoid(gates).unsqueeze(2)
        return torch.cat([F.mish(scalars), gated.view(b, 4 * self.n, h, w)], dim=1)


class InducedNorm(nn.Module):
    """GroupNorm on ``[Ind ψ0 fields | Ind ψ1 fields]``: mean-centred on the permutation
    fields (:class:`FieldGroupNorm`), RMS-scaled on the vector fields (:class:`FieldRMSNorm`)."""

    def __init__(self, n_scalar_fields: int, n_vector_fields: int):
        super().__init__()
        self.split = [2 * n_scalar_fields, 4 * n_vector_fields]
        self.scalars = FieldGroupNorm(n_scalar_fields, 2, norm_groups(n_scalar_fields))
        self.vectors = FieldRMSNorm(n_vector_fields, 4, norm_groups(n_vector_fields))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, v = torch.split(x, self.split, dim=1)
        return torch.cat([self.scalars(s), self.vectors(v)], dim=1)


class InducedPool(nn.Module):
    """Spatial pooling: max on ``Ind ψ0`` channels, norm-max per 2-dim block on ``Ind ψ1``."""

    def __init__(self, n_fields: int):
        super().__init__()
        self.split = [2 * n_fields, 4 * n_fields]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, v = torch.split(x, self.split, dim=1)
        return torch.cat([centred_max_pool(s), centred_norm_max_pool(v, 2)], dim=1)


class InducedNormPool(nn.Module):
    """Invariant pooling ``(B, 6n, H, W) → (B, 2n, H, W)``: max over the two entries of each
    ``Ind ψ0`` field (escnn's ``GroupPooling`` of that permutation field), max over the two block
    norms of each ``Ind ψ1`` field (escnn's ``InducedNormPool``; on ``Ind ψ0`` it would take the
    entries' absolute values). Both are invariant to rotations and flips; tests compare each half
    with escnn's module."""

    def __init__(self, n_fields: int):
        super().__init__()
        self.n = n_fields

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        s, v = torch.split(x, [2 * self.n, 4 * self.n], dim=1)
        norms = v.view(b, self.n, 2, 2, h, w).norm(dim=3).amax(2)
        return torch.cat([s.view(b, self.n, 2, h, w).amax(2), norms], dim=1)


class InducedGlobalPool(nn.Module):
    """Global spatial pooling ``(B, 6n, H, W) → (B, 6n, 1, 1)`` that keeps the fields: max of
    each ``Ind ψ0`` channel, and each 2-dim block of an ``Ind ψ1`` field at the pixel of its
    largest norm. A rotation by θ then rotates every block by ±θ and a flip swaps blocks and
    ``Ind ψ0`` entries, exactly as on the feature map: the output is an equivariant vector."""

    def __init__(self, n_fields: int):
        super().__init__()
        self.split = [2 * n_fields, 4 * n_fields]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, v = torch.split(x, self.split, dim=1)
        return torch.cat([s.amax((2, 3), keepdim=True), global_norm_max_pool(v, 2)], dim=1)


class InducedO2Family:
    """O(2) with fields induced from SO(2) irreps of frequency ≤ 1 and induced gates.

    A hidden type of width ``n`` is ``n × Ind ψ0 ⊕ n × Ind ψ1`` (6n channels); convolutions
    into it also produce ``n × Ind ψ0`` gates (8n channels before the gate).
    """

    name = "O2"

    def __init__(self):
        self.gspace = gspaces.flipRot2dOnR2(N=-1)
        group = self.gspace.fibergroup
        so2_id = (None, -1)
        so2 = group.subgroup(so2_id)[0]
        self.ind0 = group.induced_representation(so2_id, so2.irrep(0))
        self.ind1 = group.induced_representation(so2_id, so2.irrep(1))

    def input_type(self, in_channels: int) -> enn.FieldType:
        return enn.FieldType(self.gspace, [self.gspace.trivial_repr] * in_channels)

    def hidden_type(self, width: int, restricted: bool) -> enn.FieldType:
        return enn.FieldType(self.gspace, [self.ind0] * width + [self.ind1] * width)

    def block(self, t_in, t_out, pool: bool) -> ConvBlock:
        n = len(t_out) // 2
        gated_type = enn.FieldType(self.gspace, [self.ind0] * (2 * n) + [self.ind1] * n)
        return ConvBlock(
            SteerableConv2d(t_in, gated_type), InducedNorm(2 * n, n), InducedGate(n), InducedPool(n) if pool else None
        )

    def norm(self, t: enn.FieldType) -> nn.Module:
        n = len(t) // 2
        return InducedNorm(n, n)

    def restrict(self, t: enn.FieldType) -> enn.FieldType:
        return t

    def readout(self, t: enn.FieldType, kind: str) -> tuple[nn.Module, nn.Module, int]:
        """``invariant``: induced norm pooling, then a global spatial max. ``orientation``:
        :class:`InducedGlobalPool` of the fields themselves, so the head sees the ``Ind ψ0``
        entries and the ``Ind ψ1`` blocks (their norms and phases)."""
        n = len(t) // 2
        if kind == "invariant":
            return InducedNormPool(n), nn.AdaptiveMaxPool2d(1), 2 * n
        return nn.Identity(), InducedGlobalPool(n), 6 * n
