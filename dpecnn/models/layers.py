"""Parameter-free and normalisation layers on plain tensors that carry steerable fields.

Channel layout convention: a feature map with ``F`` fields of size ``S`` is a tensor
``(B, F·S, H, W)`` whose channels ``f·S … f·S+S-1`` hold field ``f`` (escnn's layout).
Each layer states its equivariance contract: for which field types it commutes with the
group action ``ρ(g)`` on channels combined with the grid rotation/reflection of ``(H, W)``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.profiler import record_function


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` (3×3, stride 1, no bias) that can skip its summed weight gradient.

    With ``per_sample_only`` set (by :class:`dpecnn.privacy.PerSampleGradModule`), the filter
    enters the graph detached: autograd then computes only the input gradient, and the
    per-sample filter gradients come from Opacus' hooks (:func:`per_sample_output`).
    Translation-equivariant only.
    """

    per_sample_only = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.detach() if self.per_sample_only else self.weight
        with record_function("dpecnn::conv_forward"):
            return per_sample_output(x, self._conv_forward(x, weight, self.bias), self.per_sample_only)


def per_sample_output(x: torch.Tensor, out: torch.Tensor, per_sample_only: bool) -> torch.Tensor:
    """A convolution's output ``out``, made a leaf that requires grad where the layer starts the
    graph in per-sample-only mode: with a detached filter and an input that needs no gradient
    (the images), nothing would require grad, and Opacus' hook, which needs ``∂L/∂out``, would
    never fire. Marking the images as requiring grad instead made autograd compute the first
    layer's input gradient only to discard it: 4.2 ms of e's DP step (3 → 8 channels on 28×28,
    batch 256, 2 threads)."""
    if per_sample_only and not x.requires_grad and torch.is_grad_enabled():
        out.requires_grad_(True)
    return out


class GroupNorm(nn.GroupNorm):
    """``nn.GroupNorm`` under dpecnn's own type, so that DP training uses dpecnn's faster
    per-example rule for it (:mod:`dpecnn.privacy.grad_sample`) instead of Opacus'. Same
    parameters, state-dict keys and forward. Equivariant for channel permutations within
    groups and for grid rotations/flips.

    With ``per_sample_only`` set (by :class:`dpecnn.privacy.PerSampleGradModule`), a forward
    with gradients keeps the per-(example, group) mean and reciprocal standard deviation it
    computed, for the per-example rule, which would otherwise compute them a second time; and, as
    :class:`Conv2d` does, it leaves its parameters out of the graph, so that autograd computes only
    the input gradient and not the summed ``∂L/∂γ``, ``∂L/∂β`` that DP-SGD replaces.
    """

    per_sample_only = False
    statistics: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.per_sample_only and torch.is_grad_enabled()):
            return super().forward(x)
        b, c = x.shape[:2]
        weight, bias = (None if p is None else p.detach() for p in (self.weight, self.bias))
        out, mean, rstd = torch.ops.aten.native_group_norm(
            x.contiguous(), weight, bias, b, c, x[0, 0].numel(), self.num_groups, self.eps
        )
        self.statistics = (mean.detach(), rstd.detach())
        return per_sample_output(x, out, True)


def centred_max_pool(x: torch.Tensor) -> torch.Tensor:
    """Stride-2 max pooling whose windows map onto themselves under grid rotations/flips.

    Even sizes use 2×2 windows (28 → 14 → 7); odd sizes use 3×3 windows without padding
    (7 → 3), whose centres ``1, 3, 5`` are symmetric about the image centre. Plain 2×2
    pooling of an odd size drops the last row and column and breaks exact invariance.
    Equivariant for channel permutations (trivial and regular fields).
    """
    return F.max_pool2d(x, 2 if x.shape[-1] % 2 == 0 else 3, 2)


def centred_norm_max_pool(x: torch.Tensor, subfield: int) -> torch.Tensor:
    """Norm max pooling: in each window keep the ``subfield``-vector of largest norm.

    Equivariant for fields made of ``subfield``-dimensional blocks on which the group acts
    orthogonally, possibly permuting the blocks (induced representations).
    """
    b, c, h, w = x.shape
    k = 2 if w % 2 == 0 else 3
    blocks = x.view(b, c // subfield, subfield, h, w)
    with torch.no_grad():  # only the argmax is used; squared norms have the same one
        # a sum of squared slices: torch's norm over a strided middle dimension is ~50× slower on CPU
        energy = sum(component * component for component in blocks.unbind(2))
        _, idx = F.max_pool2d(energy, k, 2, return_indices=True)
    flat = blocks.flatten(3)
    idx = idx.flatten(2).unsqueeze(2).expand(-1, -1, subfield, -1)
    return flat.gather(3, idx).view(b, c, *_pooled_shape(h, w, k))


def global_norm_max_pool(x: torch.Tensor, subfield: int) -> torch.Tensor:
    """``(B, C, H, W) → (B, C, 1, 1)``: for each ``subfield``-vector, its value at the pixel where
    its norm is largest. Same equivariance as :func:`centred_norm_max_pool`, and invariant to
    every grid rotation/flip of the pixels (one window covers the whole map)."""
    b, c, h, w = x.shape
    flat = x.reshape(b, c // subfield, subfield, h * w)
    with torch.no_grad():
        idx = flat.pow(2).sum(2, keepdim=True).argmax(3, keepdim=True)  # (B, F, 1, 1)
    return flat.gather(3, idx.expand(-1, -1, subfield, -1)).reshape(b, c, 1, 1)


def _pooled_shape(h: int, w: int, k: int) -> tuple[int, int]:
    return (h - k) // 2 + 1, (w - k) // 2 + 1


class CentredMaxPool(nn.Module):
    """Module form of :func:`centred_max_pool`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return centred_max_pool(x)


class FieldGroupNorm(nn.Module):
    """GroupNorm that never splits a field: ``B (F·S) H W → B F (S·H) W``, normalise, back.

    Mean and variance are taken over whole fields (and space), and the affine weight and
    bias are per field, so the layer commutes with any channel permutation inside fields
    (trivial, regular and induced-trivial fields) and with grid rotations/flips.
    The inner :class:`GroupNorm` sees the reshaped tensor, so its per-sample gradient rule
    applies to it unchanged.
    """

    def __init__(self, num_fields: int, field_size: int, num_groups: int):
        super().__init__()
        self.field_size = field_size
        self.norm = GroupNorm(num_groups, num_fields)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        return self.norm(x.reshape(b, c // self.field_size, self.field_size * h, w)).reshape(b, c, h, w)


class FieldRMSNorm(nn.Module):
    """Normalisation for fields on which the group acts orthogonally (non-trivial irreps).

    ``y_f = γ_f · x_f / sqrt(mean_{group(f), S, H, W} x² + ε)``: no mean subtraction (the mean
    of a non-trivial field is not invariant) and one scale per field, no bias. Equivariant for
    any orthogonal action on the channels of a field and for grid rotations/flips.
    """

    def __init__(self, num_fields: int, field_size: int, num_groups: int, eps: float = 1e-5):
        super().__init__()
        self.field_size, self.num_groups, self.eps = field_size, num_groups, eps
        self.weight = nn.Parameter(torch.ones(num_fields))

    def normalised(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        grouped = x.reshape(b, self.num_groups, -1)
        scale = torch.rsqrt(grouped.pow(2).mean(-1, keepdim=True) + self.eps)
        return (grouped * scale).reshape(b, c // self.field_size, self.field_size, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.normalised(x) * self.weight[None, :, None, None, None]).reshape(x.shape)


class GroupMaxPool(nn.Module):
    """Group pooling for permutation fields: ``B (F·S) H W → B F H W`` by a max over each field.

    Invariant: a permutation of the ``S`` entries of a field leaves the max unchanged, so the
    output consists of trivial fields (escnn's ``GroupPooling``, written without in-place
    slice writes so it also runs under ``torch.func`` transforms).
    """

    def __init__(self, field_size: int):
        super().__init__()
        self.field_size = field_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        return x.reshape(b, c // self.field_size, self.field_size, h, w).amax(2)
