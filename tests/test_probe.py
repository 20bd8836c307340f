"""The symmetry probe (dpecnn.analysis.measures.symmetry_probe) on generated data with and without a
canonical orientation, its tests across seeds and over images, its verdict rules, and its command line."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from dpecnn.analysis.measures.symmetry_probe import (
    TRANSFORM_NAMES,
    ProbeConfig,
    compose,
    dihedral,
    holm,
    image_bootstrap_interval,
    image_sign_p,
    judge,
    keeping_subgroups,
    label_tests,
    run_probe,
    seed_t_p,
    smallest_detectable_drop,
    subgroup_name,
    subgroups,
)
from dpecnn.data import write_synthetic_npz


def test_the_eight_transforms_are_distinct_exact_permutations():
    x = torch.arange(28 * 28, dtype=torch.float64).reshape(1, 1, 28, 28)
    images = [dihedral(x, k) for k in range(len(TRANSFORM_NAMES))]
    assert len({tuple(im.flatten().tolist()) for im in images}) == 8
    assert all(torch.equal(im.flatten().sort().values, x.flatten()) for im in images)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    roots = {}
    for name, oriented in (("oriented", True), ("orientation-free", False)):
        roots[name] = tmp_path_factory.mktemp(name)
        write_synthetic_npz("breastmnist", roots[name], sizes=(256, 96, 32), seed=5, orientation=oriented)
    return roots


@pytest.fixture(scope="module")
def reports(generated):
    """One three-seed probe of each generated dataset, shared by the tests that read it."""
    return {
        name: run_probe(
            ProbeConfig(dataset="breastmnist", data_root=str(root), layout=(4, 4, 8), steps=200, batch_size=32)
        )
        for name, root in generated.items()
    }


def test_probe_reports_a_canonical_orientation_where_the_class_is_the_orientation(reports):
    report = reports["oriented"]
    assert report.seeds == [0, 1, 2] and all(len(d) == 3 for d in report.drops_per_seed)
    assert report.verdict.startswith("canonical orientation"), report.verdict
    assert report.breaks[TRANSFORM_NAMES.index("rot180")]  # up ↔ down swaps the classes
    assert not report.breaks[TRANSFORM_NAMES.index("flip")]  # a left-right mirror keeps a vertical shape
    assert report.breaks[TRANSFORM_NAMES.index("flip+rot180")]  # the up-down mirror swaps them too


def test_a_turn_the_labels_allow_is_not_called_a_break_because_the_plain_model_never_saw_it(reports):
    """Up against down: a quarter turn makes shapes that point sideways, which no training image
    does. A model that never saw one fails on them (the old probe called that a break); trained
    with the turn as augmentation, "up or left" against "down or right" is still learnable, so
    the labels allow it (only the half turn, which swaps the classes, does not)."""
    report = reports["oriented"]
    for name in ("rot90", "rot270"):
        assert not report.breaks[TRANSFORM_NAMES.index(name)], (name, report.drops)
    assert "reflection group {identity, flip}" in report.keeping and "D4" not in report.keeping
    assert all(report.p_seeds_holm[k] >= report.p_seeds[k] for k in range(8))
    assert all(report.p_images_holm[k] >= report.p_images[k] for k in range(8))
    assert report.detection_interval[0] > 0.125, "rotations by 90° are visible in these images"


def test_probe_finds_no_orientation_in_orientation_free_data(reports):
    report = reports["orientation-free"]
    assert report.accuracy > report.majority + 0.2, "the probe's classifier must learn the task to judge it"
    assert report.verdict.startswith("orientation-free"), report.verdict
    assert not any(report.breaks) and report.keeping == ["D4"]


def test_verdict_rules():
    keep = [False] * 8
    assert judge(keep, 0.1, 0.9, 0.5)[0].startswith("orientation-free: no transform is shown to change the labels")
    assert "Weak" not in judge(keep, 0.1, 0.9, 0.5)[0]
    few_images = judge(keep, 0.1, 0.9, 0.5, unresolved=["rot90", "flip"])[0]
    assert few_images.startswith("orientation-free") and "Weak evidence for rot90, flip" in few_images
    assert "detectable orientation" in judge(keep, 0.5, 0.9, 0.5)[0]
    assert judge([True] * 8, 0.5, 0.6, 0.6)[0].startswith("inconclusive")
    assert "Weak evidence" in judge([True] * 8, 0.5, 0.55, 0.5)[0] and "Weak" not in judge([True] * 8, 0.5, 0.9, 0.5)[0]
    flips_break = [False, False, False, False, True, True, True, True]
    assert "is C4;" in judge(flips_break, 0.5, 0.9, 0.5)[0] and "C_N" in judge(flips_break, 0.5, 0.9, 0.5)[1]
    quarter_turns_break = [False, True, False, True, False, True, False, True]
    verdict, suggestion = judge(quarter_turns_break, 0.5, 0.9, 0.5)
    assert "D2 {identity, rot180, flip, flip+rot180}" in verdict and "C2" in suggestion


def test_no_break_where_images_or_seeds_could_not_show_one_is_no_verdict():
    """8 images lost by every augmented twin are the least a Holm-corrected one-sided sign test can
    reject on (0.5⁸ < 0.05/7 < 0.5⁷); spread over S seeds, each such image is a loss of 1/S. The
    t-test across 3 seeds at 0.05/7 needs a mean of t(0.05/7, 2) · s / √3."""
    from scipy.stats import t

    assert smallest_detectable_drop(800, 1)[0] == pytest.approx(0.01)
    assert smallest_detectable_drop(800, 2)[0] == pytest.approx(0.005)
    assert smallest_detectable_drop(80, 3, 0.02)[1] == pytest.approx(t.ppf(1 - 0.05 / 7, 2) * 0.02 / 3**0.5)
    keep = [False] * 8
    few = judge(keep, 0.1, 0.9, 0.5, detectable=(12, 3, (8 / 36, 0.01)))
    assert few[0].startswith("too few images or seeds to tell: on 12 validation images and 3 seeds")
    assert "22.2 points" in few[0] and "more validation images" in few[1]
    noisy = judge(keep, 0.1, 0.9, 0.5, detectable=(2000, 3, (0.001, 0.15)))
    assert noisy[0].startswith("too few images or seeds to tell") and "more seeds" in noisy[1]
    enough = judge(keep, 0.1, 0.9, 0.5, detectable=(2000, 3, (0.001, 0.02)))[0]
    assert enough.startswith("orientation-free") and "could not show a break that costs less than 2.0 points" in enough
    flips_break = [False, False, False, False, True, True, True, True]  # a break found is reported on few images too
    assert judge(flips_break, 0.5, 0.9, 0.5, detectable=(12, 3, (0.3, 0.3)))[0].startswith("canonical orientation")


def test_a_loss_one_seed_shows_and_the_others_do_not_is_no_break():
    """The old rule tested one trained pair (McNemar): 60 of 600 images lost by the twin of seed 0
    was a break (p ≈ 1e-18), though seeds 1 and 2 lose nothing. Across seeds it is not; a loss
    every seed shows is."""
    rng = np.random.default_rng(0)
    n = 600
    correct = np.ones((3, 8, n))
    correct[:, :, rng.permutation(n)[:150]] = 0  # the same hard images for every model
    easy = np.flatnonzero(correct[0, 0])
    correct[0, 1, easy[:60]] = 0  # rot90's twin of seed 0 loses 60 images (10 points)
    assert image_sign_p(correct[0, 0] - correct[0, 1]) < 1e-15  # one seed's McNemar
    for seed, lost in enumerate((45, 50, 55)):  # rot180's twins lose in every seed
        correct[seed, 2, easy[100 : 100 + lost]] = 0
    tests = label_tests(correct)
    assert tests.drops[1] == pytest.approx(60 / n / 3)
    assert not tests.breaks[1] and tests.p_seeds_holm[1] > 0.05
    assert tests.breaks[2] and tests.p_seeds_holm[2] < 0.05 and tests.p_images_holm[2] < 0.05
    assert tests.drops_per_seed[2] == pytest.approx([45 / n, 50 / n, 55 / n])
    low, high = tests.drop_intervals[2]
    assert low < 50 / n < high


def test_the_detection_interval_counts_images_not_views():
    """An image whose eight views are all recognised or all missed carries one observation, not
    eight: the bootstrap over images gives the width of n images, the old per-view interval a width
    √8 times too small."""
    rng = np.random.default_rng(1)
    per_image = (rng.random(400) < 0.6).astype(float)  # each image's rate over its 8 views: 0 or 1
    low, high = image_bootstrap_interval(per_image)
    binomial_half = 1.959964 * (per_image.mean() * (1 - per_image.mean()) / 400) ** 0.5
    assert (high - low) / 2 == pytest.approx(binomial_half, rel=0.15)
    assert (high - low) / 2 > 2 * binomial_half / 8**0.5
    assert image_bootstrap_interval(np.full(10, 0.25)) == (0.25, 0.25)


def test_composition_is_that_of_the_transforms_and_d4_has_ten_subgroups():
    x = torch.arange(2 * 28 * 28, dtype=torch.float64).reshape(1, 2, 28, 28)
    for a in range(8):
        for b in range(8):
            assert torch.equal(dihedral(dihedral(x, a), b), dihedral(x, compose(b, a))), (a, b)
    groups = subgroups()
    assert [len(g) for g in groups] == [8, 4, 4, 4, 2, 2, 2, 2, 2, 1]
    assert all(compose(b, a) in g for g in groups for a in g for b in g)


def test_the_verdict_is_group_consistent_when_rot90_keeps_and_rot270_breaks():
    # RetinaMNIST's pattern before the correction: rot270, flip and flip+rot270 break, the others keep
    breaks = [name in ("rot270", "flip", "flip+rot270") for name in TRANSFORM_NAMES]
    names = [subgroup_name(g) for g in keeping_subgroups(breaks)]
    assert names == ["C2", "reflection group {identity, flip+rot90}", "reflection group {identity, flip+rot180}"]
    verdict, suggestion = judge(breaks, 0.5, 0.9, 0.5)
    assert "is C2 or reflection group" in verdict and "C4;" not in verdict and "C2" in suggestion


def test_holm_and_the_two_tests_agree_with_their_definitions():
    from scipy.stats import t

    p = [0.01, 0.04, 0.03, 0.005, 0.5, 0.2, 0.02]
    order = sorted(range(7), key=p.__getitem__)
    manual, running = [0.0] * 7, 0.0
    for rank, i in enumerate(order):  # Holm (1979): step-down, (m − rank) · p, monotone
        running = max(running, min(1.0, (7 - rank) * p[i]))
        manual[i] = running
    assert holm(p) == pytest.approx(manual)
    losses = np.array([1, 1, 1, 0, -1, 0, 1 / 3])  # per image; 4 of the 5 non-zero ones are losses
    assert image_sign_p(losses) == pytest.approx(5 / 32 + 1 / 32)
    assert image_sign_p(np.zeros(5)) == 1.0
    per_seed = np.array([0.05, 0.02, 0.04])
    statistic = per_seed.mean() / (per_seed.std(ddof=1) / 3**0.5)
    assert seed_t_p(per_seed) == pytest.approx(t.sf(statistic, 2))
    assert seed_t_p(np.full(3, 0.02)) == 0.0 and seed_t_p(np.zeros(3)) == 1.0


def test_probe_command_prints_the_verdict_and_writes_its_report(generated, tmp_path):
    out = tmp_path / "probe.json"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "dpecnn",
            "probe",
            "breastmnist",
            "--data-root",
            str(generated["oriented"]),
            "--steps",
            "20",
            "--train-subset",
            "64",
            "--eval-subset",
            "32",
            "--seeds",
            "0,1",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert "not covered by ε" in res.stdout and "verdict: " in res.stdout
    report = json.loads(out.read_text())
    assert report["n_train"] == 64 and report["n_eval"] == 32 and len(report["drops"]) == 8
    assert report["seeds"] == [0, 1] and "probe: seed 1: classifier trained with flip+rot270" in res.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "dpecnn", "probe", "nosuchmnist", "--out", str(tmp_path / "x.json")],
        capture_output=True,
        text=True,
    )
    assert (
        bad.returncode == 2 and bad.stderr.startswith("error: unknown dataset") and not (tmp_path / "x.json").exists()
    )
    one_seed = subprocess.run(
        [sys.executable, "-m", "dpecnn", "probe", "breastmnist", "--seeds", "4", "--out", str(tmp_path / "y.json")],
        capture_output=True,
        text=True,
    )
    assert one_seed.returncode == 2 and one_seed.stderr.count("\n") == 1
    assert "at least 2 distinct" in one_seed.stderr and not (tmp_path / "y.json").exists()


def test_probe_budget_defaults_agree_in_the_package_the_command_and_the_suite():
    from dpecnn.cli import build_parser
    from dpecnn.suite import PROBE_DEFAULTS

    args, cfg = build_parser().parse_args(["probe", "bloodmnist"]), ProbeConfig()
    assert (
        PROBE_DEFAULTS == {k: getattr(cfg, k) for k in PROBE_DEFAULTS} == {k: getattr(args, k) for k in PROBE_DEFAULTS}
    )
