"""Training: typed run configuration, the DP / non-DP trainer, evaluation, atomic I/O."""

from dpecnn.train.config import OPTIMIZERS, TrainConfig
from dpecnn.train.metrics import evaluate
from dpecnn.train.trainer import Trainer, resolve_device

__all__ = ["OPTIMIZERS", "TrainConfig", "Trainer", "evaluate", "resolve_device"]
