"""The symmetry probe (dpecnn.analysis.symmetry_probe) on generated data with and without a
canonical orientation, its verdict rules, and its command line."""

import json
import subprocess
import sys

import pytest
import torch

from dpecnn.analysis.symmetry_probe import (TRANSFORM_NAMES, ProbeConfig, dihedral, judge, run_probe)
from dpecnn.data import load_dataset, write_synthetic_npz


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
    return run_probe(cfg, load_dataset("breastmnist", root))


def test_probe_reports_a_canonical_orientation_where_the_class_is_the_orientation(generated):
    report = probe(generated["oriented"])
    assert report.verdict.startswith("canonical orientation"), report.verdict
    assert report.breaks[TRANSFORM_NAMES.index("rot180")]  # up ↔ down swaps the classes
    assert not report.breaks[TRANSFORM_NAMES.index("flip")]  # a left-right mirror keeps a vertical shape
    assert report.detection_interval[0] > 0.125, "rotations by 90° are visible in these images"


def test_probe_finds_no_orientation_in_orientation_free_data(generated):
    report = probe(generated["orientation-free"])
    assert report.accuracy > report.majority + 0.2, "the probe's classifier must learn the task to judge it"
    assert report.verdict.startswith("orientation-free"), report.verdict
    assert not any(report.breaks)


def test_verdict_rules():
    keep = [False] * 8
    assert judge(keep, 0.1, 0.9, 0.5)[0] == "orientation-free: invariant models are appropriate."
    assert "detectable orientation" in judge(keep, 0.5, 0.9, 0.5)[0]
    assert judge([True] * 8, 0.5, 0.6, 0.6)[0].startswith("inconclusive")
    assert "Weak evidence" in judge([True] * 8, 0.5, 0.55, 0.5)[0] and "Weak" not in judge([True] * 8, 0.5, 0.9, 0.5)[0]
    flips_break = [False, False, False, False, True, True, True, True]
    assert "C_N" in judge(flips_break, 0.5, 0.9, 0.5)[1]
    quarter_turns_break = [False, True, False, True, False, True, False, True]
    assert "C2" in judge(quarter_turns_break, 0.5, 0.9, 0.5)[1]


def test_probe_command_prints_the_verdict_and_writes_its_report(generated, tmp_path):
    out = tmp_path / "probe.json"
    res = subprocess.run([sys.executable, "-m", "dpecnn", "probe", "breastmnist", "--data-root",
                          str(generated["oriented"]), "--steps", "20", "--train-subset", "64", "--eval-subset", "32",
                          "--out", str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "not covered by ε" in res.stdout and "verdict: " in res.stdout
    report = json.loads(out.read_text())
    assert report["n_train"] == 64 and report["n_eval"] == 32 and len(report["drops"]) == 8
    bad = subprocess.run([sys.executable, "-m", "dpecnn", "probe", "nosuchmnist", "--out", str(tmp_path / "x.json")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error: unknown dataset") and not (tmp_path / "x.json").exists()


def test_probe_budget_defaults_agree_in_the_package_the_command_and_the_suite():
    from dpecnn.cli import build_parser
    from dpecnn.suite import PROBE_DEFAULTS

    args, cfg = build_parser().parse_args(["probe", "bloodmnist"]), ProbeConfig()
    assert PROBE_DEFAULTS == {k: getattr(cfg, k) for k in PROBE_DEFAULTS} == {k: getattr(args, k) for k in PROBE_DEFAULTS}
