import json
import subprocess
import sys

import pytest
from conftest import TINY_CLI, flags

from dpecnn import io
from dpecnn.privacy import epsilon_for_history
from dpecnn.train import TrainConfig, Trainer

TINY = dict(
    layout=(4, 4, 8),
    batch_size=32,
    physical_batch_size=16,
    epochs=2,
    train_subset=128,
    eval_subset=64,
    sparsity_every=2,
)


def tiny_config(root, **kw) -> TrainConfig:
    return TrainConfig(**{**TINY, "dataset": "dermamnist", "data_root": str(root), **kw})


def test_reported_epsilon_is_the_accountants_for_the_steps_taken(synthetic_root, tmp_path):
    s = Trainer(tiny_config(synthetic_root, arch="C4"), tmp_path / "run").run()
    assert s["steps"] == 2 * int(1 / s["sample_rate"]) == 8
    assert s["accountant_history"] == [[s["noise_multiplier"], s["sample_rate"], s["steps"]]]
    assert s["epsilon_spent"] == pytest.approx(
        epsilon_for_history([(s["noise_multiplier"], s["sample_rate"], 8)], 1e-5), rel=1e-12
    )
    assert 7.0 < s["epsilon_spent"] <= 7.42
    assert 5.0 < s["epsilon_pld"] < s["epsilon_spent"]  # the tight accountant, recorded beside RDP
    for key in (
        "dataset",
        "arch",
        "layout",
        "dp",
        "epsilon_target",
        "epsilon_spent",
        "delta",
        "noise_multiplier",
        "sample_rate",
        "steps",
        "accountant",
        "params",
        "val_acc",
        "val_auc",
        "test_acc",
        "test_auc",
        "brier",
        "wall_time_s",
        "seed",
    ):
        assert key in s, key
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {
        "config.json",
        "metrics.jsonl",
        "diagnostics.jsonl",
        "summary.json",
        "model.safetensors",
        "checkpoint.pt",
    } <= files


def test_trainer_logs_gradient_sparsity_for_dp_and_non_dp(synthetic_root, tmp_path):
    for dp in (True, False):
        out = tmp_path / f"dp{dp}"
        Trainer(tiny_config(synthetic_root, arch="e", dp=dp, epochs=1), out).run()
        steps = [r for r in io.read_jsonl(out / "diagnostics.jsonl") if r["kind"] == "step"]
        assert [r["step"] for r in steps] == list(range(0, steps[-1]["step"] + 1, 2))
        assert all(0.0 <= r["sparsity"] <= 1.0 and "conv1.0.weight" in r["sparsity_per_layer"] for r in steps)


class KilledTrainer(Trainer):
    def _after_step(self, progress):
        super()._after_step(progress)
        if self.step == 6:  # in the middle of the second epoch
            raise KeyboardInterrupt


def test_kill_and_resume_reports_the_same_epsilon(synthetic_root, tmp_path):
    cfg = dict(arch="e", aug_mult=2, ema=0.9)
    full = Trainer(tiny_config(synthetic_root, **cfg), tmp_path / "full").run()
    run = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        KilledTrainer(tiny_config(synthetic_root, **cfg), run).run()
    assert not (run / "summary.json").exists() and (run / "checkpoint.pt").exists()
    res = subprocess.run(
        [sys.executable, "-m", "dpecnn", "train", "--resume", str(run)], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    resumed = io.read_json(run / "summary.json")
    assert resumed["steps"] == full["steps"]
    assert resumed["epsilon_spent"] == pytest.approx(full["epsilon_spent"], rel=1e-12)
    epochs = [r["epoch"] for r in io.read_jsonl(run / "metrics.jsonl") if r["kind"] == "epoch"]
    assert epochs == [1, 2]  # the lines the killed epoch wrote were dropped
    steps = [r["step"] for r in io.read_jsonl(run / "diagnostics.jsonl") if r["kind"] == "step"]
    assert steps == sorted(set(steps)) == list(range(0, 8, 2))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--arch", "C5"], "unknown arch"),
        (["--dataset", "nomnist"], "unknown dataset"),
        (["--epsilon", "0"], "epsilon must be > 0"),
        (["--delta", "1.5"], "delta must be in (0, 1)"),
        (["--batch-size", "100000"], "exceeds the 192 training images"),
        (["--resume", "missing-run"], "cannot resume"),
    ],
)
def test_cli_rejects_bad_input_with_one_line_and_writes_nothing(synthetic_root, tmp_path, args, message):
    out = tmp_path / "out"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "dpecnn",
            "train",
            "--dataset",
            "dermamnist",
            "--data-root",
            str(synthetic_root),
            "--out",
            str(out),
            *args,
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert res.returncode == 2
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in res.stderr, res.stderr
    assert not out.exists()


def test_two_epoch_dp_c4_run_on_real_bloodmnist_learns(real_root, tmp_path):
    cfg = TrainConfig(
        dataset="bloodmnist",
        arch="C4",
        data_root=str(real_root),
        epochs=2,
        batch_size=128,
        physical_batch_size=128,
        train_subset=2000,
        eval_subset=400,
        lr=2e-3,
    )
    s = Trainer(cfg, tmp_path / "c4").run()
    majority = 0.195  # largest BloodMNIST class (neutrophil) in the validation split
    assert s["val_acc"] > majority + 0.15, json.dumps({k: s[k] for k in ("val_acc", "epsilon_spent")})
    assert s["epsilon_spent"] <= 7.42


def test_preset_paper_is_the_recipe_under_the_flags_given(synthetic_root, tmp_path):
    from dpecnn.suite import SuiteConfig
    from dpecnn.train.config import recipe_settings

    out = tmp_path / "run"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "dpecnn",
            "train",
            *flags(preset="paper", **TINY_CLI, data_root=synthetic_root, out=out),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    settings = io.read_json(out / "summary.json")["settings"]
    recipe = {k: v for k, v in recipe_settings("paper", dp=True).items() if k not in ("epochs", "batch_size")}
    assert {k: settings[k] for k in recipe} == recipe and settings["epochs"] == 1 and settings["batch_size"] == 32
    paper = SuiteConfig.load("paper")
    assert paper.recipe == "paper" and all(getattr(c, k) == v for c in paper.train_configs() for k, v in recipe.items())


def test_paper_recipe_trains_non_dp_runs_with_its_non_dp_half():
    from dpecnn.cli import build_parser
    from dpecnn.cli.arguments import given_fields
    from dpecnn.train.config import recipe_settings, with_recipe

    non_dp = recipe_settings("paper", dp=False)
    assert non_dp["optimizer"] != "sgd" and "accountant" not in non_dp  # the DP step of 0.5 diverges without clipping
    args = build_parser().parse_args(["train", "--preset", "paper", "--no-dp", "--epochs", "2"])
    assert with_recipe(args.preset, given_fields(args)) == {**non_dp, "dp": False, "epochs": 2}


class LrRecorder(Trainer):
    """Records the learning rate of every optimiser step; ``kill_at``: interrupt after that step."""

    kill_at = None

    def _after_step(self, progress):
        self.lrs.append(self.optimizer.param_groups[0]["lr"])
        super()._after_step(progress)
        if self.step == self.kill_at:
            raise KeyboardInterrupt

    lrs: list


@pytest.mark.parametrize("dp", [True, False])
def test_a_resumed_run_continues_its_learning_rate_schedule(synthetic_root, tmp_path, dp):
    from dpecnn.train.schedule import lr_factor

    cfg = tiny_config(
        synthetic_root, arch="e", dp=dp, epochs=3, lr_schedule="cosine", warmup_steps=3, lr=0.1, reproducible=dp
    )
    full = LrRecorder(cfg, tmp_path / "full")
    full.lrs = []
    summary = full.run()
    total = summary["steps"]
    assert full.lrs == pytest.approx([0.1 * lr_factor(t, total, "cosine", 3) for t in range(total)], rel=1e-12)
    assert full.lrs[:3] == pytest.approx([0.025, 0.05, 0.075]) and full.lrs[3] == pytest.approx(0.1)
    assert 0 < full.lrs[-1] < 0.01
    killed = LrRecorder(cfg, tmp_path / "killed")
    killed.lrs, killed.kill_at = [], total // 2 + 1  # in the middle of an epoch: resumes from the one before
    with pytest.raises(KeyboardInterrupt):
        killed.run()
    resumed = LrRecorder(cfg, tmp_path / "killed", resume=True)
    resumed.lrs = []
    resumed.run()
    done_before = total - len(resumed.lrs)
    assert 0 < done_before < total // 2 + 1
    assert resumed.lrs == pytest.approx(full.lrs[done_before:], rel=1e-12)


def test_schedule_settings_are_in_the_identity_only_when_used():
    plain = TrainConfig()
    assert "lr_schedule" not in plain.identity() and "warmup_steps" not in plain.identity()
    cosine = TrainConfig(lr_schedule="cosine")
    assert cosine.identity()["lr_schedule"] == "cosine" and cosine.identity_hash() != plain.identity_hash()
    assert TrainConfig(warmup_steps=5).identity_hash() != plain.identity_hash()
    from dpecnn.errors import DpecnnError

    with pytest.raises(DpecnnError, match="unknown lr schedule"):
        TrainConfig(lr_schedule="step").validate()


def test_auc_is_nan_without_a_warning_when_a_class_is_absent():
    import math
    import warnings

    import numpy as np

    from dpecnn.train.metrics import auc

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # sklearn warns on a binary split with one class
        assert math.isnan(auc(np.array([[0.3, 0.7], [0.6, 0.4]]), np.array([1, 1])))
        assert math.isnan(auc(np.array([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]]), np.array([0, 1])))
    assert auc(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 1])) == 1.0
    assert auc(np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]]), np.array([0, 1, 2])) == 1.0
