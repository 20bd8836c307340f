"""Filter impulse responses (FIR) and their co-location with input attributions.

For a convolution layer ``L`` let ``f_L(x)`` be the output of ``L`` when the whole network
up to it is applied to ``x`` (eval mode). The impulse response to a unit impulse ``δ_c`` at
the image centre of input channel ``c`` is ``FIR_c = f_L(δ_c) − f_L(0)`` (subtracting the
zero-input response removes norm offsets, so a purely linear layer gives its filter). Its
*magnitude* is the mean absolute value ``mean |FIR|`` over channels and positions.

Co-location on a real image ``x``: the layer's response map ``R(x) = Σ_k |f_L(x) − f_L(0)|_k``
(a superposition of impulse responses), upsampled bilinearly to the input size, compared
with the attribution map ``A(x) = Σ_c |attribution_c|`` by

* Spearman rank correlation over pixels (``+1``: the layer responds most exactly where the
  prediction draws its evidence), and
* top-k overlap: IoU of the ``k = 10 %`` highest pixels of ``R`` and of ``A``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from dpecnn.models.layers import Conv2d


def conv_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """All convolution layers of a dpecnn model, in forward order (by construction)."""
    from dpecnn.models.equivariant import SteerableConv2d

    return [(n, m) for n, m in model.named_modules() if isinstance(m, (Conv2d, SteerableConv2d))]


@torch.no_grad()
def layer_response(model: nn.Module, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``f_L(x) − f_L(0)``: the layer's output with the zero-input response removed."""
    captured = []
    handle = layer.register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        model.eval()
        model(torch.cat([x, torch.zeros_like(x[:1])]))
    finally:
        handle.remove()
    out = captured[0]
    return out[:-1] - out[-1:]


def impulse_response(model: nn.Module, layer: nn.Module, in_channels: int, size: int = 28) -> torch.Tensor:
    """FIR of ``layer``: ``(in_channels, C_out, h, w)``, one unit impulse per input channel."""
    device = next(model.parameters()).device
    delta = torch.zeros(in_channels, in_channels, size, size, device=device)
    delta[torch.arange(in_channels), torch.arange(in_channels), size // 2, size // 2] = 1.0
    return layer_response(model, layer, delta)


def fir_magnitude(fir: torch.Tensor) -> float:
    return float(fir.abs().mean())


def fir_map(fir: torch.Tensor) -> torch.Tensor:
    """``(h, w)`` spatial magnitude of an impulse response, summed over all channels."""
    return fir.abs().sum((0, 1))


def response_map(model: nn.Module, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``(B, H, W)`` magnitude of the layer's response to each image, at input resolution."""
    resp = layer_response(model, layer, x).abs().sum(1, keepdim=True)
    return F.interpolate(resp, size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False)[:, 0]


def _ranks(v: torch.Tensor) -> torch.Tensor:
    return v.argsort(-1).argsort(-1).double()


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-row Spearman rank correlation of ``(B, N)`` tensors (ties broken by order)."""
    ra, rb = _ranks(a), _ranks(b)
    ra, rb = ra - ra.mean(-1, keepdim=True), rb - rb.mean(-1, keepdim=True)
    return (ra * rb).sum(-1) / (ra.norm(dim=-1) * rb.norm(dim=-1)).clamp_min(1e-12)


def top_k_iou(a: torch.Tensor, b: torch.Tensor, fraction: float = 0.1) -> torch.Tensor:
    """Per-row IoU of the top ``fraction`` entries of ``(B, N)`` tensors ``a`` and ``b``."""
    k = max(1, int(round(fraction * a.shape[-1])))
    top_a = torch.zeros_like(a, dtype=torch.bool).scatter_(-1, a.topk(k, -1).indices, True)
    top_b = torch.zeros_like(b, dtype=torch.bool).scatter_(-1, b.topk(k, -1).indices, True)
    return (top_a & top_b).sum(-1).double() / (top_a | top_b).sum(-1).double()


def colocation(response: torch.Tensor, attribution: torch.Tensor, fraction: float = 0.1) -> dict[str, float]:
    """Mean Spearman correlation and top-k IoU between ``(B, H, W)`` maps (see module doc)."""
    r, a = response.flatten(1).double(), attribution.flatten(1).double()
    return {"spearman": float(spearman(r, a).mean()), "top_k_iou": float(top_k_iou(r, a, fraction).mean())}
