"""Uncertainty of a group's numbers, and the verdict lines the notebooks end with.

An :class:`Estimate` is one of

* ``seeds``: the mean over the group's seeds ± their sample standard deviation (ddof 1);
  with one seed the value alone, without an interval;
* ``bootstrap``: one seed's value with a 95 % percentile bootstrap interval over the images
  it was measured on (:data:`BOOTSTRAP_RESAMPLES` resamples, a fixed generator seed).

A verdict (:func:`claim_line`) answers a paper claim "A is higher (lower) than B" with what the
data support: a significance test over seeds, "one seed: no conclusion", or, for one run each
scored on the same images, a paired bootstrap of the difference (:func:`paired_difference_interval`:
both models are resampled on the same images, so what they share cancels); it always shows both
estimates and its evidence. :func:`welch_contrast`
estimates a contrast of group means (e.g. a difference of privacy–utility gaps) with a t
interval, and :func:`contrast_verdict` words it the same way.

Multiplicity: the verdicts of one list (a page's section for one metric, e.g. Table 1's paired
lines) are one family. Each is decided on its Holm–Bonferroni adjusted p-value (:func:`holm`,
family-wise error ≤ α), shown beside the unadjusted one, so that among many comparisons a
"significant" is not a matter of how many were made (:meth:`Contrast.in_family`).

An undefined p-value (NaN: a NaN among the values compared, such as the AUC of a split without
some class or the Brier score of a run that diverged) is not a test: it does not count in its
family and its verdict is "p-value undefined …: no conclusion" (:func:`is_test`); an undefined
mean or interval ends the same way. A spread below rounding (:func:`no_spread`: e.g. two seeds that
each gain the same number of test images, whose float differences differ in the 17th digit) is
no spread, not a p-value of 10⁻¹⁶.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

BOOTSTRAP_RESAMPLES = 1000


@dataclass(frozen=True)
class Estimate:
    mean: float
    low: float | None = None  # interval ends: mean ∓ std (seeds) or the 2.5 / 97.5 % quantiles (bootstrap)
    high: float | None = None
    n: int = 1  # seeds
    kind: str = "seeds"
    # bootstrap: (statistic of item indices, number of items, identity of the items), for pairing
    items: tuple[Callable[[np.ndarray], float], int, str] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def over_seeds(cls, values: Sequence[float]) -> Estimate:
        values = np.asarray(values, dtype=np.float64)
        return cls.from_mean_std(
            float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else None, len(values)
        )

    @classmethod
    def from_mean_std(cls, mean: float, std: float | None, n: int) -> Estimate:
        """A mean over ``n`` seeds with their standard deviation (None: one seed, no interval)."""
        return cls(mean, n=n) if std is None else cls(mean, mean - std, mean + std, n)

    @classmethod
    def bootstrap(
        cls, statistic: Callable[[np.ndarray], float], n_items: int, seed: int = 0, items: str = ""
    ) -> Estimate:
        """``statistic(indices)`` on all ``n_items`` items, with the 95 % percentile interval of
        its value on :data:`BOOTSTRAP_RESAMPLES` resamples of the items with replacement; ``items``
        names the items (e.g. a hash of the images), so that two estimates on the same items are
        compared paired."""
        rng = np.random.default_rng(seed)
        values = [statistic(rng.integers(0, n_items, n_items)) for _ in range(BOOTSTRAP_RESAMPLES)]
        low, high = np.quantile(values, [0.025, 0.975])
        return cls(statistic(np.arange(n_items)), float(low), float(high), 1, "bootstrap", (statistic, n_items, items))

    @property
    def std(self) -> float | None:
        """The standard deviation over seeds (None for one seed or a bootstrap interval)."""
        return None if self.kind != "seeds" or self.low is None else self.mean - self.low

    def overlaps(self, other: Estimate) -> bool:
        if None in (self.low, other.low):
            return False
        return self.low <= other.high and other.low <= self.high

    @property
    def note(self) -> str:
        """What the interval is: ``3 seeds`` (± std), ``1 seed`` or ``95 % bootstrap CI, 1 seed``."""
        seeds = f"{self.n} seed{'s' if self.n != 1 else ''}"
        return f"95 % bootstrap CI, {seeds}" if self.kind == "bootstrap" else seeds

    def text(self, digits: int = 3, scale: float = 1.0, unit: str = "", note: bool = True) -> str:
        """``0.087 ± 0.004 (3 seeds)``, ``0.218 [0.204, 0.231] (95 % bootstrap CI, 1 seed)`` or
        ``0.087 (1 seed)``, values multiplied by ``scale``; without the bracket when not ``note``."""

        def f(v):
            return f"{scale * v:.{digits}f}{unit}"

        value = (
            f(self.mean)
            if self.low is None
            else f"{f(self.mean)} [{f(self.low)}, {f(self.high)}]"
            if self.kind == "bootstrap"
            else f"{f(self.mean)} ± {f(self.std)}"
        )
        return f"{value} ({self.note})" if note else value

    def columns(self, name: str) -> dict:
        """Table columns: ``name`` (the mean), ``name std`` (seeds) or ``name CI low/high`` (bootstrap)."""
        if self.kind == "bootstrap":
            return {name: self.mean, f"{name} CI low": self.low, f"{name} CI high": self.high}
        return {name: self.mean, f"{name} std": self.std}


UNDEFINED = "undefined (a NaN among the values compared): no conclusion"
# A standard deviation at most this fraction of the values' scale is rounding, not spread
ROUNDING = 1e-12


def no_spread(std: float, *values: float) -> bool:
    """Whether ``std`` is zero up to float rounding (:data:`ROUNDING` of the largest of 1 and the
    ``values``' magnitudes); False for a NaN ``std``, which is undefined, not zero."""
    return std <= ROUNDING * max([1.0, *(abs(v) for v in values)])


def seeds_p_value(a: Estimate, b: Estimate) -> float | None:
    """Welch's t-test p-value of two estimates over seeds (:func:`scipy.stats.ttest_ind_from_stats`),
    or None where :func:`claim_line` decides without one: one run each (a bootstrap), fewer than two
    seeds on a side, or no spread."""
    from scipy.stats import ttest_ind_from_stats

    if same_items(a, b) or a.kind == b.kind == "bootstrap" or min(a.n, b.n) < 2:
        return None
    if no_spread(a.std, a.mean) and no_spread(b.std, b.mean):
        return None
    return float(ttest_ind_from_stats(a.mean, a.std, a.n, b.mean, b.std, b.n, equal_var=False).pvalue)


def claim_line(
    claim: str,
    a: tuple[str, Estimate],
    b: tuple[str, Estimate],
    higher: bool,
    alpha: float = 0.05,
    family: int = 1,
    p_holm: float | None = None,
    **fmt,
) -> str:
    """``"<claim>: <answer>, <a> vs <b>; <evidence>"`` for the claim that ``a``'s mean is higher
    (``higher``) or lower than ``b``'s; ``claim`` is formatted with the labels of ``a`` and ``b``
    and the estimates with :meth:`Estimate.text` (``fmt``). The answer says what the data support:

    * over seeds, ≥ 2 each: Welch's t-test of the means (:func:`seeds_p_value`): ``yes`` / ``no``
      when p < ``alpha`` — the Holm-adjusted ``p_holm`` when the line is one of a ``family`` of
      tests (:func:`claim_lines`) — else ``not significant: no conclusion`` (direction of the means given);
    * one seed on either side (a bootstrap estimate is one run: against seeds, too):
      ``one seed: no conclusion``;
    * one run each on the same images: the paired 95 % BCa bootstrap interval of the difference
      (:func:`paired_difference_interval`): ``yes`` / ``no`` when it excludes 0, else ``the paired
      interval contains 0: no conclusion``;
    * one run each on different images: ``yes`` / ``no`` only when their bootstrap intervals do not
      overlap (conservative), else ``the intervals overlap: no conclusion``; never evidence over seeds.
    """
    (label_a, est_a), (label_b, est_b) = a, b
    holds = est_a.mean > est_b.mean if higher else est_a.mean < est_b.mean
    defined = math.isfinite(est_a.mean) and math.isfinite(est_b.mean)
    direction = "by the means" if holds else "the means point the other way" if defined else "a mean is undefined"
    if same_items(est_a, est_b):
        diff, low, high = paired_difference_interval(est_a, est_b)
        evidence = (
            f"paired 95 % BCa bootstrap of {label_a} − {label_b} over the same {est_a.items[1]} images, one run "
            f"each: {diff:+.4g} [{low:+.4g}, {high:+.4g}]"
        )
        answer = (
            f"difference {UNDEFINED}"
            if not math.isfinite(diff)
            else "the paired interval is undefined (NaN on some resamples, or no variation over them): no conclusion"
            if not (math.isfinite(low) and math.isfinite(high))
            else f"the paired interval contains 0: no conclusion ({direction})"
            if low <= 0 <= high
            else ("yes" if holds else "no")
        )
    elif est_a.kind == est_b.kind == "bootstrap":
        evidence = "95 % bootstrap intervals over different images, one run each"
        ends = (est_a.mean, est_a.low, est_a.high, est_b.mean, est_b.low, est_b.high)
        answer = (
            f"interval {UNDEFINED}"
            if not all(map(math.isfinite, ends))
            else f"the intervals overlap: no conclusion ({direction})"
            if est_a.overlaps(est_b)
            else "yes"
            if holds
            else "no"
        )
    else:
        n, p = min(est_a.n, est_b.n), seeds_p_value(est_a, est_b)
        if n < 2:
            evidence = "one run cannot show a difference between seeds"
        elif p is None:
            evidence = "no spread between seeds"
        else:
            evidence = f"Welch's t-test {p_text(p)}{family_text(family, p_holm)}"
        unclear = no_conclusion(decisive_p(p, family, p_holm), n, alpha)
        answer = f"{unclear} ({direction})" if unclear else "yes" if holds else "no"
    return f"{claim.format(a=label_a, b=label_b)}: {answer}, {est_a.text(**fmt)} vs {est_b.text(**fmt)}; {evidence}"


def claim_lines(claims: Sequence[str | tuple], alpha: float = 0.05, **fmt) -> list[str]:
    """Lines of one family: each ``(claim, a, b, higher)`` as its :func:`claim_line`, those
    tested over seeds judged on their Holm-adjusted p-values among the family's tests; a string
    (a line that tests nothing) as it is."""
    tests = [c for c in claims if not isinstance(c, str)]
    adjusted = holm([seeds_p_value(a[1], b[1]) for _, a, b, _ in tests])
    family = sum(map(is_test, adjusted))
    lines = iter(claim_line(*test, alpha=alpha, family=family, p_holm=p, **fmt) for test, p in zip(tests, adjusted))
    return [c if isinstance(c, str) else next(lines) for c in claims]


def same_items(a: Estimate, b: Estimate) -> bool:
    """Whether ``a`` and ``b`` are bootstrap estimates on the same, named items (then compared paired)."""
    return a.items is not None and b.items is not None and a.items[1:] == b.items[1:] and bool(a.items[2])


def paired_difference_interval(a: Estimate, b: Estimate, seed: int = 0) -> tuple[float, float, float]:
    """``statistic_a − statistic_b`` on all items and its 95 % BCa interval (``scipy.stats.bootstrap``,
    :data:`BOOTSTRAP_RESAMPLES` resamples of the items, each resample the same items for both)."""
    from scipy.stats import bootstrap

    (stat_a, n, _), (stat_b, _, _) = a.items, b.items
    index = np.arange(n)
    result = bootstrap(
        (index,),
        lambda i: stat_a(i) - stat_b(i),
        vectorized=False,
        n_resamples=BOOTSTRAP_RESAMPLES,
        method="BCa",
        random_state=np.random.default_rng(seed),
    )
    return float(stat_a(index) - stat_b(index)), *map(float, result.confidence_interval)


def relative_change(a: float, b: float) -> str:
    """``a`` relative to ``b`` as a signed percentage (``−16 %``); ``n/a`` when ``b`` is 0."""
    return "n/a" if b == 0 or math.isnan(b) else f"{100 * (a - b) / b:+.0f} %".replace("-", "−")


def paired_difference(a: dict[int, float], b: dict[int, float]) -> dict:
    """``a − b`` paired by seed (the seeds both have): mean and std (ddof 1) of the per-seed
    differences, the two-sided paired t-test's p-value (None below 2 pairs or when every
    difference is equal; NaN when a value is NaN) and the seeds used."""
    from scipy.stats import ttest_rel

    seeds = sorted(set(a) & set(b))
    diff = Estimate.over_seeds([a[s] - b[s] for s in seeds]) if seeds else Estimate(math.nan, n=0)
    p = None
    # rounding is judged on the scale of the values subtracted; a NaN among them gives a NaN p
    if len(seeds) >= 2 and not no_spread(diff.std, *a.values(), *b.values()):
        p = float(ttest_rel([a[s] for s in seeds], [b[s] for s in seeds]).pvalue)
    return {"seeds": seeds, "n": len(seeds), "mean_diff": diff.mean, "std_diff": diff.std, "p_value": p}


@dataclass(frozen=True)
class Contrast:
    """A signed sum of independent group means, e.g. (non-DP e − DP e) − (non-DP C4 − DP C4),
    with its Welch–Satterthwaite t interval and two-sided p-value (None with fewer than two
    seeds in a group or no spread)."""

    estimate: float
    low: float | None
    high: float | None
    p_value: float | None
    df: float | None
    seeds: tuple[int, ...]  # runs per group
    family: int = 1  # tests in its family (module docstring); 1: judged alone
    p_holm: float | None = None  # its Holm-adjusted p-value in that family

    @property
    def p_decisive(self) -> float | None:
        """The p-value a verdict is decided on: Holm-adjusted in a family of several tests."""
        return decisive_p(self.p_value, self.family, self.p_holm)

    def text(self, scale: float = 100.0, unit: str = " points") -> str:
        """``+2.81 points [95 % CI −0.40, +6.02], p = 0.08, Holm-adjusted over 4 tests p = 0.24
        (Welch; 5, 5, 5, 5 seeds)``; the interval is the single test's (unadjusted)."""

        def f(v):
            return f"{scale * v:+.2f}".replace("-", "−")

        seeds = ", ".join(map(str, self.seeds)) + (" seeds" if max(self.seeds) != 1 else " seed")
        if self.low is None:
            return f"{f(self.estimate)}{unit} ({seeds}: no interval)"
        return (
            f"{f(self.estimate)}{unit} [95 % CI {f(self.low)}, {f(self.high)}], {p_text(self.p_value)}"
            f"{family_text(self.family, self.p_holm)} (Welch; {seeds})"
        )

    @staticmethod
    def in_family(contrasts: Sequence[Contrast | None]) -> list[Contrast | None]:
        """The same contrasts as one family: each with the family's size and its Holm-adjusted
        p-value (those without a p-value, and None entries, are not tests and do not count)."""
        adjusted = holm([None if c is None else c.p_value for c in contrasts])
        family = sum(map(is_test, adjusted))
        return [replace(c, family=family, p_holm=p) if is_test(p) else c for c, p in zip(contrasts, adjusted)]


def p_text(p: float | None) -> str:
    """``p = 0.03``, ``p < 0.001``, ``p n/a`` (no test) or ``p undefined`` (NaN)."""
    if p is None or math.isnan(p):
        return "p n/a" if p is None else "p undefined"
    return f"p = {p:.2g}" if p >= 0.001 else "p < 0.001"


def is_test(p_value: float | None) -> bool:
    """Whether a comparison's p-value is a test: not None (no test: one seed, no spread) and
    not NaN (undefined: a NaN among the values compared)."""
    return p_value is not None and not math.isnan(p_value)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm–Bonferroni adjusted p-values of one family (statsmodels' ``multipletests``): the
    k-th smallest p times (m − k + 1), made monotone and capped at 1; rejecting where the
    adjusted p < α keeps the family-wise error rate ≤ α under any dependence between the tests.
    A None or NaN (a comparison without a test, :func:`is_test`) stays as it is and does not
    count among the m tests."""
    from statsmodels.stats.multitest import multipletests

    tested = [p for p in p_values if is_test(p)]
    adjusted = iter(multipletests(tested, method="holm")[1] if tested else [])
    return [float(next(adjusted)) if is_test(p) else p for p in p_values]


def decisive_p(p_value: float | None, family: int, p_holm: float | None) -> float | None:
    """The p-value a verdict is decided on: ``p_holm`` in a family of several tests, else ``p_value``."""
    return p_holm if family > 1 and is_test(p_value) else p_value


def family_text(family: int, p_holm: float | None) -> str:
    """``, Holm-adjusted over 4 tests p = 0.24`` in a family of several tests, else nothing."""
    return f", Holm-adjusted over {family} tests {p_text(p_holm)}" if family > 1 and is_test(p_holm) else ""


def welch_contrast(groups: Sequence[tuple[float, Sequence[float]]], level: float = 0.95) -> Contrast:
    """Σ cᵢ · mean(xᵢ) over independent groups ``(cᵢ, xᵢ)``: standard error √Σ cᵢ² sᵢ²/nᵢ,
    Welch–Satterthwaite degrees of freedom (Σ vᵢ)² / Σ vᵢ²/(nᵢ − 1), vᵢ = cᵢ² sᵢ²/nᵢ; for two
    groups with coefficients ±1 this is Welch's t-test (:func:`scipy.stats.ttest_ind`, a test
    checks it)."""
    from scipy.stats import t

    arrays = [(c, np.asarray(x, dtype=np.float64)) for c, x in groups]
    estimate = float(sum(c * x.mean() for c, x in arrays))
    seeds = tuple(len(x) for _, x in arrays)
    if min(seeds) < 2:
        return Contrast(estimate, None, None, None, None, seeds)
    v = [c * c * x.var(ddof=1) / len(x) for c, x in arrays]
    se = math.sqrt(sum(v))
    if no_spread(se, *(x.mean() for _, x in arrays)):
        return Contrast(estimate, None, None, None, None, seeds)
    df = sum(v) ** 2 / sum(vi * vi / (len(x) - 1) for vi, (_, x) in zip(v, arrays))
    half = float(t.ppf(0.5 + level / 2, df)) * se
    p = float(2 * t.sf(abs(estimate) / se, df))
    return Contrast(estimate, estimate - half, estimate + half, p, df, seeds)


def welch_difference(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> Contrast:
    """mean(``a``) − mean(``b``) of two independent groups (Welch's t-test): a gap, or one model
    against another."""
    return welch_contrast([(1, a), (-1, b)], level)


def family_verdicts(items: Sequence[str | tuple[str, Contrast]]) -> list[str]:
    """Lines of one family: each ``(claim, contrast)`` as its :func:`contrast_verdict`, judged on
    its Holm-adjusted p-value among the family's tests (:meth:`Contrast.in_family`); a string (a
    line that tests nothing) as it is."""
    tests = [item for item in items if not isinstance(item, str)]
    judged = iter(zip((claim for claim, _ in tests), Contrast.in_family([c for _, c in tests])))
    return [item if isinstance(item, str) else contrast_verdict(*next(judged)) for item in items]


def no_conclusion(p_value: float | None, n: int, alpha: float = 0.05) -> str | None:
    """Why a comparison over seeds supports no conclusion — ``one seed: no conclusion`` (fewer
    than two runs in a group), ``no spread between seeds: no conclusion`` (no p-value for
    another reason) or ``not significant: no conclusion`` (p ≥ ``alpha``) — or None when it is
    significant. Every verdict (:func:`claim_line`, :func:`contrast_verdict`, the paired lines of
    ``table``) words these cases alike; a NaN p-value (:func:`is_test`) is ``p-value undefined
    (…): no conclusion`` (:data:`UNDEFINED`)."""
    if p_value is None:
        return "one seed: no conclusion" if n < 2 else "no spread between seeds: no conclusion"
    if math.isnan(p_value):
        return f"p-value {UNDEFINED}"
    return "not significant: no conclusion" if p_value >= alpha else None


def contrast_verdict(claim: str, contrast: Contrast, positive: bool = True, alpha: float = 0.05) -> str:
    """``<claim>: yes|no, significantly the opposite|<no conclusion>; <evidence>``: whether the
    contrast is significantly > 0 (``positive``) or < 0 at level ``alpha`` (:func:`no_conclusion`),
    on its Holm-adjusted p-value when it is one of a family (:meth:`Contrast.in_family`)."""
    answer = no_conclusion(contrast.p_decisive, min(contrast.seeds), alpha) or (
        "yes" if (contrast.estimate > 0) == positive else "no, significantly the opposite"
    )
    return f"{claim}: {answer}; {contrast.text()}"
