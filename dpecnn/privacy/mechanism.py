"""DP-SGD in dpecnn: the whole mechanism, in one file a reviewer can audit.

**Mechanism.** One logical step ``t`` on a training set ``D = {(x_i, y_i)}`` of ``N`` images:

1. *Poisson sampling* (:meth:`DPSGD.sample`): each image joins the batch ``S_t``
   independently with probability ``q = B / N`` (``B`` the expected batch size).
2. *Augmentation* (:meth:`DPSGD.clipped_sum`): each sampled image gets ``K`` views
   ``aug_k(x_i)`` (:mod:`dpecnn.data.augment`), drawn from the secret augmentation generator.
3. *Per-example gradient, mean over views before clipping*:
   ``g_i = (1/K) Σ_k ∇θ ℓ(f_θ(aug_k(x_i)), y_i)``, exact, from Opacus' hooks with dpecnn's
   rules for steerable layers (:mod:`dpecnn.privacy.grad_sample`).
4. *Clipping*: ``ḡ_i = g_i · min(1, C / (‖g_i‖ + 10⁻⁶))`` over all parameters at once
   (Opacus' ``DPOptimizer`` rule, which the tests cross-check), so ``‖ḡ_i‖ ≤ C``.
5. *Sum and noise* (:meth:`DPSGD.privatise`): ``G_t = Σ_{i∈S_t} ḡ_i + 𝒩(0, σ²C² I)``.
6. *Release*: the optimiser steps with ``G_t / B`` (``B`` a constant, not ``|S_t|``); the
   accountant records ``(σ, q)`` for the step. Optimiser, EMA and evaluation are
   post-processing of ``G_1 … G_T``.

**Adjacency and unit of privacy.** Add or remove one training image (with its label),
the setting of Opacus' RDP and PRV accountants and of dp-accounting's PLD cross-check. One
image is the unit: a patient with several images is protected only at group privacy.

**Sensitivity.** Fix the randomness of every other image: its inclusion bit, its views,
hence its ``ḡ_j``. Then ``Σ_{i∈S}ḡ_i`` of ``D`` and of ``D`` without image ``x`` differ by
``ḡ_x`` if ``x`` was sampled and by 0 otherwise, and ``‖ḡ_x‖ ≤ C``: the sum is the
Poisson-subsampled Gaussian mechanism with sensitivity ``C`` and noise ``σC``, whose
``T``-fold composition the accountant bounds. This coupling is valid because no image's
randomness depends on the others': inclusion bits are independent, and augmentation choices
are drawn per view from a generator nobody else knows, so in both worlds every remaining
image's views have the same distribution. (A generator re-seeded from a known seed would
break it: removing one image shifts every later image onto other views, and the sum moves by
far more than ``C``.) Clipping after the mean over views keeps the bound at ``C`` for any
``K`` (summing clipped views instead would have sensitivity ``K·C``). The sensitivity tests
(``tests/test_sensitivity.py``) check ``‖Σ_D − Σ_{D∖x}‖ ≤ C`` on every training path.

**Randomness** (:class:`MechanismRandomness`). Three generators: Poisson sampling and
augmentation (CPU), Gaussian noise (training device). By default each is filled from OS
entropy (:func:`os.urandom`) at every start and resume: a CPU generator is torch's MT19937,
whose whole state (624 words of 32 bits, 19 937 bits that matter) is written from 2 496
bytes of entropy — seeding it with ``manual_seed`` would keep only the low 32 bits of any
seed; a CUDA generator is Philox4x32-10, seeded with 64 bits (its whole key). States live in
memory only (no config, summary, checkpoint or log holds them). The run's recorded ``seed``
drives only what need not be secret: initialisation, data subsets, non-DP shuffling.
``reproducible=True`` derives all three from the seed (research and tests; the run is then
not a private release, and its generator states go into the checkpoint so that a resumed
run continues exactly).

**What remains outside the proof.** torch's generators are not cryptographic (Opacus'
``secure_mode`` needs torchcsprng, unavailable for this torch); Gaussian noise is sampled in
floating point (Mironov 2012); wall time depends on ``|S_t|``; ``N`` (hence ``q``) is public.

**Audit canaries** (:class:`GradientCanaries`, ``dpecnn audit`` only): white-box canaries of
norm ``C`` added to the clipped sum before the noise, each sampled like an image. A run with
canaries is never a private release.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from opacus.accountants import IAccountant
from torch.profiler import record_function

from dpecnn.data.augment import AugmentConfig, apply_augmentations, draw_augmentations
from dpecnn.data.split import Split
from dpecnn.privacy.grad_sample import PerSampleGradModule

# Opacus' clipping denominator offset (DPOptimizer: C / (‖g‖ + 1e-6)).
CLIP_EPS = 1e-6
Tensors = list[torch.Tensor]


# torch's CPU generator state (CPUGeneratorImplState, 5 056 bytes): uint64 initial seed, int32 `left`,
# int32 `seeded`, uint64 `next`, then MT19937's 624 state words, each stored as a uint64.
_MT_WORDS, _MT_OFFSET, _CPU_STATE_BYTES = 624, 24, 5056


def entropy_cpu_generator() -> torch.Generator:
    """A CPU generator whose whole MT19937 state comes from :func:`os.urandom` (not a 32-bit seed)."""
    gen = torch.Generator().manual_seed(12345)  # a valid state whose layout is checked, then overwritten
    state = gen.get_state()
    words = state[_MT_OFFSET : _MT_OFFSET + 8 * _MT_WORDS].view(torch.int64)
    if len(state) != _CPU_STATE_BYTES or int(words[0]) != 12345 or int(state[:8].view(torch.int64)) != 12345:
        raise RuntimeError("unknown layout of torch's CPU generator state: refusing to draw weak secret randomness")
    fresh = torch.frombuffer(bytearray(os.urandom(4 * _MT_WORDS)), dtype=torch.int32).to(torch.int64) & 0xFFFFFFFF
    state = state.clone()
    state[:8] = 0  # the initial seed: there is none
    state[_MT_OFFSET : _MT_OFFSET + 8 * _MT_WORDS] = fresh.view(torch.uint8)
    gen.set_state(state)
    return gen


@dataclass
class MechanismRandomness:
    """The generators of the mechanism; ``secret`` says whether they came from OS entropy
    (:func:`entropy_cpu_generator`; the device generator from 64 bits of :mod:`secrets` on
    CUDA, whose Philox generator keeps them all)."""

    sampling: torch.Generator  # Poisson inclusion bits (CPU)
    augmentation: torch.Generator  # views (CPU)
    noise: torch.Generator  # Gaussian noise (training device)
    secret: bool

    NAMES = ("sampling", "augmentation", "noise")

    @classmethod
    def create(cls, device: torch.device, seed: int, reproducible: bool) -> MechanismRandomness:
        if reproducible:  # offsets keep them apart from the seed of initialisation
            return cls(
                sampling=torch.Generator().manual_seed(seed + 1_000_003),
                augmentation=torch.Generator().manual_seed(seed + 3_000_017),
                noise=torch.Generator(device=device).manual_seed(seed + 2_000_003),
                secret=False,
            )
        if device.type == "cpu":
            noise = entropy_cpu_generator()
        else:
            noise = torch.Generator(device=device).manual_seed(secrets.randbits(64))
        return cls(sampling=entropy_cpu_generator(), augmentation=entropy_cpu_generator(), noise=noise, secret=True)

    def state(self) -> dict:
        """Generator states for a checkpoint: only for reproducible runs (secret ones raise)."""
        if self.secret:
            raise RuntimeError("the secret mechanism randomness must never be saved")
        return {name: getattr(self, name).get_state() for name in self.NAMES}

    def load_state(self, state: dict) -> None:
        for name in self.NAMES:
            getattr(self, name).set_state(state[name].cpu())  # generator states are CPU byte tensors


def gaussian_noise(reference: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    """``𝒩(0, std²)`` shaped like ``reference``, from the mechanism's noise ``generator``."""
    return torch.normal(0.0, std, reference.shape, generator=generator, device=reference.device, dtype=reference.dtype)


def flat(tensors: Tensors) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def unflat(vector: torch.Tensor, like: Tensors) -> Tensors:
    return [v.view_as(t) for v, t in zip(vector.split([t.numel() for t in like]), like)]


class GradientCanaries:
    """White-box audit canaries (Steinke, Nasr & Jagielski 2023): canary ``j`` is the Dirac
    direction ``e_{c_j}`` on one coordinate of the flattened parameters, scaled to ``C``.
    ``included[j]`` (a fair coin) says whether it is in the training set; each step an
    included canary joins the batch with probability ``q``, like an image, and adds ``C·e_{c_j}``
    to the clipped sum before noise. Every step's released ``⟨G_t, e_{c_j}⟩`` is kept
    (``observations``, steps × canaries) for the scores of :mod:`dpecnn.privacy.canaries`."""

    def __init__(self, coordinates: torch.Tensor, included: torch.Tensor, clip: float):
        self.coordinates, self.included, self.clip = coordinates.long(), included.bool(), float(clip)
        self.steps: list[torch.Tensor] = []

    @property
    def observations(self) -> torch.Tensor:
        return torch.stack(self.steps) if self.steps else torch.zeros(0, len(self.coordinates), dtype=torch.float64)

    @observations.setter
    def observations(self, value: torch.Tensor) -> None:
        self.steps = list(value.double().unbind(0))

    def inject(self, summed: Tensors, sample_rate: float, generator: torch.Generator, scale: float = 1.0) -> Tensors:
        """``summed`` plus ``scale·C·e_{c_j}`` for every included canary drawn this step."""
        drawn = self.included & (torch.rand(len(self.included), generator=generator) < sample_rate)
        vector = flat(summed).clone()
        idx = self.coordinates[drawn].to(vector.device)
        vector.index_add_(0, idx, torch.full((len(idx),), scale * self.clip, dtype=vector.dtype, device=vector.device))
        return unflat(vector, summed)

    def observe(self, released: Tensors, scale: float = 1.0) -> None:
        """Keep ``⟨released/scale, e_{c_j}⟩`` of every canary for this step."""
        self.steps.append(flat(released)[self.coordinates.to(released[0].device)].double().cpu() / scale)


class DPSGD:
    """The mechanism above, one logical step per :meth:`step` (inside :meth:`attached`).

    ``loss_hook(mean_loss, examples)`` and ``pre_noise_hook(mean clipped gradient)`` feed
    diagnostics, which are computed from un-noised data and are *not* covered by ε.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        accountant: IAccountant,
        *,
        n_train: int,
        expected_batch_size: int,
        noise_multiplier: float,
        max_grad_norm: float,
        physical_batch_size: int,
        augment: AugmentConfig,
        randomness: MechanismRandomness,
        device: torch.device,
        canaries: GradientCanaries | None = None,
        loss_hook: Callable[[float, int], None] | None = None,
        pre_noise_hook: Callable[[Tensors], None] | None = None,
    ):
        self.model, self.optimizer, self.accountant = model, optimizer, accountant
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.n_train, self.expected_batch_size = n_train, expected_batch_size
        self.sample_rate = expected_batch_size / n_train
        self.noise_multiplier, self.max_grad_norm = float(noise_multiplier), float(max_grad_norm)
        self.physical_batch_size, self.augment = physical_batch_size, augment
        self.randomness, self.device, self.canaries = randomness, device, canaries
        self.loss_hook, self.pre_noise_hook = loss_hook, pre_noise_hook
        self.gsm: PerSampleGradModule | None = None

    @contextmanager
    def attached(self):
        """Per-example gradient hooks on the model while training (evaluation runs without)."""
        self.gsm = PerSampleGradModule(self.model, loss_reduction="sum")
        try:
            yield self
        finally:
            self.gsm._close()
            self.gsm = None

    # ---- 1. sampling --------------------------------------------------------------------
    def sample(self) -> torch.Tensor:
        """Indices of this step's Poisson batch (Opacus' ``UniformWithReplacementSampler`` rule)."""
        return (torch.rand(self.n_train, generator=self.randomness.sampling) < self.sample_rate).nonzero().view(-1)

    # ---- 2–4. augmentation, per-example gradients, clipping -----------------------------
    def clipped_sum(self, images: torch.Tensor, labels: torch.Tensor, draws: torch.Tensor | None = None) -> Tensors:
        """``Σ_i ḡ_i`` over the given examples, in physical batches of at most
        ``physical_batch_size`` (the split does not change the sum). ``draws`` are the views'
        augmentation choices (default: drawn now from the secret generator)."""
        if self.gsm is None:
            raise RuntimeError("DPSGD.clipped_sum needs the per-example hooks: use `with mechanism.attached():`")
        k = self.augment.multiplicity
        if draws is None:
            draws = draw_augmentations(len(labels), self.augment, self.randomness.augmentation)
        summed = [torch.zeros_like(p) for p in self.params]
        for start in range(0, len(labels), self.physical_batch_size):
            stop = min(start + self.physical_batch_size, len(labels))
            x = images[start:stop].to(self.device, non_blocking=True)
            y = labels[start:stop].to(self.device, non_blocking=True)
            per_example = self._per_example_gradients(x, y, draws[start * k : stop * k])
            with record_function("dpecnn::clipping"):
                norms = torch.stack([g.flatten(1).norm(dim=1) for g in per_example]).norm(dim=0)
                factor = (self.max_grad_norm / (norms + CLIP_EPS)).clamp(max=1.0)
                for s, g in zip(summed, per_example):
                    s.add_(torch.einsum("i,i...->...", factor, g))
        return summed

    def _per_example_gradients(self, x: torch.Tensor, y: torch.Tensor, draws: torch.Tensor) -> Tensors:
        """``g_i`` for each example of one physical batch: the mean of its views' gradients."""
        k = self.augment.multiplicity
        views = apply_augmentations(x, self.augment, draws)
        losses = F.cross_entropy(self.gsm(views), y.repeat_interleave(k), reduction="none")
        losses.sum().backward()
        if self.loss_hook is not None:
            self.loss_hook(float(losses.detach().mean()), len(y))
        grads = []
        for p in self.params:
            gs = getattr(p, "grad_sample", None)
            if not isinstance(gs, torch.Tensor) or gs.shape != (len(views), *p.shape):
                raise RuntimeError(f"no complete per-example gradient for a parameter of shape {tuple(p.shape)}")
            grads.append(gs if k == 1 else gs.view(len(y), k, *p.shape).mean(1))  # mean over views BEFORE clipping
        self.gsm.zero_grad(set_to_none=True)  # the next physical batch starts from fresh buffers
        return grads

    # ---- 5. canaries and noise -----------------------------------------------------------
    def privatise(self, summed: Tensors) -> Tensors:
        """``G = Σ ḡ_i (+ audit canaries) + 𝒩(0, σ²C² I)``."""
        if self.canaries is not None:
            summed = self.canaries.inject(summed, self.sample_rate, self.randomness.sampling)
        if self.pre_noise_hook is not None:
            self.pre_noise_hook([s / self.expected_batch_size for s in summed])
        with record_function("dpecnn::noise"):
            std = self.noise_multiplier * self.max_grad_norm
            noisy = [s + gaussian_noise(s, std, self.randomness.noise) for s in summed]
        if self.canaries is not None:
            self.canaries.observe(noisy)
        return noisy

    # ---- 6. release and one logical step -------------------------------------------------
    def release(self, summed: Tensors) -> None:
        """Noise ``summed``, step the optimiser with ``G / B`` and record the step."""
        for p, g in zip(self.params, self.privatise(summed)):
            p.grad = g / self.expected_batch_size
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.accountant.step(noise_multiplier=self.noise_multiplier, sample_rate=self.sample_rate)

    def step(self, train: Split) -> int:
        """One DP-SGD step on the training set ``train``; returns ``|S_t|``. Only the sampled images
        are converted to the model's input (:meth:`~dpecnn.data.split.Split.inputs`)."""
        batch = self.sample()
        if len(batch):
            summed = self.clipped_sum(train.inputs(batch), train.labels[batch])
        else:  # an empty Poisson draw still releases noise
            summed = [torch.zeros_like(p) for p in self.params]
        self.release(summed)
        return len(batch)
