import json

import pytest

from dpecnn.analysis.table import build_table1, collect_summaries, render, write_table1
from dpecnn.analysis.table import caption as table1_caption
from dpecnn.errors import DpecnnError
from dpecnn.suite import SuiteConfig, execute, run_suite
from dpecnn.train import TrainConfig
from dpecnn.train.sweep import grid, run_grid

TINY_TRAIN = {"epochs": 1, "layout": [4, 4, 8], "batch_size": 32, "physical_batch_size": 32, "train_subset": 96,
              "eval_subset": 32}


def test_every_notebook_runs_under_papermill_and_writes_its_figures(synthetic_root, tmp_path):
    cfg = SuiteConfig(dataset="dermamnist", archs=["e", "C4"], n_images=2,
                      train={**TINY_TRAIN, "data_root": str(synthetic_root)})
    paths = run_suite(cfg, tmp_path / "suite", log=lambda *_: None)
    executed = sorted(p.name for p in paths["notebooks"].glob("*.ipynb"))
    assert executed == ["01_train_C4.ipynb", "01_train_e.ipynb", "02_interpretability.ipynb",
                        "03_impulse_response.ipynb", "04_sparsity.ipynb", "05_calibration.ipynb",
                        "06_privacy_utility.ipynb"]
    for name in ("training_dermamnist_e_dp", "training_dermamnist_C4_dp", "attributions", "fir_maps", "sparsity",
                 "reliability", "accuracy_vs_params"):
        for ext in ("pdf", "png"):
            assert (paths["figures"] / f"{name}.{ext}").stat().st_size > 1000, f"{name}.{ext}"
    assert "| dermamnist | C4 |" in (paths["tables"] / "table1.md").read_text()
    train_nb = json.loads((paths["notebooks"] / "01_train_C4.ipynb").read_text())
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in train_nb["cells"])


def test_a_wrong_parameter_fails_the_notebook_with_the_package_error(synthetic_root, tmp_path):
    from dpecnn.suite import NOTEBOOKS

    with pytest.raises(DpecnnError) as err:
        execute("01_train", tmp_path, "01_train_C5", {"arch": "C5", "data_root": str(synthetic_root),
                                                       "out_dir": str(tmp_path / "run")}, NOTEBOOKS)
    assert "notebook 01_train failed" in str(err.value) and "unknown arch 'C5'" in str(err.value)
    assert (tmp_path / "01_train_C5.FAILED.ipynb").exists() and not (tmp_path / "01_train_C5.ipynb").exists()


def test_suite_rejects_a_bad_config_before_running_anything(tmp_path):
    with pytest.raises(DpecnnError, match="unknown arch 'C5'"):
        run_suite(SuiteConfig(archs=["e", "C5"]), tmp_path / "suite")
    assert not (tmp_path / "suite").exists()
    (tmp_path / "bad.json").write_text('{"archs": ["e"], "colour": "red"}')
    with pytest.raises(DpecnnError, match="bad suite config"):
        SuiteConfig.load(tmp_path / "bad.json")


def test_sweep_runs_each_configuration_once_and_table_renders_three_formats(synthetic_root, tmp_path):
    base = TrainConfig(dataset="dermamnist", data_root=str(synthetic_root), **{**TINY_TRAIN, "layout": (2, 2, 4)})
    configs = grid(base, ["dermamnist"], ["e", "C4"], [1], [True, False], [0, 1])
    first = run_grid(configs, tmp_path / "runs", log=lambda *_: None)
    second = run_grid(configs, tmp_path / "runs", log=lambda *_: None)
    assert len(first) == 8 and {r.status for r in first} == {"trained"}
    assert {r.status for r in second} == {"skipped (finished)"}
    table = build_table1(collect_summaries(tmp_path / "runs"))
    rows = table.rows
    assert [(r["dataset"], r["arch"], r["setting"]) for r in rows] == [("dermamnist", "e", {}), ("dermamnist", "C4", {})]
    cell = rows[1]["no aug DP"]
    assert cell["n"] == 2 and cell["seeds"] == [0, 1] and cell["std"] is not None and cell["std"] >= 0
    assert cell["paper"] is None  # the paper's values are for layout 8-16-32, not these tiny runs
    assert rows[0]["aug DP"]["n"] == 0
    paths = write_table1(tmp_path / "runs", tmp_path / "tables")
    csv = paths["csv"].read_text().splitlines()
    assert len(csv) == 3 and csv[2].startswith("dermamnist,C4,")
    assert render(table, "md").count("| dermamnist |") == 2
    assert "epochs 1" in table1_caption(table) and "layout 2-2-4" in table1_caption(table)
    assert r"\begin{tabular}" in paths["latex"].read_text() and r"\caption{" in paths["latex"].read_text()
