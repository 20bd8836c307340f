import os
from pathlib import Path

import pytest
import torch

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
