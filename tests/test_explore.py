import json

import torch

from dpecnn.analysis.measures.equivariance import equivariance_error, inverse_transform, transform
from dpecnn.explore import Explorer, equivariance_errors, equivariance_verdict
from dpecnn.models import build_model


def test_rotation_is_exact_at_quarter_turns_and_continuous_in_between():
    x = torch.randn(2, 3, 28, 28)
    assert torch.equal(transform(x, 90.0), torch.rot90(x, 1, dims=(-2, -1)))
    # the resampling path just off 90° agrees with the exact quarter turn: same direction
    assert torch.allclose(transform(x, 90.0 + 1e-4), transform(x, 90.0), atol=1e-3)
    assert torch.equal(inverse_transform(transform(x, 270.0, flip=True), 270.0, flip=True), x)
    r = torch.arange(28.0)
    blob = torch.exp(-((r[None, :] - 17) ** 2 + (r[:, None] - 10) ** 2) / 20)  # smooth, off-centre
    assert equivariance_error(inverse_transform(transform(blob, 30.0), 30.0), blob) < 0.05
    assert equivariance_error(transform(blob, 30.0), blob) > 0.5  # it did move


def _models():
    torch.manual_seed(0)
    return {
        "e": build_model("e", 3, 8, layout=(4, 4, 8)),
        "C4": build_model("C4", 3, 8, layout=(4, 4, 8), restrict=False),
    }


def test_widgets_redraw_and_show_the_equivariance_error(synthetic_root):
    explorer = Explorer(_models(), "bloodmnist", synthetic_root)
    first_image, first_summary = explorer.image.value, explorer.summary.value
    assert len(first_image) > 1000 and "equivariance error" in first_summary
    assert all(v.errors["gradcam"] < 1e-9 for v in explorer.views.values())  # T = identity

    explorer.angle.value = 90.0
    assert explorer.image.value != first_image and "rotation 90°" in explorer.summary.value
    assert explorer.views["C4"].errors["gradcam"] < 1e-4 and explorer.views["C4"].errors["guided"] < 1e-4
    assert explorer.views["e"].errors["gradcam"] > 0.05 and explorer.views["e"].errors["guided"] > 0.05

    explorer.flip.value = True  # C4 has no reflections
    assert explorer.views["C4"].errors["gradcam"] > 0.05

    before = explorer.views["C4"].feature
    explorer.layer.value = list(explorer.probes["C4"].layers)[-1]  # 3×3 maps
    explorer.field.value = explorer.field.max
    after = explorer.views["C4"]
    assert after.feature.shape != before.shape and after.fir.ndim == 2
    first_layer = list(explorer.probes["C4"].layers)[0]
    explorer.layer.value = first_layer  # a 3×3 filter: its impulse response is cut to that window
    assert explorer.views["C4"].fir.shape == (3, 3) and explorer.views["C4"].fir.min() > 0
    panels = explorer._figure.figure.axes
    maps = len(explorer.views) * 6
    assert len(panels) == len(explorer.views) * 7 + maps, "every map has a colour bar"
    explorer.label.value = 3  # another class: back to its first image
    assert explorer.index.value == 0 and "class <b>" in explorer.summary.value


def test_explorer_shows_orientation_readout_models(synthetic_root):
    torch.manual_seed(0)
    models = {"C4 orientation": build_model("C4", 3, 8, layout=(4, 4, 8), restrict=False, readout="orientation")}
    explorer = Explorer(models, "bloodmnist", synthetic_root)
    explorer.angle.value = 90.0
    view = explorer.views["C4 orientation"]
    assert "rotation 90°" in explorer.summary.value and view.errors["gradcam"] >= 0 and view.fir.ndim == 2


def test_equivariance_table_and_verdict():
    models = _models()
    rows = equivariance_errors(models, torch.randn(3, 3, 28, 28), angles=(90.0, 180.0))
    verdict = equivariance_verdict(rows).splitlines()
    assert verdict[0].startswith("e: gradcam follows none of the tested transforms; not rotation 90° (")
    assert verdict[1].startswith("C4: gradcam follows rotation 90°, rotation 180° (3 images")
    assert {r["n"] for r in rows} == {3}


def test_explorer_notebook_runs_under_papermill(tiny_runs, tmp_path):
    from dpecnn.suite import NOTEBOOKS, execute

    runs, quick = tiny_runs
    path = execute("00_explore", tmp_path, "00_explore", {"runs": runs, "quick_train": quick, "n_images": 2}, NOTEBOOKS)
    cells = json.loads(path.read_text())["cells"]
    outputs = [o for c in cells if c["cell_type"] == "code" for o in c["outputs"]]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    assert any("C4 DP: gradcam follows rotation 180°" in "".join(o.get("text", "")) for o in outputs)
    assert not [o for o in outputs if o.get("name") == "stderr" or o["output_type"] == "error"]
