"""A run's optimiser steps: how many an epoch has, and the learning-rate schedule over them.

:func:`steps_per_epoch` is ``⌊N/B⌋`` under DP — the expected number of Poisson batches in one
pass over ``N`` images at sampling rate ``q = B/N``, as Opacus counts an epoch (``1/q``) but in
integer arithmetic — and ``⌈N/B⌉`` without DP (shuffled batches, the last one short). The
trainer, the accountant's step count and ``sweep --plan`` all take it from here.

The factor multiplying the configured learning rate at step ``t`` (0-based) of ``T`` steps,
with ``W`` warm-up steps:

* warm-up, ``t < W``: ``(t + 1) / (W + 1)`` — linear, reaching the full rate at step ``W``;
* ``constant``: 1 afterwards;
* ``cosine``: ``½ (1 + cos(π (t − W) / (T − W)))`` afterwards (Loshchilov & Hutter 2017,
  without restarts): 1 at the end of warm-up, decaying towards 0, still positive at the last step.

The schedule depends on the step count alone, never on data, so under DP it is part of the
public algorithm and costs no privacy. It is a :class:`torch.optim.lr_scheduler.LambdaLR`
stepped once per optimiser step; its state (the step count) is saved in every checkpoint.
"""

from __future__ import annotations

import math

import torch


def steps_per_epoch(n: int, batch_size: int, dp: bool) -> int:
    """Optimiser steps in one epoch over ``n`` training images (see module docstring)."""
    return n // batch_size if dp else math.ceil(n / batch_size)


def lr_factor(step: int, total_steps: int, schedule: str, warmup_steps: int = 0) -> float:
    """The learning-rate multiplier at 0-based ``step`` (see module docstring)."""
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        decay_steps = max(total_steps - warmup_steps, 1)
        return 0.5 * (1 + math.cos(math.pi * min(step - warmup_steps, decay_steps) / decay_steps))
    raise ValueError(f"unknown lr schedule {schedule!r}")


def make_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, schedule: str, warmup_steps: int = 0
) -> torch.optim.lr_scheduler.LambdaLR:
    """A scheduler that sets ``optimizer``'s rate to lr · :func:`lr_factor` before every step."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, schedule, warmup_steps)
    )
