"""The sweep on Ray: every configuration is a Ray task.

Without an address, a local Ray instance is started for the sweep (and stopped after it);
with one (``auto`` or ``HOST:PORT``), the driver joins an existing cluster started with
``ray start --head`` / ``ray start --address …``. Each task asks for ``cpus_per_run`` CPUs
and ``gpus_per_run`` GPUs (fractions allowed: the models are small), so Ray runs as many at
once as the resources allow. Tasks call :func:`~dpecnn.train.sweep.train_one`: a finished
run is reused, an interrupted one resumed, and the run-folder lock guarantees that no
folder is trained by two workers at once. On a cluster the runs folder must be on a file
system every node sees, and dpecnn installed on every node.

Ray is imported only here, when a Ray sweep starts; ``import dpecnn`` never imports it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

from dpecnn.errors import DpecnnError
from dpecnn.io import first_line
from dpecnn.train.config import TrainConfig
from dpecnn.train.sweep import RunResult, SweepProgress, run_name, train_one


def _task(cfg: TrainConfig, runs_dir: str, threads: int) -> RunResult:
    import torch

    torch.set_num_threads(threads)  # Ray's CPU reservation; torch would otherwise use every core
    return train_one(cfg, runs_dir)


def _for_workers(cfg: TrainConfig, gpus_per_run: float) -> TrainConfig:
    """Paths a worker on another node can open, and no GPU for a task that reserved none (Ray
    no longer hides the GPUs from such tasks). Neither changes the run's identity."""
    device = "cpu" if gpus_per_run == 0 and cfg.device == "auto" else cfg.device
    root = str(Path(cfg.data_root).resolve()) if cfg.data_root else None
    return dataclasses.replace(cfg, device=device, data_root=root)


def _check_resources(total: dict, cpus_per_run: float, gpus_per_run: float) -> None:
    """Tasks that ask for more than the cluster has would wait for ever: say so instead."""
    if cpus_per_run > total.get("CPU", 0) or gpus_per_run > total.get("GPU", 0):
        raise DpecnnError(
            f"each run asks for {cpus_per_run:g} CPUs and {gpus_per_run:g} GPUs, but the Ray "
            f"cluster has {total.get('CPU', 0):g} CPUs and {total.get('GPU', 0):g} GPUs"
        )


def run_grid_ray(
    configs: list[TrainConfig],
    runs_dir: str | Path,
    address: str | None = None,
    cpus_per_run: float = 1.0,
    gpus_per_run: float = 0.0,
    num_cpus: int | None = None,
    log=None,
) -> list[RunResult]:
    """Train every configuration as a Ray task; results in the order they finish.

    ``num_cpus`` caps the CPUs of a local instance (default: all); it is ignored when joining
    a cluster. ``log`` receives each result line (default: written above a progress bar).
    """
    try:
        import ray
    except ImportError:
        raise DpecnnError("the Ray engine needs the 'ray' package (pip install 'ray==2.60.0')") from None
    if cpus_per_run <= 0 or gpus_per_run < 0:
        raise DpecnnError(f"--cpus-per-run must be > 0 and --gpus-per-run ≥ 0, got {cpus_per_run}, {gpus_per_run}")
    configs = [_for_workers(cfg, gpus_per_run) for cfg in configs]
    env = {k: str(Path(os.environ[k]).resolve()) for k in ("DPECNN_DATA_ROOT",) if k in os.environ}
    init = dict(
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
        runtime_env={"env_vars": env} if env else None,
    )
    if address:
        ray.init(address=address, **init)
    else:  # Ray's own CPU count respects cgroup and batch-system limits; only an explicit cap overrides it
        ray.init(**init, **({"num_cpus": num_cpus} if num_cpus else {}))
    progress = SweepProgress(len(configs), log)
    try:
        _check_resources(ray.cluster_resources(), cpus_per_run, gpus_per_run)
        task = ray.remote(_task).options(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=0)
        threads = max(1, int(cpus_per_run))
        pending = {task.remote(cfg, str(Path(runs_dir).resolve()), threads): cfg for cfg in configs}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                cfg = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as exc:  # the worker itself died (killed, out of memory …)
                    result = RunResult(run_name(cfg), "failed", f"{type(exc).__name__}: {first_line(exc)}")
                progress.done(result)
    finally:
        progress.close()
        ray.shutdown()
    return progress.results
