"""The sweep engines (local and Ray), presets and the plan."""

import dataclasses
import fcntl
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import TINY_RUN, flags

from dpecnn import io
from dpecnn.gpucheck import table1_projection
from dpecnn.train import TrainConfig
from dpecnn.train.plan import format_plan, load_step_costs, plan_rows, sweep_configs
from dpecnn.train.presets import PRESETS
from dpecnn.train.ray_sweep import run_grid_ray
from dpecnn.train.sweep import grid, run_grid

TINY = TINY_RUN
COMPARED = ("val_acc", "val_auc", "test_acc", "brier", "epsilon_spent", "noise_multiplier", "steps")


def tiny_grid(root, **kw) -> list[TrainConfig]:
    base = TrainConfig(**{**TINY, "data_root": str(root), **kw})
    return grid(base, ["dermamnist"], ["e", "C4"], [1], [True, False], [0])


def test_importing_dpecnn_does_not_import_ray():
    code = "import sys, dpecnn, dpecnn.cli, dpecnn.train.sweep, dpecnn.train.plan; print('ray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


@pytest.mark.slow
def test_ray_sweep_gives_the_local_results_and_reports_a_failing_run(synthetic_root, tmp_path):
    configs = tiny_grid(synthetic_root, reproducible=True)  # noise from the seed: both engines must agree
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the Ray workers (one CPU each), so the arithmetic is the same
    try:
        local = run_grid(configs, tmp_path / "local", log=lambda *_: None)
    finally:
        torch.set_num_threads(threads)
    failing = dataclasses.replace(configs[0], batch_size=1000)  # more than the 96 training examples
    results = run_grid_ray(configs + [failing], tmp_path / "ray", cpus_per_run=1, num_cpus=2, log=lambda *_: None)
    status = {r.name: r for r in results}
    assert len(results) == 5 and sum(r.status == "failed" for r in results) == 1
    failed = next(r for r in results if r.status == "failed")
    assert "exceeds the 96 training images" in failed.error
    for r in local:
        assert status[r.name].status == "trained"
        ours, theirs = (io.read_json(tmp_path / d / r.name / "summary.json") for d in ("local", "ray"))
        for key in COMPARED:
            same = ours[key] == theirs[key] or abs(ours[key] - theirs[key]) <= 1e-6 * max(1.0, abs(ours[key]))
            assert same, (r.name, key, ours[key], theirs[key])


def sweep_args(root, runs_dir) -> list[str]:
    return flags(
        engine="ray",
        datasets="dermamnist",
        data_root=root,
        archs="e,C4",
        seeds="0,1",
        layout="2,2,4",
        batch_size=32,
        physical_batch_size=32,
        epochs=4,
        train_subset=128,
        eval_subset=32,
        runs_dir=runs_dir,
    )


def wait_until_no_run_is_locked(runs, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    for lock in runs.glob("*/.lock"):
        with open(lock) as fh:
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    fcntl.flock(fh, fcntl.LOCK_UN)
                    break
                except BlockingIOError:
                    assert time.time() < deadline, f"{lock.parent.name} is still being trained"
                    time.sleep(0.2)


@pytest.mark.slow
def test_a_killed_ray_sweep_rerun_trains_only_what_is_missing(synthetic_root, tmp_path):
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "dpecnn", "sweep", *sweep_args(synthetic_root, runs)]
    driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.time() + 240
        while not list(runs.glob("*/summary.json")):
            assert driver.poll() is None and time.time() < deadline, "the sweep ended or stalled before a run finished"
            time.sleep(0.2)
    finally:  # the driver and the Ray processes it started, as a terminal's Ctrl-\ or a batch system would
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    wait_until_no_run_is_locked(runs)  # Ray workers notice their raylet's death and stop
    finished = {p.parent.name for p in runs.glob("*/summary.json")}
    assert 1 <= len(finished) < 4
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    lines = {line.split(": ")[0]: line for line in rerun.stdout.splitlines() if line.startswith("dermamnist-")}
    assert len(lines) == 4
    for name, line in lines.items():
        expected = ("skipped (finished)",) if name in finished else ("trained", "resumed")
        assert any(f": {e} " in line for e in expected), line
    assert len(list(runs.glob("*/summary.json"))) == 4


def test_presets_and_the_plan_need_no_training(synthetic_root, tmp_path):
    assert {k: len(v) for k, v in PRESETS["table1"].items()} == {
        "datasets": 3,
        "archs": 6,
        "aug": 2,
        "dp_values": 2,
        "seeds": 3,
        "layouts": 1,
    }
    for preset, n in (("table1", 216), ("fig1-width", 30)):
        res = subprocess.run(
            [
                sys.executable,
                "-m",
                "dpecnn",
                "sweep",
                "--preset",
                preset,
                "--plan",
                "--device",
                "cpu",
                "--runs-dir",
                str(tmp_path / "runs"),
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert res.returncode == 0, res.stderr
        lines = res.stdout.splitlines()
        assert len([line for line in lines if " new " in line]) == n and f"{n} runs (0 finished)" in res.stdout
        assert "per-step costs:" in lines[-1] and not (tmp_path / "runs").exists()
    assert "w4-4-8" in res.stdout and "w32-64-128" in res.stdout and "-s0-" not in res.stdout  # reported seeds
    table1 = sweep_configs("table1")  # what `sweep --preset table1` trains: the recipe's two halves
    assert {(c.batch_size, c.optimizer) for c in table1 if c.dp} == {(1024, "sgd")}
    assert {(c.batch_size, c.optimizer) for c in table1 if not c.dp} == {(256, "nadam")}
    costs, _ = load_step_costs(torch.device("cpu"))
    planned = sum(r["seconds"] for r in plan_rows(table1, tmp_path / "none", costs)) / 3600
    assert table1_projection(costs)["hours"] == pytest.approx(planned), "gpucheck projects the grid that sweep plans"
    configs = tiny_grid(synthetic_root)
    run_grid(configs[:1], tmp_path / "runs", log=lambda *_: None)
    costs, _ = load_step_costs(torch.device("cpu"))
    rows = plan_rows(configs, tmp_path / "runs", costs)
    assert rows[0]["state"] == "finished" and rows[0]["seconds"] == 0
    ratio = rows[0]["wall_s"] / rows[0]["whole"]  # what the finished run took against its projection
    assert f"the 1 finished run took {ratio:.1f}× their projection" in format_plan(rows, "costs")
    assert "finished run" not in format_plan(rows[1:], "costs")
    assert all(r["state"] == "new" and r["seconds"] > 0 for r in rows[1:])
    from dpecnn.train.plan import conv_work

    base = TrainConfig(dataset="bloodmnist", arch="e").validate()
    at28, at64 = (
        plan_rows([dataclasses.replace(base, size=s).validate()], tmp_path / "plan", costs)[0]["seconds"]
        for s in (28, 64)
    )
    assert at64 / at28 == pytest.approx(conv_work((8, 16, 32), 64) / conv_work((8, 16, 32))) and at64 > 5 * at28


def test_gpu_check_report_runs_on_the_cpu_too(synthetic_root):
    from dpecnn.gpucheck import run_check

    report = run_check(
        "cpu",
        ("e",),
        "dermamnist",
        str(synthetic_root),
        train_subset=96,
        eval_subset=32,
        batch_size=32,
        bench_repeats=1,
        tests=False,
    )
    assert report["bench"]["e"]["dp_step_s"] > 0 and report["dp_epoch"]["e"]["steps"] == 3
    assert 7.0 < report["dp_epoch"]["e"]["epsilon_spent"] <= 7.42 and "table1_projection" not in report


def test_ray_tasks_get_no_gpu_unless_they_reserve_one_and_cannot_ask_for_more_than_exists():
    from dpecnn.errors import DpecnnError
    from dpecnn.train.ray_sweep import _check_resources, _for_workers

    cfg = TrainConfig(device="auto", data_root="relative/data")
    on_cpu = _for_workers(cfg, gpus_per_run=0)
    assert on_cpu.device == "cpu" and os.path.isabs(on_cpu.data_root)
    assert on_cpu.identity_hash() == cfg.identity_hash() and _for_workers(cfg, 0.25).device == "auto"
    _check_resources({"CPU": 2.0}, 1, 0)
    with pytest.raises(DpecnnError, match="has 2 CPUs and 0 GPUs"):
        _check_resources({"CPU": 2.0}, 1, 0.5)
