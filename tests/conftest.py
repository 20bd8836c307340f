import os
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from dpecnn.data import write_synthetic_npz

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "medmnist"


@pytest.fixture(scope="session")
def real_root() -> Path:
    """The real MedMNIST files (``$DPECNN_DATA_ROOT`` or ../shared/data/medmnist)."""
    root = Path(os.environ.get("DPECNN_DATA_ROOT", SHARED))
    if not (root / "bloodmnist.npz").exists():
        pytest.skip(f"real MedMNIST files not found under {root}")
    return root


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """Generated MedMNIST-format files for flags that are not available offline."""
    root = tmp_path_factory.mktemp("medmnist")
    for flag in ("dermamnist", "pathmnist", "bloodmnist", "breastmnist"):
        write_synthetic_npz(flag, root, sizes=(192, 64, 64), seed=1)
    return root


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_runs(real_root, tmp_path_factory):
    """Two tiny finished runs on real BloodMNIST (real files: no md5 warning in notebook output)."""
    from dpecnn.train import TrainConfig
    from dpecnn.train.sweep import ensure_run

    out = tmp_path_factory.mktemp("explore_runs")
    quick = {
        "dataset": "bloodmnist",
        "dp": True,
        "epochs": 1,
        "layout": (4, 4, 8),
        "batch_size": 32,
        "physical_batch_size": 32,
        "train_subset": 96,
        "eval_subset": 32,
        "data_root": str(real_root),
    }
    runs = {arch: str(ensure_run(TrainConfig(arch=arch, **quick), out / arch)) for arch in ("e", "C4")}
    return runs, {k: list(v) if isinstance(v, tuple) else v for k, v in quick.items()}


def flags(**settings) -> list[str]:
    """Command-line flags from keyword settings: ``batch_size=32`` → ``["--batch-size", "32"]``, ``True`` →
    the bare flag (the tests' runs are written as settings, not as long argument lists)."""
    out = []
    for key, value in settings.items():
        out += [f"--{key.replace('_', '-')}"] + ([] if value is True else [str(value)])
    return out


# The smallest DP run of the tests as TrainConfig settings (dermamnist is 3-channel, 7 classes), and as
# command-line settings for flags().
TINY_RUN = dict(
    dataset="dermamnist",
    layout=(2, 2, 4),
    batch_size=32,
    physical_batch_size=32,
    epochs=1,
    train_subset=96,
    eval_subset=32,
)
TINY_CLI = {**TINY_RUN, "arch": "e", "layout": "2,2,4"}


# Norm max pooling keeps the vector of largest norm in each window: where two norms nearly tie, a
# rounding difference (another CPU, the summation order of a transformed input, the float32 rounding of
# the sampled filter basis, ≈ 1e-7) can pick the other vector and move the output by far more than
# rounding. Invariance tests of O(2) therefore run in float64 on inputs whose every window is at least
# TIE_MARGIN (relative) from a tie: which inputs qualify does not depend on the CPU.
TIE_MARGIN = 1e-5


@contextmanager
def norm_pool_gaps():
    """Collects, for every norm-max pooling window evaluated inside the block, the relative gap
    between the largest and the second-largest squared norm (yields the list of per-call minima)."""
    from dpecnn.models import equivariant

    gaps, windowed, global_ = [], equivariant.centred_norm_max_pool, equivariant.global_norm_max_pool

    def energies(x, subfield):
        b, c, h, w = x.shape
        return x.detach().view(b, c // subfield, subfield, h, w).pow(2).sum(2)

    def record(values, dim):
        top = values.topk(2, dim=dim).values
        gaps.append(float(((top.select(dim, 0) - top.select(dim, 1)) / top.select(dim, 0).clamp_min(1e-300)).min()))

    def windowed_recorded(x, subfield):
        e = energies(x, subfield)
        k = 2 if x.shape[-1] % 2 == 0 else 3
        record(F.unfold(e.flatten(0, 1).unsqueeze(1), k, stride=2), dim=1)
        return windowed(x, subfield)

    def global_recorded(x, subfield):
        record(energies(x, subfield).flatten(2), dim=2)
        return global_(x, subfield)

    equivariant.centred_norm_max_pool, equivariant.global_norm_max_pool = windowed_recorded, global_recorded
    try:
        yield gaps
    finally:
        equivariant.centred_norm_max_pool, equivariant.global_norm_max_pool = windowed, global_


def smallest_tie_gap(model, *inputs) -> float:
    with norm_pool_gaps() as gaps, torch.no_grad():
        for x in inputs:
            model(x)
    return min(gaps)


def input_far_from_ties(model, shape, transforms, seeds=range(20)) -> torch.Tensor:
    """The first float64 normal input (by seed) that, with its ``transforms``, is far from every tie."""
    for seed in seeds:
        x = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        if smallest_tie_gap(model, x, *(t(x) for t in transforms)) > TIE_MARGIN:
            return x
    raise AssertionError(f"no input of shape {shape} among seeds {seeds} is far from norm-pooling ties")
