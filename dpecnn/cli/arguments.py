"""The flags of the command line and their help texts (the handlers are in :mod:`dpecnn.cli.commands`).

Training flags have no argparse defaults (``SUPPRESS``): only the flags a user gives reach
:class:`TrainConfig`, whose defaults fill the rest, and ``--resume`` can tell which recorded
settings the user asked to change. Every option's help ends with its default, ``(default …)``,
or with ``(required)``; a flag is ``(default off)``.
"""

from __future__ import annotations

import argparse

from dpecnn.models.architecture import ARCHS, FIELD_RULES, READOUTS, canonical_arch
from dpecnn.train.config import LR_SCHEDULES, OPTIMIZERS, RECIPES, TrainConfig
from dpecnn.train.presets import DEFAULT_AXES

DEFAULTS = TrainConfig()


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (and exit code 2)."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def layout_type(text: str) -> tuple[int, int, int]:
    from dpecnn.models.architecture import parse_layout

    try:
        return parse_layout(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def arch_type(text: str) -> str:
    """An arch of :data:`ARCHS` in any case; an unknown one is a usage error (before torch is loaded)."""
    arch = canonical_arch(text)
    if arch not in ARCHS:
        raise argparse.ArgumentTypeError(f"unknown arch '{text}'; choose one of: {', '.join(ARCHS)}")
    return arch


def default_of(name: str) -> str:
    """``(default …)`` for a TrainConfig field, written as the flag would take it."""
    value = getattr(DEFAULTS, name)
    return f"(default {','.join(map(str, value)) if isinstance(value, tuple) else value})"


OFF = "(default off)"
DATASET_HELP = (
    "a 2D MedMNIST flag (e.g. dermamnist), or your own images: a folder with one sub-folder per class "
    "(optionally below train/ val/ test/), a .csv with path and label columns, or an .npz with "
    "MedMNIST's keys"
)
DATA_ROOT_HELP = "folder of the MedMNIST .npz files (default $DPECNN_DATA_ROOT, else medmnist's ~/.medmnist)"


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """Flags shared by ``train`` and ``sweep`` (fields of :class:`TrainConfig`; no defaults here)."""
    p.add_argument(
        "--layout", type=layout_type, help="widths of the three stages, e.g. 8,16,32 " + default_of("layout")
    )
    p.add_argument(
        "--fields",
        choices=FIELD_RULES,
        help="widths → feature fields: layout (fields = widths) or fixed-params (the authors' rule "
        "that keeps parameters near e's; see `dpecnn models`) " + default_of("fields"),
    )
    p.add_argument(
        "--readout",
        choices=READOUTS,
        help="invariant (group pooling: predictions ignore orientation, the paper's) or orientation "
        "(equivariant features, a head that may use orientation; see `dpecnn probe`) " + default_of("readout"),
    )
    p.add_argument(
        "--no-restrict",
        dest="restrict",
        action="store_false",
        help=f"keep C_N after the first residual layer; the paper restricts to C_N/2 {OFF}",
    )
    p.add_argument("--epsilon", type=float, help="target ε of DP-SGD " + default_of("epsilon"))
    p.add_argument("--delta", type=float, help="target δ of DP-SGD " + default_of("delta"))
    p.add_argument("--max-grad-norm", type=float, help="per-example clipping norm " + default_of("max_grad_norm"))
    p.add_argument("--accountant", help="rdp or prv " + default_of("accountant"))
    p.add_argument("--batch-size", type=int, help="expected logical batch size " + default_of("batch_size"))
    p.add_argument(
        "--physical-batch-size",
        type=int,
        help="examples per forward pass, a memory bound that does not change the maths "
        + default_of("physical_batch_size"),
    )
    p.add_argument("--epochs", type=int, help="passes over the training split " + default_of("epochs"))
    p.add_argument("--optimizer", help=f"one of {', '.join(OPTIMIZERS)} " + default_of("optimizer"))
    p.add_argument("--lr", type=float, help="learning rate " + default_of("lr"))
    p.add_argument("--momentum", type=float, help="SGD only " + default_of("momentum"))
    p.add_argument(
        "--lr-schedule",
        choices=LR_SCHEDULES,
        help="learning rate over the steps: constant, or cosine decay towards 0 " + default_of("lr_schedule"),
    )
    p.add_argument(
        "--warmup-steps",
        type=int,
        help="linear learning-rate warm-up over the first steps " + default_of("warmup_steps"),
    )
    p.add_argument("--weight-decay", type=float, help="L2 weight decay " + default_of("weight_decay"))
    p.add_argument("--aug-rot90", action="store_true", help=f"add random 90° rotations to the views {OFF}")
    p.add_argument("--ema", type=float, help="EMA decay for evaluation weights, 0 = off " + default_of("ema"))
    p.add_argument(
        "--reproducible",
        action="store_true",
        help=f"derive DP noise and sampling from --seed (research/tests; NOT a private release) {OFF}",
    )
    p.add_argument(
        "--no-diagnostics",
        dest="diagnostics",
        action="store_false",
        help=f"do not log what is computed from un-noised training data (sparsity, losses) {OFF}",
    )
    p.add_argument("--device", help="auto, cpu or cuda[:N] " + default_of("device"))
    p.add_argument("--data-root", help=DATA_ROOT_HELP)
    add_image_arguments(p, argparse.SUPPRESS)
    p.add_argument(
        "--train-subset", type=int, help="train on a random subset of this many images (default none: the whole split)"
    )
    p.add_argument(
        "--eval-subset",
        type=int,
        help="evaluate on random subsets of this many validation and test images (default none: the whole splits)",
    )
    p.add_argument("--sparsity-every", type=int, help="log diagnostics every k steps " + default_of("sparsity_every"))


def add_image_arguments(p: argparse.ArgumentParser, default=None) -> None:
    p.add_argument(
        "--size",
        type=int,
        default=default,
        help="images N×N: MedMNIST's files of that size (28, 64, 128, 224), own images resized "
        "(bilinear) (default none: 28 for MedMNIST, own images' common size)",
    )
    p.add_argument(
        "--channels",
        type=int,
        choices=(1, 3),
        default=default,
        help="1 (grey) or 3 (RGB), converting if needed (default none: the dataset's own)",
    )


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """What one run trains (``train`` and ``audit``; no defaults here)."""
    p.add_argument("--dataset", help=DATASET_HELP + " " + default_of("dataset"))
    p.add_argument(
        "--arch",
        type=arch_type,
        help=f"one of {', '.join(ARCHS)} (e: conventional; any case) " + default_of("arch"),
    )
    p.add_argument(
        "--dp", action=argparse.BooleanOptionalAction, help="DP-SGD, or plain training with --no-dp (default --dp)"
    )
    p.add_argument("--aug-mult", type=int, help="augmentation multiplicity K " + default_of("aug_mult"))
    p.add_argument("--seed", type=int, help="model initialisation, subsets, non-DP batches " + default_of("seed"))
    p.add_argument(
        "--preset",
        choices=sorted(RECIPES),
        help="start from a training recipe; flags given override it (paper: "
        + "; ".join(
            f"{kind}: " + ", ".join(f"{k} {v}" for k, v in settings.items())
            for kind, settings in RECIPES["paper"].items()
        )
        + ") (default none)",
    )


def given_fields(args) -> dict:
    """TrainConfig fields from the flags given."""
    return {k: v for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__}


def csv_of(cast):
    return lambda text: [cast(v) for v in text.split(",") if v]


def bool_type(text: str) -> bool:
    if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
        raise argparse.ArgumentTypeError(f"expected true/false, got '{text}'")
    return text.lower() in ("true", "1", "yes")


def axis_default(axis: str) -> str:
    """``(default …)`` for a sweep axis, written as the flag would take it."""
    return f"(default {','.join(str(v).lower() if isinstance(v, bool) else str(v) for v in DEFAULT_AXES[axis])})"
