"""Augmentation multiplicity (Hoffer et al. 2020; De et al. 2022).

Each sampled example is expanded into ``K`` augmented views; under DP the per-example
gradient is the mean over its views *before* clipping, so the sensitivity (and the privacy
cost) is that of one example: ``g_i = clip((1/K) Σ_k ∇ℓ(aug_k(x_i), y_i))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    multiplicity: int = 1  # K views per example; 1 = no augmentation
    crop_padding: int = 2  # random crop after reflect padding by this many pixels (0 = off)
    flips: bool = True  # random horizontal flip
    rot90: bool = False  # random multiple of 90°

    def __post_init__(self):
        if self.multiplicity < 1:
            raise ValueError(f"augmentation multiplicity must be ≥ 1, got {self.multiplicity}")
        if self.crop_padding < 0:
            raise ValueError(f"crop padding must be ≥ 0, got {self.crop_padding}")


def augment_views(x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, C, H, W) → (B·K, C, H, W), views of example ``i`` at rows ``i·K … i·K+K-1``.

    With ``K = 1`` the input is returned unchanged (no augmentation at all).
    """
    k = cfg.multiplicity
    if k == 1:
        return x
    views = x.repeat_interleave(k, dim=0)
    n, _, h, w = views.shape
    dev = views.device

    def rand(high: int) -> torch.Tensor:
        return torch.randint(0, high, (n,), generator=generator).to(dev)

    if cfg.crop_padding:
        p = cfg.crop_padding
        padded = F.pad(views, (p, p, p, p), mode="reflect")
        oy, ox = rand(2 * p + 1), rand(2 * p + 1)
        rows = (oy[:, None] + torch.arange(h, device=dev)[None])[:, None, :, None]
        cols = (ox[:, None] + torch.arange(w, device=dev)[None])[:, None, None, :]
        batch = torch.arange(n, device=dev)[:, None, None, None]
        chans = torch.arange(views.shape[1], device=dev)[None, :, None, None]
        views = padded[batch, chans, rows, cols]
    if cfg.flips:
        flip = rand(2).bool()
        views = torch.where(flip[:, None, None, None], views.flip(-1), views)
    if cfg.rot90:
        quarter = torch.randint(0, 4, (n,), generator=generator).tolist()  # on the host: no device sync
        views = torch.stack([torch.rot90(v, q, dims=(-2, -1)) for v, q in zip(views, quarter)])
    return views
