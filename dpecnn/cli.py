"""Command line: ``python -m dpecnn COMMAND`` (the text users see is :data:`DESCRIPTION`).

Bad input (unknown dataset or arch, invalid privacy targets, missing folders, a run folder
with other settings or in use, a tampered file …) and an output that cannot be written (a full
disk, a read-only folder) print one ``error: …`` line and exit with code 2.

Training flags have no argparse defaults (``SUPPRESS``): only the flags a user gives reach
:class:`TrainConfig`, whose defaults fill the rest, and ``--resume`` can tell which recorded
settings the user asked to change. Every option's help ends with its default, ``(default …)``,
or with ``(required)``; a flag is ``(default off)``.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import sys
import warnings
from pathlib import Path

from dpecnn.errors import DpecnnError, OutputError
from dpecnn.models import ARCHS, FIELD_RULES, READOUTS
from dpecnn.privacy.canaries import CANARY_KINDS
from dpecnn.train.config import LR_SCHEDULES, OPTIMIZERS, RECIPES, TrainConfig, with_recipe
from dpecnn.train.plan import DEFAULT_AXES, PRESETS, sweep_configs

DEFAULTS = TrainConfig()


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (and exit code 2)."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _layout(text: str) -> tuple[int, int, int]:
    from dpecnn.models import parse_layout

    try:
        return parse_layout(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _default(name: str) -> str:
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
    p.add_argument("--layout", type=_layout, help="widths of the three stages, e.g. 8,16,32 " + _default("layout"))
    p.add_argument(
        "--fields",
        choices=FIELD_RULES,
        help="widths → feature fields: layout (fields = widths) or fixed-params (the authors' rule "
        "that keeps parameters near e's; see `dpecnn models`) " + _default("fields"),
    )
    p.add_argument(
        "--readout",
        choices=READOUTS,
        help="invariant (group pooling: predictions ignore orientation, the paper's) or orientation "
        "(equivariant features, a head that may use orientation; see `dpecnn probe`) " + _default("readout"),
    )
    p.add_argument(
        "--no-restrict",
        dest="restrict",
        action="store_false",
        help=f"keep C_N after the first residual layer; the paper restricts to C_N/2 {OFF}",
    )
    p.add_argument("--epsilon", type=float, help="target ε of DP-SGD " + _default("epsilon"))
    p.add_argument("--delta", type=float, help="target δ of DP-SGD " + _default("delta"))
    p.add_argument("--max-grad-norm", type=float, help="per-example clipping norm " + _default("max_grad_norm"))
    p.add_argument("--accountant", help="rdp or prv " + _default("accountant"))
    p.add_argument("--batch-size", type=int, help="expected logical batch size " + _default("batch_size"))
    p.add_argument(
        "--physical-batch-size",
        type=int,
        help="examples per forward pass, a memory bound that does not change the maths "
        + _default("physical_batch_size"),
    )
    p.add_argument("--epochs", type=int, help="passes over the training split " + _default("epochs"))
    p.add_argument("--optimizer", help=f"one of {', '.join(OPTIMIZERS)} " + _default("optimizer"))
    p.add_argument("--lr", type=float, help="learning rate " + _default("lr"))
    p.add_argument("--momentum", type=float, help="SGD only " + _default("momentum"))
    p.add_argument(
        "--lr-schedule",
        choices=LR_SCHEDULES,
        help="learning rate over the steps: constant, or cosine decay towards 0 " + _default("lr_schedule"),
    )
    p.add_argument(
        "--warmup-steps", type=int, help="linear learning-rate warm-up over the first steps " + _default("warmup_steps")
    )
    p.add_argument("--weight-decay", type=float, help="L2 weight decay " + _default("weight_decay"))
    p.add_argument("--aug-rot90", action="store_true", help=f"add random 90° rotations to the views {OFF}")
    p.add_argument("--ema", type=float, help="EMA decay for evaluation weights, 0 = off " + _default("ema"))
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
    p.add_argument("--device", help="auto, cpu or cuda[:N] " + _default("device"))
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
    p.add_argument("--sparsity-every", type=int, help="log diagnostics every k steps " + _default("sparsity_every"))


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
    p.add_argument("--dataset", help=DATASET_HELP + " " + _default("dataset"))
    p.add_argument("--arch", help=f"one of {', '.join(ARCHS)} (e: conventional) " + _default("arch"))
    p.add_argument(
        "--dp", action=argparse.BooleanOptionalAction, help="DP-SGD, or plain training with --no-dp (default --dp)"
    )
    p.add_argument("--aug-mult", type=int, help="augmentation multiplicity K " + _default("aug_mult"))
    p.add_argument("--seed", type=int, help="model initialisation, subsets, non-DP batches " + _default("seed"))
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


def _given_fields(args) -> dict:
    """TrainConfig fields from the flags given."""
    return {k: v for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__}


def _epoch_to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)  # stdout carries only the summary (JSON)


def _train(args) -> int:
    from dpecnn.run_folder import RunFolder
    from dpecnn.train.sweep import run_name
    from dpecnn.train.trainer import Trainer

    given = with_recipe(getattr(args, "preset", None), _given_fields(args))
    if args.resume:
        folder = RunFolder(args.resume)
        folder.require_checkpoint()
        if args.out:
            raise DpecnnError("--resume continues the run in its own folder; drop --out")
        cfg = dataclasses.replace(folder.read_config(), **given)
        folder.check_identity(cfg)
        if folder.finished:
            summary = folder.read_summary()
        else:
            summary = Trainer(cfg, folder.path, resume=True, report=_epoch_to_stderr).run()
    else:
        cfg = TrainConfig(**given)
        summary = Trainer(cfg, args.out or Path("outputs/runs") / run_name(cfg), report=_epoch_to_stderr).run()
    print(json.dumps({k: v for k, v in summary.items() if k not in ("reliability", "accountant_history")}, indent=2))
    return 0


def _audit(args) -> int:
    from dpecnn.audit import format_audit, run_audit

    cfg = TrainConfig(**with_recipe(getattr(args, "preset", None), _given_fields(args)))
    print(format_audit(run_audit(cfg, args.out, args.confidence, report=_epoch_to_stderr)))
    print(f"written: {Path(args.out) / 'audit.json'}")
    return 0


def _audit_report(args) -> int:
    from dpecnn.audit import write_audit_results

    paths = write_audit_results(args.root, args.out or args.root)
    print(paths["md"].read_text(), end="")
    print("written: " + ", ".join(str(p) for p in paths.values()))
    return 0


def _export(args) -> int:
    from dpecnn.export import export_run

    for path in export_run(args.run, args.out, force=args.force):
        print(f"written: {path}")
    return 0


def _predict(args) -> int:
    from dpecnn.release import load

    release = load(args.release)
    probs = release.predict_proba(args.images)
    for image, p in zip(args.images, probs):
        k = int(p.argmax())
        print(f"{image}\t{release.class_names[k]}\t{p[k]:.3f}")
    return 0


def _data(args) -> int:
    from dpecnn.data import summary

    print(json.dumps(summary(args.dataset, args.data_root, args.size, args.channels), indent=2))
    return 0


def _models(args) -> int:
    from dpecnn.models.__main__ import format_tables

    print(format_tables(args.layout, args.fields, args.readout))
    return 0


def _probe(args) -> int:
    from dpecnn import io
    from dpecnn.analysis.symmetry_probe import ProbeConfig, format_report, run_probe
    from dpecnn.data.datasets import dataset_name
    from dpecnn.train.trainer import resolve_device

    cfg = ProbeConfig(
        dataset=args.dataset,
        data_root=args.data_root,
        size=args.size,
        channels=args.channels,
        train_subset=args.train_subset or None,
        eval_subset=args.eval_subset or None,
        steps=args.steps,
        seed=args.seed,
        device=str(resolve_device(args.device)),
    )
    if cfg.steps < 1:
        raise DpecnnError(f"steps must be ≥ 1, got {cfg.steps}")
    report = run_probe(cfg)
    print(format_report(report))
    out = Path(args.out or f"outputs/probe/{dataset_name(cfg.dataset)}.json")
    io.write_json(out, report.to_dict())
    print(f"written: {out}")
    return 0


def _analyse(args) -> int:
    from dpecnn.analysis.analyse import analyse_run

    scalars = analyse_run(args.run, args.out, args.images)
    print(json.dumps(scalars, indent=2))
    return 0


def _csv(cast):
    return lambda text: [cast(v) for v in text.split(",") if v]


def _bool(text: str) -> bool:
    if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
        raise argparse.ArgumentTypeError(f"expected true/false, got '{text}'")
    return text.lower() in ("true", "1", "yes")


def _axis_default(axis: str) -> str:
    """``(default …)`` for a sweep axis, written as the flag would take it."""
    return f"(default {','.join(str(v).lower() if isinstance(v, bool) else str(v) for v in DEFAULT_AXES[axis])})"


def _sweep(args) -> int:
    from dpecnn.train.sweep import run_grid, summary_lines

    axes = {k: v for k, v in vars(args).items() if k in DEFAULT_AXES}
    if "layout" in vars(args) and "layouts" not in vars(args):  # a --layout given beside a preset wins
        axes["layouts"] = [args.layout]
    if "epsilon" in vars(args) and "epsilons" not in vars(args):  # and so does an --epsilon
        axes["epsilons"] = [args.epsilon]
    configs = sweep_configs(args.preset, _given_fields(args), axes)
    if args.plan:
        from dpecnn.train.plan import format_plan, load_step_costs, plan_rows
        from dpecnn.train.trainer import resolve_device

        costs, source = load_step_costs(resolve_device(configs[0].device), args.bench)
        print(format_plan(plan_rows(configs, args.runs_dir, costs), source))
        return 0
    if args.engine == "ray":
        from dpecnn.train.ray_sweep import run_grid_ray

        results = run_grid_ray(configs, args.runs_dir, args.address, args.cpus_per_run, args.gpus_per_run)
    else:
        results = run_grid(configs, args.runs_dir)
    print("\n".join(summary_lines(results)))
    failed = sum(r.status == "failed" for r in results)
    if failed:
        print(f"error: {failed} of {len(results)} runs failed (see above)", file=sys.stderr)
    return 1 if failed else 0


def _table(args) -> int:
    from dpecnn.analysis.runs_table import write_runs_csv
    from dpecnn.analysis.table import collect_summaries, write_table1

    paths = write_table1(args.runs_dir, args.out or args.runs_dir, args.metric)
    paths["runs"] = write_runs_csv(collect_summaries(args.runs_dir), args.out or args.runs_dir)
    print(paths["md"].read_text(), end="")
    print("written: " + ", ".join(str(p) for p in paths.values()))
    return 0


def _privacy_utility(args) -> int:
    from dpecnn.analysis.privacy_utility import write_privacy_utility

    paths = write_privacy_utility(args.runs_dir, args.out or args.runs_dir)
    print(paths["md"].read_text(), end="")
    print("written: " + ", ".join(str(p) for p in paths.values()))
    return 0


def _report(args) -> int:
    from dpecnn.analysis.generated_docs import documents, update

    changed = update(args.root)
    for path in documents(Path(args.root)):
        print(f"{path}: {'rewritten' if path in changed else 'already current'}")
    return 0


def _suite(args) -> int:
    import time

    from dpecnn.suite import SuiteConfig, run_suite

    out = args.out or f"outputs/suite-{time.strftime('%Y%m%d-%H%M%S')}"
    paths = run_suite(SuiteConfig.load(args.config), out)
    for what, path in paths.items():
        print(f"{what:9s} {path}")
    return 0


DESCRIPTION = """\
Differentially private steerable-equivariant CNNs for medical images: train, audit, export and
analyse DP models (Hölzl, Rueckert & Kaissis 2022), on MedMNIST or your own images.

Train and release:   train, audit, audit-report, export, predict
Many runs:           sweep, table, privacy-utility, report, suite
Look at data/models: data, models, probe, analyse, bench

`python -m dpecnn COMMAND --help` explains a command; every option states its default."""
EPILOG = """\
examples:
  python -m dpecnn train --dataset bloodmnist --arch C4 --preset paper   # DP at ε = 7.42
  python -m dpecnn export outputs/runs/<run> --out release/               # weights + model card
  python -m dpecnn predict release/ scan1.png scan2.png
  python -m dpecnn audit --arch C4 --canaries 1000 --out audit/           # empirical ε lower bound
  python -m dpecnn suite                                                  # the notebooks (make run)

Bad input or an output that cannot be written: one `error:` line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m dpecnn",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    p = sub.add_parser("train", help="train one model (DP by default)", argument_default=argparse.SUPPRESS)
    add_run_arguments(p)
    p.add_argument("--out", default=None, help="run folder (default outputs/runs/<dataset>-<arch>-…-<hash>)")
    p.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="continue the interrupted run in RUN_DIR; flags given must equal the recorded settings "
        "(default none: start a new run)",
    )
    add_train_arguments(p)
    p.set_defaults(func=_train)

    p = sub.add_parser(
        "audit",
        help="empirical ε lower bound from one run with canaries (Steinke et al. 2023)",
        argument_default=argparse.SUPPRESS,
    )
    add_run_arguments(p)
    p.add_argument(
        "--canaries",
        type=int,
        default=1000,
        help="canaries M, each included with probability 1/2 (default %(default)s)",
    )
    p.add_argument(
        "--canary-kind",
        default="gradient",
        choices=CANARY_KINDS,
        help="gradient (white-box Dirac directions of norm C) or input (mislabelled training "
        "images; score = -loss) (default %(default)s)",
    )
    p.add_argument("--confidence", type=float, default=0.95, help="of the lower bound (default %(default)s)")
    p.add_argument("--out", required=True, help="new folder for audit.json and the run (required)")
    add_train_arguments(p)
    p.set_defaults(func=_audit)

    p = sub.add_parser("audit-report", help="runs.csv, a Markdown table and the figure of the audits in a folder")
    p.add_argument("root", help="a folder with audit folders (each with audit.json) below it (required)")
    p.add_argument("--out", default=None, help="folder for runs.csv, audit.md, privacy_audit.png (default ROOT)")
    p.set_defaults(func=_audit_report)

    p = sub.add_parser("export", help="a release folder: weights (safetensors) and a model card")
    p.add_argument("run", help="a finished run folder (required)")
    p.add_argument("--out", required=True, help="new folder for model.safetensors and model_card.{md,json} (required)")
    p.add_argument("--force", action="store_true", help=f"export a run that is not a private release {OFF}")
    p.set_defaults(func=_export)

    p = sub.add_parser("predict", help="classify images with a release folder (as its model card says)")
    p.add_argument("release", help="a folder written by export (required)")
    p.add_argument(
        "images", nargs="+", help="image files (PNG, JPEG, …); one line each: image, class, probability (required)"
    )
    p.set_defaults(func=_predict)

    p = sub.add_parser("sweep", help="a resumable grid of runs (Table 1)", argument_default=argparse.SUPPRESS)
    p.add_argument(
        "--preset",
        default=None,
        choices=sorted(PRESETS),
        help="table1 (the paper's 216 runs), fig1-width or privacy-utility (accuracy against ε), "
        "trained with the paper recipe "
        "(train --preset paper); flags given override it (default none: the axes' defaults)",
    )
    p.add_argument("--datasets", type=_csv(str), help="e.g. bloodmnist,dermamnist " + _axis_default("datasets"))
    p.add_argument("--archs", type=_csv(str), help="e.g. e,C4,O2 " + _axis_default("archs"))
    p.add_argument("--aug", type=_csv(int), help="augmentation multiplicities, e.g. 1,4 " + _axis_default("aug"))
    p.add_argument("--dp", dest="dp_values", type=_csv(_bool), help="e.g. true,false " + _axis_default("dp_values"))
    p.add_argument("--seeds", type=_csv(int), help="e.g. 0,1,2 " + _axis_default("seeds"))
    p.add_argument(
        "--epsilons", type=_csv(float), help="privacy targets of the DP runs, e.g. 1,2,4,7.42 (default --epsilon alone)"
    )
    p.add_argument(
        "--layouts",
        type=lambda t: [_layout(w) for w in t.split(";")],
        help="width sweep, e.g. '8,16,32;16,32,64' (default --layout alone)",
    )
    p.add_argument(
        "--engine",
        default="local",
        choices=["local", "ray"],
        help="one run after another, or Ray tasks (default %(default)s)",
    )
    p.add_argument(
        "--address", default=None, help="Ray cluster to join, auto or HOST:PORT (default none: start a local one)"
    )
    p.add_argument("--cpus-per-run", type=float, default=1.0, help="Ray: CPUs reserved per run (default %(default)s)")
    p.add_argument(
        "--gpus-per-run", type=float, default=0.0, help="Ray: GPUs per run, fractions allowed (default %(default)s)"
    )
    p.add_argument(
        "--plan",
        action="store_true",
        default=False,
        help=f"print the runs and their projected time; train nothing {OFF}",
    )
    p.add_argument(
        "--bench",
        default=None,
        help="--plan: a saved benchmark JSON, from python -m dpecnn.bench --save "
        "(default this device's saved one; on CPU else the reference costs)",
    )
    p.add_argument("--runs-dir", default="outputs/runs", help="one folder per run in here (default %(default)s)")
    add_train_arguments(p)
    p.set_defaults(func=_sweep)

    p = sub.add_parser(
        "table", help="Table 1 (CSV, Markdown, LaTeX), paired differences and runs.csv from a folder of runs"
    )
    p.add_argument("runs_dir", help="a folder of run folders (required)")
    p.add_argument(
        "--out", default=None, help="folder for table1.{csv,md,tex}, paired.csv, runs.csv (default RUNS_DIR)"
    )
    p.add_argument(
        "--metric",
        default="val_acc",
        choices=["val_acc", "test_acc", "val_auc", "test_auc"],
        help="the number in each cell (default %(default)s)",
    )
    p.set_defaults(func=_table)

    p = sub.add_parser(
        "privacy-utility",
        help="accuracy against ε and the privacy–utility gap per group, "
        "with intervals (CSV, Markdown, figure) from a folder of runs",
    )
    p.add_argument("runs_dir", help="a folder of run folders, e.g. of sweep --preset privacy-utility (required)")
    p.add_argument(
        "--out",
        default=None,
        help="folder for runs.csv, privacy_curve.csv, privacy_gaps.csv, privacy_utility.{md,png} (default RUNS_DIR)",
    )
    p.set_defaults(func=_privacy_utility)

    p = sub.add_parser(
        "report", help="rewrite the generated blocks of README.md and docs/ from results/ (nothing typed by hand)"
    )
    p.add_argument("--root", default=".", help="the repository (default %(default)s)")
    p.set_defaults(func=_report)

    p = sub.add_parser("suite", help="run the notebook suite with papermill")
    p.add_argument(
        "--config",
        default=None,
        help="a JSON file with SuiteConfig fields or the name of a shipped one (paper: "
        "what the paper's figures need) (default none: SuiteConfig's defaults, as make run)",
    )
    p.add_argument(
        "--out", default=None, help="folder for notebooks, figures, tables and runs (default outputs/suite-<timestamp>)"
    )
    p.set_defaults(func=_suite)

    p = sub.add_parser("data", help="split sizes, class names and counts, image format of a dataset")
    p.add_argument("dataset", nargs="?", default="bloodmnist", help=DATASET_HELP + " (default %(default)s)")
    p.add_argument("--data-root", default=None, help=DATA_ROOT_HELP)
    add_image_arguments(p)
    p.set_defaults(func=_data)

    p = sub.add_parser("models", help="parameter table of every architecture")
    p.add_argument(
        "--layout", type=_layout, default=DEFAULTS.layout, help="widths of the three stages " + _default("layout")
    )
    p.add_argument(
        "--fields",
        choices=FIELD_RULES + ("all",),
        default="all",
        help="field rule whose table to print: layout, fixed-params or all (default %(default)s)",
    )
    p.add_argument(
        "--readout", choices=READOUTS, default=DEFAULTS.readout, help="invariant or orientation (default %(default)s)"
    )
    p.set_defaults(func=_models)

    p = sub.add_parser(
        "probe", help="does a dataset have a canonical orientation? (before DP training; not covered by ε)"
    )
    p.add_argument("dataset", help=DATASET_HELP + " (required)")
    p.add_argument("--data-root", default=None, help=DATA_ROOT_HELP)
    add_image_arguments(p)
    p.add_argument(
        "--train-subset",
        type=int,
        default=4000,
        help="training images for the two probe models, 0 = all (default %(default)s)",
    )
    p.add_argument("--eval-subset", type=int, default=2000, help="validation images, 0 = all (default %(default)s)")
    p.add_argument("--steps", type=int, default=400, help="optimiser steps of each probe model (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="initialisation and subsets (default %(default)s)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default %(default)s)")
    p.add_argument("--out", default=None, help="report JSON (default outputs/probe/DATASET.json)")
    p.set_defaults(func=_probe)

    p = sub.add_parser("analyse", help="all analyses and figures of a finished run")
    p.add_argument("run", help="a finished run folder, with summary.json (required)")
    p.add_argument("--out", default=None, help="figure folder (default RUN/analysis)")
    p.add_argument("--images", type=int, default=6, help="validation images for attributions (default %(default)s)")
    p.set_defaults(func=_analyse)

    sub.add_parser("bench", help="DP step cost (same as python -m dpecnn.bench)", add_help=False)
    return parser


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


# The errors of a write that the user can mend: a full disk or quota, a read-only or unwritable folder.
OUTPUT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def main(argv=None) -> int:
    warnings.formatwarning = _one_line_warning
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # the benchmark has its own parser (and --help)
        from dpecnn.bench import main as bench_main

        bench_main(argv[1:])
        return 0
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DpecnnError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a write outside dpecnn.io (a lock file, a library's own file) on a full or read-only disk
        if exc.errno not in OUTPUT_ERRNOS:
            raise
        print(f"error: {OutputError.writing(exc.filename or 'an output file', exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
