"""Learning-rate schedules over a run's optimiser steps.

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


def make_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, schedule: str,
                   warmup_steps: int = 0) -> torch.optim.lr_scheduler.LambdaLR:
    """A scheduler that sets ``optimizer``'s rate to lr · :func:`lr_factor` before every step."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, schedule, warmup_steps))
