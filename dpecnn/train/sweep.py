"""A resumable grid of training runs (Table 1): finished runs are reused, interrupted ones
resumed from their checkpoint, the rest trained, one after another.

A run folder is named after its readable settings and the first characters of its identity
hash (:meth:`TrainConfig.identity_hash`), so runs whose settings differ never share a
folder, and a folder is reused or resumed only for the settings it records.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

from dpecnn.run_folder import RunFolder
from dpecnn.train.config import TrainConfig

HASH_CHARS = 8


def run_name(cfg: TrainConfig) -> str:
    layout = "-".join(map(str, cfg.layout))
    return (f"{cfg.dataset}-{cfg.arch}-{'dp' if cfg.dp else 'nodp'}-k{cfg.aug_mult}-w{layout}-s{cfg.seed}"
            f"-{cfg.identity_hash()[:HASH_CHARS]}")


def grid(base: TrainConfig, datasets, archs, aug_mults, dps, seeds, layouts=None) -> list[TrainConfig]:
    """The cartesian product of the given values over ``base`` (all validated up front)."""
    configs = [dataclasses.replace(base, dataset=d, arch=a, aug_mult=k, dp=dp, seed=s, layout=tuple(w))
               for d, a, k, dp, s, w in itertools.product(datasets, archs, aug_mults, dps, seeds,
                                                           layouts or [base.layout])]
    for cfg in configs:
        cfg.validate()
    return configs


def run_grid(configs: list[TrainConfig], runs_dir: str | Path, log=print) -> dict[str, str]:
    """Train every configuration into ``runs_dir/<run_name>``; returns name → what happened."""
    outcome = {}
    for cfg in configs:
        folder = RunFolder(Path(runs_dir) / run_name(cfg))
        outcome[folder.path.name] = ("skipped (finished)" if folder.finished
                                     else "resumed" if folder.has_checkpoint else "trained")
        ensure_run(cfg, folder.path)
        log(f"{folder.path.name}: {outcome[folder.path.name]}")
    return outcome


def ensure_run(cfg: TrainConfig, out: str | Path) -> Path:
    """``out`` as a finished run of ``cfg``: reused if finished, resumed if interrupted, else
    trained. A folder that records other settings is an error naming them."""
    from dpecnn.train.trainer import Trainer  # the training machinery only when something trains

    folder = RunFolder(out)
    if folder.started:
        folder.check_identity(cfg.validate())
    if not folder.finished:
        Trainer(cfg, folder.path, resume=folder.has_checkpoint).run()
    return folder.path
