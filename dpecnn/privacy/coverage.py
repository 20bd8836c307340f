"""What a DP run's (ε, δ) guarantee covers and what it does not: the one home of these
statements. The model card, the run folder's diagnostics notice, the docs' privacy page, the
notebooks and the figures all read them from here (tests check the notebooks' wording).

ε covers what the mechanism releases: the model weights after the last step (and anything
computed from them alone). Everything below is outside it.
"""

from __future__ import annotations

# Short label for a figure or verdict computed from un-noised training data.
DIAGNOSTIC_LABEL = "diagnostic, not covered by ε"

NOT_COVERED: dict[str, str] = {
    "diagnostics": "Diagnostics computed from un-noised training data (pre-noise clipped-gradient sparsity, "
    "training losses): they stay in the run folder's diagnostics.jsonl, are drawn only in figures marked as "
    "diagnostics (Fig. 1 right), and are never part of a release; --no-diagnostics turns them off.",
    "tuning": "Hyper-parameters chosen by looking at validation accuracy: the paper recipe and dpecnn's defaults "
    "were selected on BloodMNIST's validation split at the search seeds 0–2, and any further tuning on a validation "
    "split is outside the (epsilon, delta) accounting, as is usual in the literature.",
    "evaluation splits": "The validation and test splits: they are not protected, and every accuracy is measured "
    "on them.",
    "training-set size": "The size N of the training set, which sets the sampling rate q = batch size / N: under "
    "add/remove adjacency N differs between neighbouring datasets, and it is treated as public, as Opacus does.",
    "training subset": "With --train-subset the subset is drawn from the recorded seed: epsilon covers the images "
    "of that subset, not the pool it was drawn from (whoever knows the seed knows which images were used).",
    "side channels": "Side channels of the implementation: floating-point Gaussian sampling, non-cryptographic "
    "generators (Mersenne Twister on CPU, its whole 19937-bit state filled from OS entropy; Philox on CUDA, "
    "seeded with 64 bits of OS entropy), and timing, which depends on the Poisson batch sizes.",
    "symmetry probe": "The symmetry probe reads raw training and validation images and trains without DP: it "
    "belongs on the data owner's side, like hyper-parameter tuning.",
    "audit": "Privacy-audit runs train with canaries whose coins come from the recorded seed: they measure the "
    "mechanism and are never releases.",
}
# The statements a model card lists: what is true of every release (the probe and audits are not part of one).
CARD_KEYS = ("diagnostics", "tuning", "evaluation splits", "training-set size", "training subset", "side channels")


def card_statements() -> list[str]:
    """The "What ε does not cover" list of a model card."""
    return [NOT_COVERED[k] for k in CARD_KEYS]


def markdown_list() -> str:
    """Every statement as a Markdown list (the docs' privacy page)."""
    return "\n".join(f"- **{key}.** {text}" for key, text in NOT_COVERED.items())
