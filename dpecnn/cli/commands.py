"""What each command does: one handler per sub-command, given the parsed arguments, returning the
exit status (the parser that routes to them is :mod:`dpecnn.cli.parser`). Heavy modules are
imported inside the handlers so that ``--help`` and bad flags answer at once.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from dpecnn.cli.arguments import given_fields
from dpecnn.errors import DpecnnError
from dpecnn.train.config import TrainConfig, with_recipe
from dpecnn.train.presets import DEFAULT_AXES


def _epoch_to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)  # stdout carries only the summary (JSON)


def train(args) -> int:
    """Train, or resume with ``--resume``; Ctrl-C ends with one line that says how to resume."""
    from dpecnn.run_folder import RunFolder

    given = with_recipe(getattr(args, "preset", None), given_fields(args))
    try:
        return _train(args, given)
    except KeyboardInterrupt:
        folder_path = args.resume or args.out  # after _train: a run without --out has its default folder here
        folder = RunFolder(folder_path) if folder_path else None
        hint = (
            f"resume with: python -m dpecnn train --resume {folder.path}"
            if folder is not None and folder.has_checkpoint
            else "no epoch had finished, so there is nothing to resume; start the run again"
        )
        print(f"interrupted: {hint}", file=sys.stderr)
        return 130


def _train(args, given: dict) -> int:
    from dpecnn.run_folder import RunFolder
    from dpecnn.train.sweep import run_name
    from dpecnn.train.trainer import Trainer

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
        args.out = args.out or Path("outputs/runs") / run_name(cfg)  # where an interrupted run can be resumed
        summary = Trainer(cfg, args.out, report=_epoch_to_stderr).run()
    print(json.dumps({k: v for k, v in summary.items() if k not in ("reliability", "accountant_history")}, indent=2))
    return 0


def audit(args) -> int:
    from dpecnn.audit import format_audit, run_audit

    cfg = TrainConfig(**with_recipe(getattr(args, "preset", None), given_fields(args)))
    print(format_audit(run_audit(cfg, args.out, args.confidence, report=_epoch_to_stderr)))
    print(f"written: {Path(args.out) / 'audit.json'}")
    return 0


def _show_table(paths: dict[str, Path]) -> int:
    """Print the Markdown table a command wrote, then every file it wrote."""
    print(paths["md"].read_text(), end="")
    print("written: " + ", ".join(str(p) for p in paths.values()))
    return 0


def audit_report(args) -> int:
    from dpecnn.audit import write_audit_results

    paths = write_audit_results(args.root, args.out or args.root)
    return _show_table(paths)


def export(args) -> int:
    from dpecnn.export import export_run

    for path in export_run(args.run, args.out, force=args.force):
        print(f"written: {path}")
    return 0


def predict(args) -> int:
    """Each image's class and probability; an unreadable image is named and skipped, and the exit
    status is 2 if any was."""
    import pandas as pd

    from dpecnn import io
    from dpecnn.release import load

    release = load(args.release, device=args.device, backend=args.backend)
    pixels, rows, failed = [], [], 0
    for image in args.images:
        try:
            pixels.append(release.preprocess.pixels(image))
            rows.append({"image": str(image)})
        except DpecnnError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
    probs = release.predict_proba(pixels) if pixels else []
    for row, p in zip(rows, probs):
        k = int(p.argmax())
        row |= {"class": release.class_names[k], "probability": float(p[k])}
        row |= {f"p({name})": float(v) for name, v in zip(release.class_names, p)}
        print(f"{row['image']}\t{row['class']}\t{row['probability']:.3f}")
    if args.csv:
        io.write_bytes(Path(args.csv), pd.DataFrame(rows).to_csv(index=False).encode())
    if failed:
        print(f"error: {failed} of {len(args.images)} images could not be read (named above)", file=sys.stderr)
        return 2
    return 0


def data(args) -> int:
    from dpecnn.data import summary

    print(json.dumps(summary(args.dataset, args.data_root, args.size, args.channels), indent=2))
    return 0


def models(args) -> int:
    from dpecnn.models.__main__ import format_tables

    print(format_tables(args.layout, args.fields, args.readout))
    return 0


def probe(args) -> int:
    from dpecnn import io
    from dpecnn.analysis.measures.symmetry_probe import ProbeConfig, format_report, run_probe
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
        seeds=args.seeds,
        device=str(resolve_device(args.device)),
    )
    if cfg.steps < 1:
        raise DpecnnError(f"steps must be ≥ 1, got {cfg.steps}")
    report = run_probe(cfg, report=_epoch_to_stderr)
    print(format_report(report))
    out = Path(args.out or f"outputs/probe/{dataset_name(cfg.dataset)}.json")
    io.write_json(out, report.to_dict())
    print(f"written: {out}")
    return 0


def analyse(args) -> int:
    from dpecnn.analysis.pages.analyse import analyse_run

    scalars = analyse_run(args.run, args.out, args.images)
    print(json.dumps(scalars, indent=2))
    return 0


def sweep(args) -> int:
    from dpecnn.train.plan import format_plan, load_step_costs, plan_rows, sweep_configs
    from dpecnn.train.sweep import run_grid, summary_lines

    axes = {k: v for k, v in vars(args).items() if k in DEFAULT_AXES}
    if "layout" in vars(args) and "layouts" not in vars(args):  # a --layout given beside a preset wins
        axes["layouts"] = [args.layout]
    if "epsilon" in vars(args) and "epsilons" not in vars(args):  # and so does an --epsilon
        axes["epsilons"] = [args.epsilon]
    configs = sweep_configs(args.preset, given_fields(args), axes)
    if args.plan:
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


def table(args) -> int:
    from dpecnn.analysis.pages.dp_gap import write_gaps
    from dpecnn.analysis.pages.runs_table import write_runs_csv
    from dpecnn.analysis.pages.table import collect_summaries, write_table1

    paths = write_table1(args.runs_dir, args.out or args.runs_dir, args.metric)
    paths.update(write_gaps(args.runs_dir, args.out or args.runs_dir, args.metric))
    paths["runs"] = write_runs_csv(collect_summaries(args.runs_dir), args.out or args.runs_dir)
    return _show_table(paths)


def privacy_utility(args) -> int:
    from dpecnn.analysis.pages.privacy_utility import write_privacy_utility

    paths = write_privacy_utility(args.runs_dir, args.out or args.runs_dir)
    return _show_table(paths)


def width(args) -> int:
    from dpecnn.analysis.pages.width import write_width

    return _show_table(write_width(args.runs_dir, args.out or args.runs_dir))


def report(args) -> int:
    from dpecnn.analysis.pages.generated_docs import documents, update

    changed = update(args.root)
    for path in documents(Path(args.root)):
        print(f"{path}: {'rewritten' if path in changed else 'already current'}")
    return 0


def suite(args) -> int:
    import time

    from dpecnn.suite import SuiteConfig, run_suite

    out = args.out or f"outputs/suite-{time.strftime('%Y%m%d-%H%M%S')}"
    paths = run_suite(SuiteConfig.load(args.config), out)
    for what, path in paths.items():
        print(f"{what:9s} {path}")
    return 0
