"""Calibration of predicted class probabilities.

* Brier score (multi-class): ``(1/N) Σ_i Σ_c (p_ic − 1[y_i = c])²`` ∈ [0, 2].
* Expected calibration error with ``B`` equal-width confidence bins:
  ``ECE = Σ_b (|B_b|/N) · |acc(B_b) − conf(B_b)|``, confidence = max_c p_ic.
* Reliability diagram data: per bin the mean confidence, accuracy and count.
* For one run, :func:`bootstrap_scores` gives Brier and ECE with 95 % bootstrap intervals
  over the evaluated images (:meth:`dpecnn.analysis.stats.Estimate.bootstrap`).
"""

from __future__ import annotations

import warnings

import numpy as np

from dpecnn.analysis.stats import Estimate


def _as_arrays(probs, labels) -> tuple[np.ndarray, np.ndarray]:
    p, y = np.asarray(probs, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    if p.ndim != 2 or len(p) != len(y):
        raise ValueError(f"probs must be (N, C) and labels (N,), got {p.shape} and {y.shape}")
    return p, y


def brier_score(probs, labels) -> float:
    """Brier's (1950) score: the mean over images of the squared distance between the predicted
    probabilities and the one-hot label, summed over classes (scikit-learn's ``brier_score_loss``
    with every class listed and no halving, also for two classes)."""
    from sklearn.metrics import brier_score_loss

    p, y = _as_arrays(probs, labels)
    if not np.allclose(p.sum(1), 1.0, rtol=0, atol=1e-4):
        raise ValueError("probs must be probabilities: every row must sum to 1")
    with warnings.catch_warnings():
        # rows of a float32 softmax sum to 1 only within ~1e-7, which scikit-learn's check flags
        warnings.filterwarnings("ignore", message="The y_prob values do not sum to one")
        return float(brier_score_loss(y, p, labels=np.arange(p.shape[1]), scale_by_half=False))


def reliability_bins(probs, labels, n_bins: int = 15) -> dict[str, list]:
    """Per confidence bin ``(lo, hi]``: edges, mean confidence, accuracy, count (empty bins: NaN)."""
    p, y = _as_arrays(probs, labels)
    conf, correct = p.max(1), (p.argmax(1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, conf, n_bins) / count
        acc = np.bincount(which, correct, n_bins) / count
    return {
        "edges": edges.tolist(),
        "confidence": mean_conf.tolist(),
        "accuracy": acc.tolist(),
        "count": count.tolist(),
    }


def expected_calibration_error(probs, labels, n_bins: int = 15) -> float:
    bins = reliability_bins(probs, labels, n_bins)
    count = np.asarray(bins["count"], dtype=np.float64)
    gap = np.nan_to_num(np.abs(np.asarray(bins["accuracy"]) - np.asarray(bins["confidence"])))
    return float((count / count.sum() * gap).sum())


def calibration_report(probs, labels, n_bins: int = 15) -> dict:
    return {
        "brier": brier_score(probs, labels),
        "ece": expected_calibration_error(probs, labels, n_bins),
        "reliability": reliability_bins(probs, labels, n_bins),
    }


def bootstrap_scores(probs, labels, n_bins: int = 15, images: str = "") -> dict[str, Estimate]:
    """``{"Brier": …, "ECE": …}`` on all images, with 95 % bootstrap intervals over the images;
    ``images`` names the images (two models scored on the same ones are then compared paired)."""
    p, y = _as_arrays(probs, labels)
    return {
        "Brier": Estimate.bootstrap(lambda i: brier_score(p[i], y[i]), len(y), items=images),
        "ECE": Estimate.bootstrap(lambda i: expected_calibration_error(p[i], y[i], n_bins), len(y), items=images),
    }
