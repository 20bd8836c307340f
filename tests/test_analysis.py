import subprocess
import sys

import numpy as np
import pytest
import torch

from dpecnn.analysis import (brier_score, colocation, conv_layers, expected_calibration_error, fir_magnitude,
                             grad_cam, guided_backprop, impulse_response, input_gradient, l0_sparsity,
                             per_layer_sparsity, reliability_bins)
from dpecnn.models import ARCHS, build_model
from dpecnn.plotting import accuracy_vs_params, attribution_grid, fir_maps, reliability_diagrams, sparsity_curves


def test_sparsity_of_a_hand_built_gradient():
    g1 = torch.tensor([0.0, 1e-6, -1e-5, 2e-5, 1.0])  # |g| ≤ 1e-5: 3 of 5
    g2 = torch.tensor([[1e-3, -3e-6], [0.5, 0.0]])  # 2 of 4
    assert l0_sparsity([g1, g2], 1e-5) == pytest.approx(5 / 9)
    assert per_layer_sparsity([("a", g1), ("b", g2)]) == {"a": pytest.approx(0.6), "b": pytest.approx(0.5)}
    assert l0_sparsity([g1], 1e-7) == pytest.approx(1 / 5)


def test_brier_and_ece_match_hand_computed_values():
    probs = np.array([[0.7, 0.2, 0.1], [0.4, 0.5, 0.1], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1]])
    labels = np.array([0, 0, 2, 1])
    brier = ((0.3**2 + 0.2**2 + 0.1**2) + (0.6**2 + 0.5**2 + 0.1**2) + (0.1**2 + 0.1**2 + 0.2**2)
             + (0.6**2 + 0.7**2 + 0.1**2)) / 4
    assert brier_score(probs, labels) == pytest.approx(brier)
    # bins of width 0.5: {0.5 (wrong)} → (0, 0.5]; {0.7 ok, 0.8 ok, 0.6 wrong} → (0.5, 1]
    ece = 1 / 4 * abs(0 - 0.5) + 3 / 4 * abs(2 / 3 - (0.7 + 0.8 + 0.6) / 3)
    assert expected_calibration_error(probs, labels, n_bins=2) == pytest.approx(ece)
    assert reliability_bins(probs, labels, n_bins=2)["count"] == [1, 3]


def test_a_perfectly_confident_correct_model_scores_zero():
    labels = np.array([0, 2, 1, 2])
    assert brier_score(np.eye(3)[labels], labels) == 0.0
    assert expected_calibration_error(np.eye(3)[labels], labels) == 0.0


@pytest.fixture(scope="module")
def tiny_models():
    torch.manual_seed(0)
    return {arch: build_model(arch, 3, 4, layout=(4, 4, 8)).eval() for arch in ARCHS}


@pytest.mark.parametrize("arch", ARCHS)
def test_guided_backprop_is_really_guided_and_grad_cam_is_an_input_sized_heatmap(tiny_models, arch):
    model, x = tiny_models[arch], torch.randn(3, 3, 28, 28)
    gbp, grad = guided_backprop(model, x), input_gradient(model, x)
    assert gbp.shape == x.shape
    diff = float((gbp - grad).abs().max() / grad.abs().max())
    assert diff > 1e-2, f"{arch}: guided backprop equals the plain gradient (max rel diff {diff:.1e})"
    cam = grad_cam(model, x)
    assert cam.shape == (3, 1, 28, 28) and (cam >= 0).all()


def test_first_layer_impulse_response_is_its_filter():
    model = build_model("e", 1, 2, layout=(4, 4, 8)).eval()
    first = conv_layers(model)[0][1]
    fir = impulse_response(model, first, in_channels=1, size=9)[0]  # (C_out, 9, 9)
    kernel = first.weight.detach()[:, 0]  # cross-correlation with a delta gives the flipped kernel
    assert torch.allclose(fir[:, 3:6, 3:6], kernel.flip(-1, -2), atol=1e-6)
    assert fir_magnitude(fir) > 0 and fir[:, :3].abs().max() == 0


def test_colocation_scores():
    a = torch.rand(2, 28, 28)
    assert colocation(a, a) == pytest.approx({"spearman": 1.0, "top_k_iou": 1.0})
    assert colocation(a, -a)["spearman"] == pytest.approx(-1.0)


def test_each_figure_function_writes_a_non_empty_pdf_and_png(tmp_path):
    rng = np.random.default_rng(0)
    bins = reliability_bins(rng.dirichlet(np.ones(3), 50), rng.integers(0, 3, 50))
    figures = {
        "sparsity": lambda: sparsity_curves({"e": ([0, 1, 2], [0.1, 0.2, 0.3]), "C4": ([0, 1, 2], [0.2, 0.3, 0.5])},
                                            tmp_path, "sparsity"),
        "accuracy_vs_params": lambda: accuracy_vs_params(
            [{"arch": "e", "line": "e", "params": 4e4, "mean": 0.8, "std": 0.01, "n": 3, "layout": [8, 16, 32]},
             {"arch": "e", "line": "e", "params": 2.5e6, "mean": 0.82, "std": None, "n": 1},
             {"arch": "C4", "line": "C4", "params": 6.5e4, "mean": 0.86, "std": 0.02, "n": 3}],
            tmp_path, "accuracy_vs_params"),
        "reliability": lambda: reliability_diagrams({"e DP": bins, "C4 DP": bins}, tmp_path, "reliability",
                                                    {"e DP": {"Brier": 0.3}}),
        "fir_maps": lambda: fir_maps({"e": rng.random((28, 28)), "C4": rng.random((28, 28))}, tmp_path, "fir_maps",
                                     {"e": 0.1}),
        "attributions": lambda: attribution_grid(rng.uniform(-1, 1, (2, 3, 28, 28)),
                                                 {"e": {"gradcam": rng.random((2, 28, 28)),
                                                        "guided": rng.random((2, 28, 28))}}, tmp_path, "attributions"),
    }
    for name, make in figures.items():
        make()
        for ext in ("pdf", "png"):
            assert (tmp_path / f"{name}.{ext}").stat().st_size > 1000, f"{name}.{ext}"
    assert b"/FontFile2" in (tmp_path / "sparsity.pdf").read_bytes()  # TrueType fonts embedded (fonttype 42)


def test_analyse_cli_on_a_finished_run_and_on_a_wrong_folder(synthetic_root, tmp_path):
    from dpecnn.train import TrainConfig, Trainer

    cfg = TrainConfig(dataset="pathmnist", data_root=str(synthetic_root), arch="C4", layout=(4, 4, 8), epochs=1,
                      batch_size=32, physical_batch_size=32, train_subset=96, eval_subset=32)
    Trainer(cfg, tmp_path / "run").run()
    res = subprocess.run([sys.executable, "-m", "dpecnn", "analyse", str(tmp_path / "run"), "--out",
                          str(tmp_path / "fig"), "--images", "3"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    for name in ("sparsity", "reliability", "fir_maps", "attributions"):
        assert (tmp_path / "fig" / f"{name}.pdf").stat().st_size > 0
    assert "conv1.0" in (tmp_path / "fig" / "analysis.json").read_text()
    bad = subprocess.run([sys.executable, "-m", "dpecnn", "analyse", str(tmp_path)], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and "not a finished run" in bad.stderr
