"""The one-run audit: both bounds against an independent implementation (jax-privacy), their
soundness in simulation, the likelihood-ratio score at the real configuration, and mutation tests
at BloodMNIST's q·T (reproducible seeds, so deterministic): no DP is caught, correct DP is not, a
tenfold smaller noise than accounted for is caught."""

import csv
import json
import math

import numpy as np
import pytest
import torch
from conftest import TINY_CLI, flags
from test_run_integrity import assert_one_error_line, cli

from dpecnn import io
from dpecnn.audit import audit_verdict, run_audit
from dpecnn.privacy import calibrate_noise, mechanism
from dpecnn.privacy.canaries import draw_gradient_canaries, likelihood_ratio_scores, plain_sum_scores
from dpecnn.privacy.one_run import (
    epsilon_ceilings,
    epsilon_fdp_for_guesses,
    epsilon_for_guesses,
    epsilon_lower_bound,
    gaussian_mu,
    p_value,
)
from dpecnn.train import TrainConfig

# (m, r, v, level, δ, Steinke et al., f-DP) from jax-privacy 2.0.0's CanaryScoreAuditor
# (scripts/audit_reference_values.py): one-sided guesses at an explicit threshold.
REFERENCE = [
    (1000, 50, 40, 0.016666666666666666, 1e-05, 0.6118, 0.7783),
    (1000, 50, 50, 0.016666666666666666, 1e-05, 2.4112, 3.4102),
    (1000, 427, 427, 0.016666666666666666, 1e-05, 4.5962, 8.0832),
    (1000, 427, 400, 0.016666666666666666, 1e-05, 2.2721, 3.5577),
    (1000, 427, 300, 0.025, 1e-05, 0.6478, 1.0484),
    (1000, 200, 130, 0.025, 1e-05, 0.3189, 0.4625),
    (500, 100, 90, 0.05, 1e-05, 1.6285, 2.7068),
    (5000, 2000, 1990, 0.016666666666666666, 1e-05, 4.5964, 7.0577),
]


@pytest.mark.parametrize("m, r, v, level, delta, one_run, fdp", REFERENCE)
def test_bounds_equal_jax_privacys_auditor(m, r, v, level, delta, one_run, fdp):
    assert epsilon_for_guesses(m, r, v, delta, level) == pytest.approx(one_run, abs=2e-4)
    assert epsilon_fdp_for_guesses(m, r, v, delta, level) == pytest.approx(fdp, abs=2e-4)


@pytest.mark.parametrize(
    "m, r, v, expected",
    [(1000, 1000, 1000, 5.78), (5000, 5000, 5000, 7.28), (10_000, 10_000, 10_000, 7.83), (1000, 100, 100, 3.47)],
)
def test_two_sided_bound_equals_reference_values(m, r, v, expected):
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
    ε₀ in at most about 5 % of trials, and must reach the ceiling when the attack is perfect."""
    rng = np.random.default_rng(0)
    eps0, m, trials = 1.0, 500, 200
    p = math.exp(eps0) / (1 + math.exp(eps0))
    above = 0
    for _ in range(trials):
        included = rng.random(m) < 0.5
        says_in = np.where(rng.random(m) < p, included, ~included)
        scores = says_in + rng.random(m) * 0.1  # ranks in-guesses first, ties broken at random
        above += epsilon_lower_bound(scores, included, delta=1e-12)["epsilon_lower_bound"] > eps0
    assert above <= 0.05 * trials + 3 * math.sqrt(0.05 * trials)
    perfect = epsilon_lower_bound(np.arange(m, dtype=float), np.arange(m) >= m // 2, 1e-5)
    ceilings = epsilon_ceilings(m, 1e-5)
    assert perfect["epsilon_lower_bound"] == pytest.approx(ceilings[0], rel=1e-6)
    assert perfect["epsilon_lower_bound_fdp"] == pytest.approx(ceilings[1], rel=1e-6)


def test_fdp_bound_holds_for_an_exactly_gaussian_mechanism_in_simulation():
    """A score N(μ·b, 1) for coin b is exactly μ-GDP per canary: the bound's rejected μ(ε, δ)
    must exceed μ in at most about 5 % of trials."""
    rng = np.random.default_rng(1)
    mu, m, trials, delta = 2.0, 1000, 60, 1e-5
    above = 0
    for _ in range(trials):
        included = rng.random(m) < 0.5
        bound = epsilon_lower_bound(rng.normal(mu * included, 1.0), included, delta)["epsilon_lower_bound_fdp"]
        above += bound > 0 and gaussian_mu(bound, delta) > mu
    assert above <= 0.05 * trials + 3 * math.sqrt(0.05 * trials)


def simulated_observations(rng, m, steps, q, sigma, data_std, clip=1.0):
    """Dirac canaries on coordinates with a data gradient of per-step spread ``data_std``."""
    included = rng.random(m) < 0.5
    drawn = included[None, :] & (rng.random((steps, m)) < q)
    return drawn * clip + rng.normal(0, sigma * clip, (steps, m)) + rng.normal(0, data_std, (steps, m)), included


def test_likelihood_ratio_score_detects_what_the_plain_sum_misses_at_the_audits_configuration():
    """BloodMNIST, batch 256, 3 epochs (q·T ≈ 3), 1000 canaries: without DP (data spread 0.05·C on
    the quiet coordinates) the bound comes near the ceiling, and at ε = 7.42 it beats the plain sum."""
    rng = np.random.default_rng(2)
    n, batch, m = 11959, 256, 1000
    q, steps = batch / n, 3 * (n // batch)
    x, included = simulated_observations(rng, m, steps, q, 0.0, 0.05)
    no_dp = epsilon_lower_bound(likelihood_ratio_scores(x, q, 1.0, 0.0), included, 1e-5, 0.95, q, steps)
    assert no_dp["epsilon_lower_bound"] >= 4.5 and no_dp["epsilon_lower_bound_fdp"] >= 7.0
    sigma = calibrate_noise(7.42, 1e-5, q, steps)
    gains = []
    for _ in range(3):
        x, included = simulated_observations(rng, m, steps, q, sigma, 0.0)
        lr = epsilon_lower_bound(likelihood_ratio_scores(x, q, 1.0, sigma), included, 1e-5, 0.95, q, steps)
        plain = epsilon_lower_bound(plain_sum_scores(x), included, 1e-5, 0.95, q, steps)
        gains.append(lr["epsilon_lower_bound_fdp"] - plain["epsilon_lower_bound_fdp"])
        assert lr["epsilon_lower_bound"] <= 7.42 and lr["epsilon_lower_bound_fdp"] <= 7.42
    assert np.mean(gains) > 0.3


def test_gradient_canaries_sit_on_the_quietest_coordinates():
    magnitude = torch.tensor([5.0, 0.1, 3.0, 0.0, 0.1, 9.0])
    canaries = draw_gradient_canaries(3, magnitude, 1.0, seed=0)
    assert canaries.coordinates.tolist() == [3, 1, 4]
    again = draw_gradient_canaries(3, magnitude * 2, 1.0, seed=0)  # the coins come from the seed alone
    assert torch.equal(canaries.included, again.included)


def verdict_of(claimed, bound, fdp, ceiling, ceiling_fdp):
    base = {"score": "plain sum", "epsilon_lower_bound": 0.1, "epsilon_lower_bound_fdp": 0.2}
    return audit_verdict(
        dict(
            dataset="bloodmnist",
            arch="e",
            kind="gradient",
            canaries=1000,
            confidence=0.95,
            score="likelihood ratio",
            guess="one-sided 50",
            guesses=50,
            correct=45,
            epsilon_claimed=claimed,
            epsilon_lower_bound=bound,
            epsilon_lower_bound_fdp=fdp,
            epsilon_ceiling=ceiling,
            epsilon_ceiling_fdp=ceiling_fdp,
            baseline=base,
        )
    )


def test_verdicts_say_what_the_audit_cannot_test():
    capped = verdict_of(7.42, 1.1, 1.6, 5.45, 8.5)
    assert "no violation found" in capped and "only up to ε = 5.45" in capped and "reaches 8.50" in capped
    assert "neither bound can test the claim above ε = 7.00" in verdict_of(7.42, 1.1, 1.6, 5.45, 7.0)
    assert "only up to" not in verdict_of(1.0, 0.2, 0.3, 5.45, 8.5)
    assert "VIOLATION" in verdict_of(1.0, 1.4, 2.0, 5.45, 8.5)
    assert "LESS PRIVATE THAN THE GAUSSIAN CURVE" in verdict_of(1.0, 0.8, 1.3, 5.45, 8.5)
    assert "canaries are detected: ε ≥ 4.60" in verdict_of(None, 4.6, 8.5, 5.45, 8.5)


# BloodMNIST's audit (q = 256/11959 ≈ 0.021, 138 steps: q·T ≈ 3) in miniature, on 192 generated
# images: q = 4/192 ≈ 0.021, 48 steps an epoch, 3 epochs (q·T = 3), so σ at ε = 1 is as there (≈ 1.4).
AUDIT = dict(
    dataset="bloodmnist",
    arch="e",
    layout=(8, 16, 32),
    batch_size=4,
    physical_batch_size=4,
    epochs=3,
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
    assert result["sample_rate"] * result["steps"] == pytest.approx(3.0)
    assert result["epsilon_claimed"] is None and result["epsilon_lower_bound"] > 1


@pytest.mark.filterwarnings("ignore:--reproducible")
@pytest.mark.slow
def test_mutation_correct_dp_passes_and_a_tenth_of_the_noise_is_caught(synthetic_root, tmp_path, monkeypatch):
    honest = audit(synthetic_root, tmp_path / "honest", dp=True, epsilon=1.0, reproducible=True)
    assert honest["epsilon_claimed"] <= 1.0
    assert honest["epsilon_lower_bound"] <= 1.0 and honest["epsilon_lower_bound_fdp"] <= 1.0
    real = mechanism.gaussian_noise
    monkeypatch.setattr(mechanism, "gaussian_noise", lambda ref, std, gen: real(ref, std / 10, gen))
    broken = audit(synthetic_root, tmp_path / "broken", dp=True, epsilon=1.0, reproducible=True)
    assert broken["epsilon_claimed"] == honest["epsilon_claimed"]  # the accountant is none the wiser
    assert broken["epsilon_lower_bound"] > 1.0 and "VIOLATION" in audit_verdict(broken)


def test_audit_json_recomputes_and_the_run_is_never_exported(synthetic_root, tmp_path):
    out = tmp_path / "a"
    settings = {**TINY_CLI, "train_subset": 160, "canaries": 40, "canary_kind": "input"}
    res = cli("audit", *flags(**settings, data_root=synthetic_root, out=out))
    assert res.returncode == 0, res.stderr
    data = io.read_json(out / "audit.json")
    for key in ("kind", "canaries", "epsilon_claimed", "delta", "confidence", "score", "epsilon_lower_bound"):
        assert key in data, key
    for key in ("epsilon_lower_bound_fdp", "guesses", "correct", "scores", "included", "epsilon_ceiling", "baseline"):
        assert key in data, key
    assert data["kind"] == "input" and data["score"] == "reference" and set(data["scores"]) == {"reference", "loss"}
    assert all(len(s) == len(data["included"]) == 40 for s in data["scores"].values())
    recompute = dict(sample_rate=data["sample_rate"], steps=data["steps"])
    again = epsilon_lower_bound(data["scores"]["reference"], data["included"], data["delta"], 0.95, **recompute)
    assert again["epsilon_lower_bound"] == data["epsilon_lower_bound"]
    assert again["epsilon_lower_bound_fdp"] == data["epsilon_lower_bound_fdp"]
    baseline = epsilon_lower_bound(data["scores"]["loss"], data["included"], data["delta"], 0.95, **recompute)
    assert baseline["epsilon_lower_bound"] == data["baseline"]["epsilon_lower_bound"]
    reference = json.loads((out / "reference" / "summary.json").read_text())
    assert reference["settings"]["canary_kind"] == "input-reference" and reference["private_release"] is False
    summary = json.loads((out / "run" / "summary.json").read_text())
    assert summary["private_release"] is False and "audit run" in summary["private_release_reason"]
    for force in ((), ("--force",)):
        assert_one_error_line(cli("export", out / "run", "--out", tmp_path / "rel", *force), "audit run")
    assert_one_error_line(
        cli("audit", "--dataset", "dermamnist", "--data-root", synthetic_root, "--out", out), "already holds an audit"
    )
    report = cli("audit-report", tmp_path, "--out", tmp_path / "results")
    assert report.returncode == 0, report.stderr
    assert sorted(p.name for p in (tmp_path / "results").glob("*.png")) == ["privacy_audit.png"]
    rows = list(csv.DictReader((tmp_path / "results" / "runs.csv").open()))
    assert len(rows) == 1 and rows[0]["identity"] == summary["identity"] and rows[0]["run"] == "a/run"
    assert {"epsilon_lower_bound", "epsilon_lower_bound_fdp", "baseline_epsilon_lower_bound"} <= set(rows[0])
    assert {"steps", "wall_time_s", "test_acc", "readout", "dp"} <= set(rows[0])
