"""Fig. 1 left: accuracy against parameters under DP and the paper's claim, on runs with known
accuracies; the `width` command's files and its refusal of a folder without DP runs."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from dpecnn.analysis.pages import table
from dpecnn.analysis.pages.width import claim_verdicts, metric_points, point_rows, write_width
from dpecnn.train.config import TrainConfig

# (arch, layout): (parameters, test accuracy) — the small C4 is 2 points above the largest e and
# 1 point above the largest C4; e gains with width.
ACCURACY = {
    ("e", (4, 8, 16)): (10_364, 0.84),
    ("e", (8, 16, 32)): (39_728, 0.86),
    ("e", (32, 64, 128)): (615_080, 0.87),
    ("C4", (4, 4, 8)): (4_488, 0.85),
    ("C4", (8, 16, 32)): (65_384, 0.89),
    ("C4", (16, 32, 64)): (259_784, 0.88),
}


def fake_summaries(seeds=(100, 101, 102, 103, 104), noise=1e-3):
    rng = np.random.default_rng(0)
    runs = []
    for (arch, layout), (params, acc) in ACCURACY.items():
        for seed in seeds:
            cfg = TrainConfig(arch=arch, layout=layout, seed=seed)
            runs.append(
                {
                    "dataset": "bloodmnist",
                    "arch": arch,
                    "dp": True,
                    "epsilon_target": 7.42,
                    "epsilon_spent": 7.41,
                    "seed": seed,
                    "settings": cfg.identity(),
                    "identity": cfg.identity_hash(),
                    "layout": list(layout),
                    "params": params,
                    "test_acc": acc + rng.normal(0, noise),
                    "val_acc": acc + 0.005 + rng.normal(0, noise),
                    "steps": 132,
                    "wall_time_s": 1.0,
                }
            )
    return runs


def test_the_claim_compares_the_paper_layout_with_the_largest_models_and_recovers_the_built_in_effect():
    verdicts = claim_verdicts(table.seed_groups(fake_summaries(), "test_acc"), "test_acc")
    assert len(verdicts) == 2, verdicts
    largest_e, largest_c4 = verdicts
    assert largest_e.startswith(
        "C4 8-16-32 (65k params) more accurate than the largest conventional model, "
        "e 32-64-128 (615k params) (test acc %: 8"
    )
    assert ": yes; +" in largest_e and " (5 seeds); C4 − e): yes; +" in largest_e
    assert "than the largest model of its own group, C4 16-32-64 (260k params) (test acc %" in largest_c4
    assert [points(v) for v in verdicts] == [pytest.approx(2.0, abs=0.3), pytest.approx(1.0, abs=0.3)]
    assert all("(Welch; 5, 5 seeds)" in v for v in verdicts)


def points(verdict: str) -> float:
    """The difference a verdict line gives, in points."""
    return float(re.search(r"; ([+−][0-9.]+) points", verdict).group(1).replace("−", "-"))


def test_one_seed_or_an_opposite_effect_is_no_conclusion_or_no():
    one_seed = claim_verdicts(table.seed_groups(fake_summaries(seeds=(100,)), "test_acc"))
    assert all("one seed: no conclusion" in v for v in one_seed), one_seed
    reversed_runs = [
        {**s, "test_acc": 1.5 - s["test_acc"]} if s["arch"] == "C4" else s for s in fake_summaries()
    ]  # the small C4 is now below both
    verdicts = claim_verdicts(table.seed_groups(reversed_runs, "test_acc"))
    assert all(": no, significantly the opposite;" in v for v in verdicts), verdicts
    without_layout = [s for s in fake_summaries() if s["layout"] != [8, 16, 32] or s["arch"] == "e"]
    assert "C4 4-4-8 (4k params) more accurate" in claim_verdicts(table.seed_groups(without_layout, "test_acc"))[0]


def test_width_writes_its_files_and_refuses_a_folder_without_dp_runs(tmp_path):
    runs = tmp_path / "runs"
    for s in fake_summaries(seeds=(100, 101, 102)):
        folder = runs / f"{s['arch']}-{'-'.join(map(str, s['layout']))}-s{s['seed']}"
        folder.mkdir(parents=True)
        (folder / "summary.json").write_text(json.dumps(s))
    paths = write_width(runs, tmp_path / "out")
    rows = point_rows(metric_points(table.collect_summaries(runs)))
    assert [(r["arch"], r["layout"], r["n"]) for r in rows][:2] == [("e", "4-8-16", 3), ("e", "8-16-32", 3)]
    assert len((paths["runs"]).read_text().splitlines()) == 1 + 18
    md = paths["md"].read_text()
    assert "| C4 | 8-16-32 | 65,384 | 8" in md and md.count(": yes;") == 4, md
    assert paths["figure"].stat().st_size > 1000
    empty = tmp_path / "empty"
    empty.mkdir()
    res = subprocess.run([sys.executable, "-m", "dpecnn", "width", str(empty)], capture_output=True, text=True)
    assert res.returncode != 0 and res.stderr.strip().splitlines() == [
        f"error: no finished DP runs (summary.json) under {empty}"
    ]
    assert not list(empty.iterdir())
