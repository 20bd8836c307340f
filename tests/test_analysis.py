import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from scipy.stats import ttest_ind

from dpecnn.analysis import (
    brier_score,
    colocation,
    conv_layers,
    expected_calibration_error,
    fir_magnitude,
    fir_map,
    grad_cam,
    guided_backprop,
    impulse_response,
    input_gradient,
    l0_sparsity,
    per_layer_sparsity,
    reliability_bins,
)
from dpecnn.analysis.measures.calibration import bootstrap_scores
from dpecnn.analysis.measures.impulse import centre_responses, support
from dpecnn.analysis.measures.sparsity import moving_average
from dpecnn.analysis.stats import Estimate, claim_line
from dpecnn.models import ARCHS, build_model
from dpecnn.plotting import accuracy_vs_params, attribution_grid, fir_maps, reliability_diagrams, sparsity_curves
from dpecnn.plotting.figures import MIN_Y_SPAN, y_limits
from dpecnn.plotting.style import plt


def test_sparsity_of_a_hand_built_gradient():
    g1 = torch.tensor([0.0, 1e-6, -1e-5, 2e-5, 1.0])  # |g| ≤ 1e-5: 3 of 5
    g2 = torch.tensor([[1e-3, -3e-6], [0.5, 0.0]])  # 2 of 4
    assert l0_sparsity([g1, g2], 1e-5) == pytest.approx(5 / 9)
    assert per_layer_sparsity([("a", g1), ("b", g2)]) == {"a": pytest.approx(0.6), "b": pytest.approx(0.5)}
    assert l0_sparsity([g1], 1e-7) == pytest.approx(1 / 5)


def test_brier_and_ece_match_hand_computed_values():
    probs = np.array([[0.7, 0.2, 0.1], [0.4, 0.5, 0.1], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1]])
    labels = np.array([0, 0, 2, 1])
    brier = (
        (0.3**2 + 0.2**2 + 0.1**2)
        + (0.6**2 + 0.5**2 + 0.1**2)
        + (0.1**2 + 0.1**2 + 0.2**2)
        + (0.6**2 + 0.7**2 + 0.1**2)
    ) / 4
    assert brier_score(probs, labels) == pytest.approx(brier)
    # bins of width 0.5: {0.5 (wrong)} → (0, 0.5]; {0.7 ok, 0.8 ok, 0.6 wrong} → (0.5, 1]
    ece = 1 / 4 * abs(0 - 0.5) + 3 / 4 * abs(2 / 3 - (0.7 + 0.8 + 0.6) / 3)
    assert expected_calibration_error(probs, labels, n_bins=2) == pytest.approx(ece)
    assert reliability_bins(probs, labels, n_bins=2)["count"] == [1, 3]


def test_a_perfectly_confident_correct_model_scores_zero():
    labels = np.array([0, 2, 1, 2])
    assert brier_score(np.eye(3)[labels], labels) == 0.0
    assert expected_calibration_error(np.eye(3)[labels], labels) == 0.0


@pytest.fixture(scope="module")
def tiny_models():
    torch.manual_seed(0)
    return {arch: build_model(arch, 3, 4, layout=(4, 4, 8)).eval() for arch in ARCHS}


@pytest.mark.parametrize("arch", ARCHS)
def test_guided_backprop_is_really_guided_and_grad_cam_is_an_input_sized_heatmap(tiny_models, arch):
    model, x = tiny_models[arch], torch.randn(3, 3, 28, 28)
    gbp, grad = guided_backprop(model, x), input_gradient(model, x)
    assert gbp.shape == x.shape
    diff = float((gbp - grad).abs().max() / grad.abs().max())
    assert diff > 1e-2, f"{arch}: guided backprop equals the plain gradient (max rel diff {diff:.1e})"
    cam = grad_cam(model, x)
    assert cam.shape == (3, 1, 28, 28) and (cam >= 0).all()


def test_first_layer_impulse_response_is_its_filter():
    model = build_model("e", 1, 2, layout=(4, 4, 8)).eval()
    first = conv_layers(model)[0][1]
    fir = impulse_response(model, first, in_channels=1, size=9)[0]  # (C_out, 9, 9)
    kernel = first.weight.detach()[:, 0]  # cross-correlation with a delta gives the flipped kernel
    assert torch.allclose(fir[:, 3:6, 3:6], kernel.flip(-1, -2), atol=1e-6)
    assert fir_magnitude(fir) > 0 and fir[:, :3].abs().max() == 0


def test_colocation_scores():
    a = torch.rand(2, 28, 28)
    assert colocation(a, a) == pytest.approx({"spearman": 1.0, "top_k_iou": 1.0})
    assert colocation(a, -a)["spearman"] == pytest.approx(-1.0)


def test_spearman_gives_tied_pixels_their_average_rank_as_scipy_does():
    """A Grad-CAM map after ReLU and upsampling: blocks of exact zeros. Ranked in argsort order, the
    zeros' ranks depended on where they lie (0.086 off scipy on such maps)."""
    from scipy.stats import spearmanr

    from dpecnn.analysis.measures.impulse import spearman

    generator = torch.Generator().manual_seed(0)
    cam = torch.rand(3, 28, 28, generator=generator).sub(0.6).clamp_min(0)  # 60 % exact zeros
    cam[:, :14] = 0  # a zero block
    guided = torch.rand(3, 28, 28, generator=generator) + cam
    ours = spearman(cam.flatten(1), guided.flatten(1))
    expected = [spearmanr(x.flatten(), y.flatten()).statistic for x, y in zip(cam.double(), guided.double())]
    assert ours.tolist() == pytest.approx(expected, abs=1e-12)
    flat = torch.zeros(1, 784)  # a map with no ranking: no correlation, and left out of the mean
    assert torch.isnan(spearman(flat, guided[:1].flatten(1))).all()
    assert colocation(torch.cat([cam[:1], flat.reshape(1, 28, 28)]), guided[:2])["spearman"] == pytest.approx(
        expected[0], abs=1e-12
    )


def test_each_figure_function_writes_a_non_empty_pdf_and_png(tmp_path):
    rng = np.random.default_rng(0)
    bins = [reliability_bins(rng.dirichlet(np.ones(3), 50), rng.integers(0, 3, 50)) for _ in range(2)]
    two_seeds = {
        "edges": bins[0]["edges"],
        "accuracy": [b["accuracy"] for b in bins],
        "count": [b["count"] for b in bins],
    }
    figures = {
        "sparsity": lambda: sparsity_curves(
            {"e": ([0, 1, 2], [[0.1, 0.2, 0.3]]), "C4": ([0, 1, 2], [[0.2, 0.3, 0.5], [0.2, 0.4, 0.4]])}, 5, tmp_path
        ),
        "accuracy_vs_params": lambda: accuracy_vs_params(
            [
                {"arch": "e", "line": "e", "params": 4e4, "mean": 0.8, "std": 0.01, "n": 3, "layout": [8, 16, 32]},
                {"arch": "e", "line": "e", "params": 2.5e6, "mean": 0.82, "std": None, "n": 1},
                {"arch": "C4", "line": "C4", "params": 6.5e4, "mean": 0.86, "std": 0.02, "n": 3},
            ],
            tmp_path,
        ),
        "reliability": lambda: reliability_diagrams(
            {"e DP": two_seeds, "C4 DP": {**two_seeds, "accuracy": [bins[0]["accuracy"]], "count": [bins[0]["count"]]}},
            tmp_path,
            subtitles={"e DP": "Brier 0.3 ± 0.01"},
        ),
        "fir_maps": lambda: fir_maps(
            {
                "e": [
                    {"title": "conv1.0", "map": rng.random((3, 3)), "channels": rng.normal(size=(4, 3, 3))},
                    {"title": "last", "map": rng.random((28, 28))},
                ]
            },
            tmp_path,
        ),
        "attributions": lambda: attribution_grid(
            rng.uniform(-1, 1, (2, 3, 28, 28)),
            {"e": {"gradcam": rng.random((2, 28, 28)), "guided": rng.random((2, 28, 28))}},
            tmp_path,
            headers={"e": "seed 0"},
        ),
    }
    for name, make in figures.items():
        plt.close(make())
        for ext in ("pdf", "png"):
            assert (tmp_path / f"{name}.{ext}").stat().st_size > 1000, f"{name}.{ext}"
    assert b"/FontFile2" in (tmp_path / "sparsity.pdf").read_bytes()  # TrueType fonts embedded (fonttype 42)


def test_figures_show_the_spread_over_seeds_and_say_how_many():
    fig = sparsity_curves(
        {"C4": ([0, 1, 2], [[0.2, 0.3, 0.5], [0.2, 0.4, 0.4]]), "e": ([0, 1, 2], [[0.1, 0.1, 0.2]])}, window=7
    )
    ax = fig.axes[0]
    assert len(ax.collections) == 1  # one band: only C4 has two seeds
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["C4 (2 seeds)", "e (1 seed)"]
    assert "moving average of 7 steps" in legend.get_title().get_text()
    fig = accuracy_vs_params(
        [
            {"arch": "e", "line": "e", "params": 4e4, "mean": 0.840, "std": 0.002, "n": 3},
            {"arch": "C4", "line": "C4", "params": 6e4, "mean": 0.845, "std": 0.001, "n": 3},
        ]
    )
    low, high = fig.axes[0].get_ylim()
    assert high - low == pytest.approx(MIN_Y_SPAN) and low < 83.8 and high > 84.6  # 0.5 pt does not fill the axis
    assert fig.axes[0].get_xscale() == "log"
    bars = [c for c in fig.axes[0].containers if hasattr(c, "has_yerr") and c.has_yerr]
    assert len(bars) == 2
    fig.canvas.draw()  # 40k–60k holds no power of ten: the counts themselves are labelled
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["40k", "60k"]
    wide = accuracy_vs_params(
        [{"arch": "e", "line": "e", "params": p, "mean": 0.8, "std": None, "n": 1} for p in (7e3, 9e4)]
    )
    wide.canvas.draw()
    assert [t.get_text() for t in wide.axes[0].get_xticklabels()] == ["10k", "20k", "50k", "100k"]
    plt.close("all")


def test_y_limits_keep_a_minimum_span_inside_0_to_100():
    assert y_limits(84.0, 84.5) == pytest.approx((81.75, 86.75))
    assert y_limits(60.0, 90.0) == pytest.approx((57.0, 93.0))  # wide data: padded by 10 %
    assert y_limits(98.0, 99.9)[1] == pytest.approx(100.0)  # moved down, not cut


def test_centre_response_of_the_first_convolution_is_its_filter_and_magnitude_matches_the_map():
    model = build_model("e", 3, 2, layout=(4, 4, 8)).eval()
    first = conv_layers(model)[0][1]
    (response,) = centre_responses(model, [first], in_channels=3)  # (C_out, 28, 28)
    kernel = first.weight.detach().sum(1)  # a grey impulse: every input channel at once; not flipped
    assert torch.allclose(response[:, 13:16, 13:16], kernel, atol=1e-6) and response[:, :13].abs().max() == 0
    window = support(fir_map(response))
    assert (window[0].start, window[0].stop, window[1].start, window[1].stop) == (13, 16, 13, 16)
    assert fir_magnitude(response) == pytest.approx(float(kernel.abs().mean()))


def test_estimates_and_verdict_lines():
    three = Estimate.over_seeds([0.08, 0.09, 0.10])
    assert three.text() == "0.090 ± 0.010 (3 seeds)" and three.std == pytest.approx(0.01)
    assert Estimate.over_seeds([0.5]).text() == "0.500 (1 seed)"
    line = claim_line(
        "{a} gradients sparser than {b}", ("C4 DP", three), ("e DP", Estimate.over_seeds([0.05, 0.06])), higher=True
    )
    p = ttest_ind([0.08, 0.09, 0.10], [0.05, 0.06], equal_var=False).pvalue
    assert (
        line
        == (
            "C4 DP gradients sparser than e DP: yes, 0.090 ± 0.010 (3 seeds) vs 0.055 ± 0.007 (2 seeds); "
            f"Welch's t-test p = {p:.2g}"
        )
        and p < 0.05
    )
    close = claim_line("{a} lower than {b}", ("C4", three), ("e", Estimate.over_seeds([0.085, 0.095])), higher=False)
    assert close.startswith("C4 lower than e: not significant: no conclusion (the means point the other way),")
    one = claim_line(
        "{a} more accurate than {b}", ("C4", Estimate.over_seeds([0.9])), ("e", Estimate.over_seeds([0.5])), higher=True
    )
    assert one.startswith("C4 more accurate than e: one seed: no conclusion (by the means), 0.900 (1 seed) vs")
    assert ": yes" not in one
    one_run = Estimate.bootstrap(lambda idx: 0.5 + 0.01 * np.mean(idx % 2), 100)  # one run on its own images
    mixed = claim_line("{a} lower than {b}", ("C4", three), ("e", one_run), higher=False)
    assert mixed.startswith("C4 lower than e: one seed: no conclusion (by the means)"), mixed
    assert claim_line("{a} > {b}", ("C4", three), ("e", three), higher=True).startswith(
        "C4 > e: not significant: no conclusion"
    )


def test_welch_contrast_is_welchs_test_for_two_groups_and_words_its_verdict():
    from scipy.stats import ttest_ind

    from dpecnn.analysis.stats import contrast_verdict, welch_contrast

    a, b = [0.91, 0.93, 0.92, 0.95], [0.88, 0.86, 0.90]
    c = welch_contrast([(1, a), (-1, b)])
    ref = ttest_ind(a, b, equal_var=False)
    assert c.estimate == pytest.approx(np.mean(a) - np.mean(b)) and c.p_value == pytest.approx(ref.pvalue)
    ci = ref.confidence_interval()
    assert (c.low, c.high) == pytest.approx((ci.low, ci.high)) and c.df == pytest.approx(ref.df)
    gap = welch_contrast([(1, a), (-1, b), (-1, [0.92, 0.93, 0.94]), (1, [0.90, 0.91, 0.92])])
    assert gap.estimate == pytest.approx(np.mean(a) - np.mean(b) - 0.93 + 0.91) and gap.seeds == (4, 3, 3, 3)
    assert contrast_verdict("the gap narrows", c).startswith(
        "the gap narrows: yes; +4.75 points [95 % CI +0.76, +8.74], p = 0.03 (Welch; 4, 3 seeds)"
    )
    assert contrast_verdict("x", welch_contrast([(1, [0.9]), (-1, b)])).startswith("x: one seed: no conclusion")
    assert "not significant: no conclusion" in contrast_verdict(
        "x", welch_contrast([(1, [0.9, 0.7]), (-1, [0.8, 0.85])])
    )


def test_paired_verdicts_word_their_evidence_like_every_other_verdict():
    from dpecnn.analysis.pages.table import paired_verdict
    from dpecnn.analysis.stats import paired_difference

    def line(a, b, family=1, p_holm=None):
        row = paired_difference(dict(enumerate(a)), dict(enumerate(b)))
        return paired_verdict(
            {
                "dataset": "bloodmnist",
                "dp": True,
                "arch": "C4",
                "setting": "",
                "versus": "e",
                "metric": "val_acc",
                **row,
                "family": family,
                "p_holm": row["p_value"] if p_holm is None else p_holm,
            }
        )

    assert line([0.9], [0.8]) == "bloodmnist DP C4 − e (val acc): +10.00 points (seed 0): one seed: no conclusion"
    assert line([0.90, 0.80, 0.85], [0.85, 0.84, 0.80]).endswith(": not significant: no conclusion")
    significant = line([0.90, 0.91, 0.93], [0.85, 0.85, 0.86])
    assert "over seeds 0, 1, 2, p = " in significant and significant.endswith(": significant")
    assert line([0.75, 0.5], [0.5, 0.25]).endswith("p n/a: no spread between seeds: no conclusion")
    # one of several tests: decided on its Holm-adjusted p-value, shown beside the unadjusted one
    one_of_four = line([0.90, 0.91, 0.93], [0.85, 0.85, 0.86], family=4, p_holm=0.2)
    assert one_of_four.endswith(", Holm-adjusted over 4 tests p = 0.2: not significant: no conclusion")


def test_holm_adjusts_each_family_and_a_verdict_follows_its_adjusted_p_value():
    from dpecnn.analysis.pages.table import paired_rows
    from dpecnn.analysis.stats import Contrast, claim_lines, family_verdicts, holm
    from dpecnn.train.config import TrainConfig

    # by hand: sorted 0.01·3, 0.03·2, 0.04·1 → 0.03, 0.06, max(0.06, 0.04) (monotone)
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([]) == [] and holm([0.01, None, 0.03]) == pytest.approx([0.02, None, 0.03])  # None: no test
    alone = Contrast(0.02, 0.001, 0.039, 0.04, 8.0, (5, 5))
    untested = Contrast(0.01, None, None, None, None, (1, 5))
    assert family_verdicts([("A beats B", alone)])[0].startswith("A beats B: yes; ")
    lines = family_verdicts(["no pair here", ("A beats B", alone), ("C beats B", untested), ("D beats B", alone)])
    assert lines[0] == "no pair here" and lines[2].startswith("C beats B: one seed: no conclusion")
    # two tests (the one without a p-value does not count): 0.04 · 2 = 0.08
    assert lines[1] == lines[3].replace("D beats", "A beats")
    assert lines[1].startswith("A beats B: not significant: no conclusion; +2.00 points")
    assert "p = 0.04, Holm-adjusted over 2 tests p = 0.08 (Welch; 5, 5 seeds)" in lines[1]

    # the notebooks' verdicts against e (claim_lines): Holm over the lines tested over seeds only
    higher, lower = Estimate.over_seeds([0.90, 0.91, 0.92]), Estimate.over_seeds([0.88, 0.885, 0.89])
    one = Estimate.over_seeds([0.95])
    alone = claim_lines([("{a} beats {b}", ("C4", higher), ("e", lower), True)])[0]
    assert alone.startswith("C4 beats e: yes, ") and alone.endswith("Welch's t-test p = 0.032")
    c4, c8, c16, text = claim_lines(
        [
            ("{a} beats {b}", ("C4", higher), ("e", lower), True),
            ("{a} beats {b}", ("C8", higher), ("e", lower), True),
            ("{a} beats {b}", ("C16", one), ("e", lower), True),
            "O2: no conventional (e) group with the same settings to compare with",
        ]
    )
    assert c4.startswith("C4 beats e: not significant: no conclusion (by the means), ")
    assert c4.endswith("Welch's t-test p = 0.032, Holm-adjusted over 2 tests p = 0.063") and c8.startswith("C8")
    assert c16.startswith("C16 beats e: one seed: no conclusion") and text.startswith("O2: no conventional")

    def run(arch, seed, acc):
        return {
            "dataset": "bloodmnist",
            "arch": arch,
            "dp": True,
            "seed": seed,
            "settings": TrainConfig(arch=arch, seed=seed).identity(),
            "val_acc": acc,
        }

    # two groups above e by seed, each p ≈ 0.03 alone (paired t, 2 df): neither survives Holm (≈ 0.07)
    gains = {"C4": (0.02, 0.03, 0.04), "C8": (0.02, 0.031, 0.039)}
    runs = [run("e", s, 0.80) for s in range(3)]
    runs += [run(arch, s, 0.80 + gain[s]) for arch, gain in gains.items() for s in range(3)]
    rows = paired_rows(runs)
    assert [(r["arch"], r["family"]) for r in rows] == [("C4", 2), ("C8", 2)]
    assert [r["p_holm"] for r in rows] == pytest.approx(holm([r["p_value"] for r in rows]))
    assert all(0.03 < r["p_value"] < 0.05 and not r["significant_5pct"] for r in rows)


def test_a_nan_among_the_values_is_no_conclusion_and_no_test_in_the_family():
    """A NaN (the AUC of a split without some class, a diverged run's Brier score) gives a NaN
    p-value; compared with α it would read as significant (NaN ≥ α is false)."""
    from dpecnn.analysis.pages.table import paired_rows, paired_verdict
    from dpecnn.analysis.stats import claim_lines, family_verdicts, holm, welch_difference
    from dpecnn.train.config import TrainConfig

    assert holm([0.01, float("nan"), 0.03]) == pytest.approx([0.02, float("nan"), 0.03], nan_ok=True)
    undefined = "p-value undefined (a NaN among the values compared): no conclusion"
    tested = welch_difference([0.90, 0.91, 0.92], [0.80, 0.81, 0.80])
    with_nan = welch_difference([0.90, float("nan"), 0.92], [0.80, 0.81, 0.80])
    ok, nan = family_verdicts([("A beats B", tested), ("C beats B", with_nan)])
    assert nan.startswith(f"C beats B: {undefined}; ") and "p undefined" in nan
    assert ok.startswith("A beats B: yes; ") and "Holm" not in ok  # a family of one test

    higher, lower = Estimate.over_seeds([0.90, 0.91, 0.92]), Estimate.over_seeds([0.88, 0.885, 0.89])
    broken = Estimate.over_seeds([0.90, float("nan"), 0.92])
    c4, c8 = claim_lines(
        [("{a} beats {b}", ("C4", higher), ("e", lower), True), ("{a} beats {b}", ("C8", broken), ("e", lower), True)]
    )
    assert c4.startswith("C4 beats e: yes, ") and c4.endswith("Welch's t-test p = 0.032")
    assert c8.startswith(f"C8 beats e: {undefined} (a mean is undefined)") and c8.endswith("Welch's t-test p undefined")

    # one run each: a NaN statistic (a diverged model's Brier score), or two models that agree on
    # every image (a degenerate BCa interval), is no conclusion, not "no"
    nan = Estimate.bootstrap(lambda i: math.nan, 50, items="h")
    share = Estimate.bootstrap(lambda i: float(np.mean(i % 3 == 0)), 50, items="h")
    elsewhere = Estimate.bootstrap(lambda i: float(np.mean(i % 3 == 0)), 50, items="other")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy on a NaN or degenerate statistic
        for a, b, answer in (
            (nan, share, f"difference {undefined.removeprefix('p-value ')}"),
            (share, share, "the paired interval is undefined (NaN on some resamples, or no variation over them)"),
            (nan, elsewhere, f"interval {undefined.removeprefix('p-value ')}"),
        ):
            line = claim_line("{a} lower than {b}", ("C4", a), ("e", b), False)
            assert line.startswith(f"C4 lower than e: {answer}"), line

    def run(arch, seed, acc):
        settings = TrainConfig(arch=arch, seed=seed).identity()
        return {"dataset": "bloodmnist", "arch": arch, "dp": True, "seed": seed, "settings": settings, "val_acc": acc}

    runs = [run("e", s, 0.80 + 0.001 * s) for s in range(3)]
    runs += [run("C4", s, 0.90 + 0.002 * s) for s in range(3)]
    runs += [run("C8", s, acc) for s, acc in enumerate((0.9, math.nan, 0.9))]
    c4_row, c8_row = paired_rows(runs)
    assert c4_row["family"] == c8_row["family"] == 1 and c4_row["significant_5pct"]
    assert not c8_row["significant_5pct"] and paired_verdict(c8_row).endswith(f"p undefined: {undefined}")
    # among several tests, the NaN line is not one of them: no "Holm-adjusted over 2 tests p undefined"
    runs += [run("C16", s, 0.90 + 0.003 * s) for s in range(3)]
    c8_row = next(r for r in paired_rows(runs) if r["arch"] == "C8")
    assert c8_row["family"] == 2 and "Holm" not in paired_verdict(c8_row)


def test_bootstrap_scores_give_intervals_around_the_full_data_value():
    rng = np.random.default_rng(0)
    probs, labels = rng.dirichlet(np.ones(3), 200), rng.integers(0, 3, 200)
    scores = bootstrap_scores(probs, labels)
    assert scores["Brier"].mean == pytest.approx(brier_score(probs, labels))
    assert scores["Brier"].low < scores["Brier"].mean < scores["Brier"].high
    assert "95 % bootstrap CI, 1 seed" in scores["ECE"].text()


def test_moving_average_is_trailing_and_keeps_the_length():
    assert moving_average([1, 2, 3, 4, 5], 2).tolist() == [1.0, 1.5, 2.5, 3.5, 4.5]
    assert moving_average([1, 2, 3], 10).tolist() == [1.0, 1.5, 2.0]


def test_analyse_cli_on_a_finished_run_and_on_a_wrong_folder(synthetic_root, tmp_path):
    from dpecnn.train import TrainConfig, Trainer

    cfg = TrainConfig(
        dataset="pathmnist",
        data_root=str(synthetic_root),
        arch="C4",
        layout=(4, 4, 8),
        epochs=1,
        batch_size=32,
        physical_batch_size=32,
        train_subset=96,
        eval_subset=32,
    )
    Trainer(cfg, tmp_path / "run").run()
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "dpecnn",
            "analyse",
            str(tmp_path / "run"),
            "--out",
            str(tmp_path / "fig"),
            "--images",
            "3",
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    for name in ("sparsity", "reliability", "fir_maps", "attributions"):
        assert (tmp_path / "fig" / f"{name}.pdf").stat().st_size > 0
    assert "conv1.0" in (tmp_path / "fig" / "analysis.json").read_text()
    bad = subprocess.run([sys.executable, "-m", "dpecnn", "analyse", str(tmp_path)], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and "not a finished run" in bad.stderr


def test_a_one_seed_verdict_comes_from_the_paired_difference_on_the_same_images():
    """Two models scored on the same 400 images, B's Brier score higher on every image by 0.004:
    each model's own interval is wide (the images differ in difficulty) and the two overlap, but
    the paired difference is clearly positive. Overlapping intervals said "no conclusion"."""
    from dpecnn.analysis.stats import claim_line, paired_difference_interval

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    right = rng.uniform(0.3, 1.0, 400)  # the probability each image gives its label: hard and easy images
    a = np.where(labels[:, None] == np.arange(2), right[:, None], 1 - right[:, None])
    b = np.where(labels[:, None] == np.arange(2), right[:, None] - 0.01, 1 - right[:, None] + 0.01)
    brier_a = bootstrap_scores(a, labels, images="same")["Brier"]
    brier_b = bootstrap_scores(b, labels, images="same")["Brier"]
    assert brier_a.overlaps(brier_b)
    diff, low, high = paired_difference_interval(brier_a, brier_b)
    assert diff < 0 and high < 0
    line = claim_line("{a} lower Brier than {b}", ("A", brier_a), ("B", brier_b), higher=False)
    assert ": yes," in line and "paired 95 % BCa bootstrap of A − B over the same 400 images" in line
    elsewhere = bootstrap_scores(b, labels, images="other images")["Brier"]  # not the same images: no pairing
    line = claim_line("{a} lower Brier than {b}", ("A", brier_a), ("B", elsewhere), higher=False)
    assert "the intervals overlap: no conclusion" in line


def test_expected_calibration_error_equals_torchmetrics():
    """The hand-written ECE (15 equal-width confidence bins, L1) against torchmetrics' own."""
    from torchmetrics.functional.classification import multiclass_calibration_error

    rng = np.random.default_rng(0)
    for classes, n in ((2, 300), (8, 1000)):
        probs = rng.dirichlet(np.full(classes, 0.3), n)
        labels = np.where(rng.random(n) < 0.7, probs.argmax(1), rng.integers(0, classes, n))
        theirs = multiclass_calibration_error(
            torch.from_numpy(probs), torch.from_numpy(labels), num_classes=classes, n_bins=15, norm="l1"
        )
        assert expected_calibration_error(probs, labels) == pytest.approx(float(theirs), abs=1e-6)


def test_brier_of_float32_softmax_is_silent_and_of_non_probabilities_an_error():
    """scikit-learn's brier_score_loss warns on rows of a float32 softmax (they sum to 1 within
    ~1e-7); that warning reached the training notebooks' output. Rows that are not probabilities
    are refused."""
    import warnings

    logits = torch.randn(500, 8, generator=torch.Generator().manual_seed(0)) * 5
    probs = torch.softmax(logits, 1).numpy()  # float32
    labels = np.arange(500) % 8
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        score = brier_score(probs, labels)
    assert score == pytest.approx(((probs.astype(np.float64) - np.eye(8)[labels]) ** 2).sum(1).mean(), rel=1e-6)
    with pytest.raises(ValueError, match="must be probabilities"):
        brier_score(probs * 2, labels)
