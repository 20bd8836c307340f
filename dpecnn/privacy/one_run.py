"""ε lower bounds from one training run: Steinke, Nasr & Jagielski (2023) and the f-DP bound of
Mahloujifar, Melis & Chaudhuri (2025).

**Setting.** ``m`` canaries, each included independently with probability ½ (the coins). After
training the auditor ranks them by a score and guesses: "in" for the ``k₊`` highest scores and,
two-sided, "out" for the ``k₋`` lowest, abstaining on the rest; ``r = k₊ + k₋`` guesses, ``v`` of
them correct. The guesses may depend on anything the run released, never on the coins.

**Steinke et al., Theorem 5.2** (one- and two-sided guesses). If the run is (ε, δ)-DP, then with
``p = e^ε / (1 + e^ε)`` (the accuracy of ε-randomised response)::

    P[v or more correct] ≤ β + 2mδ·α,   β = P[Binom(r, p) ≥ v],
    α = max_{1 ≤ i ≤ v} (1/i) · P[v − i ≤ Binom(r, p) < v].

**f-DP in one run** (Mahloujifar et al., their bound for one-sided guesses). If the run is f-DP,
the mass of "v or more correct" is bounded by a recursion over the correct guesses that lifts
the mass of wrong guesses to at least ``f⁻``(mass of right ones), where ``f⁻(x) = Φ(Φ⁻¹(x) − μ)``
is the smallest probability a set can have under one neighbour when it has ``x`` under the other
(:func:`_fdp_rejects`). As in jax-privacy's ``epsilon_one_run_fdp``, ``f`` is the trade-off curve
of the Gaussian mechanism that is exactly (ε, δ)-DP (``μ = 1/σ(ε, δ)``, dp-accounting's
``get_sigma_gaussian``), so this bound rejects "the run is at least as private as that Gaussian
mechanism": a stronger hypothesis than (ε, δ)-DP, which DP-SGD's many-step composition is close to.
A violation of an (ε, δ) claim is therefore only ever read from Steinke et al.'s bound.

Each bound at confidence ``1 − a`` is the largest ε whose hypothesis is still rejected at level
``a``: the run is not (ε, δ)-DP (resp. Gaussian-f-DP at that ε) for any smaller ε, except with
probability ``a``.

**Choice of the guesses.** A fixed grid of three (:func:`guess_grid`), decided before any score
is seen and kept small because searching it is paid for by a Bonferroni correction (each point is
tested at level ``a / 3``): one-sided ``m/20`` (weak signals: only the most confident guesses are
right more often than chance); one-sided at the number of included canaries that a run of ``T``
steps at rate ``q`` is expected to have drawn at least once, minus three standard deviations (strong
signals: a canary never drawn left no trace, so guessing more "in" than were drawn costs right
guesses); two-sided ``m`` (every canary drawn and told apart). The f-DP bound searches the one-sided
points only (each at ``a / 2``).

**Ceiling.** Even when every guess is right, ``m`` canaries cannot certify more than
:func:`epsilon_ceilings` gives for the same grid: a bound below a claimed ε larger than the ceiling
says nothing about the claim above the ceiling.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.special import ndtr, ndtri

ONE_SIDED_FRACTIONS = (0.05,)
TWO_SIDED_FRACTIONS = (1.0,)


@dataclass(frozen=True)
class Guess:
    """``count`` guesses: the top ``count`` "in" (one-sided), or the top and bottom ``count/2`` (two-sided)."""

    two_sided: bool
    count: int

    @property
    def name(self) -> str:
        return f"{'two' if self.two_sided else 'one'}-sided {self.count}"


def drawn_at_least_once(m: int, sample_rate: float | None, steps: int | None) -> int:
    """The included canaries expected to be drawn at least once, minus three standard deviations
    (public: from ``m``, ``q`` and ``T`` alone; without ``q`` and ``T`` every included one counts)."""
    seen = 0.5 * (1 - (1 - sample_rate) ** steps) if sample_rate and steps else 0.5  # P[included and drawn]
    return max(1, math.floor(m * seen - 3 * math.sqrt(m * seen * (1 - seen))))


def guess_grid(m: int, sample_rate: float | None = None, steps: int | None = None) -> list[Guess]:
    """The guesses tried (see module docstring), without duplicates."""
    one = {max(1, round(f * m)) for f in ONE_SIDED_FRACTIONS} | {drawn_at_least_once(m, sample_rate, steps)}
    two = {min(m - m % 2, max(2, 2 * round(f * m / 2))) for f in TWO_SIDED_FRACTIONS}
    return [Guess(False, r) for r in sorted(one) if r <= m] + [Guess(True, r) for r in sorted(two)]


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


def _largest_rejected(rejects, tolerance: float = 1e-6) -> float:
    """Largest ε ≥ 0 with ``rejects(ε)`` (monotone: true below some ε, false above), 0 if none."""
    if not rejects(0.0):
        return 0.0
    lo, hi = 0.0, 1.0
    while rejects(hi):
        lo, hi = hi, 2 * hi
        if hi > 1e3:  # every guess right at any ε: impossible for δ > 0, guard anyway
            return math.inf
    while hi - lo > tolerance:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if rejects(mid) else (lo, mid)
    return lo


def epsilon_for_guesses(m: int, r: int, v: int, delta: float, significance: float) -> float:
    """Steinke et al.: largest ε with ``p_value < significance`` (0 if none)."""
    return _largest_rejected(lambda eps: p_value(m, r, v, eps, delta) < significance)


@functools.lru_cache(maxsize=4096)
def gaussian_mu(epsilon: float, delta: float) -> float:
    """``μ = 1/σ`` of the Gaussian mechanism (sensitivity 1) that is exactly (ε, δ)-DP."""
    import dp_accounting  # imported here: only the f-DP bound needs it

    return 1.0 / max(dp_accounting.get_sigma_gaussian(epsilon, delta), 1e-12)


def _fdp_rejects(m: int, r: int, v: int, significance: float, mu: float) -> bool:
    """Whether ``v`` right of ``r`` one-sided guesses reject μ-GDP at level ``significance``.

    ``right`` and ``wrong`` are the masses (per canary, scaled by the level) of the events "this
    guess is right" and "this guess is wrong"; going down from ``v`` right guesses, each step lifts
    the wrong mass to what μ-GDP forces for the right mass (``Φ(Φ⁻¹(right) − μ)``) and moves right
    mass accordingly. The hypothesis is rejected when the total exceeds ``r/m``.
    """
    right, wrong = significance * v / m, significance * (r - v) / m
    for i in range(v - 1, -1, -1):
        lifted = max(wrong, float(ndtr(ndtri(right) - mu)))
        if lifted == wrong:  # nothing changes any more
            break
        right = min(right + i / (r - i) * (lifted - wrong), 1.0)
        wrong = lifted
    return right + wrong > r / m


def epsilon_fdp_for_guesses(m: int, r: int, v: int, delta: float, significance: float) -> float:
    """Mahloujifar et al. with the Gaussian family: largest ε whose μ(ε, δ)-GDP is rejected (0 if none)."""
    if v == 0:
        return 0.0
    return _largest_rejected(lambda eps: _fdp_rejects(m, r, v, significance, gaussian_mu(max(eps, 1e-9), delta)))


def _guesses_correct(order: np.ndarray, included: np.ndarray, guess: Guess) -> int:
    m = len(order)
    if not guess.two_sided:
        return int(included[order[: guess.count]].sum())
    half = guess.count // 2
    return int(included[order[:half]].sum() + (~included[order[m - half :]]).sum())


def epsilon_lower_bound(
    scores,
    included,
    delta: float,
    confidence: float = 0.95,
    sample_rate: float | None = None,
    steps: int | None = None,
) -> dict:
    """Both bounds from canary ``scores`` (higher = more likely in) and their membership
    ``included``; ``sample_rate`` and ``steps`` (public) add the expected-visible guess count.
    Returns each bound with the guesses that gave it, every guess tried and both ceilings."""
    scores, included = np.asarray(scores, dtype=float), np.asarray(included, dtype=bool)
    m = len(scores)
    if m < 2 or included.shape != scores.shape or not np.all(np.isfinite(scores)):
        raise ValueError("need at least 2 canaries with finite scores and one membership bit each")
    order = np.argsort(-scores, kind="stable")  # highest first
    grid = guess_grid(m, sample_rate, steps)
    one_sided = [g for g in grid if not g.two_sided]
    level, level_fdp = (1 - confidence) / len(grid), (1 - confidence) / len(one_sided)
    tried = []
    for guess in grid:
        v = _guesses_correct(order, included, guess)
        row = {"guess": guess.name, "guesses": guess.count, "correct": v}
        row["epsilon"] = epsilon_for_guesses(m, guess.count, v, delta, level)
        if not guess.two_sided:
            row["epsilon_fdp"] = epsilon_fdp_for_guesses(m, guess.count, v, delta, level_fdp)
        tried.append(row)
    best = max(tried, key=lambda t: t["epsilon"])
    best_fdp = max((t for t in tried if "epsilon_fdp" in t), key=lambda t: t["epsilon_fdp"])
    ceiling, ceiling_fdp = epsilon_ceilings(m, delta, confidence, sample_rate, steps)
    return {
        "epsilon_lower_bound": best["epsilon"],
        "guess": best["guess"],
        "guesses": best["guesses"],
        "correct": best["correct"],
        "epsilon_lower_bound_fdp": best_fdp["epsilon_fdp"],
        "guess_fdp": best_fdp["guess"],
        "correct_fdp": best_fdp["correct"],
        "tried": tried,
        "correction": f"Bonferroni over {len(grid)} guess counts ({len(one_sided)} for f-DP)",
        "epsilon_ceiling": ceiling,
        "epsilon_ceiling_fdp": ceiling_fdp,
    }


@functools.lru_cache(maxsize=256)
def epsilon_ceilings(
    m: int, delta: float, confidence: float = 0.95, sample_rate: float | None = None, steps: int | None = None
) -> tuple[float, float]:
    """The largest bounds ``m`` canaries can give on the same grid: every guess right (one-run,
    f-DP). A canary that was never drawn can still make some guesses wrong, so a real run may stay
    below these."""
    grid = guess_grid(m, sample_rate, steps)
    one_sided = [g for g in grid if not g.two_sided]
    level, level_fdp = (1 - confidence) / len(grid), (1 - confidence) / len(one_sided)
    one_run = max(epsilon_for_guesses(m, g.count, g.count, delta, level) for g in grid)
    fdp = max(epsilon_fdp_for_guesses(m, g.count, g.count, delta, level_fdp) for g in one_sided)
    return one_run, fdp
