"""ℓ0_ε gradient sparsity (Hölzl et al. 2022, Fig. 1 right).

``ℓ0_ε(g) = |{j : |g_j| ≤ ε}| / dim(g)`` — the fraction of entries of the averaged (clipped,
under DP) gradient *before noise* that are numerically zero at threshold ``ε`` (1e-5).
"""

from __future__ import annotations

from typing import Iterable

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
