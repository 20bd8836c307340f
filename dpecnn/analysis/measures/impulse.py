"""Filter impulse responses (FIR) and their co-location with input attributions.

For a convolution layer ``L`` let ``f_L(x)`` be the output of ``L`` when the whole network
up to it is applied to ``x`` (eval mode). Two impulse responses, both with the zero-input
response subtracted (which removes norm offsets, so a purely linear layer gives its filter):

* :func:`impulse_response`, a unit impulse ``δ_c`` at the image centre of input channel
  ``c``: ``FIR_c = f_L(δ_c) − f_L(0)``, a map at the layer's resolution (3×3 for the last
  convolution of a 28×28 ResNet-9).
* :func:`centre_responses`, the same seen from the other side, at input resolution: for
  every input pixel ``p``, the response ``R_L[k, p] = f_L(δ_p)[k, centre] − f_L(0)[k, centre]``
  of output channel ``k`` at the spatial centre of the layer's map to a grey unit impulse
  ``δ_p`` (1 on every input channel at ``p``). For the first convolution ``R[k]`` is its
  filter ``k`` summed over input channels (unflipped); for deeper layers it is the region of
  the input the centre unit responds to, at full resolution — through GroupNorm, whose
  statistics span the whole map, it is not confined to the theoretical receptive field.

Magnitude: :func:`fir_map` is the mean absolute response over channels at each position,
and :func:`fir_magnitude` the mean of that map over its support window (:func:`support`),
so a figure's colour scale and the magnitude it reports are the same quantity.

Co-location on a real image ``x``: the layer's response map ``R(x) = Σ_k |f_L(x) − f_L(0)|_k``
(a superposition of impulse responses), upsampled bilinearly to the input size, compared
with the attribution map ``A(x) = Σ_c |attribution_c|`` by

* Spearman rank correlation over pixels (``+1``: the layer responds most exactly where the
  prediction draws its evidence), and
* top-k overlap: IoU of the ``k = 10 %`` highest pixels of ``R`` and of ``A``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from dpecnn.models.layers import Conv2d


def conv_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """All convolution layers of a dpecnn model, in forward order (by construction)."""
    from dpecnn.models.equivariant import SteerableConv2d

    return [(n, m) for n, m in model.named_modules() if isinstance(m, (Conv2d, SteerableConv2d))]


@torch.no_grad()
def layer_output(model: nn.Module, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``f_L(x)``: the output of ``layer`` when the model (eval mode) runs on ``x``."""
    captured = []
    handle = layer.register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        model.eval()
        model(x)
    finally:
        handle.remove()
    return captured[0]


def layer_response(model: nn.Module, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``f_L(x) − f_L(0)``: the layer's output with the zero-input response removed."""
    out = layer_output(model, layer, torch.cat([x, torch.zeros_like(x[:1])]))
    return out[:-1] - out[-1:]


def impulse_response(model: nn.Module, layer: nn.Module, in_channels: int, size: int = 28) -> torch.Tensor:
    """FIR of ``layer``: ``(in_channels, C_out, h, w)``, one unit impulse per input channel."""
    device = next(model.parameters()).device
    delta = torch.zeros(in_channels, in_channels, size, size, device=device)
    delta[torch.arange(in_channels), torch.arange(in_channels), size // 2, size // 2] = 1.0
    return layer_response(model, layer, delta)


@torch.no_grad()
def centre_responses(
    model: nn.Module, layers: Sequence[nn.Module], in_channels: int, size: int = 28, batch: int = 256
) -> list[torch.Tensor]:
    """``R_L`` ``(C_out, size, size)`` for each of ``layers``: the centre unit's response to a
    grey unit impulse at every input pixel (module docstring); ``size²`` forward passes."""
    device = next(model.parameters()).device
    captured: list[list[torch.Tensor]] = [[] for _ in layers]

    def keep_centre(i):
        return lambda _m, _i, out: captured[i].append(out[:, :, out.shape[-2] // 2, out.shape[-1] // 2])

    handles = [layer.register_forward_hook(keep_centre(i)) for i, layer in enumerate(layers)]
    try:
        model.eval()
        pixels = torch.arange(size * size, device=device)
        for start in range(0, size * size, batch):
            chunk = pixels[start : start + batch]
            x = torch.zeros(len(chunk), in_channels, size * size, device=device)
            x[torch.arange(len(chunk)), :, chunk] = 1.0
            model(x.view(len(chunk), in_channels, size, size))
        model(torch.zeros(1, in_channels, size, size, device=device))
    finally:
        for h in handles:
            h.remove()
    responses = []
    for centre in captured:
        *impulses, zero = centre
        responses.append((torch.cat(impulses) - zero).T.reshape(-1, size, size).cpu())
    return responses


def fir_map(fir: torch.Tensor) -> torch.Tensor:
    """``(h, w)`` mean absolute impulse response over all channel dimensions of ``(…, h, w)``."""
    return fir.abs().flatten(0, -3).mean(0)


def support(m: torch.Tensor, rel: float = 1e-6) -> tuple[slice, slice]:
    """The smallest window of a non-negative ``(h, w)`` map holding every entry above
    ``rel`` × its maximum (the whole map when it is zero)."""
    rows, cols = torch.nonzero(m > rel * m.max(), as_tuple=True)
    if not len(rows):
        return slice(None), slice(None)
    return slice(int(rows.min()), int(rows.max()) + 1), slice(int(cols.min()), int(cols.max()) + 1)


def fir_magnitude(fir: torch.Tensor) -> float:
    """The mean of :func:`fir_map` over its :func:`support` window."""
    m = fir_map(fir)
    return float(m[support(m)].mean())


def response_map(model: nn.Module, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``(B, H, W)`` magnitude of the layer's response to each image, at input resolution."""
    resp = layer_response(model, layer, x).abs().sum(1, keepdim=True)
    return F.interpolate(resp, size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False)[:, 0]


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-row Spearman rank correlation of ``(B, N)`` tensors by ``scipy.stats.spearmanr``: tied
    values share their average rank (Grad-CAM after ReLU and upsampling holds blocks of exact zeros,
    whose order must not matter). NaN for a row that is constant in ``a`` or ``b`` (no ranking)."""
    from scipy.stats import spearmanr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on a constant row, whose ρ is NaN
        rho = [spearmanr(x, y).statistic for x, y in zip(a.double().numpy(), b.double().numpy())]
    return torch.tensor(rho, dtype=torch.float64)


def top_k_iou(a: torch.Tensor, b: torch.Tensor, fraction: float = 0.1) -> torch.Tensor:
    """Per-row IoU of the top ``fraction`` entries of ``(B, N)`` tensors ``a`` and ``b``."""
    k = max(1, int(round(fraction * a.shape[-1])))
    top_a = torch.zeros_like(a, dtype=torch.bool).scatter_(-1, a.topk(k, -1).indices, True)
    top_b = torch.zeros_like(b, dtype=torch.bool).scatter_(-1, b.topk(k, -1).indices, True)
    return (top_a & top_b).sum(-1).double() / (top_a | top_b).sum(-1).double()


def colocation(response: torch.Tensor, attribution: torch.Tensor, fraction: float = 0.1) -> dict[str, float]:
    """Mean Spearman correlation (over the images whose maps are not constant) and top-k IoU between
    ``(B, H, W)`` maps (see module doc)."""
    r, a = response.flatten(1).double(), attribution.flatten(1).double()
    return {"spearman": float(spearman(r, a).nanmean()), "top_k_iou": float(top_k_iou(r, a, fraction).mean())}
