"""The DP mechanism's randomness: Poisson sampling of logical batches and Gaussian noise.

DP-SGD's guarantee assumes that whoever sees the released model does not know the noise or
which examples each step sampled. By default both generators are therefore seeded from the
operating system's entropy (:mod:`secrets`) when a run starts and again when it resumes; the
seeds and generator states are held in memory only and never written (config, summary,
checkpoint and logs hold none of them). The run's ``seed`` keeps controlling everything
else: model initialisation, augmentation and data subsets.

``reproducible=True`` derives both generators from the run's seed instead (research and
tests: two runs with the same seed are identical, and a resumed run continues exactly).
Such a run is *not* a private release: anyone who knows the seed can regenerate the noise.

Limits that remain even with secret seeds: the generators are torch's (Mersenne Twister on
the CPU, Philox on CUDA) seeded with 63 bits, not a cryptographic generator (Opacus'
``secure_mode`` needs torchcsprng, which does not exist for this torch); Gaussian noise is
sampled in floating point, which is open to precision attacks (Mironov 2012; Jin et al.
2022); timing (wall time) depends on the Poisson batch sizes.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import torch


@dataclass
class MechanismRandomness:
    """Generators of the DP mechanism: ``sampling`` (CPU, Poisson sampling) and ``noise``
    (on the training device). ``secret`` says whether they came from OS entropy."""

    sampling: torch.Generator
    noise: torch.Generator
    secret: bool

    @classmethod
    def create(cls, device: torch.device, seed: int, reproducible: bool) -> "MechanismRandomness":
        if reproducible:
            seeds = (seed + 1_000_003, seed + 2_000_003)  # apart from the seeds of init and augmentation
        else:
            seeds = (secrets.randbits(63), secrets.randbits(63))
        return cls(sampling=torch.Generator().manual_seed(seeds[0]),
                   noise=torch.Generator(device=device).manual_seed(seeds[1]), secret=not reproducible)

    def state(self) -> dict:
        """Generator states for a checkpoint: only for reproducible runs (secret ones raise)."""
        if self.secret:
            raise RuntimeError("the secret mechanism randomness must never be saved")
        return {"sampling": self.sampling.get_state(), "noise": self.noise.get_state()}

    def load_state(self, state: dict) -> None:
        self.sampling.set_state(state["sampling"].cpu())
        self.noise.set_state(state["noise"].cpu())  # generator states are CPU byte tensors
