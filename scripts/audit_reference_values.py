"""Reference values for dpecnn's one-run bounds from an independent implementation: jax-privacy's
``CanaryScoreAuditor`` (Steinke et al. 2023: ``epsilon_one_run``; Mahloujifar et al. 2025:
``epsilon_one_run_fdp``), one-sided guesses at an explicit threshold.

jax-privacy pulls in jax, so it is not a dependency of dpecnn: run this in a separate environment,
    python -m venv /tmp/jp && /tmp/jp/bin/pip install jax-privacy==2.0.0
    /tmp/jp/bin/python scripts/audit_reference_values.py
and paste its output into tests/test_audit.py (REFERENCE). Each case (m, r, v, significance, δ):
m canaries, r "in" guesses of which v are right, tested at level `significance`.
"""

import numpy as np
from jax_privacy.auditing import CanaryScoreAuditor, Explicit

CASES = [
    (1000, 50, 40, 0.05 / 3, 1e-5),
    (1000, 50, 50, 0.05 / 3, 1e-5),
    (1000, 427, 427, 0.05 / 3, 1e-5),
    (1000, 427, 400, 0.05 / 3, 1e-5),
    (1000, 427, 300, 0.025, 1e-5),
    (1000, 200, 130, 0.025, 1e-5),
    (500, 100, 90, 0.05, 1e-5),
    (5000, 2000, 1990, 0.05 / 3, 1e-5),
]


def scores_for(m: int, r: int, v: int) -> tuple[np.ndarray, np.ndarray]:
    """In- and out-scores whose top r (score 1) hold v included canaries; the rest score 0."""
    n_in = m // 2
    in_scores = np.r_[np.ones(v), np.zeros(n_in - v)]
    out_scores = np.r_[np.ones(r - v), np.zeros(m - n_in - (r - v))]
    return in_scores, out_scores


if __name__ == "__main__":
    for m, r, v, level, delta in CASES:
        auditor = CanaryScoreAuditor(*scores_for(m, r, v))
        one_run = auditor.epsilon_one_run(level, delta, threshold_strategy=Explicit(1.0))
        fdp = auditor.epsilon_one_run_fdp(level, delta, threshold_strategy=Explicit(1.0))
        print(f"    ({m}, {r}, {v}, {level!r}, {delta!r}, {one_run:.4f}, {fdp:.4f}),")
