"""The escnn-free model of a release: ONNX graphs checked against the torch model, Grad-CAM in closed form."""

import warnings

import pytest
import torch

from dpecnn.data.split import Split
from dpecnn.deploy import OnnxModel, SlicedAdaptiveMaxPool2d, write_onnx
from dpecnn.errors import DpecnnError
from dpecnn.models import build_model


@pytest.mark.parametrize("size, out", [(3, 2), (7, 2), (8, 2), (5, 1), (6, 3)])
def test_sliced_pooling_takes_the_adaptive_pools_windows(size, out):
    x = torch.randn(2, 3, size, size)
    assert torch.equal(SlicedAdaptiveMaxPool2d(out)(x), torch.nn.AdaptiveMaxPool2d(out)(x))  # maxima are exact


@pytest.mark.parametrize("arch, readout", [("e", "invariant"), ("C4", "orientation"), ("O2", "orientation")])
def test_the_graph_matches_the_model_and_says_where_grad_cam_holds(tmp_path, arch, readout):
    torch.manual_seed(0)
    model = build_model(arch, 3, 4, (2, 2, 4), readout=readout).eval()
    images = Split(torch.randint(0, 256, (20, 28, 28, 3), dtype=torch.uint8), torch.zeros(20, dtype=torch.long))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        record = write_onnx(model, images, tmp_path / "model.onnx")
    assert not [w for w in caught if "training mode" in str(w.message)], "the exported graph is the eval model's"
    assert record["checked_images"] == 20 and record["max_probability_difference"] <= 1e-5
    if arch == "O2":  # InducedGlobalPool is not a max pool: the closed form does not hold
        assert "needs the torch model" in record["grad_cam"] and "grad_cam_checked_images" not in record
    else:
        assert record["grad_cam_checked_images"] == 20 and record["grad_cam_max_relative_difference"] <= 1e-5
    logits, features = OnnxModel(tmp_path / "model.onnx").outputs(images.inputs(slice(0, 3)))
    assert logits.shape == (3, 4) and features.dim() == 4


def test_a_graph_that_differs_from_the_model_is_not_written(tmp_path, monkeypatch):
    from dpecnn import deploy

    model = build_model("e", 3, 4, (2, 2, 4)).eval()
    real = deploy.OnnxModel.outputs
    monkeypatch.setattr(deploy.OnnxModel, "outputs", lambda self, x: (real(self, x)[0] + 1e-2 * torch.arange(4), None))
    with pytest.raises(DpecnnError, match="differs from the model"):
        images = Split(torch.randint(0, 256, (8, 28, 28, 3), dtype=torch.uint8), torch.zeros(8, dtype=torch.long))
        write_onnx(model, images, tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()
