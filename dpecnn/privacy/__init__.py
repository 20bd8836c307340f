"""Differential privacy: the DP-SGD mechanism in one module (:mod:`dpecnn.privacy.mechanism`),
exact per-sample gradients for steerable networks, and accounting on Opacus and dp-accounting."""

from dpecnn.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "accounting": (
            "ACCOUNTANTS",
            "calibrate_noise",
            "check_privacy_targets",
            "epsilon_for_history",
            "epsilon_pld",
            "epsilon_spent",
            "make_accountant",
        ),
        "grad_sample": ("PerSampleGradModule", "per_sample_gradients"),
        "mechanism": ("DPSGD", "GradientCanaries", "MechanismRandomness"),
    },
)
