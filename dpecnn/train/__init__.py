"""Training: typed run configuration, the DP / non-DP trainer, evaluation, sweeps.

``Trainer`` and ``resolve_device`` are imported on first use, so that reading a
configuration (``dpecnn.train.config``) does not load the training machinery.
"""

from dpecnn.train.config import OPTIMIZERS, TrainConfig

__all__ = ["OPTIMIZERS", "TrainConfig", "Trainer", "evaluate", "resolve_device"]


def __getattr__(name):
    if name in ("Trainer", "resolve_device"):
        from dpecnn.train import trainer

        return getattr(trainer, name)
    if name == "evaluate":
        from dpecnn.train.metrics import evaluate

        return evaluate
    raise AttributeError(f"module 'dpecnn.train' has no attribute '{name}'")
