"""The runs of a sweep and their projected cost (``sweep --plan``), without training.

The sweep presets are in :mod:`~dpecnn.train.presets`.

Projected time of a run = training steps × t(arch, DP or not) × K × (B / B₀) × F(layout, S) /
F(layout₀, S₀), where t is the benchmark's step time at its batch B₀, layout₀ and image size S₀
(``python -m dpecnn.bench --save``; 256, 8-16-32, 28) and F(w0, w1, w2, S) = Σ c_in·c_out·H·W over
ResNet-9's convolutions at S × S with s₁, s₂, s₃ the sizes after each centred pooling (28 → 14 →
7 → 3): 3·w0·S² + w0·w1·S² + 2·w1²·s₁² + w1·w2·s₁² + w2²·s₂² + 2·w2²·s₃².
Evaluation after each epoch is not counted (a few per cent). Steps: :func:`~dpecnn.train.schedule.steps_per_epoch`
(⌊N/B⌋ under DP, ⌈N/B⌉ otherwise), N the training-split size from ``medmnist.INFO`` (own
data: the images counted when the dataset is read).
"""

from __future__ import annotations

from pathlib import Path

import torch

from dpecnn import io
from dpecnn.errors import DpecnnError
from dpecnn.run_folder import RunFolder
from dpecnn.train.config import TrainConfig, with_recipe
from dpecnn.train.presets import DEFAULT_AXES, PRESET_RECIPE, PRESETS
from dpecnn.train.schedule import steps_per_epoch
from dpecnn.train.sweep import grid, run_name

# Step costs of the 2-core development machine (python -m dpecnn.bench --save), for a CPU
# plan when no benchmark of this machine has been saved.
REFERENCE_CPU_COSTS = Path(__file__).with_name("reference_cpu_step_costs.json")


def sweep_configs(preset: str | None, settings: dict | None = None, axes: dict | None = None) -> list[TrainConfig]:
    """Every run of a sweep: the axes of ``preset`` (None: :data:`DEFAULT_AXES`) overridden by
    ``axes``, each run's ``settings`` (TrainConfig fields) on top of the preset's recipe for its
    DP or non-DP half; ``sweep`` and gpucheck's Table 1 projection both build their grids here."""
    if preset is not None and preset not in PRESETS:
        raise DpecnnError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    axes = {**DEFAULT_AXES, **PRESETS.get(preset, {}), **(axes or {})}
    recipe = PRESET_RECIPE if preset else None
    return [
        cfg
        for dp in axes["dp_values"]  # the recipe has a DP and a non-DP half
        for cfg in grid(
            TrainConfig(**with_recipe(recipe, {**(settings or {}), "dp": dp})),
            axes["datasets"],
            axes["archs"],
            axes["aug"],
            [dp],
            axes["seeds"],
            axes["layouts"],
            axes["epsilons"],
        )
    ]


def pooled(size: int) -> int:
    """The side after one centred pooling (:func:`~dpecnn.models.layers.centred_max_pool`)."""
    return size // 2 if size % 2 == 0 else (size - 3) // 2 + 1


def conv_work(layout, size: int = 28) -> float:
    """F(layout, size): Σ c_in·c_out·H·W over ResNet-9's convolutions (see module docstring)."""
    w0, w1, w2 = layout
    s0 = size * size
    s1, s2, s3 = (n * n for n in (pooled(size), pooled(pooled(size)), pooled(pooled(pooled(size)))))
    return 3 * w0 * s0 + w0 * w1 * s0 + 2 * w1 * w1 * s1 + w1 * w2 * s1 + w2 * w2 * s2 + 2 * w2 * w2 * s3


def _own_data(cfg: TrainConfig):
    from dpecnn.data.datasets import open_dataset

    return open_dataset(cfg.dataset, cfg.data_root, cfg.size, cfg.channels)


def load_step_costs(device: torch.device, bench_file: str | Path | None = None) -> tuple[dict, str]:
    """Per-step costs ``{arch: {"dp_step_s", "nondp_step_s"}}`` and where they came from."""
    from dpecnn.bench import BENCH_DIR, device_key

    if bench_file is None:
        saved = BENCH_DIR / f"{device_key(device)}.json"
        if saved.exists():
            bench_file = saved
        elif device.type == "cpu":
            bench_file = REFERENCE_CPU_COSTS
        else:
            raise DpecnnError(
                f"no benchmark saved for {device_key(device)}: run "
                f"python -m dpecnn.bench --device {device} --save first, or pass --bench FILE"
            )
    costs = io.read_json(bench_file)
    shown = bench_file  # the package's reference costs by their place in the source tree, not this machine's path
    if Path(bench_file) == REFERENCE_CPU_COSTS:
        shown = f"dpecnn/train/{REFERENCE_CPU_COSTS.name}"
    source = (
        f"{shown} ({costs.get('device_key')}, {costs.get('threads')} threads, {costs.get('date')}, "
        f"batch {costs.get('batch')}, layout {'-'.join(map(str, costs.get('layout', [])))}, "
        f"size {costs.get('size', 28)})"
    )
    return costs, source


def training_steps(cfg: TrainConfig) -> int:
    import medmnist

    from dpecnn.data.datasets import is_medmnist

    n = cfg.train_subset or (
        medmnist.INFO[cfg.dataset]["n_samples"]["train"]
        if is_medmnist(cfg.dataset)
        else len(_own_data(cfg).splits["train"])
    )
    return cfg.epochs * steps_per_epoch(n, cfg.batch_size, cfg.dp)


def plan_rows(configs: list[TrainConfig], runs_dir: str | Path, costs: dict) -> list[dict]:
    """One row per run: name, state, steps, projected seconds still to spend and, for a finished
    run, the projection of the whole run (``whole``) beside the wall time its summary records."""
    from dpecnn.data.datasets import is_medmnist

    rows = []
    for cfg in configs:
        if cfg.arch not in costs:
            raise DpecnnError(
                f"the benchmark holds no step cost for {cfg.arch}: run python -m dpecnn.bench --archs {cfg.arch} --save"
            )
        folder = RunFolder(Path(runs_dir) / run_name(cfg))
        done_epochs = sum(r.get("kind") == "epoch" for r in folder.metrics()) if folder.started else 0
        state = "finished" if folder.finished else f"resume at epoch {done_epochs + 1}" if done_epochs else "new"
        step_s = costs[cfg.arch]["dp_step_s" if cfg.dp else "nondp_step_s"]
        size = cfg.size or (28 if is_medmnist(cfg.dataset) else _own_data(cfg).pipeline.size)
        scale = (
            cfg.aug_mult
            * cfg.batch_size
            / costs["batch"]
            * conv_work(cfg.layout, size)
            / conv_work(costs["layout"], costs.get("size", 28))
        )
        steps = training_steps(cfg)
        whole = steps * step_s * scale
        row = {
            "run": folder.path.name,
            "state": state,
            "steps": steps,
            "seconds": whole * (1 - done_epochs / cfg.epochs),
        }
        if folder.finished:
            row |= {"seconds": 0.0, "whole": whole, "wall_s": folder.read_summary().get("wall_time_s")}
        rows.append(row)
    return rows


def _duration(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h" if seconds < 48 * 3600 else f"{seconds / 86400:.1f} days"


def format_plan(rows: list[dict], source: str) -> str:
    lines = [f"{'run':<58} {'state':<20} {'steps':>7} {'projected':>11}"]
    lines += [f"{r['run']:<58} {r['state']:<20} {r['steps']:>7} {_duration(r['seconds']):>11}" for r in rows]
    total = sum(r["seconds"] for r in rows)
    lines.append(
        f"{len(rows)} runs ({sum(r['state'] == 'finished' for r in rows)} finished); projected "
        f"{_duration(total)} of training, one run after another on one such device"
    )
    timed = [r for r in rows if r.get("wall_s")]
    if timed and total:
        # Projections count training steps only; a finished run's wall time also holds its evaluation,
        # diagnostics and whatever machine it ran on, so the ratio is what this folder's runs really took.
        ratio = sum(r["wall_s"] for r in timed) / sum(r["whole"] for r in timed)
        runs = f"{len(timed)} finished run{'s' if len(timed) > 1 else ''}"
        lines.append(
            f"the {runs} took {ratio:.1f}× their projection in wall time (as their summaries record); "
            f"at that ratio what is left takes {_duration(ratio * total)}"
        )
    lines.append(f"per-step costs: {source}")
    return "\n".join(lines)
