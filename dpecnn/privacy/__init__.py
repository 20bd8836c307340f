"""Differential privacy: the DP-SGD mechanism in one module (:mod:`dpecnn.privacy.mechanism`),
exact per-sample gradients for steerable networks, and accounting on Opacus and dp-accounting."""

from dpecnn.privacy.accounting import (
    ACCOUNTANTS,
    calibrate_noise,
    check_privacy_targets,
    epsilon_for_history,
    epsilon_pld,
    epsilon_spent,
    make_accountant,
)
from dpecnn.privacy.grad_sample import PerSampleGradModule, per_sample_gradients
from dpecnn.privacy.mechanism import DPSGD, GradientCanaries, MechanismRandomness

__all__ = [
    "ACCOUNTANTS",
    "DPSGD",
    "GradientCanaries",
    "MechanismRandomness",
    "PerSampleGradModule",
    "calibrate_noise",
    "check_privacy_targets",
    "epsilon_for_history",
    "epsilon_pld",
    "epsilon_spent",
    "make_accountant",
    "per_sample_gradients",
]
