"""ℓ0_ε gradient sparsity (Hölzl et al. 2022, Fig. 1 right).

``ℓ0_ε(g) = |{j : |g_j| ≤ ε}| / dim(g)`` — the fraction of entries of the averaged (clipped,
under DP) gradient *before noise* that are numerically zero at threshold ``ε`` (1e-5).
Curves over training are smoothed by a trailing moving average (:func:`moving_average`).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch


def l0_sparsity(grads: Iterable[torch.Tensor], threshold: float = 1e-5) -> float:
    """Fraction of entries with ``|g| ≤ threshold`` over all given tensors together."""
    small = total = 0
    for g in grads:
        small += int((g.detach().abs() <= threshold).sum())
        total += g.numel()
    return small / total if total else float("nan")


def per_layer_sparsity(named_grads: Iterable[tuple[str, torch.Tensor]], threshold: float = 1e-5) -> dict[str, float]:
    """``{parameter name: ℓ0_ε of that parameter's gradient}``."""
    return {name: l0_sparsity([g], threshold) for name, g in named_grads}


def moving_average(values, window: int) -> np.ndarray:
    """Trailing moving average: entry ``t`` is the mean of ``values[max(0, t − window + 1) : t + 1]``
    (fewer than ``window`` values at the start), so the curve keeps its length and its steps."""
    v = np.asarray(values, dtype=np.float64)
    sums = np.cumsum(np.concatenate([[0.0], v]))
    t = np.arange(1, len(v) + 1)
    start = np.maximum(t - window, 0)
    return (sums[t] - sums[start]) / (t - start)
