"""The privacy–utility figure: accuracy against ε per group (test and validation), and the gap
non-DP − DP per group with its 95 % interval. Takes plain numbers
(:func:`dpecnn.analysis.pages.privacy_utility.figure_lines`)."""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

from dpecnn.plotting.figures import finish, seeds_text
from dpecnn.plotting.style import arch_colour, plt, styled

PANELS = (("test_acc", "test accuracy (%)"), ("val_acc", "validation accuracy (%)"))


def privacy_utility_figure(lines, out_dir=None, name: str = "privacy_utility", paper: dict | None = None):
    """Three panels: test and validation accuracy (%) against ε (log axis), one line per group
    (groups set slightly apart; a line breaks at a budget its group was not trained at) with bars
    and a band of ± one std over seeds and its non-DP level as a dashed line with its band; then
    the privacy–utility gap (non-DP − DP test accuracy, points) with 95 % intervals.
    ``lines``: one dict per group with ``label``, ``arch``, ``epsilons``, ``dp`` ({metric:
    (means, stds, seeds per ε)}), ``no_dp`` ({metric: (mean, std, seeds)} or None) and ``gap``
    ((ε, estimate, low, high) per ε with both, in points); ``paper`` ({label: DP accuracy % at
    ε = 7.42}) adds the paper's values as open markers."""
    budgets = sorted({e for line in lines for e in line["epsilons"]})
    with styled():
        fig, axes = plt.subplots(1, 3, figsize=(9.0, 3.0))
        for ax, (metric, ylabel) in zip(axes[:2], PANELS):
            for i, line in enumerate(lines):
                colour, label, shift = arch_colour(line["arch"]), line["label"], _dodge(i, len(lines))
                if line["epsilons"]:
                    mean, std = (_on_budgets(line["epsilons"], v, budgets) for v in line["dp"][metric][:2])
                    seeds, eps = line["dp"][metric][2], np.asarray(budgets) * shift
                    ax.errorbar(  # bars as well as the band: a group trained at one budget has no band
                        eps,
                        mean,
                        yerr=std,
                        fmt="o-",
                        color=colour,
                        ms=3,
                        lw=1.2,
                        capsize=2,
                        label=f"{label} DP ({seeds_text([int(n) for n in seeds])})",
                    )
                    ax.fill_between(eps, mean - std, mean + std, color=colour, alpha=0.2, lw=0)
                if line["no_dp"] is not None and budgets:
                    mean, std, seeds = line["no_dp"][metric]
                    ax.axhline(mean, color=colour, ls="--", lw=1, label=f"{label} no DP ({seeds_text(seeds)})")
                    ax.axhspan(mean - std, mean + std, color=colour, alpha=0.08, lw=0)
                if paper and metric == "val_acc" and label in paper:
                    ax.plot(
                        [7.42 * shift], [paper[label]], "o", mfc="none", color=colour, ms=5, label=f"{label} DP (paper)"
                    )
            _epsilon_axis(ax, budgets)
            ax.set_ylabel(ylabel)
            ax.set_title("mean ± std over seeds")
        ax = axes[2]
        for i, line in enumerate(lines):
            if not line["gap"]:
                continue
            trained, *values = zip(*line["gap"])
            est, low, high = (_on_budgets(trained, v, budgets) for v in values)
            ax.errorbar(
                np.asarray(budgets) * _dodge(i, len(lines), 0.08),
                est,
                yerr=[est - np.where(np.isnan(low), est, low), np.where(np.isnan(high), est, high) - est],
                fmt="o-",
                color=arch_colour(line["arch"]),
                ms=3,
                lw=1.2,
                capsize=2,
                label=line["label"],
            )
        ax.axhline(0, color="0.5", lw=0.6)
        _epsilon_axis(ax, budgets)
        ax.set_ylabel("non-DP − DP test accuracy (points)")
        ax.set_title("privacy–utility gap, Welch 95 % CI")
        # one legend under the panels at the style's 8 pt (inside a panel it had to be 4.6 pt to fit)
        handles, labels = axes[0].get_legend_handles_labels()
        fig.tight_layout()
        fig.legend(handles, labels, frameon=False, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3)
        return finish(fig, out_dir, name)


def _on_budgets(epsilons, values, budgets) -> np.ndarray:
    """``values`` (one per ε in ``epsilons``) placed at every budget of the figure, NaN where the
    group was not trained: its line breaks there instead of drawing a value nobody measured."""
    at = dict(zip(epsilons, values))
    return np.array([at.get(e, np.nan) for e in budgets], dtype=float)


def _dodge(i: int, n: int, step: float = 0.04) -> float:
    """Factor on ε that sets the ``n`` groups side by side on the log axis (group ``i``)."""
    return 1 + step * (i - (n - 1) / 2)


def _epsilon_axis(ax, budgets) -> None:
    """Log ε axis with ticks at the budgets trained, labelled as numbers (not 10⁰ alone)."""
    ax.set_xscale("log")
    ax.set_xlabel("ε (δ = 1e-5)")
    if budgets:
        ax.xaxis.set_major_locator(FixedLocator(budgets))
        ax.set_xticklabels([f"{e:g}" for e in budgets])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())
