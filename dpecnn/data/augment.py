"""Augmentation multiplicity (Hoffer et al. 2020; De et al. 2022).

Each sampled example is expanded into ``K`` augmented views; under DP the per-example
gradient is the mean over its views *before* clipping, so the sensitivity (and the privacy
cost) is that of one example: ``g_i = clip((1/K) Σ_k ∇ℓ(aug_k(x_i), y_i))``.

The random choices are drawn apart from the images (:func:`draw_augmentations`, one row of
choices per view) and applied afterwards (:func:`apply_augmentations`). Under DP the draws
come from the mechanism's secret generator (:mod:`dpecnn.privacy.mechanism`), and keeping
them as rows tied to examples lets the sensitivity tests remove one example while every
other example keeps its views.
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


def draw_augmentations(n: int, cfg: AugmentConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """``(n·K, 4)`` integer choices on the host for ``n`` examples: crop offsets (row, column),
    flip and quarter turns of each view; rows ``i·K … i·K+K-1`` belong to example ``i``.
    With ``K = 1`` nothing is drawn (zeros: no augmentation at all)."""
    k = cfg.multiplicity
    if k == 1:
        return torch.zeros(n, 4, dtype=torch.long)
    rows = n * k
    offsets = torch.randint(0, 2 * cfg.crop_padding + 1, (rows, 2), generator=generator)
    flip = torch.randint(0, 2, (rows, 1), generator=generator)
    quarter = torch.randint(0, 4, (rows, 1), generator=generator)
    return torch.cat([offsets, flip, quarter], 1)


def apply_augmentations(x: torch.Tensor, cfg: AugmentConfig, draws: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) → (B·K, C, H, W): the views of ``x`` chosen by ``draws``
    (:func:`draw_augmentations` of ``B`` examples). With ``K = 1`` ``x`` is returned unchanged."""
    k = cfg.multiplicity
    if k == 1:
        return x
    if draws.shape != (len(x) * k, 4):
        raise ValueError(f"{len(x)} examples need {len(x) * k} augmentation draws, got {tuple(draws.shape)}")
    views = x.repeat_interleave(k, dim=0)
    n, _, h, w = views.shape
    dev = views.device
    if cfg.crop_padding:
        p = cfg.crop_padding
        padded = F.pad(views, (p, p, p, p), mode="reflect")
        oy, ox = draws[:, 0].to(dev), draws[:, 1].to(dev)
        rows = (oy[:, None] + torch.arange(h, device=dev)[None])[:, None, :, None]
        cols = (ox[:, None] + torch.arange(w, device=dev)[None])[:, None, None, :]
        batch = torch.arange(n, device=dev)[:, None, None, None]
        chans = torch.arange(views.shape[1], device=dev)[None, :, None, None]
        views = padded[batch, chans, rows, cols]
    if cfg.flips:
        flip = draws[:, 2].to(dev).bool()
        views = torch.where(flip[:, None, None, None], views.flip(-1), views)
    if cfg.rot90:
        quarter = draws[:, 3].tolist()  # on the host: no device sync
        views = torch.stack([torch.rot90(v, q, dims=(-2, -1)) for v, q in zip(views, quarter)])
    return views


def augment_views(x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw and apply in one call: ``apply_augmentations(x, cfg, draw_augmentations(len(x), cfg, generator))``."""
    return apply_augmentations(x, cfg, draw_augmentations(len(x), cfg, generator))
