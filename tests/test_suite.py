import csv
import csv as csv_module
import dataclasses
import json
import re

import pytest

from dpecnn import io
from dpecnn.analysis.pages.runs_table import write_runs_csv
from dpecnn.analysis.pages.table import build_table1, collect_summaries, paired_rows, render, write_table1
from dpecnn.analysis.pages.table import caption as table1_caption
from dpecnn.data import write_image_folder
from dpecnn.errors import DpecnnError
from dpecnn.suite import (
    ANALYSES,
    AUDIT_DEFAULTS,
    PROBE_DEFAULTS,
    SHIPPED_CONFIGS,
    SuiteConfig,
    execute,
    run_suite,
    shipped_configs,
)
from dpecnn.train import TrainConfig
from dpecnn.train.plan import REFERENCE_CPU_COSTS, plan_rows
from dpecnn.train.sweep import grid, run_grid

TINY_TRAIN = {"epochs": 1, "batch_size": 32, "physical_batch_size": 32, "train_subset": 96, "eval_subset": 32}


@pytest.mark.slow
def test_a_tiny_paper_suite_runs_every_notebook_on_own_images_and_shows_the_spread_over_seeds(tmp_path, capfd):
    """The whole suite on a generated RGB image folder (given splits, 36 × 36 resized to 32): own
    data go through every notebook as MedMNIST does (issue 19 §4)."""
    own = write_image_folder(tmp_path / "clinic", splits=(160, 48, 48), size=36, channels=3, seed=3)
    paper = SuiteConfig.load("paper")
    cfg = dataclasses.replace(
        paper,
        dataset=str(own),
        archs=["e", "C4"],
        layouts=[[2, 2, 4], [4, 4, 8]],
        analysis_layout=[4, 4, 8],
        seeds=[0, 1],
        n_images=2,
        train={**TINY_TRAIN, "size": 32},
        probe={"train_subset": 96, "eval_subset": 32, "steps": 10},
        audit={"canaries": 50, "train": {**TINY_TRAIN, "train_subset": 160}},
    )
    paths = run_suite(cfg, tmp_path / "suite", log=lambda *_: None)
    terminal = capfd.readouterr()
    assert "[IPKernelApp]" not in terminal.err + terminal.out, "kernel noise on the terminal"
    runs = sorted(p.name for p in paths["runs"].iterdir())
    trained = [f"01_train_{a}_w{w}_s{s}.ipynb" for a in ("C4", "e") for w in ("2-2-4", "4-4-8") for s in (0, 1)]
    executed = sorted(p.name for p in paths["notebooks"].glob("*.ipynb"))
    assert executed == (
        ["00_explore.ipynb"]
        + trained
        + [f"{nb}.ipynb" for nb in ANALYSES]
        + ["06_privacy_utility.ipynb", "07_symmetry_probe.ipynb", "08_privacy_audit.ipynb"]
    )
    for name in [f"training_{r}" for r in runs] + [
        "attributions",
        "fir_maps",
        "sparsity",
        "reliability",
        "accuracy_vs_params",
        "symmetry_probe",
        "privacy_audit",
    ]:
        for ext in ("pdf", "png"):
            assert (paths["figures"] / f"{name}.{ext}").stat().st_size > 1000, f"{name}.{ext}"
    spread = {
        "attributions": "spearman std",
        "fir": "magnitude std",
        "sparsity": "sparsity mean std",
        "calibration": "Brier std",
        "accuracy_vs_params": "val_acc std",
    }
    for table, column in spread.items():  # every group has two seeds, so every figure has its error bars
        rows = list(csv.DictReader((paths["tables"] / f"{table}.csv").open()))
        assert rows and all(float(r[column]) >= 0 for r in rows), table
    assert len(list(csv.DictReader((paths["tables"] / "accuracy_vs_params.csv").open()))) == 4  # 2 archs × 2 widths
    assert {f"training_{r}.csv" for r in runs} | {"table1.csv", "sparsity_per_layer.csv"} <= {
        p.name for p in paths["tables"].iterdir()
    }
    assert "| clinic | C4 |" in (paths["tables"] / "table1.md").read_text()
    for run in paths["runs"].iterdir():
        summary = io.read_json(run / "summary.json")
        assert summary["input"]["size"] == 32 and summary["input"]["channels"] == 3, run.name
        assert summary["data"]["source"] == "folder" and summary["data"]["split_rule"].startswith("given"), run.name
    for nb in ANALYSES + ("06_privacy_utility",):
        cells = json.loads((paths["notebooks"] / f"{nb}.ipynb").read_text())["cells"]
        verdict = "".join(cells[-1]["outputs"][0]["text"])
        assert verdict.startswith("C4 ") and " ± " in verdict and "(2 seeds)" in verdict, (nb, verdict)
    probe_cells = json.loads((paths["notebooks"] / "07_symmetry_probe.ipynb").read_text())["cells"]
    assert "suggested: " in "".join(probe_cells[-1]["outputs"][0]["text"])
    audit_cells = json.loads((paths["notebooks"] / "08_privacy_audit.ipynb").read_text())["cells"]
    verdict = "".join(audit_cells[-1]["outputs"][0]["text"]).splitlines()
    assert len(verdict) == 2 and "no DP claimed" in verdict[1] and "guesses right" in verdict[0], verdict
    assert not list(paths["runs"].glob("*canar*")), "audit runs stay out of the runs that Table 1 reads"
    train_nb = json.loads((paths["notebooks"] / "01_train_C4_w4-4-8_s1.ipynb").read_text())
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in train_nb["cells"])
    assert "kept its privacy budget: yes" in "".join(train_nb["cells"][-1]["outputs"][0]["text"])


def test_the_paper_config_validates_and_states_its_budget(tmp_path):
    cfg = SuiteConfig.load("paper")
    configs = cfg.train_configs()
    assert {"e", "C4", "O2"} <= set(cfg.archs) and len(cfg.seeds) >= 3 and len(cfg.layouts) >= 3
    assert len(configs) == len(cfg.archs) * len(cfg.layouts) * len(cfg.seeds)
    assert all(c.dataset == "bloodmnist" and c.dp and c.epsilon == 7.42 and c.delta == 1e-5 for c in configs)
    hours = sum(r["seconds"] for r in plan_rows(configs, tmp_path, io.read_json(REFERENCE_CPU_COSTS))) / 3600
    stated = float(re.search(r"about ([0-9.]+) h of training", cfg.description).group(1))
    assert stated == pytest.approx(hours, rel=0.05), f"description: {stated} h, sweep --plan: {hours:.1f} h"
    assert SuiteConfig.load(SHIPPED_CONFIGS / "paper.json") == cfg and shipped_configs() == ["paper", "privacy_utility"]


def test_the_privacy_utility_config_is_the_sweep_preset_and_states_its_budget(tmp_path):
    from dpecnn.train.presets import PRESETS

    cfg = SuiteConfig.load("privacy_utility")
    configs = cfg.train_configs()
    preset = PRESETS["privacy-utility"]
    assert sorted(cfg.seeds) == preset["seeds"] and set(cfg.archs) == set(preset["archs"])
    assert sorted(c.epsilon for c in configs if c.dp) == sorted(preset["epsilons"] * 10)
    assert len([c for c in configs if not c.dp]) == 10 and len(configs) == 50
    assert not set(cfg.seeds) & {0, 1, 2}, "the recipe search's seeds are never reported"
    analysed = [c for c in configs if cfg.analysed(c)]
    assert len(analysed) == 10 and all(c.dp and c.epsilon == 7.42 for c in analysed)
    hours = sum(r["seconds"] for r in plan_rows(configs, tmp_path, io.read_json(REFERENCE_CPU_COSTS))) / 3600
    stated = float(re.search(r"about ([0-9.]+) h of training", cfg.description).group(1))
    assert stated == pytest.approx(hours, rel=0.05), f"description: {stated} h, sweep --plan: {hours:.1f} h"


def test_probe_and_audit_take_the_dataset_its_root_and_image_settings_from_the_suite(tmp_path):
    cfg = SuiteConfig(
        dataset="bloodmnist",
        archs=["C4", "e"],
        train={"data_root": "/data/medmnist", "size": 64},
        audit={"canaries": 50},
    ).validate()
    probe, audit = cfg.probe_parameters(), cfg.audit_parameters(tmp_path / "audit")
    assert probe == {**PROBE_DEFAULTS, "dataset": "bloodmnist", "data_root": "/data/medmnist", "size": 64}
    assert audit["dataset"] == "bloodmnist" and audit["data_root"] == "/data/medmnist" and audit["arch"] == "C4"
    assert audit["canaries"] == 50 and audit["train"] == {**AUDIT_DEFAULTS["train"], "size": 64}
    assert audit["out_dir"] == str(tmp_path / "audit")


def test_a_wrong_parameter_fails_the_notebook_with_the_package_error(synthetic_root, tmp_path):
    from dpecnn.suite import NOTEBOOKS

    with pytest.raises(DpecnnError) as err:
        execute(
            "01_train",
            tmp_path,
            "01_train_C5",
            {"arch": "C5", "data_root": str(synthetic_root), "out_dir": str(tmp_path / "run")},
            NOTEBOOKS,
        )
    assert "notebook 01_train failed" in str(err.value) and "unknown arch 'C5'" in str(err.value)
    assert (tmp_path / "01_train_C5.FAILED.ipynb").exists() and not (tmp_path / "01_train_C5.ipynb").exists()


def test_suite_rejects_a_bad_config_before_running_anything(tmp_path):
    with pytest.raises(DpecnnError, match="unknown arch 'C5'"):
        run_suite(SuiteConfig(archs=["e", "C5"]), tmp_path / "suite")
    assert not (tmp_path / "suite").exists()
    bad = {
        '{"archs": ["e"], "colour": "red"}': "unknown keys colour",
        '{"train": {"layout": [4, 4, 8]}}': "train sets layout: give layouts",
        '{"train": {"colour": 1}}': "train: unknown config keys: colour",
        '{"seeds": [0, 0]}': "seeds must be a non-empty list without repeats",
        '{"layouts": [[4, 4, 8]], "analysis_layout": [8, 16, 32]}': "analysis_layout .* is not one of the layouts",
        "[1, 2]": "a JSON object is needed",
        '{"epsilons": [1, 1]}': "epsilons must be a non-empty list",
        '{"epsilons": [1, null], "train": {"epsilon": 2}}': "give the privacy levels in epsilons",
    }
    for text, message in bad.items():
        (tmp_path / "bad.json").write_text(text)
        with pytest.raises(DpecnnError, match=f"bad suite config .*bad.json: {message}"):
            SuiteConfig.load(tmp_path / "bad.json")
    with pytest.raises(
        DpecnnError, match=r"no suite config 'papr': not a file, nor a shipped config \(paper, privacy_utility\)"
    ):
        SuiteConfig.load("papr")


def test_sweep_runs_each_configuration_once_and_table_renders_three_formats(synthetic_root, tmp_path):
    base = TrainConfig(dataset="dermamnist", data_root=str(synthetic_root), **{**TINY_TRAIN, "layout": (2, 2, 4)})
    configs = grid(base, ["dermamnist"], ["e", "C4"], [1], [True, False], [0, 1])
    first = run_grid(configs, tmp_path / "runs", log=lambda *_: None)
    second = run_grid(configs, tmp_path / "runs", log=lambda *_: None)
    assert len(first) == 8 and {r.status for r in first} == {"trained"}
    assert {r.status for r in second} == {"skipped (finished)"}
    table = build_table1(collect_summaries(tmp_path / "runs"))
    rows = table.rows
    assert [(r["dataset"], r["arch"], r["setting"]) for r in rows] == [
        ("dermamnist", "e", {}),
        ("dermamnist", "C4", {}),
    ]
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
    paired = {(r["dp"], r["arch"]): r for r in paired_rows(collect_summaries(tmp_path / "runs"))}
    assert set(paired) == {(True, "C4"), (False, "C4")} and paired[(True, "C4")]["seeds"] == [0, 1]
    by_seed = {(s["arch"], s["seed"]): s["val_acc"] for s in collect_summaries(tmp_path / "runs") if s["dp"]}
    expected = sum(by_seed[("C4", s)] - by_seed[("e", s)] for s in (0, 1)) / 2
    assert paired[(True, "C4")]["mean_diff"] == pytest.approx(expected) and paths["paired"].exists()
    md = paths["md"].read_text()
    assert "Paired by seed (paired t-test; the lines are one family" in md and "dermamnist DP C4 − e (val acc): " in md
    assert "over seeds 0, 1" in md and ("significant" in md or "no conclusion" in md)
    runs = list(csv_module.DictReader(write_runs_csv(collect_summaries(tmp_path / "runs"), tmp_path / "tables").open()))
    assert (
        len(runs) == 8
        and runs[0]["arch"] == "e"
        and {r["seed"] for r in runs} == {"0", "1"}
        and all(r["identity"] and r["run"] for r in runs)
    )


def test_the_suite_shuts_kernels_down_without_the_sigint_that_ipykernel_logs_as_an_error():
    import asyncio
    import signal

    from dpecnn.suite import quiet_shutdown_kernel_manager

    async def signals_sent(manager_class) -> list[int]:
        km, sent = manager_class(kernel_name="python3"), []
        signal_kernel = km._async_signal_kernel

        async def recording(signum):
            sent.append(signum)
            await signal_kernel(signum)

        km._async_signal_kernel = recording
        await km.start_kernel()
        await km.interrupt_kernel()  # a user's interrupt while running still reaches the kernel
        await km.shutdown_kernel()
        return sent

    from jupyter_client import AsyncKernelManager

    assert asyncio.run(signals_sent(AsyncKernelManager)).count(signal.SIGINT) == 2  # what jupyter_client does
    assert asyncio.run(signals_sent(quiet_shutdown_kernel_manager())) == [signal.SIGINT]
