"""Release-grade privacy and run integrity: secret mechanism randomness, what ε covers,
export, safe loading, run identity and the run-folder lock."""

import dataclasses
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from conftest import TINY_CLI, TINY_RUN, flags

from dpecnn import io
from dpecnn.analysis.pages.table import build_table1, caption, collect_summaries, render, seed_groups
from dpecnn.models import build_model, count_parameters
from dpecnn.privacy import mechanism as randomness
from dpecnn.run_folder import RunFolder, RunFolderError
from dpecnn.train import TrainConfig, Trainer
from dpecnn.train.sweep import ensure_run, grid, run_grid
from dpecnn.train.trainer import REPRODUCIBLE_WARNING

TINY = {**TINY_RUN, "arch": "e"}
COVERED = {"kind", "epoch", "step", "epsilon", "val_acc", "val_auc", "val_loss"}


def tiny(root, **kw) -> TrainConfig:
    return TrainConfig(**{**TINY, "data_root": str(root), **kw})


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "dpecnn", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def assert_one_error_line(res, *needles):
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert res.returncode == 2 and len(errors) == 1 and "Traceback" not in res.stderr, res.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])


def folder_bytes(path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in path.iterdir() if p.is_file()}


def test_default_dp_runs_use_secret_randomness_that_no_file_holds(synthetic_root, tmp_path, monkeypatch):
    drawn = []
    real_urandom = randomness.os.urandom
    monkeypatch.setattr(randomness.os, "urandom", lambda n: drawn.append(real_urandom(n)) or drawn[-1])
    trainers = [Trainer(tiny(synthetic_root, epochs=2, seed=3), tmp_path / f"run{i}") for i in range(2)]
    summaries = [t.run() for t in trainers]
    # sampling, augmentation, noise, per run: each a whole MT19937 state (624 words) from OS entropy
    assert len(drawn) == 6 and len(set(drawn)) == 6 and all(len(d) == 4 * 624 for d in drawn)
    weights = [io.load_tensors(tmp_path / f"run{i}" / "model.safetensors") for i in range(2)]
    assert any(not torch.equal(weights[0][k], weights[1][k]) for k in weights[0]), "same seed gave the same noise"
    assert all(s["private_release"] is True for s in summaries)
    secrets_ = [d[i : i + 32] for d in drawn for i in range(0, len(d) - 32, 256)]
    for t in trainers:  # windows of the generators' final states
        for gen in (t.randomness.sampling, t.randomness.augmentation, t.randomness.noise):
            state = gen.get_state().numpy().tobytes()
            secrets_ += [state[i : i + 64] for i in range(16, len(state) - 64, 512)]
    for i in range(2):
        for name, data in folder_bytes(tmp_path / f"run{i}").items():
            leaked = [s for s in secrets_ if s in data]
            assert not leaked, f"{name} holds mechanism randomness"
        state = RunFolder(tmp_path / f"run{i}").load_checkpoint()
        assert "mechanism" not in state and set(state["rng"]) == {"shuffle", "torch"}  # none counts sampled views


def test_reproducible_runs_are_identical_and_not_private_releases(synthetic_root, tmp_path):
    cfg = tiny(synthetic_root, reproducible=True)
    with pytest.warns(UserWarning, match="not a private release"):
        summaries = [Trainer(cfg, tmp_path / f"run{i}").run() for i in range(2)]
    a, b = (io.load_tensors(tmp_path / f"run{i}" / "model.safetensors") for i in range(2))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(s["private_release"] is False and "--reproducible" in s["private_release_reason"] for s in summaries)
    res = cli("train", *flags(**TINY_CLI, data_root=synthetic_root, reproducible=True, out=tmp_path / "cli"))
    assert res.returncode == 0, res.stderr
    warnings = [line for line in res.stderr.splitlines() if line.startswith("warning:")]
    assert warnings.count(f"warning: {REPRODUCIBLE_WARNING}") == 1  # one line (the data may add an md5 warning)


def test_metrics_hold_only_what_epsilon_covers_and_diagnostics_the_rest(synthetic_root, tmp_path):
    Trainer(tiny(synthetic_root, epochs=2, aug_mult=2), tmp_path / "dp").run()
    metrics = io.read_jsonl(tmp_path / "dp" / "metrics.jsonl")
    assert metrics and all(set(r) <= COVERED for r in metrics)
    diagnostics = io.read_jsonl(tmp_path / "dp" / "diagnostics.jsonl")
    assert diagnostics[0]["kind"] == "notice" and "NOT covered" in diagnostics[0]["text"]
    assert {"sparsity", "loss"} <= set(diagnostics[1]) and sum(r["kind"] == "epoch" for r in diagnostics) == 2
    Trainer(tiny(synthetic_root, diagnostics=False), tmp_path / "quiet").run()
    assert not (tmp_path / "quiet" / "diagnostics.jsonl").exists()
    assert io.read_json(tmp_path / "quiet" / "summary.json")["val_acc"] >= 0


def test_train_loss_is_the_epoch_mean_and_notes_cannot_overwrite_measurements(synthetic_root, tmp_path):
    s = Trainer(tiny(synthetic_root, dp=False, notes={"val_acc": 1.5, "purpose": "test"}), tmp_path / "run").run()
    assert s["notes"] == {"val_acc": 1.5, "purpose": "test"} and s["val_acc"] <= 1.0
    records = io.read_jsonl(tmp_path / "run" / "diagnostics.jsonl")
    steps = [r["loss"] for r in records if r["kind"] == "step"]
    epoch = [r["train_loss"] for r in records if r["kind"] == "epoch"]
    assert len(steps) == 3 and epoch == [pytest.approx(sum(steps) / 3)]  # three batches of 32


def test_export_writes_weights_and_card_only_and_refuses_non_private_runs(synthetic_root, tmp_path):
    Trainer(tiny(synthetic_root), tmp_path / "run").run()
    res = cli("export", tmp_path / "run", "--out", tmp_path / "release")
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (tmp_path / "release").iterdir()) == [
        "model.onnx",
        "model.safetensors",
        "model_card.json",
        "model_card.md",
    ]
    card = io.read_json(tmp_path / "release" / "model_card.json")
    summary = io.read_json(tmp_path / "run" / "summary.json")
    privacy = card["privacy"]
    assert privacy["private_release"] is True and privacy["epsilon_spent"] == summary["epsilon_spent"]
    for key in ("epsilon_pld", "delta", "accountant", "noise_multiplier", "sample_rate", "steps", "max_grad_norm"):
        assert privacy[key] == summary[key], key
    assert any("diagnostics" in t for t in card["not_covered_by_epsilon"])
    assert any("validation" in t for t in card["not_covered_by_epsilon"])
    card_text = (tmp_path / "release" / "model_card.md").read_text()
    assert "Differentially private release" in card_text and "aspect ratio is not kept" in card_text
    test = card["evaluation"]["accuracy"]["test"]
    assert test["n"] == summary["evaluation_counts"]["test"]["n"] == 32 and test["ci95"][0] <= test["acc"]
    assert f"test accuracy {test['acc']:.3f} (n = 32, 95 % CI" in card_text and "group privacy" in card_text
    weights = io.load_tensors(tmp_path / "release" / "model.safetensors")
    assert weights.keys() == io.load_tensors(tmp_path / "run" / "model.safetensors").keys()

    Trainer(tiny(synthetic_root, reproducible=True), tmp_path / "repro").run()
    refused = cli("export", tmp_path / "repro", "--out", tmp_path / "repro-release")
    assert_one_error_line(refused, "not a private release", "--force")
    assert not (tmp_path / "repro-release").exists()
    assert cli("export", tmp_path / "repro", "--out", tmp_path / "repro-release", "--force").returncode == 0
    assert "NOT a differentially private release" in (tmp_path / "repro-release" / "model_card.md").read_text()


def test_the_card_sets_an_accuracy_beside_its_interval_and_the_majority_class():
    """BreastMNIST's test split of 31 images: a model that always says benign scores 23/31 = 0.742."""
    from dpecnn.export import accuracy_evidence, accuracy_line

    constant = accuracy_evidence(23 / 31, {"n": 31, "class_counts": [8, 23]}, ("malignant", "benign"))
    assert constant["majority_class"] == "benign" and constant["majority_rate"] == pytest.approx(23 / 31)
    from statsmodels.stats.proportion import proportion_confint  # an independent Wilson interval

    assert constant["ci95"] == pytest.approx(list(proportion_confint(23, 31, method="wilson")), abs=1e-9)
    assert "NOT distinguishable" in accuracy_line("test", constant)
    good = accuracy_evidence(0.95, {"n": 400, "class_counts": [100, 300]}, ("a", "b"))
    assert "NOT" not in accuracy_line("test", good) and "always predicting 'b': 0.750" in accuracy_line("test", good)


def test_export_takes_a_correct_run_whose_batch_size_divides_the_training_set(tmp_path):
    """N = 1488, B = 16: 1/q in floating point is just below 93, the trainer takes N // B = 93 steps."""
    assert int(1 / (16 / 1488)) == 92 and 1488 // 16 == 93
    from dpecnn.data import write_synthetic_npz

    write_synthetic_npz("bloodmnist", tmp_path / "data", sizes=(1488, 32, 32), seed=2)
    cfg = TrainConfig(
        **{**TINY, "dataset": "bloodmnist", "train_subset": None, "batch_size": 16, "physical_batch_size": 16},
        data_root=str(tmp_path / "data"),
        diagnostics=False,
    )
    summary = Trainer(cfg, tmp_path / "run").run()
    assert summary["steps"] == 93
    res = cli("export", tmp_path / "run", "--out", tmp_path / "release")
    assert res.returncode == 0, res.stderr
    assert io.read_json(tmp_path / "release" / "model_card.json")["privacy"]["steps"] == 93


def test_export_refuses_a_summary_and_weights_under_another_runs_config(synthetic_root, tmp_path):
    """A --reproducible run's summary and weights under the self-consistent config of a default DP run."""
    with pytest.warns(UserWarning, match="not a private release"):
        Trainer(tiny(synthetic_root, reproducible=True), tmp_path / "run").run()
    folder = RunFolder(tmp_path / "run")
    folder.write_config(tiny(synthetic_root))  # a valid config.json with its own identity hash
    assert folder.read_config().reproducible is False
    refused = cli("export", tmp_path / "run", "--out", tmp_path / "release")
    assert_one_error_line(refused, "summary.json and model.safetensors record another run")
    assert not (tmp_path / "release").exists()
    summary = io.read_json(folder.summary_file)  # the summary alone made to match: the weights still tell
    summary["identity"] = tiny(synthetic_root).identity_hash()
    io.write_json(folder.summary_file, summary)
    assert_one_error_line(cli("export", tmp_path / "run", "--out", tmp_path / "release"), "model.safetensors record")


@pytest.mark.parametrize("given_out", [True, False])
def test_ctrl_c_during_train_says_how_to_resume(synthetic_root, tmp_path, given_out):
    """With --out, and without (the run's default folder under outputs/runs, named in the hint)."""
    settings = {**TINY_CLI, "epochs": 200, "data_root": synthetic_root}
    args = flags(**settings, out=tmp_path / "run") if given_out else flags(**settings)
    child = subprocess.Popen(
        [sys.executable, "-m", "dpecnn", "train", *args],
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        # a test runner started as a background job (`make test &`) passes SIGINT on ignored, and
        # Python keeps an ignored SIGINT: the child gets the default a terminal's Ctrl-C meets
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while not list(tmp_path.rglob("checkpoint.pt")) and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.2)
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 130 and "Traceback" not in stderr, stderr
    out = next(tmp_path.rglob("checkpoint.pt")).parent
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("interrupted: resume with: python -m dpecnn train --resume ") and last.endswith(out.name)
    assert not (out / "summary.json").exists()


class FileCreator:
    """A pickle payload: unpickling it creates ``path`` (what an attacker's code would do)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def test_tampered_files_are_refused_without_running_code(synthetic_root, tmp_path):
    marker = tmp_path / "pwned"
    payload = tmp_path / "payload.pt"
    torch.save({"model": FileCreator(marker)}, payload)
    torch.load(payload, weights_only=False)  # the payload is live: an unsafe loader runs it
    assert marker.exists()
    marker.unlink()

    Trainer(tiny(synthetic_root), tmp_path / "run").run()
    (tmp_path / "run" / "model.safetensors").write_bytes(pickle.dumps(FileCreator(marker)))
    assert_one_error_line(cli("analyse", tmp_path / "run", "--out", tmp_path / "fig"), "model.safetensors")
    assert_one_error_line(cli("export", tmp_path / "run", "--out", tmp_path / "release"), "model.safetensors")

    interrupted = RunFolder(tmp_path / "run")  # as if killed after its checkpoint
    interrupted.summary_file.unlink()
    interrupted.weights_file.unlink()
    interrupted.checkpoint_file.write_bytes(payload.read_bytes())
    assert_one_error_line(cli("train", "--resume", tmp_path / "run"), "checkpoint.pt", "refusing to load")
    assert not marker.exists() and not (tmp_path / "release").exists()


def test_a_sweep_with_other_settings_trains_new_runs(synthetic_root, tmp_path):
    first = run_grid(
        grid(tiny(synthetic_root), ["dermamnist"], ["e"], [1], [True], [0, 1]), tmp_path / "runs", log=lambda *_: None
    )
    second = run_grid(
        grid(tiny(synthetic_root, epochs=2), ["dermamnist"], ["e"], [1], [True], [0, 1]),
        tmp_path / "runs",
        log=lambda *_: None,
    )
    assert {r.status for r in first} == {r.status for r in second} == {"trained"}
    assert not {r.name for r in first} & {r.name for r in second}
    table = build_table1(collect_summaries(tmp_path / "runs"))
    assert [r["setting"] for r in table.rows] == [{"epochs": 1}, {"epochs": 2}]
    assert all(r["no aug DP"]["n"] == 2 for r in table.rows) and "epochs" not in table.shared
    points = seed_groups(collect_summaries(tmp_path / "runs"))
    assert sorted((p["line"], p["n"], p["seeds"]) for p in points) == [
        ("e epochs=1", 2, [0, 1]),
        ("e epochs=2", 2, [0, 1]),
    ]
    with pytest.raises(RunFolderError, match=r"epochs: recorded 1, requested 2"):
        ensure_run(tiny(synthetic_root, epochs=2), tmp_path / "runs" / first[0].name)


class PausedTrainer(Trainer):
    """Stops after the first step until ``release`` exists (and records that it got there)."""

    def _after_step(self, progress):
        super()._after_step(progress)
        if self.step == 1:
            (self.folder.path.parent / "paused").touch()
            while not (self.folder.path.parent / "release").exists():
                time.sleep(0.1)


def test_resume_with_other_settings_and_a_second_concurrent_training_exit_2(synthetic_root, tmp_path):
    run = tmp_path / "run"
    script = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(os.path.dirname(__file__))!r})
        from test_run_integrity import PausedTrainer, tiny
        PausedTrainer(tiny({str(synthetic_root)!r}, epochs=2), {str(run)!r}).run()
    """)
    first = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (tmp_path / "paused").exists():
            assert first.poll() is None and time.time() < deadline, first.stderr.read() if first.poll() else "timeout"
            time.sleep(0.2)
        start = time.time()
        second = cli("train", *flags(**{**TINY_CLI, "epochs": 2}, data_root=synthetic_root, out=run))
        assert_one_error_line(second, "is in use", f'pid": {first.pid}')
        assert time.time() - start < 60  # it did not wait for the lock
    finally:
        (tmp_path / "release").touch()
    assert first.wait(timeout=120) == 0, first.stderr.read()
    assert RunFolder(run).finished

    RunFolder(run).summary_file.unlink()  # an interrupted run: checkpoint, no summary
    assert_one_error_line(cli("train", "--resume", run, "--lr", 0.5), "lr: recorded 0.01, requested 0.5")
    assert cli("train", "--resume", run, "--device", "cpu").returncode == 0  # not a setting of the result


def test_a_stale_lock_of_a_killed_process_is_taken_over(synthetic_root, tmp_path):
    run = tmp_path / "run"
    script = (
        f"import os, signal\nfrom dpecnn.run_folder import RunFolder\n"
        f"with RunFolder({str(run)!r}).lock():\n    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run([sys.executable, "-c", script])
    assert killed.returncode == -signal.SIGKILL and json.loads((run / ".lock").read_text())["pid"]
    assert Trainer(tiny(synthetic_root), run).run()["steps"] > 0


def test_edited_config_and_older_folders_are_refused(synthetic_root, tmp_path):
    Trainer(tiny(synthetic_root), tmp_path / "run").run()
    folder = RunFolder(tmp_path / "run")
    original = io.read_json(folder.config_file)
    data = json.loads(json.dumps(original))
    data["config"]["lr"] = 0.5
    io.write_json(folder.config_file, data)
    with pytest.raises(RunFolderError, match="identity hash"):
        folder.read_config()
    io.write_json(folder.config_file, data["config"])
    with pytest.raises(RunFolderError, match="older dpecnn"):
        folder.read_config()
    io.write_json(folder.config_file, {**data, "config": {**data["config"], "layout": "wide"}})
    with pytest.raises(RunFolderError, match="invalid configuration"):
        folder.read_config()
    io.write_json(folder.config_file, original)
    summary = io.read_json(folder.summary_file)
    del summary["in_channels"]
    io.write_json(folder.summary_file, summary)
    assert_one_error_line(cli("analyse", tmp_path / "run"), "summary.json", "in_channels")


def test_identity_ignores_settings_that_cannot_change_the_result():
    base = TrainConfig()
    same = [
        dataclasses.replace(base, device="cpu", physical_batch_size=7, diagnostics=False, notes={"a": 1}),
        dataclasses.replace(base, momentum=0.5),
        dataclasses.replace(base, aug_rot90=True),
        dataclasses.replace(base, epsilon=7.42, lr=1e-2),
    ]
    assert {c.identity_hash() for c in same} == {base.identity_hash()}
    plain = dataclasses.replace(base, dp=False)
    assert dataclasses.replace(plain, epsilon=1.0).identity_hash() == plain.identity_hash()
    assert dataclasses.replace(base, epsilon=1.0).identity_differences(base) == {"epsilon": (1.0, 7.42)}
    assert TrainConfig(epsilon=7).identity_hash() == TrainConfig(epsilon=7.0).identity_hash()
    # the field rule at its default is left out, so runs recorded before the option keep their identity
    assert "fields" not in base.identity() and "fields" not in TrainConfig(arch="e", fields="fixed-params").identity()
    fixed = dataclasses.replace(base, fields="fixed-params")
    assert fixed.identity_differences(base) == {"fields": ("fixed-params", "layout")}
    # without DP, C sets the size of gradient canaries: a run at another C is another run (C = 1
    # keeps the identity it had before, so recorded audit runs are still found)
    audit = dataclasses.replace(plain, canaries=100)
    assert audit.identity()["max_grad_norm"] is None and "max_grad_norm" in audit.identity()
    assert dataclasses.replace(audit, max_grad_norm=0.1).identity_differences(audit) == {"max_grad_norm": (0.1, 1.0)}
    assert dataclasses.replace(audit, max_grad_norm=0.1).identity_hash() != audit.identity_hash()
    inputs = dataclasses.replace(plain, canaries=100, canary_kind="input")
    assert dataclasses.replace(inputs, max_grad_norm=0.1).identity_hash() == inputs.identity_hash()


def test_a_fixed_params_run_trains_and_loads(synthetic_root, tmp_path):
    from dpecnn.analysis.pages.run import load_run

    Trainer(tiny(synthetic_root, arch="C4", layout=(4, 4, 8), fields="fixed-params"), tmp_path).run()
    run = load_run(tmp_path)
    assert run.config.fields == "fixed-params" and run.summary["settings"]["fields"] == "fixed-params"
    assert run.summary["params"] == count_parameters(
        build_model("C4", 3, 7, (4, 4, 8), fields="fixed-params")
    )  # DermaMNIST: 7 classes


def test_table_marks_runs_that_are_not_private_releases(synthetic_root, tmp_path):
    for seed, reproducible in ((0, False), (1, True)):
        Trainer(tiny(synthetic_root, seed=seed, reproducible=reproducible), tmp_path / f"s{seed}").run()
    table = build_table1(collect_summaries(tmp_path))  # reproducible is a setting: two rows, not one cell
    assert [(r["setting"], r["no aug DP"]["all_private"]) for r in table.rows] == [
        ({"reproducible": False}, True),
        ({"reproducible": True}, False),
    ]
    assert "†" in caption(table) and "†" in render(table, "md")


@pytest.mark.parametrize(
    "edit, needle",
    [
        ({"private_release": True, "epsilon_spent": 0.5}, "epsilon_spent"),
        ({"accountant_history": "halve"}, "not the configured"),
        ({"accountant_history": "sigma"}, "noise multiplier"),
    ],
    ids=["upgraded-reproducible-run", "truncated-history", "inflated-noise"],
)
def test_an_edited_summary_never_upgrades_a_run(synthetic_root, tmp_path, edit, needle):
    """export derives private_release from the identity-checked config and ε from the accountant
    history that the config implies; an edited summary.json is refused with one error line."""
    Trainer(
        tiny(synthetic_root, epochs=2, reproducible=edit.get("private_release", False) is True), tmp_path / "run"
    ).run()
    folder = RunFolder(tmp_path / "run")
    summary = io.read_json(folder.summary_file)
    history = summary["accountant_history"]
    if edit.get("accountant_history") == "halve":
        edit = {"accountant_history": [[history[0][0], history[0][1], history[0][2] // 2]]}
    elif edit.get("accountant_history") == "sigma":
        edit = {"accountant_history": [[history[0][0] * 3, history[0][1], history[0][2]]]}
    io.write_json(folder.summary_file, {**summary, **edit})
    for force in ((), ("--force",)):
        res = cli("export", tmp_path / "run", "--out", tmp_path / "release", *force)
        assert_one_error_line(res, needle)
        assert not (tmp_path / "release").exists()
    table = build_table1(collect_summaries(tmp_path))
    expected_private = not edit.get("private_release", False)
    assert table.rows[0]["no aug DP"]["all_private"] is expected_private  # the table's † mark agrees


def test_the_epoch_checkpoint_is_saved_before_its_line_and_a_resume_writes_it_once(
    synthetic_root, tmp_path, monkeypatch
):
    """A kill after the checkpoint but before the epoch's log line: the resumed run writes the
    line from the checkpoint (none lost, none from a discarded trajectory)."""
    events = []
    real_save, real_append = RunFolder.save_checkpoint, RunFolder.append_metric
    monkeypatch.setattr(
        RunFolder, "save_checkpoint", lambda self, state: events.append("checkpoint") or real_save(self, state)
    )

    def append_then_die(self, record):
        events.append("line")
        if record["epoch"] == 1 and events.count("line") == 1:
            raise KeyboardInterrupt  # killed right after the first checkpoint
        real_append(self, record)

    monkeypatch.setattr(RunFolder, "append_metric", append_then_die)
    with pytest.raises(KeyboardInterrupt):
        Trainer(tiny(synthetic_root, epochs=2, reproducible=True), tmp_path / "run").run()
    assert events == ["checkpoint", "line"]
    Trainer(tiny(synthetic_root, epochs=2, reproducible=True), tmp_path / "run", resume=True).run()
    assert [r["epoch"] for r in io.read_jsonl(tmp_path / "run" / "metrics.jsonl")] == [1, 2]


def _failing_writes(monkeypatch, marker: str, code: int) -> None:
    """Every atomic write of a file whose name holds ``marker`` fails as a full or read-only disk does."""
    real_fsync = os.fsync

    def fsync(fd):
        if marker in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(code, os.strerror(code))
        real_fsync(fd)

    monkeypatch.setattr(io.os, "fsync", fsync)


@pytest.mark.parametrize("code", [28, 30], ids=["ENOSPC", "EROFS"])
def test_a_full_or_read_only_disk_is_one_error_line_and_the_run_resumes(
    synthetic_root, tmp_path, capsys, monkeypatch, code
):
    from dpecnn.cli import main

    run = tmp_path / "run"
    args = [
        "train",
        *flags(**{**TINY_CLI, "layout": "4,4,8", "epochs": 2}, data_root=synthetic_root),
    ]
    with monkeypatch.context() as patch:
        _failing_writes(patch, ".checkpoint.pt.", code)
        assert main([*args, "--out", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"error: cannot write {run / 'checkpoint.pt'}: {os.strerror(code)}", err
    assert not any(line.startswith("Traceback") for line in err)
    assert not (run / "summary.json").exists() and not (run / "checkpoint.pt").exists()
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")], "no temporary file left behind"
    assert main([*args, "--out", str(run)]) == 0, capsys.readouterr().err  # the disk has room again: it trains
    assert [r["epoch"] for r in io.read_jsonl(run / "metrics.jsonl") if r["kind"] == "epoch"] == [1, 2]


def unfinished_run_folders(tracked: list[str]) -> list[str]:
    """The folders among ``tracked`` paths that hold a run's ``config.json`` without its
    ``summary.json``: a run committed while it was still training."""
    files = set(tracked)
    folders = {path.rsplit("/", 1)[0] for path in files if path.endswith("/config.json")}
    return sorted(folder for folder in folders if f"{folder}/summary.json" not in files)


def test_every_run_folder_committed_under_results_is_finished():
    """A half-trained run in git has its epoch log but not its checkpoint (which git does not
    keep), so a clone starts it over, while its partial log sits beside finished runs: only
    finished runs are committed (scripts train the rest)."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():  # a directory, or a file in a git worktree
        pytest.skip("not a git checkout: no committed run folders to check")
    assert unfinished_run_folders(["r/runs/a/config.json", "r/runs/a/summary.json", "r/runs/b/config.json"]) == [
        "r/runs/b"
    ]
    listed = subprocess.run(["git", "ls-files", "results"], cwd=root, capture_output=True, text=True, check=True)
    tracked = listed.stdout.splitlines()
    assert sum(path.endswith("/summary.json") for path in tracked) > 100, "results/ holds the committed runs"
    assert unfinished_run_folders(tracked) == []
