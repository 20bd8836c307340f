"""Analysis, in three kinds: the paper's measurements of a model (:mod:`~dpecnn.analysis.measures`:
gradient sparsity, calibration, filter impulse responses and their co-location with attributions,
Grad-CAM and guided backprop, equivariance, the symmetry probe), the statistics and verdicts
(:mod:`~dpecnn.analysis.stats`), and the pages they become (:mod:`~dpecnn.analysis.pages`: the
notebooks' reports, Table 1, the privacy–utility curve, the generated docs). The measurement
functions are importable from here."""

from dpecnn.analysis.measures.attributions import (
    GuidedBackprop,
    grad_cam,
    guided_backprop,
    input_gradient,
    saliency_map,
)
from dpecnn.analysis.measures.calibration import (
    brier_score,
    calibration_report,
    expected_calibration_error,
    reliability_bins,
)
from dpecnn.analysis.measures.impulse import (
    colocation,
    conv_layers,
    fir_magnitude,
    fir_map,
    impulse_response,
    response_map,
)
from dpecnn.analysis.measures.sparsity import l0_sparsity, per_layer_sparsity

__all__ = [
    "GuidedBackprop",
    "brier_score",
    "calibration_report",
    "colocation",
    "conv_layers",
    "expected_calibration_error",
    "fir_magnitude",
    "fir_map",
    "grad_cam",
    "guided_backprop",
    "impulse_response",
    "input_gradient",
    "l0_sparsity",
    "per_layer_sparsity",
    "reliability_bins",
    "response_map",
    "saliency_map",
]
