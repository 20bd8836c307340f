"""How attributions and feature maps move when the input is rotated or flipped.

``T = R_θ ∘ F`` acts on images ``(…, H, W)``: an optional horizontal flip ``F``, then a
counter-clockwise rotation by ``θ`` degrees about the image centre. Multiples of 90° use
``torch.rot90`` (exact: a permutation of pixels); other angles resample bilinearly, with
the border value repeated for pixels that come from outside the image.

The *equivariance error* of a map-valued function ``A`` (Grad-CAM, guided backprop, a
feature map) at ``x`` is ``‖T⁻¹A(Tx) − A(x)‖ / ‖A(x)‖`` (Frobenius norms) over the disc
inscribed in the image, the part that stays in the frame at every angle. It is 0 (up to
floating point) for a model equivariant to ``T`` — a C_N model at multiples of 360°/N that
map the grid onto itself — and for a conventional model it is generically > 0. At angles
off the grid's symmetries, resampling adds error even for an exactly equivariant network.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def transform(x: torch.Tensor, angle: float, flip: bool = False) -> torch.Tensor:
    """``T x``: flip (if ``flip``), then rotate counter-clockwise by ``angle`` degrees."""
    if flip:
        x = x.flip(-1)
    return _rotate(x, angle)


def inverse_transform(x: torch.Tensor, angle: float, flip: bool = False) -> torch.Tensor:
    """``T⁻¹ x``: rotate by ``-angle`` degrees, then flip back."""
    x = _rotate(x, -angle)
    return x.flip(-1) if flip else x


def _rotate(x: torch.Tensor, angle: float) -> torch.Tensor:
    angle = angle % 360.0
    quarter = angle / 90.0
    if abs(quarter - round(quarter)) < 1e-9:
        return torch.rot90(x, int(round(quarter)) % 4, dims=(-2, -1))
    lead = x.shape[:-2]
    flat = x.reshape(-1, 1, *x.shape[-2:]).float()
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    # grid_sample maps output coordinates (x right, y down) to input coordinates: the inverse
    # rotation; with y pointing down a counter-clockwise turn on screen has this sign pattern.
    theta = torch.tensor([[c, -s, 0.0], [s, c, 0.0]], dtype=flat.dtype, device=x.device)
    grid = F.affine_grid(theta.expand(len(flat), 2, 3), list(flat.shape), align_corners=False)
    out = F.grid_sample(flat, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.reshape(*lead, *x.shape[-2:]).to(x.dtype)


def disc_mask(size: int, device=None) -> torch.Tensor:
    """``(size, size)`` boolean mask of the pixels whose centres lie in the inscribed disc."""
    centre = (size - 1) / 2
    r = torch.arange(size, device=device, dtype=torch.float64) - centre
    return (r[:, None] ** 2 + r[None, :] ** 2) <= (size / 2) ** 2


def equivariance_error(mapped_back: torch.Tensor, reference: torch.Tensor) -> float:
    """``‖T⁻¹A(Tx) − A(x)‖ / ‖A(x)‖`` over the inscribed disc (see the module docstring);
    ``mapped_back`` is ``T⁻¹A(Tx)``, both ``(…, H, W)``. 0 when ``A(x)`` is 0 everywhere."""
    mask = disc_mask(reference.shape[-1], reference.device)
    diff = (mapped_back - reference).double()[..., mask]
    norm = reference.double()[..., mask].norm()
    return float(diff.norm() / norm) if norm > 0 else 0.0
