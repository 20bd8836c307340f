"""The one-run audit: the bound against reference values and a simulation, and mutation tests
(reproducible seeds, so deterministic): no DP is caught, correct DP is not, a tenfold
smaller noise than accounted for is caught."""

import csv
import json
import math

import numpy as np
import pytest
from conftest import TINY_CLI, flags
from test_run_integrity import assert_one_error_line, cli

from dpecnn import io
from dpecnn.audit import run_audit
from dpecnn.privacy import mechanism
from dpecnn.privacy.one_run import epsilon_ceiling, epsilon_for_guesses, epsilon_lower_bound, p_value
from dpecnn.train import TrainConfig


@pytest.mark.parametrize(
    "m, r, v, expected",
    [(1000, 1000, 1000, 5.78), (5000, 5000, 5000, 7.28), (10_000, 10_000, 10_000, 7.83), (1000, 100, 100, 3.47)],
)
def test_bound_equals_reference_values(m, r, v, expected):
    """Values computed independently from the theorem (../shared/DESIGN.md section 6)."""
    assert epsilon_for_guesses(m, r, v, 1e-5, 0.05) == pytest.approx(expected, abs=0.01)


def test_pure_dp_p_value_is_the_binomial_tail_and_delta_only_adds():
    from scipy import stats

    m, r, v, eps = 400, 200, 150, 1.0
    q = math.exp(eps) / (1 + math.exp(eps))
    assert p_value(m, r, v, eps, 0.0) == pytest.approx(float(1 - stats.binom.cdf(v - 1, r, q)), rel=1e-12)
    assert p_value(m, r, v, eps, 1e-5) > p_value(m, r, v, eps, 0.0)


def test_bound_holds_for_an_exactly_private_mechanism_in_simulation():
    """Randomised response at ε₀ on every canary is exactly ε₀-DP: the 95 % bound must exceed
    ε₀ in at most about 5 % of trials, and must come near ε₀ when the attack is perfect."""
    rng = np.random.default_rng(0)
    eps0, m, trials = 1.0, 500, 200
    p = math.exp(eps0) / (1 + math.exp(eps0))
    above = 0
    for _ in range(trials):
        included = rng.random(m) < 0.5
        says_in = np.where(rng.random(m) < p, included, ~included)
        scores = says_in + rng.random(m) * 0.1  # ranks in-guesses first, ties broken at random
        above += epsilon_lower_bound(scores, included, delta=0.0)["epsilon_lower_bound"] > eps0
    assert above <= 0.05 * trials + 3 * math.sqrt(0.05 * trials)
    perfect = epsilon_lower_bound(np.arange(m, dtype=float), np.arange(m) >= m // 2, 1e-5)
    assert perfect["epsilon_lower_bound"] == pytest.approx(epsilon_ceiling(m, 1e-5), rel=1e-6)


AUDIT = dict(
    dataset="bloodmnist",
    arch="e",
    layout=(8, 16, 32),
    batch_size=64,
    physical_batch_size=64,
    epochs=16,
    train_subset=256,
    eval_subset=64,
    canaries=500,
    seed=0,
    diagnostics=False,
)


def audit(root, tmp_path, **kw):
    return run_audit(TrainConfig(**{**AUDIT, "data_root": str(root), **kw}), tmp_path / "audit")


@pytest.mark.slow
def test_mutation_no_dp_is_caught(synthetic_root, tmp_path):
    result = audit(synthetic_root, tmp_path, dp=False)
    assert result["epsilon_claimed"] is None and result["epsilon_lower_bound"] > 1


@pytest.mark.filterwarnings("ignore:--reproducible")
@pytest.mark.slow
def test_mutation_correct_dp_passes_and_a_tenth_of_the_noise_is_caught(synthetic_root, tmp_path, monkeypatch):
    honest = audit(synthetic_root, tmp_path / "honest", dp=True, epsilon=1.0, reproducible=True)
    assert honest["epsilon_claimed"] <= 1.0 and honest["epsilon_lower_bound"] <= 1.0
    real = mechanism.gaussian_noise
    monkeypatch.setattr(mechanism, "gaussian_noise", lambda ref, std, gen: real(ref, std / 10, gen))
    broken = audit(synthetic_root, tmp_path / "broken", dp=True, epsilon=1.0, reproducible=True)
    assert broken["epsilon_claimed"] == honest["epsilon_claimed"]  # the accountant is none the wiser
    assert broken["epsilon_lower_bound"] > 1.0


def test_audit_json_recomputes_and_the_run_is_never_exported(synthetic_root, tmp_path):
    out = tmp_path / "a"
    settings = {**TINY_CLI, "train_subset": 160, "canaries": 40, "canary_kind": "input"}
    res = cli("audit", *flags(**settings, data_root=synthetic_root, out=out))
    assert res.returncode == 0, res.stderr
    data = io.read_json(out / "audit.json")
    for key in (
        "kind",
        "canaries",
        "epsilon_claimed",
        "delta",
        "confidence",
        "epsilon_lower_bound",
        "guesses",
        "correct",
        "scores",
        "included",
        "epsilon_ceiling",
    ):
        assert key in data, key
    assert data["kind"] == "input" and len(data["scores"]) == len(data["included"]) == 40
    again = epsilon_lower_bound(data["scores"], data["included"], data["delta"], data["confidence"])
    assert again["epsilon_lower_bound"] == data["epsilon_lower_bound"]
    summary = json.loads((out / "run" / "summary.json").read_text())
    assert summary["private_release"] is False and "audit run" in summary["private_release_reason"]
    for force in ((), ("--force",)):
        assert_one_error_line(cli("export", out / "run", "--out", tmp_path / "rel", *force), "audit run")
    assert_one_error_line(
        cli("audit", "--dataset", "dermamnist", "--data-root", synthetic_root, "--out", out), "already holds an audit"
    )
    report = cli("audit-report", tmp_path, "--out", tmp_path / "results")
    assert report.returncode == 0, report.stderr
    rows = list(csv.DictReader((tmp_path / "results" / "runs.csv").open()))
    assert len(rows) == 1 and rows[0]["identity"] == summary["identity"] and rows[0]["run"] == "a/run"
    assert {"epsilon_lower_bound", "steps", "wall_time_s", "test_acc", "readout", "dp"} <= set(rows[0])
