"""Audit canaries (Steinke, Nasr & Jagielski 2023): ``M`` canaries, each in the training run
with probability ½ independently; the auditor later guesses which were in.

* ``gradient`` (white-box): :class:`~dpecnn.privacy.mechanism.GradientCanaries`, Dirac
  directions on ``M`` distinct coordinates of the flattened parameters, scaled to the clipping
  norm ``C`` and Poisson-sampled at rate ``q`` inside the mechanism. The coordinates are the
  ``M`` where the data's gradient is quietest (:func:`pilot_gradient_magnitude`): a canary's
  ``C`` on a coordinate that the data also push (summed, unclipped without DP) would drown.
* ``input`` (black-box): ``M`` images of the training split held out of the ordinary pool and
  given a random wrong label; the included ones are trained on as ordinary examples. An
  ``input-reference`` run holds the same canaries out and includes none: the reference model
  that calibrates each canary's loss (:func:`reference_scores`).

The canaries and coins are drawn from the run's recorded seed (offset from the other uses of
it), so that a resumed audit run holds the same canaries and ``audit.json`` can list them.
That is sound for the audit: its theorem needs the coins independent of the mechanism's
randomness, which stays secret (or, with ``reproducible``, seeded apart), and the canaries
themselves may depend on anything but the coins (the pilot reads the training data and the seed
only). A run with canaries is never a private release.

**Scores** (higher = more likely included), computed after training from what the run released:

* gradient, :func:`likelihood_ratio_scores`: each step's component ``x_t`` of the released sum
  along the canary's coordinate is ``C·b_t`` plus noise and the data's gradient, with ``b_t`` the
  canary's draw (probability ``q`` if included, 0 if not). The log-likelihood ratio of
  "included" against "excluded", ``Σ_t log(1 − q + q·f(x_t − C)/f(x_t))``, is the
  Neyman–Pearson test of one canary: it weighs the few steps that carry the canary instead of
  diluting them with the ``T`` that do not (``f``: Gaussian under DP, Cauchy without).
  :func:`plain_sum_scores`, ``Σ_t x_t``, is kept as the baseline.
* input, :func:`reference_scores`: the reference model's loss on the canary (with its wrong label)
  minus the audited model's, as offline LiRA/RMIA calibrate a loss by a model that never saw the
  example; the audited model's −loss alone is the baseline.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from dpecnn.data.images import pixels_to_input
from dpecnn.data.split import Split
from dpecnn.privacy.mechanism import GradientCanaries

CANARY_SEED_OFFSET = 4_000_037


def canary_generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed + CANARY_SEED_OFFSET)


def fair_coins(m: int, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(m, generator=generator) < 0.5


def pilot_gradient_magnitude(
    model: nn.Module,
    make_optimizer,
    train: Split,
    batch_size: int,
    clip: float | None,
    seed: int,
    device: torch.device,
) -> torch.Tensor:
    """Mean ``|Σ_batch ∇ℓ|`` of every parameter coordinate over one epoch of a copy of ``model``
    (``make_optimizer(params)``), on the batches that a non-DP run of ``seed`` takes in its first
    epoch (the trainer's shuffled ``DataLoader`` with a generator seeded with ``seed``), each
    step's mean gradient clipped to norm ``clip`` if given (a DP recipe's large step stays stable).
    Without DP this is the audited run's own first epoch, less its canaries: which coordinates the
    data leave quiet depends on the path training takes (measured on BloodMNIST: the quietest
    coordinates along another path of the same length are about twice as loud along this one)."""
    pilot = copy.deepcopy(model).train()
    params = [p for p in pilot.parameters() if p.requires_grad]
    optimizer = make_optimizer(params)
    shuffle = torch.Generator().manual_seed(seed)
    batches = DataLoader(
        TensorDataset(train.pixels, train.labels), batch_size=batch_size, shuffle=True, generator=shuffle
    )
    total = torch.zeros(sum(p.numel() for p in params), dtype=torch.float64)
    for pixels, y in batches:
        x, y = pixels_to_input(pixels.to(device)), y.to(device)
        grads = torch.autograd.grad(F.cross_entropy(pilot(x), y, reduction="sum"), params)
        total += torch.cat([g.reshape(-1) for g in grads]).abs().double().cpu()
        for p, g in zip(params, grads):
            p.grad = g / len(y)
        if clip is not None:
            nn.utils.clip_grad_norm_(params, clip)
        optimizer.step()
    return total / len(batches)


def draw_gradient_canaries(m: int, magnitude: torch.Tensor, clip: float, seed: int) -> GradientCanaries:
    """``m`` Dirac canaries on the ``m`` coordinates of smallest pilot ``magnitude`` (ties in index order)."""
    if m > len(magnitude):
        raise ValueError(f"{m} gradient canaries need as many parameters; the model has {len(magnitude)}")
    coordinates = torch.sort(magnitude, stable=True).indices[:m]
    return GradientCanaries(coordinates, fair_coins(m, canary_generator(seed)), clip)


def plain_sum_scores(observations: np.ndarray) -> np.ndarray:
    """``Σ_t x_t`` per canary (``observations``: steps × canaries)."""
    return np.asarray(observations, dtype=float).sum(0)


def likelihood_ratio_scores(observations: np.ndarray, sample_rate: float, clip: float, noise_std: float) -> np.ndarray:
    """``Σ_t log(1 − q + q·f(x_t − C)/f(x_t))`` per canary (``observations``: steps × canaries),
    the log-likelihood ratio of "included" against "excluded" when one step's value is ``x_t =
    C·b_t + n_t`` with null density ``f``:

    * with DP (``noise_std = σC > 0``), ``f`` is the mechanism's Gaussian ``𝒩(0, σ²C²)``, exactly
      known; the data's clipped gradient on the quietest coordinates is negligible beside it;
    * without DP only the data's own summed gradient remains: heavy-tailed (a single example can
      push a quiet coordinate far), so ``f`` is a Cauchy density, under which one outlying step
      cannot outweigh the several steps of size ``C`` that an included canary leaves. It is centred
      on the coordinate's median, with scale ``a_t·b_j`` at step ``t`` on coordinate ``j``: ``b_j``
      the coordinate's median absolute deviation over the steps, ``a_t`` the step's median over the
      coordinates of ``|x − median|/b_j`` (normalised to median 1), since the data's gradient is
      large early in training and small later on every coordinate alike. Robust estimates: at any
      step about ``q/2`` of the canaries carry a ``C``.
    """
    x = np.asarray(observations, dtype=float)
    q = sample_rate
    if noise_std > 0:
        log_ratio = (x - clip / 2) * clip / noise_std**2  # log f(x − C) − log f(x), Gaussian f
    else:
        centred = x - np.median(x, axis=0)
        per_coordinate = np.maximum(np.median(np.abs(centred), axis=0), 1e-6 * clip)
        per_step = np.median(np.abs(centred) / per_coordinate, axis=1, keepdims=True)
        scale = np.maximum(per_step / np.median(per_step) * per_coordinate, 1e-6 * clip)
        log_ratio = np.log1p((centred / scale) ** 2) - np.log1p(((centred - clip) / scale) ** 2)  # Cauchy f
    return np.logaddexp(np.log1p(-q), np.log(q) + log_ratio).sum(0)


def reference_scores(audited_losses: np.ndarray, reference_losses: np.ndarray) -> np.ndarray:
    """The reference model's loss minus the audited model's, per input canary."""
    return np.asarray(reference_losses, dtype=float) - np.asarray(audited_losses, dtype=float)


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
