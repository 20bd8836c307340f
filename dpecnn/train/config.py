"""Typed configuration of one training run (serialised in the run folder's ``config.json``)
and its identity: the settings that change the result, and their hash."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from dpecnn.errors import DpecnnError
from dpecnn.models.architecture import ARCHS, DEFAULT_LAYOUT, FIELD_RULES, READOUTS, parse_layout
from dpecnn.privacy.accounting import ACCOUNTANTS, check_privacy_targets

AUDIT_CANARY_KINDS = ("gradient", "input")  # what `dpecnn audit` plants (dpecnn.privacy.canaries)
CANARY_KINDS = (*AUDIT_CANARY_KINDS, "input-reference")  # and the reference run of an input audit
OPTIMIZERS = ("sgd", "adam", "nadam")
# Learning-rate schedules over the run's optimiser steps (dpecnn.train.schedule).
LR_SCHEDULES = ("constant", "cosine")
# Training recipes: TrainConfig settings that `train --preset`, the sweep presets and the suite's
# paper configuration start from (flags given still override them), one set for DP runs and one
# for non-DP runs, both chosen on BloodMNIST's validation split (not covered by ε) at the search
# seeds 0–2 by scripts/recipe_search.sh (results/recipe_search). The DP half's SGD step of 0.5
# relies on clipping (every averaged gradient has norm ≤ C): without DP it diverged in the search
# (results/recipe_search), so non-DP runs use NAdam at batch 256 for the same 12 epochs. The
# cosine schedule was measured at seeds 0–2 for e: it helps the non-DP half at every seed and
# hurts the DP half at every seed, so only the non-DP half uses it.
RECIPES: dict[str, dict[str, dict]] = {
    "paper": {
        "dp": {"accountant": "prv", "batch_size": 1024, "epochs": 12, "optimizer": "sgd", "lr": 0.5, "momentum": 0.9},
        "non-dp": {"batch_size": 256, "epochs": 12, "optimizer": "nadam", "lr": 1e-2, "lr_schedule": "cosine"},
    },
}
# What a recipe sets apart for its DP and non-DP halves: the only fields a gap lets differ
RECIPE_HALF_FIELDS = frozenset(k for recipe in RECIPES.values() for half in recipe.values() for k in half)
# Settings that do not change the trained model: where it runs, where the data lie, how a
# logical batch is split for memory, what is logged, free-form notes.
NOT_IDENTITY = (
    "device",
    "data_root",
    "physical_batch_size",
    "diagnostics",
    "sparsity_every",
    "sparsity_threshold",
    "notes",
)
# Settings added after runs were recorded: left out of the identity at their defaults.
IDENTITY_DEFAULTS_LEFT_OUT = {
    "fields": "layout",
    "readout": "invariant",
    "canaries": 0,
    "canary_kind": "gradient",
    "lr_schedule": "constant",
    "warmup_steps": 0,
    "size": None,
    "channels": None,
    "data_hash": None,
}
DP_ONLY = ("epsilon", "delta", "max_grad_norm", "accountant", "reproducible")


def recipe_settings(recipe: str | None, dp: bool) -> dict:
    """The settings of ``recipe`` (a key of :data:`RECIPES`, or None: none) for a DP or non-DP run."""
    if recipe is None:
        return {}
    if recipe not in RECIPES:
        raise DpecnnError(f"unknown recipe {recipe!r}; choose one of: {', '.join(RECIPES)}")
    return dict(RECIPES[recipe]["dp" if dp else "non-dp"])


def with_recipe(recipe: str | None, settings: Mapping) -> dict:
    """``settings`` (TrainConfig fields) on top of ``recipe``'s half for their ``dp`` (default DP):
    the one overlay that ``train --preset``, the sweep presets, the suite and gpucheck use."""
    return {**recipe_settings(recipe, settings.get("dp", TrainConfig.dp)), **settings}


def inapplicable(settings: dict) -> set[str]:
    """The settings that cannot matter for a run with these ``settings`` (a TrainConfig dict or
    identity): DP settings of a non-DP run (but the clipping norm C of one with gradient
    canaries, which are drawn at size C), momentum unless SGD, 90° rotations without
    augmentation, restriction unless C_N with N > 1, the readout without a non-trivial group."""
    skip = set() if settings["dp"] else set(DP_ONLY)
    if settings.get("canaries") and settings.get("canary_kind", "gradient") == "gradient":
        skip.discard("max_grad_norm")
    if settings["optimizer"] != "sgd":
        skip.add("momentum")
    if settings["aug_mult"] == 1:
        skip.add("aug_rot90")
    if settings["arch"] not in ("C4", "C8", "C16"):
        skip.add("restrict")
    if settings["arch"] == "e":
        skip.add("fields")
    if settings["arch"] in ("e", "C1"):
        skip.add("readout")
    if not settings.get("canaries"):
        skip.add("canary_kind")
    return skip


@dataclass
class TrainConfig:
    """Everything that determines a run. Defaults: the paper's privacy parameters
    (ε = 7.42, δ = 1e-5, Klause et al.) and the hyper-parameters chosen on BloodMNIST
    validation (see docs/results.md)."""

    dataset: str = "bloodmnist"  # a MedMNIST name, or an image folder, .csv or .npz (dpecnn.data.datasets)
    size: int | None = None  # images size × size (None: MedMNIST's 28, own images' common size)
    channels: int | None = None  # 1 or 3 (None: the dataset's own)
    data_hash: str | None = None  # own data: content hash, set by validate() and checked on every load
    arch: str = "C4"
    layout: tuple[int, int, int] = DEFAULT_LAYOUT
    restrict: bool = True  # C_N → C_{N/2} after the first residual layer (paper)
    fields: str = "layout"  # layout widths → feature fields (dpecnn.models.field_counts)
    readout: str = "invariant"  # group pooling (paper) or "orientation" (dpecnn.models.resnet9)
    dp: bool = True
    epsilon: float = 7.42
    delta: float = 1e-5
    max_grad_norm: float = 1.0
    accountant: str = "rdp"
    batch_size: int = 256  # expected logical batch size (Poisson: q = batch_size / N)
    physical_batch_size: int = 128  # memory bound; does not change the maths
    epochs: int = 10
    optimizer: str = "nadam"
    lr: float = 1e-2
    momentum: float = 0.9  # sgd only
    lr_schedule: str = "constant"  # or "cosine": lr · ½(1 + cos πt) over the steps after warm-up
    warmup_steps: int = 0  # linear warm-up from lr / (warmup_steps + 1) to lr over the first steps
    weight_decay: float = 0.0
    aug_mult: int = 1  # augmentation multiplicity K (1 = no augmentation)
    aug_rot90: bool = False  # add random 90° rotations to the K views
    ema: float = 0.0  # EMA decay of the weights used for evaluation (0 = off)
    seed: int = 0
    device: str = "auto"
    data_root: str | None = None
    train_subset: int | None = None  # use a random subset of the training split
    eval_subset: int | None = None  # and of the validation / test splits
    reproducible: bool = False  # derive DP noise, sampling, augmentation from `seed` (not a private release)
    canaries: int = 0  # audit canaries (dpecnn.privacy.canaries); a run with canaries is never a release
    canary_kind: str = "gradient"  # gradient (white-box) or input (mislabelled training images)
    diagnostics: bool = True  # log what is computed from un-noised training data (not covered by ε)
    sparsity_every: int = 1  # log ℓ0 gradient sparsity every k steps (a diagnostic)
    sparsity_threshold: float = 1e-5
    notes: dict = field(default_factory=dict)  # free-form, kept under `notes` in the summary

    def __post_init__(self):
        self.layout = tuple(self.layout)
        for f in dataclasses.fields(self):  # 7 and 7.0 are the same setting (and the same hash)
            value = getattr(self, f.name)
            if f.type == "float" and isinstance(value, int) and not isinstance(value, bool):
                setattr(self, f.name, float(value))

    def validate(self) -> TrainConfig:
        """Raise :class:`DpecnnError` with one clear line for any invalid field."""
        # the data layer loads medmnist (seconds): imported here, not when the parser reads the defaults
        from dpecnn.data.datasets import DataSource
        from dpecnn.data.medmnist_data import in_channels

        source = DataSource.resolve(self.dataset, self.data_root)
        source.check(self.size, self.channels)
        if source.kind == "medmnist":  # the dataset's own size and channels are the defaults (one identity)
            self.size = None if self.size == 28 else self.size
            self.channels = None if self.channels == in_channels(self.dataset) else self.channels
        else:  # own data: the path made absolute, and the content it has now
            self.dataset = source.location
            found = source.content_hash()
            if self.data_hash not in (None, found):
                raise DpecnnError(
                    f"{self.dataset} has changed since this run was configured (content hash "
                    f"{found[:12]}…, recorded {self.data_hash[:12]}…): train a new run"
                )
            self.data_hash = found
        if self.arch not in ARCHS:
            raise DpecnnError(f"unknown arch '{self.arch}'; choose one of: {', '.join(ARCHS)}")
        try:
            self.layout = parse_layout(self.layout)
        except ValueError as exc:
            raise DpecnnError(str(exc)) from None
        if self.fields not in FIELD_RULES:
            raise DpecnnError(f"unknown field rule '{self.fields}'; choose one of: {', '.join(FIELD_RULES)}")
        if self.readout not in READOUTS:
            raise DpecnnError(f"unknown readout '{self.readout}'; choose one of: {', '.join(READOUTS)}")
        if self.dp:
            check_privacy_targets(self.epsilon, self.delta)
            if not self.max_grad_norm > 0:
                raise DpecnnError(f"max grad norm must be > 0, got {self.max_grad_norm}")
        if self.accountant not in ACCOUNTANTS:
            raise DpecnnError(f"unknown accountant '{self.accountant}'; choose one of: {', '.join(ACCOUNTANTS)}")
        if self.optimizer not in OPTIMIZERS:
            raise DpecnnError(f"unknown optimizer '{self.optimizer}'; choose one of: {', '.join(OPTIMIZERS)}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise DpecnnError(f"unknown lr schedule '{self.lr_schedule}'; choose one of: {', '.join(LR_SCHEDULES)}")
        if self.warmup_steps < 0:
            raise DpecnnError(f"warmup steps must be ≥ 0, got {self.warmup_steps}")
        for name in ("batch_size", "physical_batch_size", "epochs", "aug_mult", "sparsity_every"):
            if getattr(self, name) < 1:
                raise DpecnnError(f"{name.replace('_', ' ')} must be ≥ 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise DpecnnError(f"learning rate must be > 0, got {self.lr}")
        if not 0 <= self.ema < 1:
            raise DpecnnError(f"ema decay must be in [0, 1), got {self.ema}")
        if self.device not in ("auto", "cpu") and not self.device.startswith("cuda"):
            raise DpecnnError(f"device must be auto, cpu or cuda[:N], got '{self.device}'")
        if self.canaries < 0:
            raise DpecnnError(f"canaries must be ≥ 0, got {self.canaries}")
        if self.canary_kind not in CANARY_KINDS:
            raise DpecnnError(f"unknown canary kind '{self.canary_kind}'; choose one of: {', '.join(CANARY_KINDS)}")
        if not isinstance(self.notes, dict):
            raise DpecnnError(f"notes must be a dictionary, got {type(self.notes).__name__}")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def identity(self) -> dict:
        """The settings that change the result, with the :func:`inapplicable` ones set to None.
        Everything in :data:`NOT_IDENTITY` is left out, and so are ``fields`` and ``readout`` at
        their defaults, as are ``canaries``, ``canary_kind``, ``lr_schedule`` and ``warmup_steps``
        (runs recorded before the options existed keep their identity). A non-DP run with gradient
        canaries of size C = 1 records C as None, as before C counted for it."""
        ident = self._settings()
        if not self.dp and ident["max_grad_norm"] == 1.0:
            ident["max_grad_norm"] = None
        for name, default in IDENTITY_DEFAULTS_LEFT_OUT.items():
            if ident[name] in (None, default):
                del ident[name]
        return ident

    def _settings(self) -> dict:
        ident = {k: v for k, v in self.to_dict().items() if k not in NOT_IDENTITY}
        ident["layout"] = list(self.layout)
        ident.update(dict.fromkeys(inapplicable(ident)))
        return ident

    def identity_hash(self) -> str:
        """SHA-256 of :meth:`identity` (canonical JSON): equal iff the settings are equal."""
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()

    def identity_differences(self, other: TrainConfig) -> dict[str, tuple]:
        """``{field: (self's value, other's value)}`` for every identity setting that differs."""
        mine, theirs = self._settings(), other._settings()
        return {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k]}

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        if not isinstance(data, dict):
            raise DpecnnError(f"a configuration must be a JSON object, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise DpecnnError(f"unknown config keys: {', '.join(sorted(unknown))}")
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise DpecnnError(f"bad configuration: {exc}") from None


def release_status(cfg: TrainConfig) -> tuple[bool, str]:
    """Whether a finished run of ``cfg`` may be published as differentially private, and why."""
    if cfg.canaries:
        return False, (
            f"an audit run: {cfg.canaries} {cfg.canary_kind} canaries were trained into the model on purpose"
        )
    if not cfg.dp:
        return False, "trained without differential privacy"
    if cfg.reproducible:
        return False, (
            "trained with --reproducible: DP noise, Poisson sampling and augmentation were derived "
            "from the recorded seed, so anyone holding the run folder can regenerate them"
        )
    return True, ("DP noise, Poisson sampling and augmentation seeded from OS entropy; seeds and states never stored")
