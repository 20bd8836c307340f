import numpy as np
import pytest
import torch

from dpecnn.data import AugmentConfig, augment_views, flags_2d, load_dataset, load_split, medmnist_data, summary
from dpecnn.errors import DataError


def test_real_bloodmnist_has_official_split_sizes(real_root):
    data = load_dataset("bloodmnist", real_root, download=False)
    assert {s: len(d) for s, d in data.items()} == {"train": 11959, "val": 1712, "test": 3421}
    pixels, x, y = data["train"].pixels, data["train"].inputs(slice(0, 512)), data["train"].labels
    assert pixels.shape[1:] == (28, 28, 3) and pixels.dtype == torch.uint8  # held as stored: a quarter of float's bytes
    assert x.shape[1:] == (3, 28, 28) and x.dtype == torch.float32
    assert -1.0 <= x.min() < -0.5 and 0.5 < x.max() <= 1.0
    assert y.dtype == torch.int64 and y.ndim == 1 and set(y.unique().tolist()) == set(range(8))


def test_grey_images_stay_one_channel_and_resaved_file_warns_with_both_sums(real_root):
    with pytest.warns(UserWarning, match=r"md5 0119c9d94a2ad22afa5ed83af6df400d differs from medmnist's [0-9a-f]{32}"):
        split = load_split("breastmnist", "val", real_root, download=False)
    assert split.pixels.shape == (78, 28, 28, 1) and split.inputs().shape == (78, 1, 28, 28)


def test_generated_dermamnist_loads_through_the_same_code(synthetic_root):
    with pytest.warns(UserWarning, match="md5"):  # generated, so not medmnist's file
        data = load_dataset("dermamnist", synthetic_root, download=False)
    assert data["train"].inputs().shape == (192, 3, 28, 28)
    assert data["train"].labels.max() == 6  # 7 classes from medmnist.INFO


def test_summary_counts_classes(real_root):
    info = summary("bloodmnist", real_root)
    assert info["splits"]["val"]["n"] == 1712 and sum(info["splits"]["val"]["class_counts"]) == 1712


def test_root_resolution_order(monkeypatch, tmp_path):
    monkeypatch.setenv("DPECNN_DATA_ROOT", str(tmp_path / "env"))
    assert medmnist_data.resolve_root(tmp_path / "arg") == tmp_path / "arg"
    assert medmnist_data.resolve_root() == tmp_path / "env"
    monkeypatch.delenv("DPECNN_DATA_ROOT")
    assert medmnist_data.resolve_root() == medmnist_data.Path(medmnist_data.DEFAULT_ROOT).expanduser()


def test_missing_file_names_flag_path_and_remedy(tmp_path):
    with pytest.raises(DataError) as err:
        load_split("pathmnist", "train", tmp_path, download=False)
    msg = str(err.value)
    assert "pathmnist" in msg and str(tmp_path / "pathmnist.npz") in msg and "DPECNN_DATA_ROOT" in msg
    assert "\n" not in msg


def test_failed_download_gives_the_same_clear_error_and_leaves_no_file(tmp_path, monkeypatch):
    import medmnist

    def offline(self):
        (tmp_path / "pathmnist.npz").write_bytes(b"partial")
        raise RuntimeError("Automatic download failed!\n multi-line medmnist text")

    monkeypatch.setattr(medmnist.dataset.MedMNIST, "download", offline)
    with pytest.raises(DataError, match="download failed"):
        load_split("pathmnist", "train", tmp_path, download=True)
    assert not (tmp_path / "pathmnist.npz").exists()


def test_corrupt_npz_is_a_clear_error(tmp_path):
    (tmp_path / "dermamnist.npz").write_bytes(b"this is not a zip file")
    with pytest.raises(DataError, match="not a readable MedMNIST npz"), pytest.warns(UserWarning):
        load_split("dermamnist", "train", tmp_path, download=False)


def test_unknown_flag_lists_choices():
    with pytest.raises(DataError, match="bloodmnist"):
        load_split("nosuchmnist", "train")
    assert {"bloodmnist", "dermamnist", "pathmnist", "breastmnist", "retinamnist"} <= set(flags_2d())


def test_augmentation_multiplicity_orders_views_by_example():
    x = torch.arange(2.0).view(2, 1, 1, 1).expand(2, 1, 8, 8).contiguous()
    views = augment_views(x, AugmentConfig(multiplicity=3, rot90=True), torch.Generator().manual_seed(0))
    assert views.shape == (6, 1, 8, 8)
    assert torch.equal(views[:3], torch.zeros(3, 1, 8, 8)) and torch.equal(views[3:], torch.ones(3, 1, 8, 8))
    assert augment_views(x, AugmentConfig(1)) is x


def test_augmentation_views_differ():
    x = torch.randn(4, 3, 28, 28)
    views = augment_views(x, AugmentConfig(multiplicity=4), torch.Generator().manual_seed(0)).view(4, 4, 3, 28, 28)
    assert not all(torch.equal(views[0, 0], views[0, k]) for k in range(1, 4))
    assert np.isclose(views.abs().max(), x.abs().max())  # crops/flips only move pixels
