"""Equivariance explorer: an ipywidgets view of how models react to rotated/flipped inputs.

For several models side by side (e.g. a conventional and an equivariant run) and one image
picked by split, class and index, a rotation slider (0–360°) and a flip toggle transform the
input ``x`` to ``Tx`` (:mod:`dpecnn.analysis.measures.equivariance`). Per model the explorer shows the
predicted class probabilities of ``Tx``; Grad-CAM and guided backprop of ``Tx`` and the same
maps transformed back, ``T⁻¹A(Tx)``, with the equivariance error ``‖T⁻¹A(Tx) − A(x)‖/‖A(x)‖``;
and for a picked convolution layer and output field, the field's feature map on ``Tx`` (the
norm over the field's channels, which a group element only permutes or rotates) and the
field's filter impulse response (:mod:`dpecnn.analysis.measures.impulse`).

The models, images, untransformed maps and impulse responses are cached, so one interaction
costs a forward/backward pass per model on one 28×28 image and one redraw of a fixed figure.
The logic lives in :class:`ModelProbe` (no widgets; the tests call it directly) and the
widgets in :class:`Explorer`.
"""

from __future__ import annotations

import html
import io
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from dpecnn.analysis.measures import attributions, impulse
from dpecnn.analysis.measures.equivariance import equivariance_error, inverse_transform, transform
from dpecnn.data.datasets import open_dataset

MAPS = ("gradcam", "guided")
COLUMNS = ("input Tx", "Grad-CAM", "guided BP", "Grad-CAM, T⁻¹", "guided BP, T⁻¹", "feature field", "field FIR")


@dataclass
class ProbeView:
    """One model on one transformed image (all arrays numpy, maps ``(H, W)``)."""

    probs: np.ndarray
    maps: dict[str, np.ndarray]  # A(Tx)
    mapped_back: dict[str, np.ndarray]  # T⁻¹A(Tx)
    errors: dict[str, float]  # equivariance error per map
    feature: np.ndarray  # field norm of the picked layer's output on Tx
    fir: np.ndarray  # the picked field's impulse response magnitude


class ModelProbe:
    """A model with its attribution maps, feature maps and impulse responses, cached."""

    def __init__(self, model: nn.Module, image_size: int = 28):
        self.model = model.eval()
        self.layers = dict(impulse.conv_layers(model))
        self.image_size = image_size
        self._reference: dict[object, dict[str, torch.Tensor]] = {}
        self._fir: dict[str, torch.Tensor] = {}

    def field_slices(self, layer: str) -> list[slice]:
        """Channel ranges of the layer's output fields (one channel each for a plain conv)."""
        module = self.layers[layer]
        sizes = (
            [r.size for r in module.out_type.representations]
            if hasattr(module, "out_type")
            else [1] * module.out_channels
        )
        starts = np.cumsum([0] + sizes)
        return [slice(int(a), int(b)) for a, b in zip(starts[:-1], starts[1:])]

    def attribution_maps(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Grad-CAM and guided-backprop magnitude ``(H, W)`` of one image ``(C, H, W)``."""
        return {k: v[0] for k, v in attributions.attribution_maps(self.model, x[None]).items()}

    def reference(self, key, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``A(x)`` for the untransformed image, computed once per ``key``."""
        if key not in self._reference:
            self._reference[key] = self.attribution_maps(x)
        return self._reference[key]

    def feature_field(self, x: torch.Tensor, layer: str, field: int) -> torch.Tensor:
        """``(h, w)`` norm over the field's channels of the layer's output on ``x``."""
        out = impulse.layer_output(self.model, self.layers[layer], x[None])
        return out[0, self.field_slices(layer)[field]].norm(dim=0)

    def field_fir(self, layer: str, field: int, in_channels: int) -> torch.Tensor:
        """``(h, w)`` impulse-response magnitude of one output field: the norm over the field's
        channels of ``FIR``, summed over the input channels that received the impulse."""
        if layer not in self._fir:
            self._fir[layer] = impulse.impulse_response(self.model, self.layers[layer], in_channels, self.image_size)
        response = self._fir[layer][:, self.field_slices(layer)[field]].norm(dim=1).sum(0)
        return response[impulse.support(response)]  # the receptive field, not the blank image around it

    def view(self, key, x: torch.Tensor, angle: float, flip: bool, layer: str, field: int) -> ProbeView:
        """Everything the explorer shows for this model on ``Tx`` (``x``: ``(C, H, W)``)."""
        tx = transform(x, angle, flip)
        reference = self.reference(key, x)
        maps = self.attribution_maps(tx)
        back = {k: inverse_transform(v, angle, flip) for k, v in maps.items()}
        with torch.no_grad():
            probs = torch.softmax(self.model(tx[None]), 1)[0]
        field = min(field, len(self.field_slices(layer)) - 1)
        return ProbeView(
            probs.numpy(),
            {k: v.numpy() for k, v in maps.items()},
            {k: v.numpy() for k, v in back.items()},
            {k: equivariance_error(back[k], reference[k]) for k in MAPS},
            self.feature_field(tx, layer, field).numpy(),
            self.field_fir(layer, field, x.shape[0]).numpy(),
        )


def _widgets():
    try:
        import ipywidgets
    except ImportError as exc:  # a clear line instead of a traceback deep in the notebook
        raise ImportError("the explorer needs ipywidgets: pip install ipywidgets") from exc
    return ipywidgets


class Explorer:
    """The widget panel (see the module docstring). ``models``: label → dpecnn model, all
    trained on ``dataset``. ``Explorer.from_runs`` builds it from loaded run folders."""

    def __init__(
        self,
        models: Mapping[str, nn.Module],
        dataset: str,
        data_root=None,
        split: str = "val",
        size: int | None = None,
        channels: int | None = None,
    ):
        w = _widgets()
        self._source = (dataset, data_root, size, channels)  # a MedMNIST name or own images
        data = open_dataset(*self._source, splits=(split,))  # the other splits when they are chosen
        self._splits = dict(data.splits)
        self.probes = {label: ModelProbe(m, data.pipeline.size) for label, m in models.items()}
        self.class_names = list(data.pipeline.class_names)
        first = next(iter(self.probes.values()))
        layers = list(first.layers)
        self.split = w.Dropdown(options=["train", "val", "test"], value=split, description="split")
        self.label = w.Dropdown(
            options=[(name, i) for i, name in enumerate(self.class_names)], value=0, description="class"
        )
        self.index = w.IntSlider(0, 0, 0, description="image")
        self.angle = w.FloatSlider(0.0, min=0.0, max=360.0, step=1.0, description="rotation °", continuous_update=False)
        self.flip = w.ToggleButton(False, description="flip")
        self.layer = w.Dropdown(options=layers, value=layers[0], description="layer")
        self.field = w.IntSlider(
            0, 0, max(len(p.field_slices(layers[0])) for p in self.probes.values()) - 1, description="field"
        )
        self.summary = w.HTML()
        self.image = w.Image(format="png")
        self.widget = w.VBox(
            [
                w.HBox([self.split, self.label, self.index]),
                w.HBox([self.angle, self.flip]),
                w.HBox([self.layer, self.field]),
                self.summary,
                self.image,
            ]
        )
        self.views: dict[str, ProbeView] = {}
        self._figure = _PanelFigure(list(self.probes))
        self._update_index_range()
        for control in (self.split, self.label):
            control.observe(self._on_selection, names="value")
        for control in (self.index, self.angle, self.flip, self.field):
            control.observe(lambda _change: self.redraw(), names="value")
        self.layer.observe(self._on_layer, names="value")
        self.redraw()

    @classmethod
    def from_runs(cls, runs, split: str = "val") -> Explorer:
        """From :class:`dpecnn.analysis.pages.run.Run` objects of one dataset, labelled by ``run.label``."""
        datasets = {r.config.dataset for r in runs}
        if len(datasets) != 1:
            raise ValueError(f"the explorer compares runs of one dataset, got {sorted(datasets)}")
        cfg = runs[0].config
        return cls({r.label: r.model for r in runs}, cfg.dataset, cfg.data_root, split, cfg.size, cfg.channels)

    def _data(self):
        name = self.split.value
        if name not in self._splits:
            self._splits[name] = open_dataset(*self._source, splits=(name,)).splits[name]
        return self._splits[name]

    def _class_indices(self) -> np.ndarray:
        return np.flatnonzero(self._data().labels.numpy() == self.label.value)

    def _update_index_range(self) -> None:
        self.index.max = max(len(self._class_indices()) - 1, 0)

    def _on_selection(self, _change) -> None:
        with self.index.hold_trait_notifications():
            self.index.value = 0
            self._update_index_range()
        self.redraw()

    def _on_layer(self, _change) -> None:
        self.field.max = max(len(p.field_slices(self.layer.value)) for p in self.probes.values()) - 1
        self.field.value = min(self.field.value, self.field.max)
        self.redraw()

    def current_image(self) -> tuple[tuple, torch.Tensor]:
        indices = self._class_indices()
        if not len(indices):
            raise ValueError(f"no {self.split.value} image of class {self.class_names[self.label.value]!r}")
        i = int(indices[min(self.index.value, len(indices) - 1)])
        return (self.split.value, i), self._data().inputs(slice(i, i + 1))[0]

    def redraw(self) -> None:
        """Recompute every model's view of the current image and transform, and redraw."""
        try:
            key, x = self.current_image()
        except ValueError as exc:
            self.summary.value = f"<b>{html.escape(str(exc))}</b>"
            return
        args = (x, self.angle.value, self.flip.value, self.layer.value, self.field.value)
        self.views = {label: probe.view(key, *args) for label, probe in self.probes.items()}
        self.image.value = self._figure.render(transform(x, self.angle.value, self.flip.value), self.views)
        self.summary.value = self._summary_html(key)  # last: its text says the redraw is complete

    def _summary_html(self, key) -> str:
        _, i = key
        head = (
            f"{self.split.value} image {i}, class <b>{html.escape(self.class_names[self.label.value])}</b>; "
            f"T = rotation {self.angle.value:g}°{' after a flip' if self.flip.value else ''}"
        )
        rows = []
        for label, v in self.views.items():
            top = int(v.probs.argmax())
            errors = ", ".join(f"{k} {v.errors[k]:.3f}" for k in MAPS)
            probs = ", ".join(
                f"{html.escape(self.class_names[c])} {v.probs[c]:.2f}" for c in v.probs.argsort()[::-1][:3]
            )
            rows.append(
                f"<tr><td><b>{html.escape(label)}</b></td><td>{html.escape(self.class_names[top])}</td>"
                f"<td class='dpecnn-error'>{errors}</td><td style='font-size:small'>{probs}</td></tr>"
            )
        return (
            f"<div>{head}</div><table><tr><th>model</th><th>prediction</th>"
            f"<th>equivariance error ‖T⁻¹A(Tx) − A(x)‖/‖A(x)‖</th><th>top-3 probabilities of Tx</th></tr>"
            + "".join(rows)
            + "</table>"
        )

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


class _PanelFigure:
    """One figure (rows: models, columns: :data:`COLUMNS`) drawn once and then updated in
    place: each redraw only swaps image data, which keeps an interaction well under a second."""

    def __init__(self, labels: list[str]):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(1.75 * len(COLUMNS), 1.6 * len(labels)), dpi=90)
        FigureCanvasAgg(self.figure)
        axes = self.figure.subplots(len(labels), len(COLUMNS), squeeze=False)
        blank = np.zeros((2, 2))
        self.images = []
        for row, label in zip(axes, labels):
            self.images.append(
                [
                    ax.imshow(blank, cmap="gray" if j == 0 else "magma", interpolation="nearest")
                    for j, ax in enumerate(row)
                ]
            )
            for j, ax in enumerate(row):
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_title(COLUMNS[j], fontsize=7)
                if j:  # every map has its colour scale (it follows set_clim at each redraw)
                    bar = self.figure.colorbar(self.images[-1][j], ax=ax, fraction=0.046, pad=0.03)
                    bar.ax.tick_params(labelsize=5, length=2)
            row[0].set_ylabel(label, fontsize=8)
        self.figure.tight_layout(pad=0.3)

    def render(self, tx: torch.Tensor, views: Mapping[str, ProbeView]) -> bytes:
        shown = np.clip((tx.numpy() + 1) / 2, 0, 1)  # dpecnn images live in [-1, 1]
        shown = shown[0] if shown.shape[0] == 1 else shown.transpose(1, 2, 0)
        for images, v in zip(self.images, views.values()):
            panels = [
                shown,
                v.maps["gradcam"],
                v.maps["guided"],
                v.mapped_back["gradcam"],
                v.mapped_back["guided"],
                v.feature,
                v.fir,
            ]
            for im, data in zip(images, panels):
                im.set_data(data)
                im.set_extent((-0.5, data.shape[1] - 0.5, data.shape[0] - 0.5, -0.5))
                if data.ndim == 2:
                    im.set_clim(float(data.min()), float(data.max()) or 1.0)
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png")
        return buffer.getvalue()


def equivariance_errors(
    models: Mapping[str, nn.Module], images: torch.Tensor, angles=(90.0, 180.0, 270.0), flip: bool = False
) -> list[dict]:
    """Mean ± std over ``images`` of each model's equivariance error per map and transform:
    rows ``{model, transform, map, mean, std, n}``, for a table or :func:`equivariance_verdict`."""
    rows = []
    for label, model in models.items():
        probe = ModelProbe(model, images.shape[-1])
        for angle in angles:
            errors = {k: [] for k in MAPS}
            for i, x in enumerate(images):
                reference = probe.reference(i, x)
                for k, v in probe.attribution_maps(transform(x, angle, flip)).items():
                    errors[k].append(equivariance_error(inverse_transform(v, angle, flip), reference[k]))
            name = ("flip" if angle == 0 else f"rotation {angle:g}° after a flip") if flip else f"rotation {angle:g}°"
            rows += [
                {
                    "model": label,
                    "transform": name,
                    "map": k,
                    "mean": float(np.mean(e)),
                    "std": float(np.std(e)),
                    "n": len(e),
                }
                for k, e in errors.items()
            ]
    return rows


def equivariance_verdict(rows: list[dict], map_name: str = "gradcam", tolerance: float = 1e-3) -> str:
    """One line per model: which tested transforms its ``map_name`` follows (mean error over
    the images below ``tolerance``) and which it does not, with their mean ± std error."""
    lines = []
    for label in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == label and r["map"] == map_name]
        follows = [r["transform"] for r in mine if r["mean"] < tolerance]
        misses = [f"{r['transform']} ({r['mean']:.2g} ± {r['std']:.2g})" for r in mine if r["mean"] >= tolerance]
        lines.append(
            f"{label}: {map_name} follows {', '.join(follows) or 'none of the tested transforms'}"
            + (f"; not {', '.join(misses)}" if misses else "")
            + f" ({mine[0]['n']} images, error tolerance {tolerance:g})"
        )
    return "\n".join(lines)
