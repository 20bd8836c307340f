"""The parser of ``python -m dpecnn``: one sub-command per step of the pipeline, each routed to its
handler in :mod:`dpecnn.cli.commands`."""

from __future__ import annotations

import argparse

from dpecnn.cli import commands
from dpecnn.cli.arguments import (
    DATA_ROOT_HELP,
    DATASET_HELP,
    DEFAULTS,
    OFF,
    Parser,
    add_image_arguments,
    add_run_arguments,
    add_train_arguments,
    arch_type,
    axis_default,
    bool_type,
    csv_of,
    default_of,
    layout_type,
)
from dpecnn.models.architecture import FIELD_RULES, READOUTS
from dpecnn.train.config import AUDIT_CANARY_KINDS
from dpecnn.train.presets import PRESETS

DESCRIPTION = """\
Differentially private steerable-equivariant CNNs for medical images: train, audit, export and
analyse DP models (Hölzl, Rueckert & Kaissis 2022), on MedMNIST or your own images.

Train and release:   train, audit, audit-report, export, predict
Many runs:           sweep, table, privacy-utility, width, report, suite
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


def _results_command(sub, name: str, help: str, runs_help: str, writes: str, func) -> argparse.ArgumentParser:
    """A command that reads a folder of runs and writes result files into ``--out`` (default the folder)."""
    p = sub.add_parser(name, help=help)
    p.add_argument("runs_dir", help=f"{runs_help} (required)")
    p.add_argument("--out", default=None, help=f"folder for {writes} (default RUNS_DIR)")
    p.set_defaults(func=func)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m dpecnn",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")

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
    p.set_defaults(func=commands.train)

    p = sub.add_parser(
        "audit",
        help="empirical ε lower bounds from one run with canaries (Steinke et al. 2023; f-DP, Mahloujifar et al. 2025)",
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
        choices=AUDIT_CANARY_KINDS,
        help="gradient (white-box Dirac directions of norm C on the coordinates the data move least; "
        "likelihood-ratio score) or input (mislabelled training images; loss against a reference model "
        "trained without them) (default %(default)s)",
    )
    p.add_argument("--confidence", type=float, default=0.95, help="of the lower bound (default %(default)s)")
    p.add_argument("--out", required=True, help="new folder for audit.json and the run (required)")
    add_train_arguments(p)
    p.set_defaults(func=commands.audit)

    p = sub.add_parser("audit-report", help="runs.csv, a Markdown table and the figure of the audits in a folder")
    p.add_argument("root", help="a folder with audit folders (each with audit.json) below it (required)")
    p.add_argument("--out", default=None, help="folder for runs.csv, audit.md, privacy_audit.png (default ROOT)")
    p.set_defaults(func=commands.audit_report)

    p = sub.add_parser("export", help="a release folder: weights (safetensors) and a model card")
    p.add_argument("run", help="a finished run folder (required)")
    p.add_argument("--out", required=True, help="new folder for model.safetensors and model_card.{md,json} (required)")
    p.add_argument("--force", action="store_true", help=f"export a run that is not a private release {OFF}")
    p.set_defaults(func=commands.export)

    p = sub.add_parser("predict", help="classify images with a release folder (as its model card says)")
    p.add_argument("release", help="a folder written by export (required)")
    p.add_argument(
        "images", nargs="+", help="image files (PNG, JPEG, …); one line each: image, class, probability (required)"
    )
    p.add_argument(
        "--csv", default=None, help="also write every image's class probabilities to this CSV (default none)"
    )
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default %(default)s)")
    p.add_argument(
        "--backend",
        choices=("auto", "torch", "onnx"),
        default="auto",
        help="torch (needs escnn for C_N and O2), onnx (the release's model.onnx on onnxruntime, CPU) or auto: "
        "torch where it can be built, else onnx (default %(default)s)",
    )
    p.set_defaults(func=commands.predict)

    p = sub.add_parser("sweep", help="a resumable grid of runs (Table 1)", argument_default=argparse.SUPPRESS)
    p.add_argument(
        "--preset",
        default=None,
        choices=sorted(PRESETS),
        help="table1 (the paper's 216 runs), fig1-width or privacy-utility (accuracy against ε), "
        "trained with the paper recipe "
        "(train --preset paper); flags given override it (default none: the axes' defaults)",
    )
    p.add_argument("--datasets", type=csv_of(str), help="e.g. bloodmnist,dermamnist " + axis_default("datasets"))
    p.add_argument("--archs", type=csv_of(arch_type), help="e.g. e,C4,O2 " + axis_default("archs"))
    p.add_argument("--aug", type=csv_of(int), help="augmentation multiplicities, e.g. 1,4 " + axis_default("aug"))
    p.add_argument(
        "--dp", dest="dp_values", type=csv_of(bool_type), help="e.g. true,false " + axis_default("dp_values")
    )
    p.add_argument("--seeds", type=csv_of(int), help="e.g. 0,1,2 " + axis_default("seeds"))
    p.add_argument(
        "--epsilons",
        type=csv_of(float),
        help="privacy targets of the DP runs, e.g. 1,2,4,7.42 (default --epsilon alone)",
    )
    p.add_argument(
        "--layouts",
        type=lambda t: [layout_type(w) for w in t.split(";")],
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
    p.set_defaults(func=commands.sweep)

    p = _results_command(
        sub,
        "table",
        "Table 1 (CSV, Markdown, LaTeX), paired differences and runs.csv from a folder of runs",
        "a folder of run folders",
        "table1.{csv,md,tex}, paired.csv, runs.csv",
        commands.table,
    )
    p.add_argument(
        "--metric",
        default="val_acc",
        choices=["val_acc", "test_acc", "val_auc", "test_auc"],
        help="the number in each cell (default %(default)s)",
    )
    _results_command(
        sub,
        "privacy-utility",
        "accuracy against ε and the privacy–utility gap per group, with intervals (CSV, Markdown, figure) from a "
        "folder of runs",
        "a folder of run folders, e.g. of sweep --preset privacy-utility",
        "runs.csv, privacy_curve.csv, privacy_gaps.csv, privacy_utility.{md,png}",
        commands.privacy_utility,
    )
    _results_command(
        sub,
        "width",
        "accuracy against parameters under DP (Fig. 1 left) and the paper's claim, with intervals "
        "(CSV, Markdown, figure) from a folder of runs",
        "a folder of run folders, e.g. of sweep --preset fig1-width",
        "runs.csv, accuracy_vs_params.{csv,png}, width.md",
        commands.width,
    )

    p = sub.add_parser(
        "report", help="rewrite the generated blocks of README.md and docs/ from results/ (nothing typed by hand)"
    )
    p.add_argument("--root", default=".", help="the repository (default %(default)s)")
    p.set_defaults(func=commands.report)

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
    p.set_defaults(func=commands.suite)

    p = sub.add_parser("data", help="split sizes, class names and counts, image format of a dataset")
    p.add_argument("dataset", nargs="?", default="bloodmnist", help=DATASET_HELP + " (default %(default)s)")
    p.add_argument("--data-root", default=None, help=DATA_ROOT_HELP)
    add_image_arguments(p)
    p.set_defaults(func=commands.data)

    p = sub.add_parser("models", help="parameter table of every architecture")
    p.add_argument(
        "--layout", type=layout_type, default=DEFAULTS.layout, help="widths of the three stages " + default_of("layout")
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
    p.set_defaults(func=commands.models)

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
    p.add_argument(
        "--seeds",
        type=csv_of(int),
        default=[0, 1, 2],
        help="training seeds, ≥ 2: the label test is across seeds; the first draws the subsets (default 0,1,2)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default %(default)s)")
    p.add_argument("--out", default=None, help="report JSON (default outputs/probe/DATASET.json)")
    p.set_defaults(func=commands.probe)

    p = sub.add_parser("analyse", help="all analyses and figures of a finished run")
    p.add_argument("run", help="a finished run folder, with summary.json (required)")
    p.add_argument("--out", default=None, help="figure folder (default RUN/analysis)")
    p.add_argument("--images", type=int, default=6, help="validation images for attributions (default %(default)s)")
    p.set_defaults(func=commands.analyse)

    sub.add_parser("bench", help="DP step cost (same as python -m dpecnn.bench)", add_help=False)
    return parser
