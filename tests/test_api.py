"""The Python API of docs/python-api.md: in-memory images in, a release out, as the command line does."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import TensorDataset

import dpecnn.api as dp
from dpecnn.errors import DataError


def scans(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 grey 32 × 32 images whose class is their brightness (0 dark, 1 bright)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    images = rng.integers(0, 100, (n, 32, 32)) + 120 * labels[:, None, None]
    return images.astype(np.uint8), labels


def test_in_memory_arrays_and_a_torch_dataset_train_evaluate_export_and_load(tmp_path):
    x_train, y_train = scans(96, 0)
    x_test, y_test = scans(40, 1)
    as_dataset = TensorDataset(torch.from_numpy(x_train)[:, None], torch.from_numpy(y_train))  # (C, H, W) tensors
    written = dp.write_npz(tmp_path / "a.npz", train=as_dataset, test=(x_test, y_test), class_names=["dark", "bright"])
    again = dp.write_npz(
        tmp_path / "b.npz", train=(x_train, y_train), test=(x_test, y_test), class_names=["dark", "bright"]
    )
    assert written.read_bytes() == again.read_bytes()  # the Dataset and the arrays are the same data

    lines = []
    settings = dict(arch="e", layout=(2, 2, 4), batch_size=32, physical_batch_size=32, epochs=2, dp=False, lr=0.05)
    summary = dp.train(written, tmp_path / "run", report=lines.append, **settings)
    assert len(lines) == 2 and summary["num_classes"] == 2 and summary["data"]["source"] == "npz"
    result = dp.evaluate(tmp_path / "run", "test")
    assert result["n"] == 40 and result["acc"] == pytest.approx(summary["test_acc"])
    files = dp.export(tmp_path / "run", tmp_path / "release", force=True)  # non-DP: exported only with force
    assert {f.name for f in files} == {"model.safetensors", "model.onnx", "model_card.json", "model_card.md"}
    release = dp.load(tmp_path / "release")
    predicted = release.predict(x_test)
    assert predicted == [release.class_names[k] for k in result["probs"].argmax(1)]
    assert release.predict(Image.fromarray(x_test[0])) == predicted[:1]


@pytest.mark.parametrize(
    "train, message",
    [
        (TensorDataset(torch.rand(4, 1, 8, 8), torch.zeros(4)), "ToTensor"),
        ((np.zeros((4, 8, 8), np.float32), np.zeros(4)), "float32 pixels"),
        ([(np.zeros((8, 8), np.uint8), 0), (np.zeros((9, 9), np.uint8), 1)], r"image 1 is \(9, 9\)"),
        ((np.zeros((2, 8, 8), np.uint8), np.array(["a", "b"])), "labels are not integers"),
        ((np.zeros((2, 3, 8, 8), np.uint8), np.zeros(2)), "channels last"),
        ((np.zeros((3, 8, 8), np.uint8), np.zeros(2)), "3 images but 2 labels"),
    ],
)
def test_in_memory_data_that_would_be_read_wrongly_is_refused(tmp_path, train, message):
    with pytest.raises(DataError, match=message):
        dp.write_npz(tmp_path / "x.npz", train=train)
    assert not (tmp_path / "x.npz").exists()
