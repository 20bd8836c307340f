"""A resumable grid of training runs (Table 1): finished runs are skipped, interrupted
ones resumed from their checkpoint, the rest trained, one after another."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

from dpecnn.train.config import TrainConfig
from dpecnn.train.trainer import Trainer


def run_name(cfg: TrainConfig) -> str:
    layout = "-".join(map(str, cfg.layout))
    return f"{cfg.dataset}-{cfg.arch}-{'dp' if cfg.dp else 'nodp'}-k{cfg.aug_mult}-w{layout}-s{cfg.seed}"


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
        out = Path(runs_dir) / run_name(cfg)
        outcome[out.name] = ("skipped (finished)" if (out / "summary.json").exists()
                             else "resumed" if (out / "checkpoint.pt").exists() else "trained")
        ensure_run(cfg, out)
        log(f"{out.name}: {outcome[out.name]}")
    return outcome


def ensure_run(cfg: TrainConfig, out: str | Path) -> Path:
    """``out`` as a finished run of ``cfg``: kept if finished, resumed if interrupted, else trained."""
    out = Path(out)
    if not (out / "summary.json").exists():
        Trainer(cfg, out, resume=(out / "checkpoint.pt").exists()).run()
    return out
