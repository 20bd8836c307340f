"""What the notebooks show, one report per analysis: a figure, its tables and a verdict line.

Each ``*_report`` takes groups of runs (:class:`~dpecnn.analysis.pages.run.RunGroup`: equal in
every setting but the seed), saves its figure to ``fig_dir`` and every table it returns to
``<table_dir>/<name>.csv`` (when given), and returns a :class:`Report`. A group's number is
its mean over seeds ± their standard deviation (:class:`~dpecnn.analysis.stats.Estimate`);
the verdict answers the paper's claim for every equivariant group against the conventional
(``e``) group with the same other settings (:func:`versus_conventional`).

The image-based reports (attributions, impulse responses) are in
:mod:`dpecnn.analysis.pages.map_reports`, accuracy against model size (Fig. 1 left) in
:mod:`dpecnn.analysis.pages.width`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from dpecnn.analysis.measures.calibration import bootstrap_scores
from dpecnn.analysis.measures.sparsity import moving_average
from dpecnn.analysis.pages import table
from dpecnn.analysis.pages.report_base import Report, save_table
from dpecnn.analysis.pages.run import Run, RunGroup
from dpecnn.analysis.stats import Estimate, claim_lines, relative_change
from dpecnn.errors import DpecnnError
from dpecnn.plotting import reliability_diagrams, sparsity_curves, training_curves
from dpecnn.privacy.coverage import DIAGNOSTIC_LABEL

SPARSITY_WINDOW = 20  # logged steps in the moving average of Fig. 1 right
PAPER_BRIER_CHANGE = "−41 %"  # C4 against e under DP (Hölzl et al. 2022, section 2), measured on
PAPER_BRIER_DATASET = "pathmnist"  # the paper's Fig. 1 model: only comparable on the same dataset


def paper_brier_note(group: RunGroup) -> str:
    """The paper's Brier change beside the one pair it measured (C4 against e under DP), and
    whether it is comparable (the same dataset); nothing beside any other pair."""
    if group.arch != "C4" or not group.settings["dp"]:
        return ""
    dataset = group.settings["dataset"]
    if dataset == PAPER_BRIER_DATASET:
        return f"; paper {PAPER_BRIER_CHANGE}"
    return f"; the paper's {PAPER_BRIER_CHANGE} is on {PAPER_BRIER_DATASET}, not {dataset}: not comparable"


def group_columns(group: RunGroup) -> dict:
    return {"group": group.label, "arch": group.arch, "seeds": " ".join(map(str, group.seeds)), "n": len(group.runs)}


def versus_conventional(
    groups: Sequence[RunGroup],
    values: Mapping[str, Estimate],
    claim: str,
    higher: bool,
    note: Callable[[RunGroup, Estimate, Estimate], str] | None = None,
    **fmt,
) -> str:
    """One :func:`~dpecnn.analysis.stats.claim_line` per equivariant group in ``values``
    (label → estimate) against the ``e`` group with the same other settings, plus
    ``note(group, a, b)`` in brackets; a line saying so where there is nothing to compare. The
    lines are one family (:func:`~dpecnn.analysis.stats.claim_lines`: Holm over those tested over seeds)."""
    lines: list[str | tuple] = []
    notes: list[str] = []  # each line's note, "" for none
    for group in (g for g in groups if g.arch != "e" and g.label in values):
        base = next(
            (
                g
                for g in groups
                if g.arch == "e" and g.label in values and table.same_settings_except(g.settings, group.settings)
            ),
            None,
        )
        if base is None:
            lines.append(f"{group.label}: no conventional (e) group with the same settings to compare with")
            notes.append("")
            continue
        lines.append((claim, (group.label, values[group.label]), (base.label, values[base.label]), higher))
        notes.append(f" ({note(group, values[group.label], values[base.label])})" if note else "")
    judged = [line + extra for line, extra in zip(claim_lines(lines, **fmt), notes)]
    return "\n".join(judged) or "no equivariant group to compare with a conventional (e) one"


def training_report(run: Run, fig_dir=None, table_dir=None) -> Report:
    """01: learning curve and ε per epoch, and table ``summary`` (the run's summary, one row),
    both saved as ``training_<run folder>``; the verdict says whether the run kept its privacy
    budget, and its accuracy beside the paper's for these settings (where the paper has one)."""
    name = f"training_{run.path.name}"
    records = run.epoch_records()
    figure = training_curves(
        [r["epoch"] for r in records],
        [r["val_acc"] for r in records],
        [r["epsilon"] for r in records],
        fig_dir,
        name,
        run.label,
    )
    keys = ("arch", "layout", "seed", "params", "epochs", "steps", "val_acc", "val_auc", "test_acc", "brier", "ece")
    claim = {
        k: run.privacy.get(k)
        for k in (
            "epsilon_spent",
            "epsilon_pld",
            "delta",
            "noise_multiplier",
            "private_release",
            "private_release_reason",
        )
    }
    row = {"run": run.label, **{k: run.summary.get(k) for k in keys}, **claim, "stand_in": run.stand_in}
    paper = table.paper_accuracy(table.setting_groups([run.summary])[0][0])
    epochs = f"{run.config.epochs} epoch{'s' if run.config.epochs != 1 else ''}"
    accuracy = f"validation accuracy {100 * run.summary['val_acc']:.2f} % after {epochs}" + (
        f" (paper, Table 1, at its full budget: {paper:.2f} %)" if paper is not None else ""
    )
    if run.config.dp:
        spent, target = run.privacy["epsilon_spent"], run.config.epsilon
        kept = spent <= target
        verdict = (
            f"{run.label} kept its privacy budget: {'yes' if kept else 'no'}, ε {spent:.3f} {'≤' if kept else '>'} "
            f"{target:g} (δ {run.config.delta:g}, {run.config.accountant} accountant); {accuracy}"
        )
    else:
        verdict = f"{run.label}: no privacy guarantee (trained without DP); {accuracy}"
    return Report(figure, {"summary": save_table([row], table_dir, name)}, verdict)


def sparsity_report(groups: Sequence[RunGroup], fig_dir=None, table_dir=None, window: int = SPARSITY_WINDOW) -> Report:
    """04, Fig. 1 right: ℓ0 sparsity of the pre-noise gradient per logged step, each seed's
    curve smoothed (:func:`~dpecnn.analysis.measures.sparsity.moving_average`, ``window`` steps), mean
    ± std over seeds; table ``sparsity``: the mean over all logged steps and over the last
    ``window``; table ``sparsity_per_layer``: each parameter's sparsity at the last logged
    step, mean (and std) over seeds. A diagnostic of training data, not covered by ε. Groups
    trained without diagnostics are left out; runs that counted zeros at different thresholds
    are refused (their sparsities are different quantities)."""
    logged = [g for g in groups if all(r.sparsity_curve()[0] for r in g.runs)]
    thresholds = sorted({r.config.sparsity_threshold for g in logged for r in g.runs})
    if len(thresholds) > 1:
        raise DpecnnError(
            f"the runs counted zero gradients at different thresholds ({', '.join(f'{t:g}' for t in thresholds)}): "
            "compare sparsity at one threshold"
        )
    curves, rows, per_layer, overall = {}, [], {}, {}
    for group in logged:
        by_step = [dict(zip(*r.sparsity_curve())) for r in group.runs]
        steps = sorted(set.intersection(*map(set, by_step)))  # seeds logged at other intervals: the steps they share
        curves[group.label] = (steps, np.array([moving_average([b[s] for s in steps], window) for b in by_step]))
        overall[group.label] = group.estimate(lambda r: float(np.mean(r.sparsity_curve()[1])))
        final = group.estimate(lambda r: float(np.mean(r.sparsity_curve()[1][-window:])))
        rows.append(
            {
                **group_columns(group),
                **overall[group.label].columns("sparsity mean"),
                **final.columns(f"sparsity last {window} steps"),
            }
        )
        last = [[d for d in r.diagnostics if d["kind"] == "step"][-1]["sparsity_per_layer"] for r in group.runs]
        for param in last[0]:
            est = Estimate.over_seeds([layers[param] for layers in last])
            per_layer.setdefault(param, {"parameter": param}).update(est.columns(group.label))
    figure = sparsity_curves(
        curves,
        window,
        fig_dir,
        "sparsity",
        thresholds[0] if thresholds else 1e-5,
        {g.label: g.arch for g in logged},
    )
    verdict = versus_conventional(logged, overall, "{a} gradients sparser than {b} (mean over training)", True)
    tables = {
        "sparsity": save_table(rows, table_dir, "sparsity"),
        "sparsity_per_layer": save_table(list(per_layer.values()), table_dir, "sparsity_per_layer"),
    }
    return Report(figure, tables, verdict + f"\n(un-noised training data: {DIAGNOSTIC_LABEL})")


def _scores(group: RunGroup) -> dict[str, Estimate]:
    """Brier and ECE on the test split: over seeds, or for one seed with bootstrap intervals
    from the model's test predictions (the images its summary was evaluated on)."""
    if len(group.runs) > 1:
        return {
            "Brier": group.estimate(lambda r: r.summary["brier"]),
            "ECE": group.estimate(lambda r: r.summary["ece"]),
        }
    from dpecnn.data.datasets import config_split
    from dpecnn.train.metrics import predict_proba

    run = group.runs[0]
    test = config_split(run.config, "test").subset(run.config.eval_subset, run.config.seed)
    device = next(run.model.parameters()).device
    images = hashlib.sha256(test.pixels.numpy().tobytes() + test.labels.numpy().tobytes()).hexdigest()
    return bootstrap_scores(predict_proba(run.model, test, device), test.labels.numpy(), images=images)


def reliability_report(groups: Sequence[RunGroup], fig_dir=None, table_dir=None) -> Report:
    """05: reliability diagrams on the test split (15 bins; accuracy mean ± std over seeds,
    images per bin), Brier score and ECE per group (:func:`_scores`) in the titles and table
    ``calibration``, and the paper's claim of a lower Brier score (and ECE) than ``e``."""
    scores = {g.label: _scores(g) for g in groups}
    bins = {
        g.label: {
            "edges": g.runs[0].summary["reliability"]["edges"],
            "accuracy": [r.summary["reliability"]["accuracy"] for r in g.runs],
            "count": [r.summary["reliability"]["count"] for r in g.runs],
        }
        for g in groups
    }
    subtitles = {
        label: "\n".join([f"{k} {v.text(3, note=False)}" for k, v in s.items()] + [f"({s['Brier'].note})"])
        for label, s in scores.items()
    }
    figure = reliability_diagrams(bins, fig_dir, "reliability", subtitles, {g.label: g.arch for g in groups})
    rows = [
        {
            **group_columns(g),
            **scores[g.label]["Brier"].columns("Brier"),
            **scores[g.label]["ECE"].columns("ECE"),
            **g.estimate(lambda r: r.summary["test_acc"]).columns("test_acc"),
        }
        for g in groups
    ]
    brier = versus_conventional(
        groups,
        {k: s["Brier"] for k, s in scores.items()},
        "{a} Brier score lower than {b}",
        False,
        lambda group, a, b: relative_change(a.mean, b.mean) + paper_brier_note(group),
    )
    ece = versus_conventional(groups, {k: s["ECE"] for k, s in scores.items()}, "{a} ECE lower than {b}", False)
    return Report(figure, {"calibration": save_table(rows, table_dir, "calibration")}, f"{brier}\n{ece}")
