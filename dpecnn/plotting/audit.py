"""The privacy audit's figure (:mod:`dpecnn.audit`): the canaries' scores, in against out, for
each audit, and the ε lower bound beside the claimed ε."""

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
            scores, included = np.asarray(audit["scores"]), np.asarray(audit["included"], dtype=bool)
            bins = np.histogram_bin_edges(scores, bins=30)
            ax.hist(scores[~included], bins=bins, alpha=0.6, label="out", color="tab:blue")
            ax.hist(scores[included], bins=bins, alpha=0.6, label="in", color="tab:orange")
            ax.set_title(f"{label}\nbound {audit['epsilon_lower_bound']:.2f}", fontsize=8)
            ax.set_xlabel("canary score")
            ax.legend(fontsize=7)
        axes[0].set_ylabel("canaries")
        ax = axes[n]
        x = np.arange(n)
        claimed = [a["epsilon_claimed"] if a["epsilon_claimed"] is not None else np.nan for a in audits]
        ax.bar(x - 0.2, [a["epsilon_lower_bound"] for a in audits], 0.4, label="ε lower bound (95 %)", color="tab:red")
        ax.bar(x + 0.2, claimed, 0.4, label="ε claimed", color="tab:gray")
        ax.scatter(
            x - 0.2,
            [a["epsilon_ceiling"] for a in audits],
            marker="_",
            s=300,
            color="k",
            label="ceiling (canary count)",
        )
        ax.set_xticks(x, labels, fontsize=6, rotation=90)
        ax.set_ylabel("ε")
        ax.legend(fontsize=7)
        fig.suptitle("One-run audit (Steinke et al. 2023): an empirical lower bound on ε", fontsize=9)
        return finish(fig, out_dir, name)
