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
