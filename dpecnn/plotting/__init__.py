"""Paper-ready figures (one style, PDF + PNG) for the dpecnn analyses."""

from dpecnn.plotting.figures import accuracy_vs_params, reliability_diagrams, sparsity_curves, training_curves
from dpecnn.plotting.maps import attribution_grid, fir_maps
from dpecnn.plotting.style import apply_style, arch_colour, save_figure, styled

__all__ = [
    "accuracy_vs_params",
    "apply_style",
    "arch_colour",
    "attribution_grid",
    "fir_maps",
    "reliability_diagrams",
    "save_figure",
    "sparsity_curves",
    "styled",
    "training_curves",
]
