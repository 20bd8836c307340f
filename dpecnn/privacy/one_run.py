"""ε lower bound from one training run (Steinke, Nasr & Jagielski 2023, Theorem 5.2).

``m`` canaries are each included independently with probability ½. The auditor guesses
"in" for the ``k₊`` highest scores and "out" for the ``k₋`` lowest and abstains on the rest:
``r = k₊ + k₋`` guesses, ``v`` of them correct. If the training run is (ε, δ)-DP, then with
``p = e^ε / (1 + e^ε)`` (the accuracy of ε-randomised response)::

    P[v or more correct] ≤ β + 2mδ·α,   β = P[Binom(r, p) ≥ v],
    α = max_{1 ≤ i ≤ v} (1/i) · P[v − i ≤ Binom(r, p) < v].

The bound at confidence ``1 − a`` is the largest ε whose p-value is still below ``a``: the
run is not (ε, δ)-DP for any smaller ε, except with probability ``a``.

**Choice of k.** The guesses are top-``r/2`` and bottom-``r/2`` for each ``r`` of a fixed grid
(:data:`GUESS_FRACTIONS` of ``m``); searching the grid is paid for by a Bonferroni
correction: each ``r`` is tested at level ``a / len(grid)``, so the maximum over the grid holds
at confidence ``1 − a``.

**Ceiling.** Even when every guess is right, ``m`` canaries cannot certify more than
:func:`epsilon_ceiling` (about 5.8 for 1000 canaries at 95 % and δ = 1e-5), so a bound far
below a large claimed ε can be the ceiling, not evidence of privacy.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

GUESS_FRACTIONS = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


def p_value(m: int, r: int, v: int, epsilon: float, delta: float) -> float:
    """Probability of ``v`` or more correct of ``r`` guesses among ``m`` canaries under (ε, δ)-DP."""
    if not 0 <= v <= r <= m:
        raise ValueError(f"need 0 ≤ v ≤ r ≤ m, got v={v}, r={r}, m={m}")
    p = 1.0 / (1.0 + math.exp(-epsilon))
    beta = float(stats.binom.sf(v - 1, r, p))
    if v == 0 or delta == 0:
        return min(1.0, beta)
    below = stats.binom.pmf(np.arange(v - 1, -1, -1), r, p)  # P[Binom = v−1], P[= v−2], …, P[= 0]
    alpha = float(np.max(np.cumsum(below) / np.arange(1, v + 1)))
    return min(1.0, beta + 2 * m * delta * alpha)


def epsilon_for_guesses(m: int, r: int, v: int, delta: float, significance: float) -> float:
    """Largest ε with ``p_value < significance`` (0 if none), by bisection to 1e-6."""
    if p_value(m, r, v, 0.0, delta) >= significance:
        return 0.0
    lo, hi = 0.0, 1.0
    while p_value(m, r, v, hi, delta) < significance:
        lo, hi = hi, 2 * hi
    while hi - lo > 1e-6:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if p_value(m, r, v, mid, delta) < significance else (lo, mid)
    return lo


def guess_counts(m: int) -> list[int]:
    """The grid of ``r`` (even, at least 2, at most ``m``)."""
    return sorted({min(m - m % 2, max(2, 2 * round(f * m / 2))) for f in GUESS_FRACTIONS})


def epsilon_ceiling(m: int, delta: float, confidence: float = 0.95) -> float:
    """The largest bound ``m`` canaries can give: every one of ``m`` guesses right, with the
    same grid correction as :func:`epsilon_lower_bound`."""
    return epsilon_for_guesses(m, m - m % 2, m - m % 2, delta, (1 - confidence) / len(guess_counts(m)))


def epsilon_lower_bound(scores, included, delta: float, confidence: float = 0.95) -> dict:
    """The audit's ε lower bound from canary ``scores`` (higher = more likely in) and their
    membership ``included``; returns the bound with the guesses that gave it and every ``r`` tried."""
    scores, included = np.asarray(scores, dtype=float), np.asarray(included, dtype=bool)
    m = len(scores)
    if m < 2 or included.shape != scores.shape or not np.all(np.isfinite(scores)):
        raise ValueError("need at least 2 canaries with finite scores and one membership bit each")
    order = np.argsort(-scores, kind="stable")  # highest first
    grid = guess_counts(m)
    significance = (1 - confidence) / len(grid)
    tried = []
    for r in grid:
        top, bottom = order[: r // 2], order[m - r // 2 :]
        v = int(included[top].sum() + (~included[bottom]).sum())
        tried.append({"guesses": r, "correct": v, "epsilon": epsilon_for_guesses(m, r, v, delta, significance)})
    best = max(tried, key=lambda t: t["epsilon"])
    return {
        "epsilon_lower_bound": best["epsilon"],
        "guesses": best["guesses"],
        "correct": best["correct"],
        "guesses_in": best["guesses"] // 2,
        "guesses_out": best["guesses"] // 2,
        "tried": tried,
        "correction": f"Bonferroni over {len(grid)} guess counts (each at {significance:.4g})",
        "epsilon_ceiling": epsilon_ceiling(m, delta, confidence),
    }
