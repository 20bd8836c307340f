"""Audit canaries (Steinke, Nasr & Jagielski 2023): ``M`` canaries, each in the training run
with probability ½ independently; the auditor later guesses which were in.

* ``gradient`` (white-box): :class:`~dpecnn.privacy.mechanism.GradientCanaries`, Dirac
  directions on ``M`` distinct coordinates of the flattened parameters, scaled to the clipping
  norm ``C`` and Poisson-sampled at rate ``q`` inside the mechanism.
* ``input`` (black-box): ``M`` images of the training split held out of the ordinary pool and
  given a random wrong label; the included ones are trained on as ordinary examples.

The canaries and coins are drawn from the run's recorded seed (offset from the other uses of
it), so that a resumed audit run holds the same canaries and ``audit.json`` can list them.
That is sound for the audit: its theorem needs the coins independent of the mechanism's
randomness, which stays secret (or, with ``reproducible``, seeded apart). A run with canaries
is never a private release.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dpecnn.privacy.mechanism import GradientCanaries

CANARY_KINDS = ("gradient", "input")
CANARY_SEED_OFFSET = 4_000_037


def canary_generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed + CANARY_SEED_OFFSET)


def fair_coins(m: int, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(m, generator=generator) < 0.5


def draw_gradient_canaries(m: int, n_params: int, clip: float, seed: int) -> GradientCanaries:
    """``m`` Dirac canaries on distinct random coordinates among ``n_params``."""
    if m > n_params:
        raise ValueError(f"{m} gradient canaries need as many parameters; the model has {n_params}")
    gen = canary_generator(seed)
    coordinates = torch.randperm(n_params, generator=gen)[:m]
    return GradientCanaries(coordinates, fair_coins(m, gen), clip)


@dataclass
class InputCanaries:
    """``index``: positions in the training split; ``labels``: their wrong labels;
    ``included``: the coins; ``rest``: the positions of the ordinary training examples."""

    index: torch.Tensor
    labels: torch.Tensor
    included: torch.Tensor
    rest: torch.Tensor


def draw_input_canaries(m: int, labels: torch.Tensor, num_classes: int, seed: int) -> InputCanaries:
    """``m`` of the training split's images with a uniformly drawn wrong label each."""
    if m >= len(labels):
        raise ValueError(f"{m} input canaries need more training images than the {len(labels)} there are")
    gen = canary_generator(seed)
    order = torch.randperm(len(labels), generator=gen)
    index, rest = order[:m], order[m:].sort().values
    shift = torch.randint(1, num_classes, (m,), generator=gen)  # never the true label
    return InputCanaries(index, (labels[index] + shift) % num_classes, fair_coins(m, gen), rest)
