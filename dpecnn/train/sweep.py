"""A resumable grid of training runs (Table 1): finished runs are reused, interrupted ones
resumed from their checkpoint, the rest trained.

A run folder is named after its readable settings and the first characters of its identity
hash (:meth:`TrainConfig.identity_hash`), so runs whose settings differ never share a
folder, and a folder is reused or resumed only for the settings it records. The local
engine trains one configuration after another; :mod:`dpecnn.train.ray_sweep` runs them as
Ray tasks. Either way a failing run is reported with its error and the others go on.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from dpecnn.data.datasets import dataset_name
from dpecnn.io import first_line
from dpecnn.run_folder import RunFolder
from dpecnn.train.config import TrainConfig

HASH_CHARS = 8


def run_name(cfg: TrainConfig) -> str:
    layout = "-".join(map(str, cfg.layout))
    readout = "-orientation" if cfg.identity().get("readout") == "orientation" else ""
    size = f"-{cfg.size}px" if cfg.size else ""
    return (
        f"{dataset_name(cfg.dataset)}{size}-{cfg.arch}{readout}-{'dp' if cfg.dp else 'nodp'}-k{cfg.aug_mult}"
        f"-w{layout}-s{cfg.seed}-{cfg.identity_hash()[:HASH_CHARS]}"
    )


def grid(base: TrainConfig, datasets, archs, aug_mults, dps, seeds, layouts=None, epsilons=None) -> list[TrainConfig]:
    """The cartesian product of the given values over ``base`` (all validated up front).
    ``epsilons`` (default: ``base.epsilon``) apply to DP runs; a non-DP run is trained once."""
    configs, seen = [], set()
    for d, a, k, dp, s, w, eps in itertools.product(
        datasets, archs, aug_mults, dps, seeds, layouts or [base.layout], epsilons or [base.epsilon]
    ):
        cfg = dataclasses.replace(
            base, dataset=d, arch=a, aug_mult=k, dp=dp, seed=s, layout=tuple(w), epsilon=eps if dp else base.epsilon
        ).validate()
        if cfg.identity_hash() not in seen:
            seen.add(cfg.identity_hash())
            configs.append(cfg)
    return configs


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


@dataclass
class RunResult:
    """What happened to one configuration of a sweep."""

    name: str
    status: str  # "trained", "resumed", "skipped (finished)" or "failed"
    error: str | None = None
    val_acc: float | None = None
    epsilon: float | None = None
    seconds: float = 0.0

    def line(self) -> str:
        if self.status == "failed":
            return f"{self.name}: failed: {self.error}"
        eps = "" if self.epsilon is None else f", ε {self.epsilon:.2f}"
        return f"{self.name}: {self.status} (val acc {100 * self.val_acc:.2f}%{eps}, {self.seconds:.0f} s)"


def train_one(cfg: TrainConfig, runs_dir: str | Path) -> RunResult:
    """Reuse, resume or train ``runs_dir/<run_name(cfg)>``; any error becomes a failed result."""
    folder = RunFolder(Path(runs_dir) / run_name(cfg))
    status = "skipped (finished)" if folder.finished else "resumed" if folder.has_checkpoint else "trained"
    start = time.perf_counter()
    try:
        ensure_run(cfg, folder.path)
        summary = folder.read_summary()
    except Exception as exc:  # one run's failure must not stop the sweep; it is reported instead
        return RunResult(
            folder.path.name, "failed", f"{type(exc).__name__}: {first_line(exc)}", seconds=time.perf_counter() - start
        )
    return RunResult(
        folder.path.name,
        status,
        val_acc=summary["val_acc"],
        epsilon=summary["epsilon_spent"],
        seconds=time.perf_counter() - start,
    )


class SweepProgress:
    """A bar over finished runs, and each run's result line as it finishes."""

    def __init__(self, total: int, log=None):
        self.log = log
        self.bar = tqdm(total=total, desc="runs", unit="run", disable=None if log is None else True)
        self.results: list[RunResult] = []

    def done(self, result: RunResult) -> None:
        self.results.append(result)
        (self.log or self.bar.write)(result.line())
        self.bar.update(1)

    def close(self) -> list[RunResult]:
        self.bar.close()
        return self.results


def run_grid(configs: list[TrainConfig], runs_dir: str | Path, log=None) -> list[RunResult]:
    """Train every configuration into ``runs_dir/<run_name>``, one after another (the local
    engine). ``log`` receives each result line (default: written above a progress bar)."""
    progress = SweepProgress(len(configs), log)
    try:
        for cfg in configs:
            progress.done(train_one(cfg, runs_dir))
    finally:
        progress.close()
    return progress.results


def summary_lines(results: list[RunResult]) -> list[str]:
    """The per-run summary printed at the end of a sweep, then the counts."""
    counts = {s: sum(r.status == s for r in results) for s in ("trained", "resumed", "skipped (finished)", "failed")}
    return [r.line() for r in sorted(results, key=lambda r: r.name)] + [
        ", ".join(f"{n} {s}" for s, n in counts.items())
    ]
