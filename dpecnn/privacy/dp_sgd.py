"""One DP-SGD step on Opacus parts: Poisson-sampled logical batches, physical batches,
augmentation multiplicity, per-example clipping and Gaussian noise.

For a logical batch ``S`` (each example included independently with probability ``q``)::

    g_i  = (1/K) Σ_k ∇θ ℓ(f(aug_k(x_i)), y_i)            (mean over K views, before clipping)
    ĝ    = (1/(qN)) [ Σ_{i∈S} g_i · min(1, C/‖g_i‖) + 𝒩(0, σ²C² I) ]
    θ   ← optimiser step with ĝ

Clipping, noise and the division by the expected batch size ``qN`` are Opacus'
``DPOptimizer``; sampling is Opacus' ``DPDataLoader``; the split of a logical batch into
physical batches of bounded size is Opacus' ``BatchMemoryManager``. The averaged clipped
gradient *before* noise is exposed to a callback (gradient sparsity is measured on it).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
from opacus.optimizers import DPOptimizer
from torch.profiler import record_function

PreNoiseHook = Callable[[list[torch.Tensor]], None]


class ObservedDPOptimizer(DPOptimizer):
    """Opacus ``DPOptimizer`` that shows each step's averaged clipped gradient, before noise,
    to ``pre_noise_hook`` (a list of tensors shaped like the parameters), and tells whether
    its last ``step()`` updated the parameters (``stepped``) or only accumulated a physical
    batch of a larger logical one."""

    def __init__(self, *args, pre_noise_hook: PreNoiseHook | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.pre_noise_hook = pre_noise_hook
        self.stepped = False

    def pre_step(self, closure=None) -> bool:
        self.stepped = bool(super().pre_step(closure))
        return self.stepped

    def clip_and_accumulate(self):
        with record_function("dpecnn::clipping"):
            super().clip_and_accumulate()

    def add_noise(self):
        if self.pre_noise_hook is not None:
            scale = self.expected_batch_size * self.accumulated_iterations
            self.pre_noise_hook([(p.summed_grad / scale).view_as(p) for p in self.params])
        with record_function("dpecnn::noise"):
            super().add_noise()


def average_views(params: list[nn.Parameter], multiplicity: int) -> None:
    """Replace each ``p.grad_sample`` of shape ``(B·K, …)`` by the mean over the K views of
    each example, ``(B, …)`` (views of example ``i`` are rows ``i·K … i·K+K-1``)."""
    if multiplicity == 1:
        return
    for p in params:
        gs = p.grad_sample
        p.grad_sample = gs.view(gs.shape[0] // multiplicity, multiplicity, *gs.shape[1:]).mean(1)


def mark_empty_batch(params: list[nn.Parameter]) -> None:
    """A Poisson draw can be empty: the step still happens (noise only), with no examples."""
    for p in params:
        p.grad_sample = torch.zeros(0, *p.shape, device=p.device, dtype=p.dtype)
