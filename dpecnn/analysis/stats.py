"""Uncertainty of a group's numbers, and the verdict lines the notebooks end with.

An :class:`Estimate` is one of

* ``seeds``: the mean over the group's seeds ± their sample standard deviation (ddof 1);
  with one seed the value alone, without an interval;
* ``bootstrap``: one seed's value with a 95 % percentile bootstrap interval over the images
  it was measured on (:data:`BOOTSTRAP_RESAMPLES` resamples, a fixed generator seed).

A verdict (:func:`claim_line`) answers a paper claim "A is higher (lower) than B" by the
means, shows both estimates, and says when their intervals overlap (the difference is then
within the spread between seeds or resamples).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

BOOTSTRAP_RESAMPLES = 1000


@dataclass(frozen=True)
class Estimate:
    mean: float
    low: float | None = None  # interval ends: mean ∓ std (seeds) or the 2.5 / 97.5 % quantiles (bootstrap)
    high: float | None = None
    n: int = 1  # seeds
    kind: str = "seeds"

    @classmethod
    def over_seeds(cls, values: Sequence[float]) -> "Estimate":
        values = np.asarray(values, dtype=np.float64)
        return cls.from_mean_std(float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else None,
                                 len(values))

    @classmethod
    def from_mean_std(cls, mean: float, std: float | None, n: int) -> "Estimate":
        """A mean over ``n`` seeds with their standard deviation (None: one seed, no interval)."""
        return cls(mean, n=n) if std is None else cls(mean, mean - std, mean + std, n)

    @classmethod
    def bootstrap(cls, statistic: Callable[[np.ndarray], float], n_items: int, seed: int = 0) -> "Estimate":
        """``statistic(indices)`` on all ``n_items`` items, with the 95 % percentile interval of
        its value on :data:`BOOTSTRAP_RESAMPLES` resamples of the items with replacement."""
        rng = np.random.default_rng(seed)
        values = [statistic(rng.integers(0, n_items, n_items)) for _ in range(BOOTSTRAP_RESAMPLES)]
        low, high = np.quantile(values, [0.025, 0.975])
        return cls(statistic(np.arange(n_items)), float(low), float(high), 1, "bootstrap")

    @property
    def std(self) -> float | None:
        """The standard deviation over seeds (None for one seed or a bootstrap interval)."""
        return None if self.kind != "seeds" or self.low is None else self.mean - self.low

    def overlaps(self, other: "Estimate") -> bool:
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

        value = (f(self.mean) if self.low is None else f"{f(self.mean)} [{f(self.low)}, {f(self.high)}]"
                 if self.kind == "bootstrap" else f"{f(self.mean)} ± {f(self.std)}")
        return f"{value} ({self.note})" if note else value

    def columns(self, name: str) -> dict:
        """Table columns: ``name`` (the mean), ``name std`` (seeds) or ``name CI low/high`` (bootstrap)."""
        if self.kind == "bootstrap":
            return {name: self.mean, f"{name} CI low": self.low, f"{name} CI high": self.high}
        return {name: self.mean, f"{name} std": self.std}


def claim_line(claim: str, a: tuple[str, Estimate], b: tuple[str, Estimate], higher: bool, **fmt) -> str:
    """``"<claim>: yes, <a> vs <b>"``: whether ``a``'s mean is higher (``higher``) or lower than
    ``b``'s, both estimates (:meth:`Estimate.text` with ``fmt``), and "intervals overlap" when
    they do. ``claim`` is formatted with the labels ``a`` and ``b``."""
    (label_a, est_a), (label_b, est_b) = a, b
    holds = est_a.mean > est_b.mean if higher else est_a.mean < est_b.mean
    answer = "yes" if holds else "no"
    line = f"{claim.format(a=label_a, b=label_b)}: {answer}, {est_a.text(**fmt)} vs {est_b.text(**fmt)}"
    if est_a.overlaps(est_b):
        line += "; the intervals overlap"
    return line


def relative_change(a: float, b: float) -> str:
    """``a`` relative to ``b`` as a signed percentage (``−16 %``); ``n/a`` when ``b`` is 0."""
    return "n/a" if b == 0 or math.isnan(b) else f"{100 * (a - b) / b:+.0f} %".replace("-", "−")


def paired_difference(a: dict[int, float], b: dict[int, float]) -> dict:
    """``a − b`` paired by seed (the seeds both have): mean and std (ddof 1) of the per-seed
    differences, the two-sided paired t-test's p-value (None below 2 pairs or when every
    difference is equal) and the seeds used."""
    from scipy.stats import ttest_rel

    seeds = sorted(set(a) & set(b))
    diff = Estimate.over_seeds([a[s] - b[s] for s in seeds]) if seeds else Estimate(math.nan, n=0)
    p = None
    if len(seeds) >= 2 and diff.std > 0:
        p = float(ttest_rel([a[s] for s in seeds], [b[s] for s in seeds]).pvalue)
    return {"seeds": seeds, "n": len(seeds), "mean_diff": diff.mean, "std_diff": diff.std, "p_value": p}
