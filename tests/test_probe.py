"""The symmetry probe (dpecnn.analysis.measures.symmetry_probe) on generated data with and without a
canonical orientation, its verdict rules, and its command line."""

import json
import subprocess
import sys

import pytest
import torch

from dpecnn.analysis.measures.symmetry_probe import (
    TRANSFORM_NAMES,
    ProbeConfig,
    compose,
    dihedral,
    holm,
    judge,
    keeping_subgroups,
    mcnemar_p,
    run_probe,
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


def probe(root):
    cfg = ProbeConfig(dataset="breastmnist", data_root=str(root), layout=(4, 4, 8), steps=200, batch_size=32)
    return run_probe(cfg)


def test_probe_reports_a_canonical_orientation_where_the_class_is_the_orientation(generated):
    report = probe(generated["oriented"])
    assert report.verdict.startswith("canonical orientation"), report.verdict
    assert report.breaks[TRANSFORM_NAMES.index("rot180")]  # up ↔ down swaps the classes
    assert not report.breaks[TRANSFORM_NAMES.index("flip")]  # a left-right mirror keeps a vertical shape
    assert report.breaks[TRANSFORM_NAMES.index("flip+rot180")]  # the up-down mirror swaps them too


def test_a_turn_the_labels_allow_is_not_called_a_break_because_the_plain_model_never_saw_it(generated):
    """Up against down: a quarter turn makes shapes that point sideways, which no training image
    does. A model that never saw one fails on them (the old probe called that a break); trained
    with the turn as augmentation, "up or left" against "down or right" is still learnable, so
    the labels allow it (only the half turn, which swaps the classes, does not)."""
    report = probe(generated["oriented"])
    for name in ("rot90", "rot270"):
        assert not report.breaks[TRANSFORM_NAMES.index(name)], (name, report.drops)
    assert "reflection group {identity, flip}" in report.keeping and "D4" not in report.keeping
    assert all(report.p_holm[k] >= report.p_values[k] for k in range(8))
    assert report.detection_interval[0] > 0.125, "rotations by 90° are visible in these images"


def test_probe_finds_no_orientation_in_orientation_free_data(generated):
    report = probe(generated["orientation-free"])
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


def test_no_break_on_too_few_images_is_no_verdict():
    """9 images only the plain twin gets right are the least a Holm-corrected McNemar test can reject on."""
    assert smallest_detectable_drop(300) == pytest.approx(0.03) and smallest_detectable_drop(12) == 0.75
    keep = [False] * 8
    twelve = judge(keep, 0.1, 0.9, 0.5, n_eval=12)
    assert twelve[0].startswith("too few images to tell: on 12 validation images") and "75 points" in twelve[0]
    assert "more validation images" in twelve[1]
    enough = judge(keep, 0.1, 0.9, 0.5, n_eval=2000)[0]
    assert enough.startswith("orientation-free") and "smallest break these 2000 validation images could show" in enough
    flips_break = [False, False, False, False, True, True, True, True]  # a break found is reported on few images too
    assert judge(flips_break, 0.5, 0.9, 0.5, n_eval=12)[0].startswith("canonical orientation")


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


def test_holm_and_mcnemar_agree_with_their_definitions():
    p = [0.01, 0.04, 0.03, 0.005, 0.5, 0.2, 0.02]
    order = sorted(range(7), key=p.__getitem__)
    manual, running = [0.0] * 7, 0.0
    for rank, i in enumerate(order):  # Holm (1979): step-down, (m − rank) · p, monotone
        running = max(running, min(1.0, (7 - rank) * p[i]))
        manual[i] = running
    assert holm(p) == pytest.approx(manual)
    plain, moved = torch.tensor([1, 1, 1, 1, 0, 1]).numpy(), torch.tensor([0, 0, 0, 1, 1, 1]).numpy()
    assert mcnemar_p(plain, moved) == pytest.approx(4 / 16 + 1 / 16)  # 3 of 4 discordant pairs favour the plain images
    assert mcnemar_p(plain, plain) == 1.0


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
    bad = subprocess.run(
        [sys.executable, "-m", "dpecnn", "probe", "nosuchmnist", "--out", str(tmp_path / "x.json")],
        capture_output=True,
        text=True,
    )
    assert (
        bad.returncode == 2 and bad.stderr.startswith("error: unknown dataset") and not (tmp_path / "x.json").exists()
    )


def test_probe_budget_defaults_agree_in_the_package_the_command_and_the_suite():
    from dpecnn.cli import build_parser
    from dpecnn.suite import PROBE_DEFAULTS

    args, cfg = build_parser().parse_args(["probe", "bloodmnist"]), ProbeConfig()
    assert (
        PROBE_DEFAULTS == {k: getattr(cfg, k) for k in PROBE_DEFAULTS} == {k: getattr(args, k) for k in PROBE_DEFAULTS}
    )
