"""Figures of curves and bars: Fig. 1 (accuracy vs size, gradient sparsity), reliability
diagrams and training curves. Each takes plain data (numbers, numpy arrays), draws with the
dpecnn style, saves ``<out_dir>/<name>.pdf`` and ``.png`` when ``out_dir`` is given and
returns the matplotlib figure. Where a setting has several seeds, the figure shows their
mean and ± one standard deviation (error bars or a band) and says how many seeds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

from dpecnn.plotting.style import arch_colour, arch_rank, plt, save_figure, styled
from dpecnn.privacy.coverage import DIAGNOSTIC_LABEL

MIN_Y_SPAN = 5.0  # percentage points: the smallest accuracy range Fig. 1 left shows


def finish(fig, out_dir, name):
    fig.tight_layout()
    if out_dir is not None:
        save_figure(fig, out_dir, name)
    return fig


def seeds_text(n: Sequence[int] | int) -> str:
    """``3 seeds``, ``1 seed`` or ``1–3 seeds``."""
    lo, hi = (n, n) if isinstance(n, int) else (min(n), max(n))
    return f"{lo} seed" + ("s" if hi > 1 else "") if lo == hi else f"{lo}–{hi} seeds"


def _compact(value: float) -> str:
    """``1k``, ``250k``, ``2.5M``."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:g}"


def y_limits(low: float, high: float, min_span: float = MIN_Y_SPAN) -> tuple[float, float]:
    """``[low, high]`` padded by 10 % of its span, widened about its centre to at least
    ``min_span`` and moved inside [0, 100]."""
    pad = 0.1 * (high - low)
    low, high = low - pad, high + pad
    if high - low < min_span:
        centre = (low + high) / 2
        low, high = centre - min_span / 2, centre + min_span / 2
    shift = max(0.0, -low) - max(0.0, high - 100.0)
    return low + shift, high + shift


def accuracy_vs_params(
    points: Sequence[Mapping], out_dir=None, name: str = "accuracy_vs_params", ylabel: str = "validation accuracy (%)"
):
    """Accuracy against parameter count, one line per setting over widths (Fig. 1 left).
    ``points``: :func:`dpecnn.analysis.pages.table.seed_groups` output — ``arch``, ``line``,
    ``params``, ``mean``, ``std`` (None for one seed), ``n`` and optional ``layout`` (written
    beside its point). Error bars are ± one standard deviation over seeds; the legend gives
    the seeds per point. x is logarithmic. The y axis spans the means ± error bars plus 10 %,
    and at least :data:`MIN_Y_SPAN` percentage points about their centre (:func:`y_limits`),
    so that differences below a point do not fill the axis."""
    with styled():
        fig, ax = plt.subplots(figsize=(3.4, 2.6))
        for line in sorted({p["line"] for p in points}, key=lambda line: (arch_rank(line.split()[0]), line)):
            pts = sorted((p for p in points if p["line"] == line), key=lambda p: p["params"])
            ax.errorbar(
                [p["params"] for p in pts],
                [100 * p["mean"] for p in pts],
                yerr=[100 * (p["std"] or 0.0) for p in pts],
                fmt="o-",
                label=f"{line} ({seeds_text([p['n'] for p in pts])})",
                color=arch_colour(pts[0]["arch"]),
                ms=3,
                lw=1.2,
                capsize=2,
            )
            for p in pts:
                if p.get("layout"):
                    ax.annotate(
                        "-".join(map(str, p["layout"])),
                        (p["params"], 100 * p["mean"]),
                        fontsize=6,
                        xytext=(2, 2),
                        textcoords="offset points",
                    )
        ends = [100 * (p["mean"] + s * (p["std"] or 0.0)) for p in points for s in (-1, 1)]
        ax.set_ylim(*y_limits(min(ends), max(ends)))
        ax.set_xscale("log")
        parameter_ticks(ax, [p["params"] for p in points])
        ax.set_xlabel("trainable parameters")
        ax.set_ylabel(ylabel)
        ax.set_title("mean ± std over seeds", fontsize="small")
        ax.legend(frameon=False, fontsize="x-small")
        return finish(fig, out_dir, name)


def parameter_ticks(ax, params: Sequence[float], most: int = 6) -> None:
    """Labelled ticks on a logarithmic parameter-count axis: 1, 2 and 5 × 10^k (as "20k"), or,
    where fewer than two of those fall inside the axis, up to ``most`` of the counts themselves
    (one decade of parameters often holds no power of ten)."""
    lo, hi = ax.get_xlim()
    nice = [m * 10.0**k for k in range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1) for m in (1, 2, 5)]
    ticks = [t for t in nice if lo <= t <= hi]
    if len(ticks) < 2:
        counts = sorted(set(params))
        ticks = [counts[round(i)] for i in np.linspace(0, len(counts) - 1, min(most, len(counts)))]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _compact(v)))
    ax.xaxis.set_minor_formatter(NullFormatter())  # 3×10⁴ … 9×10⁴ labels would collide


def sparsity_curves(
    curves: Mapping[str, tuple[Sequence[int], np.ndarray]],
    window: int,
    out_dir=None,
    name: str = "sparsity",
    threshold: float = 1e-5,
    arch_of: Mapping[str, str] | None = None,
):
    """ℓ0_ε sparsity of the averaged clipped gradient over training steps (Fig. 1 right).
    ``curves``: label → (steps, ``(seeds, steps)`` sparsity already smoothed with a trailing
    moving average over ``window`` logged steps, which the legend states). Line: mean over
    seeds; band: ± one standard deviation over seeds (with several seeds). The gradient is
    taken before noise, so the figure is a diagnostic of training data, not covered by ε;
    its title says so."""
    with styled():
        fig, ax = plt.subplots(figsize=(3.4, 2.6))
        for label, (steps, values) in curves.items():
            values = np.atleast_2d(values)
            colour, mean = arch_colour((arch_of or {}).get(label, label)), values.mean(0)
            ax.plot(steps, mean, label=f"{label} ({seeds_text(len(values))})", color=colour, lw=1.2)
            if len(values) > 1:
                std = values.std(0, ddof=1)
                ax.fill_between(steps, mean - std, mean + std, color=colour, alpha=0.25, lw=0)
        ax.set_xlabel("training step")
        ax.set_ylabel(rf"$\ell^0_{{{threshold:.0e}}}$ gradient sparsity")
        ax.set_title(f"pre-noise gradient ({DIAGNOSTIC_LABEL})", fontsize="small")
        ax.legend(
            frameon=False,
            fontsize="x-small",
            loc="upper center",
            bbox_to_anchor=(0.5, -0.3),
            title=f"mean ± std over seeds; moving average of {window} steps",
            title_fontsize="x-small",
        )
        return finish(fig, out_dir, name)


def reliability_diagrams(
    groups: Mapping[str, Mapping],
    out_dir=None,
    name: str = "reliability",
    subtitles: Mapping[str, str] | None = None,
    arch_of: Mapping[str, str] | None = None,
):
    """Reliability diagrams, one column per group. ``groups``: label → ``edges`` (B + 1),
    ``accuracy`` and ``count`` ``(seeds, B)`` (accuracy NaN in an empty bin). Top: per
    confidence bin the accuracy, mean over the seeds with images in that bin, with ± one
    standard deviation over them as an error bar (where at least two seeds have images in
    the bin); the dashed diagonal is perfect calibration. Bottom: test images per bin (mean
    over seeds; log scale, shared by all groups), so sparsely filled bins can be told from
    well-measured ones. ``subtitles``: label → text under the label (Brier, ECE)."""
    with styled():
        n = len(groups)
        fig, axes = plt.subplots(
            2,
            n,
            figsize=(2.6 * n, 3.6),
            squeeze=False,
            sharex=True,
            sharey="row",
            gridspec_kw={"height_ratios": [3, 1]},
        )
        for (top, bottom), (label, bins) in zip(axes.T, groups.items()):
            edges, colour = np.asarray(bins["edges"]), arch_colour((arch_of or {}).get(label, label))
            acc, count = np.atleast_2d(np.asarray(bins["accuracy"], float)), np.atleast_2d(bins["count"])
            mean, std = _mean_std_ignoring_nan(acc)
            top.bar(edges[:-1], mean, width=np.diff(edges), align="edge", color=colour, edgecolor="white", lw=0.5)
            if len(acc) > 1:
                top.errorbar(
                    (edges[:-1] + edges[1:]) / 2,
                    mean,
                    yerr=std,
                    fmt="none",
                    ecolor="black",
                    elinewidth=0.7,
                    capsize=1.5,
                )
            top.plot([0, 1], [0, 1], "--", color="grey", lw=0.8)
            top.set_xlim(0, 1)
            top.set_ylim(0, 1)
            top.set_title(label + (f"\n{subtitles[label]}" if subtitles and label in subtitles else ""), fontsize=7)
            bottom.bar(edges[:-1], count.mean(0), width=np.diff(edges), align="edge", color="grey", lw=0)
            bottom.set_yscale("log")
            bottom.yaxis.set_minor_formatter(NullFormatter())
            bottom.set_xlabel("confidence")
        axes[0][0].set_ylabel("accuracy (mean ± std\nover seeds)")
        axes[1][0].set_ylabel("images")
        return finish(fig, out_dir, name)


def _mean_std_ignoring_nan(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column of ``(seeds, B)``: mean and standard deviation (ddof 1) of the non-NaN
    entries; the mean is 0 where a column has none, the std NaN (no error bar) where it has
    fewer than two."""
    filled = ~np.isnan(values)
    n = filled.sum(0)
    mean = np.divide(np.where(filled, values, 0.0).sum(0), n, out=np.zeros(values.shape[1]), where=n > 0)
    squares = (np.where(filled, values - mean, 0.0) ** 2).sum(0)
    return mean, np.sqrt(np.divide(squares, n - 1, out=np.full(values.shape[1], np.nan), where=n > 1))


def training_curves(
    epochs: Sequence[int],
    val_acc: Sequence[float],
    epsilon: Sequence[float | None],
    out_dir=None,
    name: str = "training",
    label: str = "",
):
    """Validation accuracy and ε spent after each epoch (ε panel only for DP runs)."""
    dp = any(e is not None for e in epsilon)
    with styled():
        fig, axes = plt.subplots(1, 2 if dp else 1, figsize=(5.0 if dp else 2.6, 2.3), squeeze=False)
        axes[0][0].plot(epochs, [100 * a for a in val_acc], "o-", ms=3, color=arch_colour(label.split(" ")[0]))
        axes[0][0].set_xlabel("epoch")
        axes[0][0].set_ylabel("validation accuracy (%)")
        axes[0][0].set_title(label)
        if dp:
            axes[0][1].plot(epochs, epsilon, "o-", ms=3, color="black")
            axes[0][1].set_xlabel("epoch")
            axes[0][1].set_ylabel(r"$\varepsilon$ spent")
        return finish(fig, out_dir, name)
