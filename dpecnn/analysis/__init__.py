"""The paper's explanatory measurements: gradient sparsity, calibration, filter impulse
responses and their co-location with attributions, Grad-CAM and guided backprop."""

from dpecnn.analysis.attributions import GuidedBackprop, grad_cam, guided_backprop, input_gradient, saliency_map
from dpecnn.analysis.calibration import brier_score, calibration_report, expected_calibration_error, reliability_bins
from dpecnn.analysis.impulse import colocation, conv_layers, fir_magnitude, fir_map, impulse_response, response_map
from dpecnn.analysis.sparsity import l0_sparsity, per_layer_sparsity

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
