"""The run folder: its files, reading and writing them, its identity and its lock.

::

    <run>/
      config.json        {"format": 2, "identity": sha256 of the settings that change the result,
                          "config": every TrainConfig field}
      metrics.jsonl      what the (ε, δ) guarantee covers: per epoch the step count, ε spent so
                         far and validation metrics of the noised model
      diagnostics.jsonl  NOT covered by ε: computed from un-noised training data (pre-noise
                         clipped-gradient sparsity, training losses); its first line says so.
                         Absent when the run was trained with ``diagnostics=False``
      checkpoint.pt      after every epoch: weights, optimiser, EMA, accountant history and the
                         random states that are not secret (tensors and plain containers only)
      model.safetensors  the evaluation weights, once finished
      summary.json       written last: a run is finished iff it exists
      .lock              held (flock) by the process that trains into the folder

Loading never executes code from the folder (:mod:`dpecnn.io`): JSON, safetensors, and
``torch.load(weights_only=True)``. A folder is reused or resumed only for the settings it
records (:meth:`RunFolder.check_identity`).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn as nn

from dpecnn import io
from dpecnn.errors import DpecnnError
from dpecnn.models import build_model
from dpecnn.privacy import calibrate_noise, epsilon_for_history, epsilon_pld
from dpecnn.privacy.coverage import NOT_COVERED
from dpecnn.train.config import TrainConfig, release_status
from dpecnn.train.schedule import steps_per_epoch

FORMAT = 2
DIAGNOSTICS_NOTICE = {
    "kind": "notice",
    "text": "NOT covered by the run's (epsilon, delta) guarantee. " + NOT_COVERED["diagnostics"],
}


# What readers of a summary rely on (the trainer writes these and more).
SUMMARY_KEYS = (
    "dataset",
    "arch",
    "layout",
    "dp",
    "epsilon_spent",
    "epsilon_pld",
    "delta",
    "accountant",
    "noise_multiplier",
    "sample_rate",
    "steps",
    "epochs",
    "max_grad_norm",
    "private_release",
    "private_release_reason",
    "params",
    "seed",
    "in_channels",
    "num_classes",
    "n_train",
    "val_acc",
    "val_auc",
    "test_acc",
    "test_auc",
    "brier",
    "ece",
    "reliability",
    "settings",
    "identity",
)


RELATIVE_TOLERANCE = 1e-6


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= RELATIVE_TOLERANCE * max(1.0, abs(a), abs(b))


def verified_privacy(cfg: TrainConfig, summary: dict, where: str) -> dict:
    """The card's privacy section, derived from the identity-checked ``cfg`` and the accountant.
    Raises :class:`DpecnnError` when ``summary`` disagrees with what they give."""
    private, reason = release_status(cfg)
    if not cfg.dp:
        return {"dp": False, "private_release": False, "private_release_reason": reason}
    try:
        history = [(float(s), float(q), int(n)) for s, q, n in summary["accountant_history"]]
        recorded_eps, n_train = float(summary["epsilon_spent"]), int(summary["n_train"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DpecnnError(f"{where}: the accountant history is unreadable ({io.first_line(exc)})") from None
    if not history or len({(s, q) for s, q, _ in history}) != 1:
        raise DpecnnError(f"{where}: the accountant history must hold one (σ, q) setting, got {history}")
    sigma, q, _ = history[0]
    steps = sum(n for *_, n in history)
    planned = cfg.epochs * steps_per_epoch(n_train, cfg.batch_size, dp=True)  # the trainer's rule, in integers
    if not _close(q, cfg.batch_size / n_train) or steps != planned:
        raise DpecnnError(
            f"{where}: the accountant history (q = {q:g}, {steps} steps) is not the configured "
            f"one (q = {cfg.batch_size / n_train:g}, {planned} steps)"
        )
    if not _close(sigma, calibrate_noise(cfg.epsilon, cfg.delta, q, planned, cfg.accountant)):
        raise DpecnnError(
            f"{where}: the noise multiplier {sigma:g} is not the one calibrated for the configured ε = {cfg.epsilon:g}"
        )
    epsilon = epsilon_for_history(history, cfg.delta, cfg.accountant)
    if not _close(epsilon, recorded_eps):
        raise DpecnnError(
            f"{where}: epsilon_spent {recorded_eps:g} differs from {epsilon:g} recomputed from the "
            "accountant history (edited by hand?)"
        )
    return {
        "dp": True,
        "epsilon_spent": epsilon,
        "epsilon_target": cfg.epsilon,
        "epsilon_pld": epsilon_pld(history, cfg.delta),
        "delta": cfg.delta,
        "accountant": cfg.accountant,
        "noise_multiplier": sigma,
        "sample_rate": q,
        "steps": steps,
        "epochs": cfg.epochs,
        "max_grad_norm": cfg.max_grad_norm,
        "expected_batch_size": cfg.batch_size,
        "adjacency": "add or remove one training example",
        "unit": "one training image",
        "private_release": private,
        "private_release_reason": reason,
    }


class RunFolderError(DpecnnError):
    """The folder is not a run, is another run, or is in use."""


class RunFolder:
    """One run's folder (see module docstring). Paths are attributes; nothing is touched on
    construction."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.config_file = self.path / "config.json"
        self.metrics_file = self.path / "metrics.jsonl"
        self.diagnostics_file = self.path / "diagnostics.jsonl"
        self.checkpoint_file = self.path / "checkpoint.pt"
        self.weights_file = self.path / "model.safetensors"
        self.summary_file = self.path / "summary.json"
        self.lock_file = self.path / ".lock"

    def __str__(self) -> str:
        return str(self.path)

    # ---- state -------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        return self.config_file.exists()

    @property
    def finished(self) -> bool:
        return self.summary_file.exists()

    @property
    def has_checkpoint(self) -> bool:
        return self.checkpoint_file.exists()

    def require_checkpoint(self) -> None:
        if not self.started or not self.has_checkpoint:
            raise RunFolderError(f"cannot resume: {self.path} holds no run checkpoint (config.json + checkpoint.pt)")

    def require_finished(self) -> None:
        missing = [p.name for p in (self.config_file, self.summary_file, self.weights_file) if not p.exists()]
        if not self.path.is_dir() or missing:
            raise RunFolderError(f"{self.path} is not a finished run (missing: {', '.join(missing) or 'folder'})")

    # ---- configuration and identity ----------------------------------------------------
    def write_config(self, cfg: TrainConfig) -> None:
        io.write_json(self.config_file, {"format": FORMAT, "identity": cfg.identity_hash(), "config": cfg.to_dict()})

    def read_config(self) -> TrainConfig:
        """The recorded configuration; an edited or foreign ``config.json`` is refused."""
        data = io.read_json(self.config_file)
        if not isinstance(data, dict) or data.get("format") != FORMAT or "config" not in data:
            raise RunFolderError(
                f"{self.config_file} is not a dpecnn run configuration of format {FORMAT} "
                "(written by an older dpecnn?); train the run again"
            )
        try:
            cfg = TrainConfig.from_dict(data["config"]).validate()
            identity = cfg.identity_hash()
        except (DpecnnError, TypeError, ValueError, AttributeError) as exc:
            raise RunFolderError(f"{self.config_file} holds an invalid configuration ({exc})") from None
        if identity != data.get("identity"):
            raise RunFolderError(f"{self.config_file} does not match its recorded identity hash (edited by hand?)")
        return cfg

    def check_identity(self, requested: TrainConfig) -> TrainConfig:
        """The recorded configuration, if its identity equals ``requested``'s; otherwise one
        error naming every differing setting."""
        recorded = self.read_config()
        diffs = recorded.identity_differences(requested)
        if diffs:
            listed = "; ".join(f"{k}: recorded {v[0]!r}, requested {v[1]!r}" for k, v in diffs.items())
            raise RunFolderError(
                f"{self.path} holds a run with other settings ({listed}); use another folder or the recorded settings"
            )
        return recorded

    # ---- logs --------------------------------------------------------------------------
    def metrics(self) -> list[dict]:
        return io.read_jsonl(self.metrics_file)

    def diagnostics(self) -> list[dict]:
        """Diagnostic records (not covered by ε), without the notice line."""
        return [r for r in io.read_jsonl(self.diagnostics_file) if r.get("kind") != "notice"]

    def append_metric(self, record: dict) -> None:
        io.append_jsonl(self.metrics_file, record)

    def append_diagnostic(self, record: dict) -> int:
        """Append ``record`` (after the notice, in a new file); returns the lines written."""
        written = 1
        if not self.diagnostics_file.exists() or not self.diagnostics_file.stat().st_size:
            io.append_jsonl(self.diagnostics_file, DIAGNOSTICS_NOTICE)
            written = 2
        io.append_jsonl(self.diagnostics_file, record)
        return written

    def truncate_logs(self, metric_lines: int, diagnostic_lines: int) -> None:
        """Keep the records written up to a checkpoint (the notice line counts as one)."""
        io.truncate_jsonl(self.metrics_file, metric_lines)
        if self.diagnostics_file.exists():
            io.truncate_jsonl(self.diagnostics_file, diagnostic_lines)

    # ---- checkpoint, weights, summary --------------------------------------------------
    def save_checkpoint(self, state: dict) -> None:
        io.save_state(self.checkpoint_file, state)

    def load_checkpoint(self) -> dict:
        return io.load_state(self.checkpoint_file, map_location="cpu")

    def save_weights(self, state_dict: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
        io.save_tensors(self.weights_file, state_dict, metadata)

    def load_weights(self) -> dict[str, torch.Tensor]:
        return io.load_tensors(self.weights_file)

    def load_model(self, cfg: TrainConfig, summary: dict) -> nn.Module:
        """The finished run's evaluation model (eval mode, CPU), built from its recorded settings."""
        try:
            model = build_model(
                cfg.arch,
                int(summary["in_channels"]),
                int(summary["num_classes"]),
                cfg.layout,
                cfg.restrict,
                cfg.fields,
                cfg.readout,
            )
            model.load_state_dict(self.load_weights())
        except (RuntimeError, TypeError, ValueError) as exc:
            raise RunFolderError(
                f"{self.weights_file} does not fit a {cfg.arch} model ({io.first_line(exc)})"
            ) from None
        return model.eval()

    def read_finished(self) -> tuple[TrainConfig, dict]:
        """The identity-checked configuration and the summary of a finished run whose files belong
        together: the summary and the weights must record the configuration's identity (a summary
        or weights moved in from another run, e.g. a ``--reproducible`` one, are refused)."""
        self.require_finished()
        cfg, summary = self.read_config(), self.read_summary()
        identity = cfg.identity_hash()
        recorded = {
            self.summary_file.name: summary.get("identity"),
            self.weights_file.name: io.tensor_metadata(self.weights_file).get("dpecnn_identity"),
        }
        foreign = [name for name, value in recorded.items() if value != identity]
        if foreign:
            raise RunFolderError(
                f"{self.path}: {' and '.join(foreign)} record another run than config.json "
                "(files from different runs?); refusing to use them"
            )
        return cfg, summary

    def privacy_claim(self) -> dict:
        """:func:`verified_privacy` of this finished run (its files checked to belong together)."""
        cfg, summary = self.read_finished()
        return verified_privacy(cfg, summary, str(self.summary_file))

    def write_summary(self, summary: dict) -> None:
        io.write_json(self.summary_file, summary)

    def read_summary(self) -> dict:
        summary = io.read_json(self.summary_file)
        missing = [k for k in SUMMARY_KEYS if not isinstance(summary, dict) or k not in summary]
        if missing:
            raise RunFolderError(f"{self.summary_file} is not a dpecnn run summary (missing: {', '.join(missing)})")
        return summary

    # ---- lock --------------------------------------------------------------------------
    @contextmanager
    def lock(self):
        """Hold the folder for training. A second process fails at once; the kernel releases
        the lock of a process that dies, so a stale ``.lock`` left by a killed run is simply
        taken over. The file is never deleted (deleting a flock-ed file lets two processes
        hold locks on different files)."""
        io.make_folder(self.path)
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunFolderError(f"{self.path} is in use ({holder}); wait for that run or use another folder") from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(
                fd,
                json.dumps(
                    {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
                ).encode(),
                0,
            )
            yield self
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
