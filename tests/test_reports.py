"""The notebooks' loader (stand-ins) and reports: runs grouped across seeds, mean ± std in
every table and verdict, every table also a CSV."""

import dataclasses

import pytest

from dpecnn.analysis.pages.map_reports import attribution_report, fir_report, shared_images
from dpecnn.analysis.pages.reports import paper_brier_note, reliability_report, sparsity_report, training_report
from dpecnn.analysis.pages.run import RunGroup, load_run, load_runs, validation_images
from dpecnn.analysis.pages.width import accuracy_report
from dpecnn.errors import DpecnnError
from dpecnn.plotting.style import plt

TINY = {
    "dataset": "dermamnist",
    "dp": True,
    "epochs": 1,
    "layout": [4, 4, 8],
    "batch_size": 32,
    "physical_batch_size": 32,
    "train_subset": 96,
    "eval_subset": 32,
}


@pytest.fixture(scope="module")
def stand_ins(synthetic_root, tmp_path_factory):
    """e and C4, two seeds each, trained by :func:`load_runs` as stand-ins (their folders are empty)."""
    root = tmp_path_factory.mktemp("runs")
    runs = {arch: [str(root / f"{arch}-{seed}") for seed in (0, 1)] for arch in ("e", "C4")}
    return runs, {**TINY, "data_root": str(synthetic_root)}, root


def test_missing_runs_are_trained_as_labelled_stand_ins_with_a_visible_warning(stand_ins, capsys):
    runs, quick, _ = stand_ins
    groups = load_runs(runs, quick)
    out = capsys.readouterr().out
    assert out.count("warning:") == 5 and "training a quick stand-in (C4, seed 1" in out  # 4 runs, then a summary
    assert [(g.label, g.seeds) for g in groups] == [("e DP (stand-in)", [0, 1]), ("C4 DP (stand-in)", [0, 1])]
    again = load_runs(runs, quick)  # finished now: loaded, not trained, still labelled
    assert "training" not in capsys.readouterr().out and again[1].runs[0].label == "C4 DP (stand-in)"
    with pytest.raises(Exception, match="not a finished run"):
        load_runs({"e": str(stand_ins[2] / "missing")})  # without quick_train a missing run is an error


def test_every_report_gives_mean_and_std_over_seeds_and_writes_its_tables(stand_ins, tmp_path):
    runs, quick, root = stand_ins
    groups = load_runs(runs, quick)
    reports = {
        "sparsity": sparsity_report(groups, tmp_path, tmp_path),
        "calibration": reliability_report(groups, tmp_path, tmp_path),
        "attributions": attribution_report(groups, 2, tmp_path, tmp_path),
        "fir": fir_report(groups, 2, tmp_path, tmp_path),
        "accuracy_vs_params": accuracy_report(root, tmp_path, tmp_path),
    }
    std_column = {
        "sparsity": "sparsity mean std",
        "calibration": "Brier std",
        "attributions": "spearman std",
        "fir": "magnitude std",
        "accuracy_vs_params": "val_acc std",
    }
    for name, report in reports.items():
        plt.close(report.figure)
        table = report.tables[name]
        assert table[std_column[name]].notna().all(), name
        assert (tmp_path / f"{name}.csv").read_text().splitlines()[0].startswith(",".join(table.columns[:2]))
        first = report.verdict.splitlines()[0]
        assert first.startswith("C4 ") and "(stand-in)" in first and " ± " in report.verdict, report.verdict
        assert "(2 seeds)" in report.verdict
    assert set(reports["fir"].tables["fir"]["role"]) == {"first", "last"}
    assert (tmp_path / "sparsity_per_layer.csv").exists()
    for name in ("sparsity", "reliability", "attributions", "fir_maps", "accuracy_vs_params"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000


def test_one_seed_gets_a_bootstrap_interval_and_the_training_verdict_checks_the_budget(stand_ins, tmp_path):
    runs, quick, _ = stand_ins
    groups = load_runs({"e": runs["e"][:1], "C4": runs["C4"][:1]}, quick)
    report = reliability_report(groups, None, tmp_path)
    assert report.tables["calibration"]["Brier CI low"].notna().all()
    assert "95 % bootstrap CI, 1 seed" in report.verdict
    run = load_run(runs["C4"][0])
    training = training_report(run, tmp_path, tmp_path)
    assert training.verdict.startswith("C4 DP (stand-in) kept its privacy budget: yes, ε ")
    over = dataclasses.replace(run, privacy={**run.privacy, "epsilon_spent": run.config.epsilon + 0.5})
    spent = f"no, ε {run.config.epsilon + 0.5:.3f} > {run.config.epsilon:g} "
    assert training_report(over, None, None).verdict.startswith(f"C4 DP (stand-in) kept its privacy budget: {spent}")
    assert (tmp_path / f"training_{run.path.name}.csv").exists()
    plt.close("all")


def test_validation_images_take_each_class_in_turn(stand_ins):
    runs, quick, _ = stand_ins
    run = load_run(runs["e"][0])
    from dpecnn.data import load_split

    split = load_split(run.config.dataset, "val", run.config.data_root)
    images = validation_images(run, 3)
    labels = [int(split.labels[(split.inputs() == img).flatten(1).all(1)][0]) for img in images]
    assert labels == [0, 1, 2]


def test_the_papers_brier_change_stands_beside_the_one_pair_it_measured():
    """−41 % is C4 against e under DP on PathMNIST: not a note for non-DP pairs or other groups."""

    def group(arch, dp, dataset="pathmnist"):
        return RunGroup(arch, {"arch": arch, "dp": dp, "dataset": dataset}, [])

    assert paper_brier_note(group("C4", True)) == "; paper −41 %"
    assert paper_brier_note(group("C4", True, "bloodmnist")).endswith("is on pathmnist, not bloodmnist: not comparable")
    assert paper_brier_note(group("C4", False)) == paper_brier_note(group("O2", True)) == ""


def test_maps_of_groups_trained_on_other_data_are_refused_not_drawn_on_the_first_groups_images():
    def group(arch, dataset, size=None):
        settings = {"arch": arch, "dp": True, "dataset": dataset, "size": size, "channels": None, "data_hash": None}
        return RunGroup(arch, settings, ["first run"])

    assert shared_images([group("e", "bloodmnist"), group("C4", "bloodmnist")]) == "first run"
    for other in (group("C4", "pathmnist"), group("C4", "bloodmnist", 64)):
        with pytest.raises(DpecnnError, match=r"trained on different data \(dataset bloodmnist"):
            shared_images([group("e", "bloodmnist"), other])


def test_sparsity_counted_at_different_thresholds_is_refused():
    from types import SimpleNamespace

    def group(arch, threshold):
        run = SimpleNamespace(
            config=SimpleNamespace(sparsity_threshold=threshold), sparsity_curve=lambda: ([1, 2], [0.1, 0.2])
        )
        return RunGroup(arch, {"arch": arch, "dp": True, "dataset": "bloodmnist"}, [run])

    with pytest.raises(DpecnnError, match=r"different thresholds \(1e-05, 0.001\): compare sparsity at one"):
        sparsity_report([group("e", 1e-5), group("C4", 1e-3)])
