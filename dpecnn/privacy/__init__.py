"""Differential privacy: exact per-sample gradients for steerable networks, and DP-SGD on
Opacus parts (accountants, noise calibration, DPOptimizer, Poisson sampling)."""

from dpecnn.privacy.accounting import (
    ACCOUNTANTS,
    calibrate_noise,
    check_privacy_targets,
    epsilon_for_history,
    epsilon_pld,
    epsilon_spent,
    make_accountant,
)
from dpecnn.privacy.dp_sgd import ObservedDPOptimizer, average_views, mark_empty_batch
from dpecnn.privacy.randomness import MechanismRandomness
from dpecnn.privacy.grad_sample import PerSampleGradModule, per_sample_gradients

__all__ = [
    "ACCOUNTANTS", "MechanismRandomness", "ObservedDPOptimizer", "average_views", "calibrate_noise", "check_privacy_targets",
    "epsilon_for_history", "epsilon_pld", "epsilon_spent", "PerSampleGradModule", "make_accountant", "mark_empty_batch",
    "per_sample_gradients",
]
