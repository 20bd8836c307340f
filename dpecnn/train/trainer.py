"""Training loop for DP-SGD (Opacus parts + dpecnn per-sample gradients) and plain SGD.

The run folder's layout is :mod:`dpecnn.run_folder`. Training holds the folder's lock from
start to finish. A fresh run writes ``config.json`` first; a checkpoint follows every epoch
and ``model.safetensors`` and ``summary.json`` come last. Resuming checks that the requested
settings are the recorded ones, restores model, optimiser, EMA and accountant history from
the checkpoint, and drops log lines written after it, so ε is never under-reported after a
kill. Each epoch's checkpoint is saved before its epoch line is logged or printed, and
carries that line, so a kill between the two can neither show a line of a discarded
trajectory nor lose one. DP-SGD itself — sampling, augmentation, per-example gradients,
clipping, noise, accounting — is :class:`~dpecnn.privacy.DPSGD`, called once per logical step;
its randomness is drawn afresh from OS entropy at every start and resume and never saved,
unless the run is ``reproducible``.

Progress: on a terminal, a bar over each epoch's steps (stderr, only when it is a TTY); and one
line per finished epoch (:func:`epoch_line`) to ``report``, which inside a Jupyter kernel
defaults to ``print``: the line is plain cell output (no widget, nothing on stderr), and
:class:`ProgressRelay` picks it out of a notebook's output for the suite's terminal.
"""

from __future__ import annotations

import re
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

from dpecnn.analysis.measures.calibration import calibration_report
from dpecnn.analysis.measures.sparsity import l0_sparsity, per_layer_sparsity
from dpecnn.data import AugmentConfig, Split, augment_views
from dpecnn.data.datasets import open_dataset
from dpecnn.data.images import pixels_to_input
from dpecnn.errors import DpecnnError
from dpecnn.io import first_line
from dpecnn.models import build_model, count_parameters
from dpecnn.privacy import DPSGD, MechanismRandomness, calibrate_noise, epsilon_pld, epsilon_spent, make_accountant
from dpecnn.privacy.canaries import draw_gradient_canaries, draw_input_canaries, pilot_gradient_magnitude
from dpecnn.run_folder import RunFolder, RunFolderError
from dpecnn.train.config import TrainConfig, release_status
from dpecnn.train.metrics import evaluate
from dpecnn.train.schedule import make_scheduler, steps_per_epoch

REPRODUCIBLE_WARNING = (
    "--reproducible with DP: noise, Poisson sampling and augmentation are derived from the "
    "recorded seed, so this run is not a private release"
)


PROGRESS_LINE = re.compile(r"epoch \d+/\d+, val acc ")


def epoch_line(epoch: int, epochs: int, val_acc: float, epsilon: float | None, target: float, seconds: float) -> str:
    """One finished epoch, e.g. ``epoch 2/6, val acc 0.612, ε 4.10 of 7.42, 63 s`` (no ε without DP)."""
    privacy = f", ε {epsilon:.2f} of {target:g}" if epsilon is not None else ""
    return f"epoch {epoch}/{epochs}, val acc {val_acc:.3f}{privacy}, {seconds:.0f} s"


def in_jupyter_kernel() -> bool:
    """Whether this process is a Jupyter kernel (its stdout is then the executing cell's output)."""
    ipython = sys.modules.get("IPython")
    return getattr(ipython.get_ipython() if ipython else None, "kernel", None) is not None


class ProgressRelay:
    """A write-only text file that passes each complete :func:`epoch_line` written to it to
    ``report`` and drops everything else (papermill's ``stdout_file`` for a notebook's output)."""

    def __init__(self, report: Callable[[str], None]):
        self.report, self.partial = report, ""

    def write(self, text: str) -> int:
        *lines, self.partial = (self.partial + text).split("\n")
        for line in lines:
            if PROGRESS_LINE.match(line):
                self.report(line)
        return len(text)

    def flush(self) -> None:
        """Nothing is buffered but an unfinished line."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DpecnnError(f"device '{name}' requested but CUDA is not available")
    return torch.device(name)


def make_optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    cls = torch.optim.NAdam if cfg.optimizer == "nadam" else torch.optim.Adam
    return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


class _LossMean:
    """Running mean of per-batch mean losses weighted by batch size (a diagnostic)."""

    def __init__(self):
        self.total, self.count = 0.0, 0

    def add(self, loss: float, n: int) -> None:
        self.total, self.count = self.total + loss * n, self.count + n

    def pop(self) -> float | None:
        mean = self.total / self.count if self.count else None
        self.total, self.count = 0.0, 0
        return mean


class Trainer:
    """Train one configuration into the run folder ``out_dir`` (see module docstring).
    ``report`` receives one line per finished epoch (default: ``print`` in a Jupyter kernel,
    nothing elsewhere)."""

    def __init__(
        self, cfg: TrainConfig, out_dir: str | Path, resume: bool = False, report: Callable[[str], None] | None = None
    ):
        self.cfg, self.folder, self.resume = cfg.validate(), RunFolder(out_dir), resume
        self.report = report or (print if in_jupyter_kernel() else (lambda line: None))
        self.device = resolve_device(cfg.device)
        self.pin_memory = self.device.type == "cuda"  # page-locked batches: asynchronous host-to-GPU copies
        self.data = open_dataset(cfg.dataset, cfg.data_root, cfg.size, cfg.channels)
        data = self.data.splits
        self.train = data["train"].subset(cfg.train_subset, cfg.seed)
        self.input_canaries = None
        if cfg.canaries and cfg.canary_kind in ("input", "input-reference"):
            self._hold_out_input_canaries(self.data.num_classes)
        self.val = data["val"].subset(cfg.eval_subset, cfg.seed)
        self.test = data["test"].subset(cfg.eval_subset, cfg.seed)
        if cfg.batch_size > len(self.train):
            raise DpecnnError(
                f"{self.data.name}: batch size {cfg.batch_size} exceeds the {len(self.train)} training images"
            )
        torch.manual_seed(cfg.seed)
        self.model = build_model(
            cfg.arch,
            self.train.channels,
            self.data.num_classes,
            cfg.layout,
            cfg.restrict,
            cfg.fields,
            cfg.readout,
        ).to(self.device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.names = [n for n, p in self.model.named_parameters() if p.requires_grad]
        self.optimizer = make_optimizer(self.cfg, self.params)
        self.ema = AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema)) if cfg.ema else None
        self.aug = AugmentConfig(cfg.aug_mult, rot90=cfg.aug_rot90)
        # without DP nothing needs to be secret: batches and views follow the seed
        self.shuffle_gen = torch.Generator().manual_seed(cfg.seed)
        self.aug_gen = torch.Generator().manual_seed(cfg.seed + 5_000_011)
        self.randomness = MechanismRandomness.create(self.device, cfg.seed, cfg.reproducible) if cfg.dp else None
        self.gradient_canaries = None
        if cfg.canaries and cfg.canary_kind == "gradient":
            if cfg.canaries > count_parameters(self.model):
                raise DpecnnError(f"{cfg.canaries} gradient canaries need as many parameters; the model has fewer")
            magnitude = pilot_gradient_magnitude(
                self.model,
                lambda params: make_optimizer(cfg, params),
                self.train,
                cfg.batch_size,
                cfg.max_grad_norm if cfg.dp else None,
                cfg.seed,
                self.device,
            )
            self.gradient_canaries = draw_gradient_canaries(cfg.canaries, magnitude, cfg.max_grad_norm, cfg.seed)
        self.sample_rate = cfg.batch_size / len(self.train)
        self.steps_per_epoch = steps_per_epoch(len(self.train), cfg.batch_size, cfg.dp)
        self.accountant = make_accountant(cfg.accountant)
        self.noise_multiplier = (
            calibrate_noise(cfg.epsilon, cfg.delta, self.sample_rate, cfg.epochs * self.steps_per_epoch, cfg.accountant)
            if cfg.dp
            else 0.0
        )
        self.scheduler = make_scheduler(
            self.optimizer, cfg.epochs * self.steps_per_epoch, cfg.lr_schedule, cfg.warmup_steps
        )
        self.epoch, self.step, self.wall = 0, 0, 0.0
        self.metric_lines, self.diagnostic_lines = 0, 0
        self.step_loss, self.epoch_loss = _LossMean(), _LossMean()
        self.pending_sparsity = None
        self.mechanism: DPSGD | None = None
        if cfg.dp and cfg.reproducible:
            warnings.warn(REPRODUCIBLE_WARNING, stacklevel=2)

    def _hold_out_input_canaries(self, classes: int) -> None:
        """Input canaries leave the ordinary pool; the included ones return with wrong labels."""
        try:
            canaries = draw_input_canaries(self.cfg.canaries, self.train.labels, classes, self.cfg.seed)
        except ValueError as exc:
            raise DpecnnError(str(exc)) from None
        if self.cfg.canary_kind == "input-reference":  # the reference model: every canary held out
            canaries.included = torch.zeros_like(canaries.included)
        keep = canaries.index[canaries.included]
        self.input_canaries = canaries
        self.canary_images = self.train.select(canaries.index)
        self.train = Split(
            torch.cat([self.train.pixels[canaries.rest], self.train.pixels[keep]]),
            torch.cat([self.train.labels[canaries.rest], canaries.labels[canaries.included]]),
        )

    def _make_mechanism(self) -> DPSGD:
        return DPSGD(
            self.model,
            self.optimizer,
            self.accountant,
            n_train=len(self.train),
            expected_batch_size=self.cfg.batch_size,
            noise_multiplier=self.noise_multiplier,
            max_grad_norm=self.cfg.max_grad_norm,
            physical_batch_size=self.cfg.physical_batch_size,
            augment=self.aug,
            randomness=self.randomness,
            device=self.device,
            canaries=self.gradient_canaries,
            loss_hook=self._record_loss if self.cfg.diagnostics else None,
            pre_noise_hook=self._record_sparsity if self.cfg.diagnostics else None,
        )

    # ---- one epoch -------------------------------------------------------------------
    def _record_loss(self, loss: float, n: int) -> None:
        self.step_loss.add(loss, n)
        self.epoch_loss.add(loss, n)

    def _loss(self, pixels: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean loss over the views of a non-DP batch of uint8 ``pixels``."""
        x, y = pixels_to_input(pixels.to(self.device, non_blocking=True)), y.to(self.device, non_blocking=True)
        views = augment_views(x, self.aug, self.aug_gen)
        loss = F.cross_entropy(self.model(views), y.repeat_interleave(self.aug.multiplicity))
        if self.cfg.diagnostics:
            self._record_loss(loss.item(), len(y))
        return loss

    def _record_sparsity(self, grads: list[torch.Tensor]) -> None:
        if self.step % self.cfg.sparsity_every == 0:
            t = self.cfg.sparsity_threshold
            self.pending_sparsity = {
                "sparsity": l0_sparsity(grads, t),
                "sparsity_per_layer": per_layer_sparsity(zip(self.names, grads), t),
            }

    def _after_step(self, progress) -> None:
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        loss = self.step_loss.pop()
        if self.pending_sparsity is not None:
            self.diagnostic_lines += self.folder.append_diagnostic(
                {"kind": "step", "epoch": self.epoch + 1, "step": self.step, "loss": loss, **self.pending_sparsity}
            )
            self.pending_sparsity = None
        self.step += 1
        progress.update(1)

    def _epoch_dp(self, progress) -> None:
        with self.mechanism.attached():
            for _ in range(self.steps_per_epoch):
                self.mechanism.step(self.train)
                self._after_step(progress)

    def _epoch_plain(self, progress) -> None:
        loader = DataLoader(
            TensorDataset(self.train.pixels, self.train.labels),
            batch_size=self.cfg.batch_size,
            shuffle=True,
            generator=self.shuffle_gen,
            pin_memory=self.pin_memory,
        )
        canaries = self.gradient_canaries
        for x, y in loader:
            self.optimizer.zero_grad(set_to_none=True)
            self._loss(x, y).backward()
            grads = [p.grad for p in self.params]
            if canaries is not None:  # on the mean gradient: a canary counts as one of the len(y) examples
                grads = canaries.inject(grads, self.sample_rate, self.shuffle_gen, scale=1 / len(y))
                canaries.observe(grads, scale=1 / len(y))
                for p, g in zip(self.params, grads):
                    p.grad = g
            if self.cfg.diagnostics:
                self._record_sparsity(grads)
            self.optimizer.step()
            self._after_step(progress)

    # ---- checkpoints -----------------------------------------------------------------
    def _checkpoint_state(self, epoch_records: dict) -> dict:
        """Everything needed to resume, and nothing secret: the mechanism's generator states
        are included only for reproducible runs. ``epoch_records``: the epoch's log lines, not
        yet written (counted in neither ``metric_lines`` nor ``diagnostic_lines``)."""
        rng = {"shuffle": self.shuffle_gen.get_state(), "torch": torch.get_rng_state()}
        if not self.cfg.dp:
            rng["augmentation"] = self.aug_gen.get_state()
        state = {
            "epoch": self.epoch,
            "step": self.step,
            "metric_lines": self.metric_lines,
            "diagnostic_lines": self.diagnostic_lines,
            "wall": self.wall,
            "epoch_records": epoch_records,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "accountant": self.accountant.state_dict(),
            "noise_multiplier": self.noise_multiplier,
            "rng": rng,
        }
        if self.randomness is not None and not self.randomness.secret:
            state["mechanism"] = self.randomness.state()
        if self.gradient_canaries is not None:
            canaries = self.gradient_canaries
            state["canaries"] = {
                "coordinates": canaries.coordinates,
                "included": canaries.included,
                "observations": canaries.observations,
            }
        return state

    def _write_epoch_records(self, records: dict) -> None:
        self.folder.append_metric(records["metric"])
        self.metric_lines += 1
        if records["diagnostic"] is not None:
            self.diagnostic_lines += self.folder.append_diagnostic(records["diagnostic"])

    def _load_checkpoint(self) -> None:
        state = self.folder.load_checkpoint()
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            if self.ema is not None:
                self.ema.load_state_dict(state["ema"])
            self.accountant.load_state_dict(state["accountant"])
            self.noise_multiplier = state["noise_multiplier"]
            self.epoch, self.step, self.metric_lines, self.diagnostic_lines, self.wall = (
                state[k] for k in ("epoch", "step", "metric_lines", "diagnostic_lines", "wall")
            )
            self.shuffle_gen.set_state(state["rng"]["shuffle"])
            torch.set_rng_state(state["rng"]["torch"])
            if not self.cfg.dp:
                self.aug_gen.set_state(state["rng"]["augmentation"])
            if self.randomness is not None and not self.randomness.secret:
                self.randomness.load_state(state["mechanism"])
            if self.gradient_canaries is not None:  # the canaries the run began with (the pilot may round otherwise)
                recorded = state["canaries"]
                self.gradient_canaries.coordinates = recorded["coordinates"]
                self.gradient_canaries.included = recorded["included"]
                self.gradient_canaries.observations = recorded["observations"]
            records = state["epoch_records"]
        except (KeyError, RuntimeError, ValueError, TypeError, AttributeError) as exc:
            raise RunFolderError(f"{self.folder.checkpoint_file} does not fit this run ({first_line(exc)})") from None
        self.folder.truncate_logs(self.metric_lines, self.diagnostic_lines)
        self._write_epoch_records(records)  # the last epoch's lines, whether or not they were written

    def _prepare_folder(self) -> None:
        """Under the lock: resume the recorded run, or start this one afresh."""
        folder = self.folder
        if folder.finished:
            raise RunFolderError(f"{folder} already holds a finished run")
        if self.resume:
            folder.require_checkpoint()
            folder.check_identity(self.cfg)
            self._load_checkpoint()
            folder.write_config(self.cfg)  # same identity; records e.g. a new device or data root
            return
        if folder.has_checkpoint:
            raise RunFolderError(f"{folder} already holds a run; use --resume or another folder")
        if folder.started:  # killed before its first checkpoint: the same settings start over
            folder.check_identity(self.cfg)
        folder.write_config(self.cfg)
        folder.truncate_logs(0, 0)

    # ---- the run ---------------------------------------------------------------------
    def eval_model(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.model

    def run(self) -> dict:
        with self.folder.lock():
            self._prepare_folder()
            if self.cfg.dp:  # after a resume: the restored noise multiplier
                self.mechanism = self._make_mechanism()
            desc = f"{self.cfg.arch} {'DP' if self.cfg.dp else 'non-DP'} {self.cfg.dataset}"
            while self.epoch < self.cfg.epochs:
                start = time.perf_counter()
                with tqdm(
                    total=self.steps_per_epoch,
                    desc=f"{desc} epoch {self.epoch + 1}/{self.cfg.epochs}",
                    leave=False,
                    disable=None,
                ) as progress:
                    self.model.train()
                    if self.cfg.dp:
                        self._epoch_dp(progress)
                    else:
                        self._epoch_plain(progress)
                val = evaluate(self.eval_model(), self.val, self.device)
                self.epoch += 1
                self.wall += time.perf_counter() - start
                epsilon = epsilon_spent(self.accountant, self.cfg.delta) if self.cfg.dp else None
                records = {
                    "metric": {
                        "kind": "epoch",
                        "epoch": self.epoch,
                        "step": self.step,
                        "val_acc": val["acc"],
                        "val_auc": val["auc"],
                        "val_loss": val["loss"],
                        "epsilon": epsilon,
                    },
                    "diagnostic": (
                        {"kind": "epoch", "epoch": self.epoch, "step": self.step, "train_loss": self.epoch_loss.pop()}
                        if self.cfg.diagnostics
                        else None
                    ),
                }
                self.folder.save_checkpoint(self._checkpoint_state(records))  # first: see module docstring
                self._write_epoch_records(records)
                self.report(
                    epoch_line(
                        self.epoch, self.cfg.epochs, val["acc"], epsilon, self.cfg.epsilon, time.perf_counter() - start
                    )
                )
            return self._finish()

    def _finish(self) -> dict:
        model = self.eval_model()
        val, test = evaluate(model, self.val, self.device), evaluate(model, self.test, self.device)
        calib = calibration_report(test["probs"], test["labels"])
        cfg = self.cfg
        private, reason = release_status(cfg)
        history = [list(h) for h in self.accountant.history]
        summary = {
            "dataset": self.data.name,
            "data": self.data.record(),
            "input": self.data.pipeline.to_dict(),
            "arch": cfg.arch,
            "layout": list(cfg.layout),
            "dp": cfg.dp,
            "epsilon_target": cfg.epsilon if cfg.dp else None,
            "delta": cfg.delta if cfg.dp else None,
            "epsilon_spent": epsilon_spent(self.accountant, cfg.delta) if cfg.dp else None,
            "epsilon_pld": epsilon_pld(history, cfg.delta) if cfg.dp else None,
            "noise_multiplier": self.noise_multiplier,
            "sample_rate": self.sample_rate,
            "max_grad_norm": cfg.max_grad_norm if cfg.dp else None,
            "steps": self.step,
            "epochs": self.epoch,
            "accountant": cfg.accountant if cfg.dp else None,
            "accountant_history": history,
            "private_release": private,
            "private_release_reason": reason,
            "params": count_parameters(self.model),
            "aug_mult": cfg.aug_mult,
            "seed": cfg.seed,
            "in_channels": self.train.channels,
            "num_classes": self.data.num_classes,
            "val_acc": val["acc"],
            "val_auc": val["auc"],
            "test_acc": test["acc"],
            "test_auc": test["auc"],
            "brier": calib["brier"],
            "ece": calib["ece"],
            "reliability": calib["reliability"],
            "n_train": len(self.train),
            # the evaluation splits' sizes and class counts (not protected by ε, as every accuracy on them)
            "evaluation_counts": {
                name: {
                    "n": len(result["labels"]),
                    "class_counts": np.bincount(result["labels"], minlength=self.data.num_classes).tolist(),
                }
                for name, result in (("val", val), ("test", test))
            },
            "wall_time_s": self.wall,
            "device": str(self.device),
            "settings": cfg.identity(),
            "identity": cfg.identity_hash(),
            "notes": dict(cfg.notes),
        }
        self.folder.save_weights(model.state_dict(), {"dpecnn_arch": cfg.arch, "dpecnn_identity": cfg.identity_hash()})
        self.folder.write_summary(summary)
        return summary
