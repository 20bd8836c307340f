"""The privacy–utility curve and gap verdicts on runs with known accuracies, the sweep's ε axis,
and runs.csv."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from dpecnn.analysis.pages.privacy_utility import (
    gap,
    gap_difference,
    paper_values,
    privacy_points,
    privacy_utility_verdict,
)
from dpecnn.errors import DpecnnError
from dpecnn.train.config import TrainConfig

EPSILONS = (1.0, 7.42, None)


def fake_summaries(seeds=range(100, 105), drop=None, noise=0.01, levels=None, **settings):
    """Runs of e and C4 (or of each arch in ``levels``, at its non-DP accuracy) whose DP accuracy
    falls by drop[arch] / √ε below the non-DP level."""
    drop = drop or {"e": 0.10, "C4": 0.03}
    rng = np.random.default_rng(0)
    runs = []
    for arch, level in (levels or {"e": 0.90, "C4": 0.92}).items():
        for eps in EPSILONS:
            for seed in seeds:
                cfg = TrainConfig(arch=arch, dp=eps is not None, epsilon=eps or 7.42, seed=seed, **settings)
                acc = level - (0 if eps is None else drop[arch] / eps**0.5)
                runs.append(
                    {
                        "dataset": "bloodmnist",
                        "arch": arch,
                        "dp": cfg.dp,
                        "epsilon_target": eps,
                        "epsilon_spent": eps,
                        "seed": seed,
                        "settings": cfg.identity(),
                        "identity": cfg.identity_hash(),
                        "layout": [8, 16, 32],
                        "val_acc": acc + rng.normal(0, noise),
                        "test_acc": acc + rng.normal(0, noise),
                        "steps": 132,
                        "wall_time_s": 1.0,
                    }
                )
    return runs


def test_gaps_and_their_difference_recover_the_built_in_effect():
    points = privacy_points(fake_summaries(noise=1e-4))
    assert [(p.label, p.epsilon, len(p.runs)) for p in points][:3] == [("e", 1.0, 5), ("e", 7.42, 5), ("e", None, 5)]
    assert gap(points, "bloodmnist", "e", 1.0).estimate == pytest.approx(0.10, abs=1e-3)
    narrowing = gap_difference(points, "bloodmnist", "e", "C4", 7.42)
    assert narrowing.estimate == pytest.approx(0.07 / 7.42**0.5, abs=1e-3) and narrowing.p_value < 1e-6
    assert narrowing.low < narrowing.estimate < narrowing.high
    verdict = privacy_utility_verdict(points)
    assert "ε = 7.42, test acc: C4 narrows the privacy–utility gap of e" in verdict
    assert verdict.count(": yes;") == 4


def test_verdicts_say_no_conclusion_for_one_seed_and_for_noise():
    one = privacy_utility_verdict(privacy_points(fake_summaries(seeds=[100])))
    assert ": yes" not in one and one.count("one seed: no conclusion") == 4
    same = privacy_utility_verdict(privacy_points(fake_summaries(drop={"e": 0.01, "C4": 0.01}, noise=0.05)))
    assert "narrows the privacy–utility gap of e" in same and "not significant: no conclusion" in same


def test_runs_that_differ_in_another_setting_are_not_averaged():
    mixed = fake_summaries() + fake_summaries(seeds=[200], lr=0.5)
    with pytest.raises(DpecnnError, match="differ in lr"):
        privacy_points(mixed)


def test_privacy_utility_command_writes_runs_curve_gaps_and_figure(tmp_path):
    for s in fake_summaries():
        folder = tmp_path / "runs" / f"{s['arch']}-{s['epsilon_target']}-{s['seed']}"
        folder.mkdir(parents=True)
        (folder / "summary.json").write_text(json.dumps(s))
    res = subprocess.run(
        [sys.executable, "-m", "dpecnn", "privacy-utility", str(tmp_path / "runs"), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    runs = pd.read_csv(tmp_path / "out" / "runs.csv")
    assert len(runs) == 30 and {
        "run",
        "dataset",
        "arch",
        "readout",
        "dp",
        "epsilon_target",
        "epsilon_spent",
        "seed",
        "identity",
        "val_acc",
        "test_acc",
        "steps",
        "wall_time_s",
    } <= set(runs.columns)
    curve = pd.read_csv(tmp_path / "out" / "privacy_curve.csv")
    assert len(curve) == 6 and set(curve["n"]) == {5}
    gaps = pd.read_csv(tmp_path / "out" / "privacy_gaps.csv")
    assert {"gap", "gap CI low", "gap_e_minus_gap", "gap_e_minus_gap p"} <= set(gaps.columns)
    md = (tmp_path / "out" / "privacy_utility.md").read_text()
    assert "| bloodmnist | C4 |" in md and "seeds 100, 101, 102, 103, 104" in md
    assert (tmp_path / "out" / "privacy_utility.png").stat().st_size > 10_000


def test_a_group_missing_a_budget_has_a_break_in_its_line_not_a_value_nobody_measured():
    from dpecnn.analysis.pages.privacy_utility import figure_lines
    from dpecnn.plotting.privacy_utility import privacy_utility_figure

    runs = [s for s in fake_summaries() if not (s["arch"] == "C4" and s["epsilon_target"] == 1.0)]
    runs += [{**s, "epsilon_target": 4.0, "epsilon_spent": 4.0} for s in fake_summaries() if s["epsilon_target"] == 1.0]
    fig = privacy_utility_figure(figure_lines(privacy_points(runs)))  # e at 1, 4, 7.42; C4 at 4, 7.42 only
    for ax in fig.axes[:2]:
        e_line, c4_line = (line.get_ydata() for line in ax.lines if line.get_linestyle() == "-")
        assert not np.isnan(e_line).any() and np.isnan(c4_line).tolist() == [True, False, False]
    from matplotlib.text import Text

    # the docs show it at ≥ 0.27 of its 300-dpi pixels (tests/test_browser.py): 8 pt is then ≥ 9 px
    sizes = {t.get_text(): t.get_fontsize() for t in fig.findobj(Text) if t.get_text().strip()}
    assert min(sizes.values()) >= 8, {text: size for text, size in sizes.items() if size < 8}
    assert len(fig.legends) == 1 and "e DP (5 seeds)" in [t.get_text() for t in fig.legends[0].get_texts()]


def test_the_sweep_trains_every_epsilon_for_dp_and_non_dp_once(synthetic_root, tmp_path):
    from dpecnn.train.sweep import grid

    base = TrainConfig(dataset="dermamnist", data_root=str(synthetic_root))
    configs = grid(base, ["dermamnist"], ["e"], [1], [False, True], [100, 101], epsilons=[1.0, 7.42])
    assert sorted((c.dp, c.epsilon, c.seed) for c in configs if c.dp) == [
        (True, 1.0, 100),
        (True, 1.0, 101),
        (True, 7.42, 100),
        (True, 7.42, 101),
    ]
    assert len([c for c in configs if not c.dp]) == 2
    res = subprocess.run(
        [sys.executable, "-m", "dpecnn", "sweep", "--preset", "privacy-utility", "--plan", "--runs-dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert "50 runs" in res.stdout and "-s100-" in res.stdout and "-s0-" not in res.stdout


def test_each_layout_is_its_own_line_compared_with_e_at_that_layout():
    wide = fake_summaries(seeds=[100, 101], layout=(16, 32, 64))
    for s in wide:
        s["layout"] = [16, 32, 64]
    points = privacy_points(fake_summaries(seeds=[100, 101]) + wide)
    assert {p.label for p in points} == {"e 8-16-32", "C4 8-16-32", "e 16-32-64", "C4 16-32-64"}
    verdict = privacy_utility_verdict(points)
    assert "C4 16-32-64 narrows the privacy–utility gap of e 16-32-64" in verdict
    assert "C4 8-16-32 more accurate than e 8-16-32 under DP" in verdict


def _write_runs(folder, summaries):
    for s in summaries:
        run = folder / f"{s['arch']}-{s['epsilon_target']}-{s['seed']}"
        run.mkdir(parents=True)
        (run / "summary.json").write_text(json.dumps(s))


def test_generated_blocks_are_written_from_the_run_records_and_keep_the_search_apart(tmp_path):
    from dpecnn.analysis.pages.generated_docs import markers, render, results_block, stale, update

    root = tmp_path
    _write_runs(root / "results" / "privacy_utility" / "runs", fake_summaries())
    _write_runs(root / "results" / "recipe_search" / "runs", fake_summaries(seeds=[0, 1]))
    section = results_block(root)
    assert "| bloodmnist | C4 | " in section and "paper: no DP / ε = 7.42" in section and "95.35 / 91.30" in section
    assert "- bloodmnist, ε = 7.42, test acc: C4 narrows the privacy–utility gap of e" in section
    assert section.index("test acc (%) after") < section.index("val acc (%) after")
    assert "ε = 1," not in section  # the other budgets' verdicts stay in privacy_utility.md
    assert "12 runs on the search seeds 0, 1; the reported runs use seeds 100, 101, 102, 103, 104" in section
    begin, end = markers("results")
    (root / "docs").mkdir()
    readme, page = root / "README.md", root / "docs" / "privacy.md"
    readme.write_text(f"# x\n\n{begin}\nstale 12.34 %\n{end}\n\nrest\n")
    page.write_text(f"# p\n\n{markers('not-covered')[0]}\n{markers('not-covered')[1]}\n")
    assert stale(root) == [readme, page]
    assert update(root) == [readme, page] and update(root) == [] and stale(root) == []
    assert readme.read_text() == f"# x\n\n{begin}\n\n{section}\n\n{end}\n\nrest\n"
    assert "- **diagnostics.**" in page.read_text()
    _write_runs(root / "results" / "privacy_utility" / "runs" / "again", fake_summaries(seeds=[0])[:1])
    with pytest.raises(DpecnnError, match="runs/again/e-1.0-0 is run e-1.0-0 of the recipe search"):
        results_block(root)
    with pytest.raises(DpecnnError, match="unknown generated block 'tables'"):
        render("<!-- generated: tables x -->\n<!-- /generated: tables -->\n", root)
    with pytest.raises(DpecnnError, match="lacks its closing"):
        render(f"{begin}\nno end\n", root)


def test_the_results_page_counts_the_runs_a_saved_plan_still_lists(tmp_path):
    from dpecnn.analysis.pages.generated_docs import results_page_block

    assert "**Still to train:** no plan saved." in results_page_block(tmp_path)
    plan = tmp_path / "results" / "table1" / "PLAN.md"
    plan.parent.mkdir(parents=True)
    plan.write_text(
        "# plan\n\n```\nrun  state\n10 runs (7 finished); projected 1.5 h of training, one run after another\n\n"
        "4 runs (0 finished); projected 20.0 min of training, one run after another\n```\n"
    )
    assert "7 of 14 runs, projected 1.5 h + 20.0 min of training steps" in results_page_block(tmp_path)
    plan.write_text("# plan\n\nno summary line\n")
    with pytest.raises(DpecnnError, match="no `N runs"):
        results_page_block(tmp_path)


def test_the_committed_readme_and_docs_show_what_results_hold():
    """Fails when a generated block of README.md or docs/ is stale: run `python -m dpecnn report`."""
    from pathlib import Path

    from dpecnn.analysis.pages.generated_docs import documents, stale

    root = Path(__file__).resolve().parents[1]
    assert len(documents(root)) > 5 and stale(root) == []


def test_table1_of_a_dataset_named_with_csv_and_latex_specials_round_trips(tmp_path):
    """Own data may be named anything: `a,b_c&d` must stay one CSV field and become escaped LaTeX."""
    import io as text_io

    import pandas as pd

    from dpecnn.analysis.pages.table import build_table1, latex_escape, render

    name = "a,b_c&d"
    runs = [
        {**s, "dataset": name, "private_release": True} for s in fake_summaries() if s["epsilon_target"] in (None, 7.42)
    ]
    table = build_table1(runs, "test_acc")
    frame = pd.read_csv(text_io.StringIO(render(table, "csv")), keep_default_na=False)
    assert frame["dataset"].tolist() == [name, name] and frame["arch"].tolist() == ["e", "C4"]
    assert frame["no aug DP n"].tolist() == [5, 5] and frame["no aug DP seeds"].tolist() == ["100 101 102 103 104"] * 2
    tex = render(table, "latex")
    body = [line for line in tex.splitlines() if line.startswith(latex_escape(name))]
    assert len(body) == 2 and r"a,b\_c\&d" in body[0]
    columns = 2 + 2 * 4  # dataset, group, then ours and paper for each of the four columns
    unescaped_ampersands = [line.replace(r"\&", "").count("&") for line in body]
    assert unescaped_ampersands == [columns - 1] * 2
    assert r"\begin{table}" in tex and r"\toprule" in tex and r"$\pm$" in tex and r"\caption{test acc (\%)" in tex


def test_points_that_differ_in_more_than_the_curves_axes_are_refused_and_paper_values_follow_k():
    """e without augmentation against C4 with it, or a non-DP half augmented and a DP half not,
    would read as an effect of the group or of privacy: refused. The paper's values are those
    of the runs' augmentation column, and only at the paper's budget and layout."""
    plain, augmented = fake_summaries(noise=1e-4), fake_summaries(noise=1e-4, aug_mult=4)
    with pytest.raises(DpecnnError, match="the non-DP runs on bloodmnist differ in aug_mult"):
        privacy_points([s for s in plain if s["arch"] == "e"] + [s for s in augmented if s["arch"] == "C4"])
    with pytest.raises(DpecnnError, match="the DP and the non-DP runs on bloodmnist differ in aug_mult, which no"):
        privacy_points([s for s in plain if s["dp"]] + [s for s in augmented if not s["dp"]])
    assert paper_values(privacy_points(plain)) == {"e": (94.05, 89.19), "C4": (95.35, 91.30)}
    assert paper_values(privacy_points(augmented)) == {"e": (96.52, 90.61), "C4": (96.67, 91.39)}
    assert paper_values(privacy_points([s for s in plain if s["epsilon_target"] != 7.42])) == {}


def test_gaps_never_pool_unlike_runs_and_the_averaged_claim_weighs_each_column_alike(tmp_path):
    """DP runs at two ε are two cells, not one DP half; a gap that only the augmentation column
    sets (4 points without, 8 with, for every group) is no difference between e and the ECNNs,
    however many ECNN cells each column has."""
    from dpecnn.analysis.pages import dp_gap

    runs = fake_summaries(noise=1e-4)  # DP at ε = 1 and 7.42, and non-DP
    assert dp_gap.gap_rows(runs) == [] and dp_gap.averaged_claim(runs) == []
    at_paper_budget = [s for s in runs if s["epsilon_target"] in (7.42, None)]
    assert [(r["arch"], r["n_non_dp"], r["n_dp"]) for r in dp_gap.gap_rows(at_paper_budget)] == [
        ("e", 5, 5),
        ("C4", 5, 5),
    ]
    (tmp_path / "runs" / "0").mkdir(parents=True)
    (tmp_path / "gaps.md").write_text("left by an earlier call")
    (tmp_path / "runs" / "0" / "summary.json").write_text(json.dumps(runs[0]))
    assert dp_gap.write_gaps(tmp_path / "runs", tmp_path) == {} and not (tmp_path / "gaps.md").exists()

    def column(aug_mult, archs, gap):
        drop = {a: gap * 7.42**0.5 for a in archs}
        made = fake_summaries(noise=1e-7, levels=dict.fromkeys(archs, 0.9), drop=drop, aug_mult=aug_mult)
        return [s for s in made if s["epsilon_target"] in (7.42, None)]

    cells = column(1, ("e", "C4", "C8", "O2"), 0.04) + column(4, ("e", "C4"), 0.08)
    (claim,) = dp_gap.averaged_claim(cells, "test_acc")
    assert "(C4, C8, O2, C4 aug): gap e 6.00, ECNNs 6.00 points" in claim, claim
    assert "+0.00 points" in claim or "−0.00 points" in claim


def test_table1_compares_and_describes_each_augmentation_column_on_its_own():
    """A run without augmentation (K = 1) is paired with e's run without augmentation, never with
    e's augmented one, however the groups sort; the caption states K for the aug columns only.
    The paper's values stand only beside columns, and gaps, whose runs are at its setting."""
    from dpecnn.analysis.pages import dp_gap
    from dpecnn.analysis.pages.table import build_table1, caption, paired_rows, paired_verdict

    runs = [
        s
        for aug in (1, 4)
        for s in fake_summaries(range(100, 103), noise=1e-4, aug_mult=aug)
        if s["epsilon_target"] in (7.42, None)
    ]
    for s in runs:  # augmentation is worth 5 points to e alone: mixing the columns would show in the pairs
        if s["arch"] == "e" and s["settings"]["aug_mult"] == 4:
            s["test_acc"] += 0.05
    for s in runs:  # each half its own recipe, as train --preset gives: stated by "DP" / "non-DP", not in the pair
        s["settings"] |= {"lr": 0.5, "batch_size": 1024} if s["dp"] else {"lr": 0.01, "batch_size": 256}
    by_cell = {(s["arch"], s["dp"], s["settings"]["aug_mult"], s["seed"]): s["test_acc"] for s in runs}
    pairs = {(r["dp"], r["setting"]): r for r in paired_rows(runs, "test_acc")}
    assert set(pairs) == {(dp, f"aug_mult={k}") for dp in (False, True) for k in (1, 4)}
    # ... but a recipe field that differs within a half tells its groups apart and is named
    other_lr = [s | {"settings": s["settings"] | {"lr": 1.0}} for s in runs if s["dp"]]
    c4_lrs = {r["setting"] for r in paired_rows(runs + other_lr, "test_acc") if r["dp"]}
    assert c4_lrs == {f"aug_mult={k} lr={lr}" for k in (1, 4) for lr in ("0.5", "1")}, c4_lrs
    for (dp, setting), row in pairs.items():
        k = int(setting.split("=")[1])
        diffs = [by_cell["C4", dp, k, seed] - by_cell["e", dp, k, seed] for seed in (100, 101, 102)]
        assert row["seeds"] == [100, 101, 102] and row["mean_diff"] == pytest.approx(np.mean(diffs))
    assert paired_verdict(pairs[True, "aug_mult=1"]).startswith("bloodmnist DP C4 aug_mult=1 − e (test acc): +")
    table = build_table1(runs, "test_acc")
    assert [r["arch"] for r in table.rows] == ["e", "C4"] and table.aug_mult == 4
    assert [table.rows[0][c]["n"] for c in ("no aug non-DP", "no aug DP", "aug non-DP", "aug DP")] == [3] * 4
    text = caption(table)
    assert "aug_mult" not in text.split("Settings shared by all runs they apply to: ")[1].split(".")[0]
    assert "Aug columns: batch augmentation, aug_mult 4 views per image." in text
    assert table.rows[1]["no aug DP"]["paper"] == 91.30  # C4 at the paper's setting
    for other in ({"readout": "orientation"}, {"train_subset": 1000}):  # not the paper's setting: no paper value
        elsewhere = build_table1([s for s in fake_summaries(range(100, 102), **other) if s["arch"] == "C4"])
        assert {row["no aug DP"]["paper"] for row in elsewhere.rows} == {None}, other
    # audit canaries in the DP half only: a row of their own, off the paper's setting; the plain
    # non-DP row keeps the paper's value
    audit = [s for s in fake_summaries(range(100, 102), canaries=8) if s["arch"] == "C4" and s["dp"]]
    plain = [s for s in fake_summaries(range(100, 102)) if s["arch"] == "C4" and not s["dp"]]
    plain_row, canary_row = build_table1([s for s in audit if s["epsilon_target"] == 7.42] + plain).rows
    assert canary_row["setting"] == {"canaries": 8} and canary_row["no aug non-DP"]["n"] == 0
    assert (canary_row["no aug DP"]["paper"], plain_row["no aug non-DP"]["paper"]) == (None, 95.35)
    # DP runs at ε = 1 only: ε applies to the DP column alone, the non-DP one is at the paper's setting
    at_one = [s for s in fake_summaries(range(100, 102)) if s["arch"] == "C4" and s["epsilon_target"] in (1.0, None)]
    (row,) = build_table1(at_one).rows
    assert (row["no aug DP"]["paper"], row["no aug non-DP"]["paper"]) == (None, 95.35)
    # no gap between a half with audit canaries and one without, whichever has them
    audit_non_dp = [s for s in fake_summaries(range(100, 102), canaries=8) if s["arch"] == "C4" and not s["dp"]]
    plain_dp = [s for s in fake_summaries(range(100, 102)) if s["arch"] == "C4" and s["epsilon_target"] == 7.42]
    for halves in (audit + plain, audit_non_dp + plain_dp):
        assert dp_gap.gap_rows([s for s in halves if s["epsilon_target"] in (7.42, None)]) == []
    (gap,) = dp_gap.gap_rows(plain + plain_dp)
    assert gap["paper_gap_points"] == pytest.approx(95.35 - 91.30)


def test_table1_compares_like_with_like_and_refuses_a_repeated_seed():
    """Only a recipe (or audit canaries) may tell a cell's halves apart; the paper's value stands
    only beside its setting; a repeated seed is refused; numbers sort by value."""
    from dpecnn.analysis.pages import dp_gap
    from dpecnn.analysis.pages.table import build_table1, paired_rows, paired_verdict, setting_groups

    seeds = range(100, 103)
    at_paper = [s for s in fake_summaries(seeds) if s["arch"] == "C4" and s["epsilon_target"] in (7.42, None)]
    # a non-DP half at another layout or on a subset is another row, never the other half of a gap
    for other in ({"layout": (16, 32, 64)}, {"train_subset": 1000}):
        wider = [s for s in fake_summaries(seeds, **other) if s["arch"] == "C4" and not s["dp"]]
        dp_half = [s for s in at_paper if s["dp"]]
        rows = build_table1(dp_half + wider).rows
        assert len(rows) == 2 and all((r["no aug DP"]["n"] == 0) != (r["no aug non-DP"]["n"] == 0) for r in rows)
        assert dp_gap.gap_rows(dp_half + wider) == [], other
    # settings that change the model or its input are off the paper's setting
    for other in ({"fields": "fixed-params"}, {"restrict": False}, {"channels": 1}, {"aug_mult": 4, "aug_rot90": True}):
        runs = [s for s in fake_summaries(seeds, **other) if s["arch"] == "C4" and s["epsilon_target"] in (7.42, None)]
        (row,) = build_table1(runs).rows
        column = "aug DP" if "aug_mult" in other else "no aug DP"
        assert row[column]["n"] == 3 and row[column]["paper"] is None, other
    # a copied run folder: a repeated seed would count twice in the mean and once in the pairing
    twice = at_paper + [dict(at_paper[0], run="copy")]
    for use in (build_table1, paired_rows, setting_groups):
        with pytest.raises(DpecnnError, match="same settings at seed 100 .*a repeated seed is not another seed"):
            use(twice)
    # ε rows in the order of their values, not of their text (1, 10, 2, 4, 7.42 before)
    dp_e = [s for s in fake_summaries(seeds) if s["arch"] == "e" and s["dp"]]
    at_ten = [dict(s, settings={**s["settings"], "epsilon": 10.0}) for s in dp_e if s["epsilon_target"] == 1.0]
    at_two = [dict(s, settings={**s["settings"], "epsilon": 2.0}) for s in dp_e if s["epsilon_target"] == 1.0]
    assert [r["setting"]["epsilon"] for r in build_table1(dp_e + at_ten + at_two).rows] == [1.0, 2.0, 7.42, 10.0]
    # groups without a seed in common pair nothing; equal gains at every seed are no spread, not p ≈ 0
    later = [dict(s, seed=s["seed"] + 10) for s in fake_summaries(seeds) if s["arch"] == "C4"]
    e_runs = [s for s in fake_summaries(seeds) if s["arch"] == "e"]
    (row,) = [r for r in paired_rows(later + e_runs) if r["dp"] is False]
    assert paired_verdict(row).endswith("no seed in common with e, nothing to pair: no conclusion")
    same_gain = [
        dict(s, test_acc=(1400 + 7 * (s["seed"] - 100) + 100 * (s["arch"] == "C4")) / 1712)
        for s in fake_summaries(range(100, 102))
        if s["epsilon_target"] is None
    ]
    (row,) = paired_rows(same_gain, "test_acc")
    assert row["p_value"] is None and paired_verdict(row).endswith("p n/a: no spread between seeds: no conclusion")


def test_table1_gaps_per_cell_and_the_papers_averaged_claim(tmp_path):
    """Table 1's cells at ε = 7.42: e loses 0.10/√7.42 ≈ 3.7 points to DP, C4 0.03/√7.42 ≈ 1.1,
    in both augmentation columns; the averaged claim recovers the difference with its interval,
    and says "no conclusion" where the groups pay the same or a cell has one seed."""
    from dpecnn.analysis.pages import dp_gap

    def cells(drop, seeds=range(100, 105), noise=0.01):
        return [
            s
            for aug in (1, 4)
            for s in fake_summaries(seeds, drop, noise, aug_mult=aug)
            if s["epsilon_target"] in (7.42, None)
        ]

    summaries = cells({"e": 0.10, "C4": 0.03}, noise=1e-4)
    rows = dp_gap.gap_rows(summaries, "val_acc")
    assert [(r["arch"], r["augmentation"], r["n_non_dp"], r["n_dp"]) for r in rows] == [
        ("e", False, 5, 5),
        ("e", True, 5, 5),
        ("C4", False, 5, 5),
        ("C4", True, 5, 5),
    ]
    assert rows[0]["gap"] == pytest.approx(0.10 / 7.42**0.5, abs=1e-3) and rows[0]["low"] < rows[0]["gap"]
    assert rows[2]["paper_gap_points"] == pytest.approx(95.35 - 91.30)
    (claim,) = dp_gap.averaged_claim(summaries, "val_acc")
    assert claim.startswith("bloodmnist, both columns (val acc): DP costs e more than the ECNNs (C4, C4 aug)")
    expected = 100 * (rows[0]["gap"] + rows[1]["gap"] - rows[2]["gap"] - rows[3]["gap"]) / 2
    assert expected == pytest.approx(100 * 0.07 / 7.42**0.5, abs=0.05)
    assert f": yes; {expected:+.2f} points [95 % CI" in claim and "5, 5, 5, 5, 5, 5, 5, 5 seeds" in claim
    paper_e = ((94.05 - 89.19) + (96.52 - 90.61)) / 2
    assert f"validation: e {paper_e:.2f}" in claim
    same = cells({"e": 0.05, "C4": 0.05})
    e_runs = {(r["dp"], r["settings"]["aug_mult"], r["seed"]): r for r in same if r["arch"] == "e"}
    for r in same:  # C4 pays exactly what e pays, run for run
        if r["arch"] == "C4":
            r["val_acc"] = e_runs[r["dp"], r["settings"]["aug_mult"], r["seed"]]["val_acc"] + 0.02
    (same_claim,) = dp_gap.averaged_claim(same, "val_acc")
    assert "gap e − gap ECNNs: not significant: no conclusion;" in same_claim and "p = 1 (Welch" in same_claim
    (one,) = dp_gap.averaged_claim(cells({"e": 0.10, "C4": 0.03}, seeds=[100]), "val_acc")
    assert one == "bloodmnist: no averaged claim yet: one seed in a half of e, C4, e aug, C4 aug"
    # a cell with one DP seed is left out, named, and the claim keeps its test on the others
    c4_aug_dp = [s for s in summaries if (s["arch"], s["dp"], s["settings"]["aug_mult"]) == ("C4", True, 4)]
    (without,) = dp_gap.averaged_claim([s for s in summaries if s not in c4_aug_dp[1:]], "val_acc")
    assert "(C4, C4 aug)" not in without and ": yes; " in without
    assert without.startswith(
        "bloodmnist, no augmentation (val acc): DP costs e more than the ECNNs "
        "(C4; left out, one seed in a half: C4 aug)"
    )
    for i, s in enumerate(summaries):
        (tmp_path / "runs" / str(i)).mkdir(parents=True)
        (tmp_path / "runs" / str(i) / "summary.json").write_text(json.dumps(s))
    paths = dp_gap.write_gaps(tmp_path / "runs", tmp_path, "val_acc")
    assert pd.read_csv(paths["gaps"]).shape[0] == 4
    text = paths["gaps_md"].read_text()
    assert "The price of privacy per cell" in text and "DP costs e more" in text
