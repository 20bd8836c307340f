"""One split in memory: images as stored (uint8), converted to the model's input one batch at a time.

A split holds its images as ``uint8`` pixels (N, H, W, C), a quarter of float32's bytes
(BloodMNIST at 224 px: 1.8 GB for the training split instead of 7.2 GB); :meth:`Split.inputs`
turns the images a batch needs into the model's input (float32 (n, C, H, W) in [−1, 1],
:data:`~dpecnn.data.images.SCALING`) when the batch is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dpecnn.data.images import convert_channels, pixels_to_input


@dataclass(frozen=True)
class Split:
    """Images uint8 (N, H, W, C) and labels int64 (N,)."""

    pixels: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self):
        if self.pixels.dtype != torch.uint8 or self.pixels.dim() != 4 or len(self.pixels) != len(self.labels):
            raise ValueError(
                f"a split holds uint8 pixels (N, H, W, C) and N labels, got {self.pixels.dtype} "
                f"{tuple(self.pixels.shape)} and {len(self.labels)} labels"
            )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def channels(self) -> int:
        return self.pixels.shape[-1]

    def inputs(self, index=slice(None), device: torch.device | str | None = None) -> torch.Tensor:
        """The model's input for the images at ``index`` (a slice, indices or a mask): float32 (n, C, H, W),
        converted on ``device`` (the uint8 pixels travel, a quarter of the bytes)."""
        return pixels_to_input(self.pixels[index].to(device, non_blocking=True))

    def select(self, index) -> Split:
        return Split(self.pixels[index], self.labels[index])

    def subset(self, n: int | None, seed: int = 0) -> Split:
        """A class-agnostic random subset of at most ``n`` samples (all when ``n`` is None)."""
        if n is None or n >= len(self):
            return self
        return self.select(torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n])


def to_split(images: np.ndarray, labels: np.ndarray, channels: int) -> Split:
    """uint8 (N, H, W[, C]) images, converted to ``channels`` (:func:`~dpecnn.data.images.convert_channels`)
    and kept as uint8; labels (N[, 1]) → (N,)."""
    pixels = torch.from_numpy(np.ascontiguousarray(convert_channels(np.asarray(images), channels)))
    return Split(pixels, torch.from_numpy(np.asarray(labels).reshape(len(labels), -1)[:, 0].astype(np.int64)))
