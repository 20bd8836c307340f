"""Training loop for DP-SGD (Opacus parts + dpecnn per-sample gradients) and plain SGD.

A run folder holds ``config.json``, ``metrics.jsonl`` (``kind: step`` lines with gradient
sparsity every ``sparsity_every`` steps, ``kind: epoch`` lines), ``checkpoint.pt`` (after
every epoch, atomic), and at the very end ``model.pt`` and ``summary.json``. Resuming
restores model, optimiser, accountant history and random states from the checkpoint and
drops log lines written after it, so ε is never under-reported after a kill.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from opacus.data_loader import DPDataLoader
from opacus.utils.batch_memory_manager import BatchMemoryManager
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from dpecnn.analysis.calibration import calibration_report
from dpecnn.analysis.sparsity import l0_sparsity, per_layer_sparsity
from dpecnn.data import AugmentConfig, augment_views, load_dataset, num_classes
from dpecnn.errors import DpecnnError
from dpecnn.models import build_model, count_parameters
from dpecnn.privacy import (ObservedDPOptimizer, average_views, calibrate_noise, epsilon_spent,
                            PerSampleGradModule, make_accountant, mark_empty_batch)
from dpecnn.train import io
from dpecnn.train.config import TrainConfig
from dpecnn.train.metrics import evaluate


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


class Trainer:
    """Train one configuration into ``out_dir`` (see module docstring)."""

    def __init__(self, cfg: TrainConfig, out_dir: str | Path, resume: bool = False):
        self.cfg, self.out = cfg.validate(), Path(out_dir)
        if not resume and (self.out / "checkpoint.pt").exists():
            raise DpecnnError(f"{self.out} already holds a run; use --resume or another --out")
        self.device = resolve_device(cfg.device)
        data = load_dataset(cfg.dataset, cfg.data_root)
        self.train = data["train"].subset(cfg.train_subset, cfg.seed)
        self.val = data["val"].subset(cfg.eval_subset, cfg.seed)
        self.test = data["test"].subset(cfg.eval_subset, cfg.seed)
        if cfg.batch_size > len(self.train):
            raise DpecnnError(f"batch size {cfg.batch_size} exceeds the {len(self.train)} training examples")
        torch.manual_seed(cfg.seed)
        self.model = build_model(cfg.arch, self.train.images.shape[1], num_classes(cfg.dataset),
                                 cfg.layout, cfg.restrict).to(self.device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.names = [n for n, p in self.model.named_parameters() if p.requires_grad]
        self.optimizer = make_optimizer(self.cfg, self.params)
        self.ema = (AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema)) if cfg.ema else None)
        self.aug = AugmentConfig(cfg.aug_mult, rot90=cfg.aug_rot90)
        self.data_gen = torch.Generator().manual_seed(cfg.seed)
        self.aug_gen = torch.Generator().manual_seed(cfg.seed + 1)
        self.noise_gen = torch.Generator(device=self.device).manual_seed(cfg.seed + 2)
        self.sample_rate = cfg.batch_size / len(self.train)
        self.steps_per_epoch = int(1 / self.sample_rate) if cfg.dp else math.ceil(len(self.train) / cfg.batch_size)
        self.accountant = make_accountant(cfg.accountant)
        self.noise_multiplier = (calibrate_noise(cfg.epsilon, cfg.delta, self.sample_rate,
                                                 cfg.epochs * self.steps_per_epoch, cfg.accountant)
                                 if cfg.dp else 0.0)
        self.epoch, self.step, self.log_lines, self.wall = 0, 0, 0, 0.0
        self.pending_sparsity = None
        if resume:
            self._load_checkpoint()

    # ---- one epoch -------------------------------------------------------------------
    def _loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        views = augment_views(x.to(self.device), self.aug, self.aug_gen)
        return F.cross_entropy(model(views), y.to(self.device).repeat_interleave(self.aug.multiplicity))

    def _record_sparsity(self, grads: list[torch.Tensor]) -> None:
        if self.step % self.cfg.sparsity_every == 0:
            t = self.cfg.sparsity_threshold
            self.pending_sparsity = {"sparsity": l0_sparsity(grads, t),
                                     "sparsity_per_layer": per_layer_sparsity(zip(self.names, grads), t)}

    def _after_step(self, loss: float, progress) -> None:
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        if self.pending_sparsity is not None:
            io.append_jsonl(self.out / "metrics.jsonl",
                            {"kind": "step", "epoch": self.epoch + 1, "step": self.step, "loss": loss,
                             **self.pending_sparsity})
            self.log_lines += 1
            self.pending_sparsity = None
        self.step += 1
        progress.update(1)

    def _epoch_dp(self, progress) -> float:
        gsm = PerSampleGradModule(self.model)
        dp_opt = ObservedDPOptimizer(self.optimizer, noise_multiplier=self.noise_multiplier,
                                     max_grad_norm=self.cfg.max_grad_norm, expected_batch_size=self.cfg.batch_size,
                                     generator=self.noise_gen, pre_noise_hook=self._record_sparsity)
        dp_opt.attach_step_hook(self.accountant.get_optimizer_hook_fn(self.sample_rate))
        loader = DPDataLoader(TensorDataset(self.train.images, self.train.labels), sample_rate=self.sample_rate,
                              generator=self.data_gen)
        total = 0.0
        try:
            with BatchMemoryManager(data_loader=loader, max_physical_batch_size=self.cfg.physical_batch_size,
                                    optimizer=dp_opt) as batches:
                for x, y in batches:
                    if len(y):
                        loss = self._loss(gsm, x, y)
                        loss.backward()
                        average_views(self.params, self.aug.multiplicity)
                        total = loss.item()
                    else:
                        mark_empty_batch(self.params)
                    dp_opt.step()
                    dp_opt.zero_grad(set_to_none=True)
                    if dp_opt.stepped:
                        self._after_step(total, progress)
        finally:
            gsm._close()
        return total

    def _epoch_plain(self, progress) -> float:
        loader = DataLoader(TensorDataset(self.train.images, self.train.labels), batch_size=self.cfg.batch_size,
                            shuffle=True, generator=self.data_gen)
        loss = torch.zeros(())
        self.model.train()
        for x, y in loader:
            self.optimizer.zero_grad(set_to_none=True)
            loss = self._loss(self.model, x, y)
            loss.backward()
            self._record_sparsity([p.grad for p in self.params])
            self.optimizer.step()
            self._after_step(loss.item(), progress)
        return loss.item()

    # ---- checkpoints -----------------------------------------------------------------
    def _checkpoint_state(self) -> dict:
        return {"epoch": self.epoch, "step": self.step, "log_lines": self.log_lines, "wall": self.wall,
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "accountant": self.accountant.state_dict(), "noise_multiplier": self.noise_multiplier,
                "rng": {"data": self.data_gen.get_state(), "aug": self.aug_gen.get_state(),
                        "noise": self.noise_gen.get_state(), "torch": torch.get_rng_state()}}

    def _load_checkpoint(self) -> None:
        state = torch.load(self.out / "checkpoint.pt", map_location=self.device, weights_only=False)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.accountant.load_state_dict(state["accountant"])
        self.noise_multiplier = state["noise_multiplier"]
        self.epoch, self.step, self.log_lines, self.wall = (state[k] for k in ("epoch", "step", "log_lines", "wall"))
        self.data_gen.set_state(state["rng"]["data"])
        self.aug_gen.set_state(state["rng"]["aug"])
        self.noise_gen.set_state(state["rng"]["noise"])
        torch.set_rng_state(state["rng"]["torch"])
        io.truncate_jsonl(self.out / "metrics.jsonl", self.log_lines)

    # ---- the run ---------------------------------------------------------------------
    def eval_model(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.model

    def run(self) -> dict:
        self.out.mkdir(parents=True, exist_ok=True)
        io.write_json(self.out / "config.json", self.cfg.to_dict())
        desc = f"{self.cfg.arch} {'DP' if self.cfg.dp else 'non-DP'} {self.cfg.dataset}"
        while self.epoch < self.cfg.epochs:
            start = time.perf_counter()
            with tqdm(total=self.steps_per_epoch, desc=f"{desc} epoch {self.epoch + 1}/{self.cfg.epochs}",
                      leave=False, disable=None) as progress:
                self.model.train()
                loss = self._epoch_dp(progress) if self.cfg.dp else self._epoch_plain(progress)
            val = evaluate(self.eval_model(), self.val, self.device)
            self.epoch += 1
            self.wall += time.perf_counter() - start
            io.append_jsonl(self.out / "metrics.jsonl", {
                "kind": "epoch", "epoch": self.epoch, "step": self.step, "train_loss": loss,
                "val_acc": val["acc"], "val_auc": val["auc"], "val_loss": val["loss"],
                "epsilon": epsilon_spent(self.accountant, self.cfg.delta) if self.cfg.dp else None})
            self.log_lines += 1
            io.save_torch(self.out / "checkpoint.pt", self._checkpoint_state())
        return self._finish()

    def _finish(self) -> dict:
        model = self.eval_model()
        val, test = evaluate(model, self.val, self.device), evaluate(model, self.test, self.device)
        calib = calibration_report(test["probs"], test["labels"])
        cfg = self.cfg
        summary = {
            "dataset": cfg.dataset, "arch": cfg.arch, "layout": list(cfg.layout), "dp": cfg.dp,
            "epsilon_target": cfg.epsilon if cfg.dp else None, "delta": cfg.delta if cfg.dp else None,
            "epsilon_spent": epsilon_spent(self.accountant, cfg.delta) if cfg.dp else None,
            "noise_multiplier": self.noise_multiplier, "sample_rate": self.sample_rate,
            "max_grad_norm": cfg.max_grad_norm if cfg.dp else None, "steps": self.step, "epochs": self.epoch,
            "accountant": cfg.accountant if cfg.dp else None,
            "accountant_history": [list(h) for h in self.accountant.history],
            "params": count_parameters(self.model), "aug_mult": cfg.aug_mult, "seed": cfg.seed,
            "in_channels": int(self.train.images.shape[1]), "num_classes": num_classes(cfg.dataset),
            "val_acc": val["acc"], "val_auc": val["auc"], "test_acc": test["acc"], "test_auc": test["auc"],
            "brier": calib["brier"], "ece": calib["ece"], "reliability": calib["reliability"],
            "n_train": len(self.train), "wall_time_s": self.wall, "device": str(self.device), **cfg.extra,
        }
        io.save_torch(self.out / "model.pt", {"config": cfg.to_dict(), "state_dict": model.state_dict()})
        io.write_json(self.out / "summary.json", summary)
        return summary
