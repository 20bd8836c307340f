"""The privacy audit's figure (:mod:`dpecnn.audit`): the canaries' attack scores, in against out,
for each audit, and the ε lower bounds (attack and baseline) beside the claimed ε and the ceilings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dpecnn.plotting.figures import finish
from dpecnn.plotting.style import plt, styled


def audit_figure(audits: Sequence[dict], labels: Sequence[str], out_dir=None, name: str = "privacy_audit"):
    """One histogram of in/out scores per audit (titled by ``labels``), then the bounds against the claims."""
    n = len(audits)
    cols = min(n + 1, 4)
    rows = -(-(n + 1) // cols)  # the histograms wrap in rows of four; the bounds come last
    with styled():
        fig, grid = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.6 * rows), squeeze=False)
        axes = list(grid.flat)
        for ax in axes[n + 1 :]:
            ax.axis("off")
        for ax, audit, label in zip(axes, audits, labels):
            scores = np.asarray(audit["scores"][audit["score"]])
            included = np.asarray(audit["included"], dtype=bool)
            # a symmetric log scale: the likelihood ratio of a canary drawn without DP runs to thousands
            shown = np.sign(scores) * np.log1p(np.abs(scores))
            bins = np.histogram_bin_edges(shown, bins=30)
            ax.hist(shown[~included], bins=bins, alpha=0.6, label="out", color="tab:blue")
            ax.hist(shown[included], bins=bins, alpha=0.6, label="in", color="tab:orange")
            ax.set_title(
                f"{label}\nε ≥ {audit['epsilon_lower_bound']:.2f}, f-DP ≥ {audit['epsilon_lower_bound_fdp']:.2f}",
                fontsize=8,
            )
            ax.set_xlabel(f"{audit['score']} score, sign·log(1 + |s|)")
            ax.legend(fontsize=7)
        axes[0].set_ylabel("canaries")
        ax = axes[n]
        x = np.arange(n)
        claimed = [a["epsilon_claimed"] if a["epsilon_claimed"] is not None else np.nan for a in audits]
        width = 0.2
        bars = [
            ([a["baseline"]["epsilon_lower_bound"] for a in audits], "baseline score, one run", "tab:pink"),
            ([a["epsilon_lower_bound"] for a in audits], "ε ≥, one run (95 %)", "tab:red"),
            ([a["epsilon_lower_bound_fdp"] for a in audits], "ε ≥, f-DP (95 %)", "darkred"),
            (claimed, "ε claimed", "tab:gray"),
        ]
        for i, (values, legend, colour) in enumerate(bars):
            ax.bar(x + (i - 1.5) * width, values, width, label=legend, color=colour)
        ceilings = ((-0.5, "epsilon_ceiling", "ceilings (canary count)"), (0.5, "epsilon_ceiling_fdp", None))
        for offset, key, legend in ceilings:
            ax.scatter(x + offset * width, [a[key] for a in audits], marker="_", s=120, color="k", label=legend)
        ax.set_xticks(x, labels, fontsize=6, rotation=90)
        ax.set_ylabel("ε")
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0))  # beside the bars, clear of them
        fig.suptitle(
            "One-run audit: empirical lower bounds on ε (Steinke et al. 2023; f-DP, Mahloujifar et al. 2025)",
            fontsize=9,
        )
        return finish(fig, out_dir, name)
