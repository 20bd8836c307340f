"""Table 1 of Hölzl et al. (2022) from a folder of runs, beside the paper's numbers.

Rows: dataset × group; columns: {no augmentation, augmentation (K > 1)} × {non-DP, DP},
each as our accuracy, mean ± std over seeds (n runs), next to the paper's value. A cell
aggregates only runs whose recorded settings (``summary["settings"]``) agree on everything
but the seed: a setting that differs between runs becomes part of the row (``setting``
column), except a recipe's and the DP settings (:data:`HALF_FIELDS`), which may tell the DP
columns from the non-DP ones; one that all runs share is stated in the caption. Two runs of a group at one seed are
refused, and rows sort by the values of their settings. The augmentation multiplicity K
picks the column, and the caption states the aug columns' K when they share one (otherwise it
is part of the row). DP cells holding runs that are not private releases (``--reproducible``)
are marked †. Rendered as CSV, Markdown and LaTeX.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dpecnn import io
from dpecnn.errors import DpecnnError
from dpecnn.models import ARCHS
from dpecnn.run_folder import RunFolder
from dpecnn.train.config import DP_ONLY, IDENTITY_DEFAULTS_LEFT_OUT, RECIPE_HALF_FIELDS, inapplicable, release_status

COLUMNS = ((False, False), (False, True), (True, False), (True, True))  # (augmentation, dp)

# Validation accuracy (%) at layout 8-16-32, ε = 7.42, δ = 1e-5, in COLUMNS order.
PAPER_TABLE1 = {
    "bloodmnist": {
        "e": (94.05, 89.19, 96.52, 90.61),
        "C1": (93.52, 89.98, 95.57, 90.47),
        "C4": (95.35, 91.30, 96.67, 91.39),
        "C8": (95.32, 86.56, 96.30, 92.39),
        "C16": (95.74, 91.48, 96.16, 91.67),
        "O2": (96.13, 92.51, 96.71, 93.73),
    },
    "dermamnist": {
        "e": (76.79, 71.78, 78.48, 72.41),
        "C1": (75.77, 72.84, 76.48, 72.27),
        "C4": (75.18, 73.25, 77.84, 74.17),
        "C8": (76.48, 72.79, 77.58, 66.88),
        "C16": (76.86, 72.53, 77.57, 70.64),
        "O2": (77.24, 73.29, 77.98, 72.45),
    },
    "pathmnist": {
        "e": (83.53, 80.11, 85.75, 79.41),
        "C1": (82.35, 83.57, 82.22, 83.68),
        "C4": (83.97, 86.89, 83.43, 83.52),
        "C8": (85.11, 88.13, 85.23, 88.75),
        "C16": (85.88, 89.14, 85.38, 88.94),
        "O2": (82.12, 77.91, 80.87, 80.64),
    },
}


GROUPED_ELSEWHERE = ("seed", "dataset", "arch", "dp")  # seeds are aggregated; the rest are rows/columns
# The setting of the paper's Table 1; a row (or point) is shown beside the paper's value only at it
PAPER_SETTING = {
    "layout": [8, 16, 32],
    "epsilon": 7.42,
    "delta": 1e-5,
    "readout": "invariant",
    "train_subset": None,
    "eval_subset": None,
    "size": None,
    "data_hash": None,
    "canaries": 0,
    "fields": "layout",
    "restrict": True,
    "channels": None,
    "aug_rot90": False,
}
PAPER_SETTING_TEXT = (
    "layout 8-16-32, ε 7.42, δ 1e-05, invariant readout, the layout's regular fields restricted to half the "
    "rotations after the first residual layer, MedMNIST's whole splits at 28×28 in their own channels, no 90° "
    "rotations, no audit canaries"
)
# What may differ between a cell's DP and non-DP runs (its columns): what a recipe sets apart, and
# the DP settings (a non-DP run has them only with gradient canaries, whose size C sets). Any other
# field that tells the halves apart (layout, subset, audit canaries, …) makes rows of its own: a gap
# compares like with like.
HALF_FIELDS = RECIPE_HALF_FIELDS | set(DP_ONLY)
STAND_IN_NOTE = "stand_in"  # key in a summary's notes marking a run a notebook trained as a stand-in
LATEX_SYMBOLS = {  # typeset after pandas has escaped the special characters
    "–": "--",
    "†": r"$^\dagger$",
    "±": r"$\pm$",
    "σ": r"$\sigma$",
    "ε": r"$\varepsilon$",
    "δ": r"$\delta$",
}


@dataclass
class Table1:
    """Rows (dataset, arch, varying settings, four cells), the settings every run shares, and
    the metric."""

    rows: list[dict]
    shared: dict
    metric: str
    halves: dict = field(default_factory=dict)  # True / False: settings every DP / non-DP run shares beyond `shared`
    aug_mult: int | None = None  # the K every run of the aug columns shares (None: none, or K is per row)


def arch_rank(arch: str) -> int:
    return ARCHS.index(arch) if arch in ARCHS else len(ARCHS)  # rows in the paper's order


def _column_name(aug: bool, dp: bool) -> str:
    return f"{'aug' if aug else 'no aug'} {'DP' if dp else 'non-DP'}"


def grouping_settings(summary: dict) -> dict:
    """A run's settings that apply to it, without seed, dataset, arch and dp. Inapplicable ones
    (:func:`~dpecnn.train.config.inapplicable`) are left out, because an absent field is not
    compared (:func:`split_settings`, :func:`same_settings_except`); ``aug_mult`` always applies
    and is kept at K = 1 too, so that a run without augmentation is never matched with one with
    it. None is a real value here (e.g. ``train_subset`` None: the whole split). The settings
    that identities leave out at their defaults (field rule, readout) are filled in."""
    if "settings" not in summary:
        raise DpecnnError(
            f"a summary of {summary.get('arch')} on {summary.get('dataset')} records no settings "
            "(written by an older dpecnn); train it again"
        )
    skip = inapplicable(summary["settings"]) | set(GROUPED_ELSEWHERE)
    settings = {k: v for k, v in summary["settings"].items() if k not in skip}
    for name, default in IDENTITY_DEFAULTS_LEFT_OUT.items():
        if name not in skip:
            settings.setdefault(name, default)
    return settings


def split_settings(settings: list[dict], ignore=()) -> tuple[list[str], dict]:
    """The fields whose values differ between these settings (sorted), and the value of every
    field all of them share; a field absent from a run (inapplicable to it) is not compared."""
    fields = sorted({k for st in settings for k in st} - set(ignore))
    values = {k: {json.dumps(st[k]) for st in settings if k in st} for k in fields}
    varying = [k for k in fields if len(values[k]) > 1]
    return varying, {k: json.loads(next(iter(values[k]))) for k in fields if len(values[k]) == 1}


def format_value(value) -> str:
    """A setting's value as the tables write it: lists joined by "-", floats by %g, None as "all"."""
    if value is None:
        return "all"  # the only settings that may be None are the subsets: None is the whole split
    return (
        "-".join(map(str, value))
        if isinstance(value, list)
        else f"{value:g}"
        if isinstance(value, float)
        else str(value)
    )


def collect_summaries(runs_dir: str | Path) -> list[dict]:
    """Every finished run (a folder with ``summary.json``) below ``runs_dir``. Its
    ``private_release`` is derived from the identity-checked ``config.json`` (an edited or
    unreadable config counts as not private), never taken from the editable summary."""
    summaries = []
    for path in sorted(Path(runs_dir).rglob("summary.json")):
        summary = io.read_json(path)
        summary["run"] = str(path.parent.relative_to(runs_dir))
        try:
            summary["private_release"] = release_status(RunFolder(path.parent).read_config())[0]
        except DpecnnError:
            summary["private_release"] = False
        summaries.append(summary)
    return summaries


def finished_summaries(runs_dir: str | Path, dp_only: bool = False) -> list[dict]:
    """:func:`collect_summaries` (only the DP runs when ``dp_only``); one error line when there are none."""
    summaries = [s for s in collect_summaries(runs_dir) if s["dp"] or not dp_only]
    if not summaries:
        raise DpecnnError(f"no finished {'DP ' if dp_only else ''}runs (summary.json) under {runs_dir}")
    return summaries


@dataclass
class Cells:
    """Runs by Table 1 cell: ``runs[(dataset, arch, row setting, augmented, dp)]``, the row setting
    a tuple of ``(field, JSON value)``; the settings every run shares, those each half shares
    beyond them (:attr:`Table1.halves`), the aug columns' K (:attr:`Table1.aug_mult`) and the
    fields that apply to each half (``applies[dp]``: ε applies to no non-DP run)."""

    runs: dict[tuple, list[dict]]
    shared: dict
    halves: dict
    aug_mult: int | None
    applies: dict[bool, set[str]] = field(default_factory=dict)

    def settings(self, setting: tuple, dp: bool) -> dict:
        """Every setting the runs of a cell share: the table's that apply to its half, the half's
        and the row's."""
        shared = {k: v for k, v in self.shared.items() if k in self.applies.get(dp, ())}
        return {**shared, **self.halves.get(dp, {}), **{k: json.loads(v) for k, v in setting}}


def table1_cells(summaries: list[dict]) -> Cells:
    """Group runs that agree on everything but the seed into Table 1's cells (module docstring):
    a field of :data:`HALF_FIELDS` that differs only between the DP and the non-DP half (a
    recipe, ``train --preset``) belongs to the columns; any other field that differs between
    runs, to the row. Two runs of a cell at one seed are refused (:func:`refuse_repeated_seeds`)."""
    settings = [grouping_settings(s) for s in summaries]
    augmented_ks = {st["aug_mult"] for st in settings if st["aug_mult"] > 1}
    # K picks the column (1: no aug); only several K > 1 make it a row setting as well
    column_k = ("aug_mult",) if len(augmented_ks) <= 1 else ()
    varying, shared = split_settings(settings, ignore=column_k)
    halves = {dp: [st for st, s in zip(settings, summaries) if bool(s["dp"]) == dp] for dp in (False, True)}
    within = {k for half in halves.values() if half for k in split_settings(half, ignore=column_k)[0]}
    in_columns = {k for k in varying if k not in within and k in HALF_FIELDS}
    by_half = {
        dp: {k: v for k, v in split_settings(half, ignore=column_k)[1].items() if k in in_columns}
        for dp, half in halves.items()
        if half
    }
    varying = [k for k in varying if k not in in_columns]
    cells: dict[tuple, list[dict]] = {}
    for s, st in zip(summaries, settings):
        setting = tuple((k, json.dumps(st[k])) for k in varying if k in st)
        key = (s["dataset"], s["arch"], setting, st["aug_mult"] > 1, bool(s["dp"]))
        cells.setdefault(key, []).append(s)
    for runs in cells.values():
        refuse_repeated_seeds(runs)
    applies = {dp: {k for st in half for k in st} for dp, half in halves.items()}
    return Cells(cells, shared, by_half, next(iter(augmented_ks)) if len(augmented_ks) == 1 else None, applies)


def build_table1(summaries: list[dict], metric: str = "val_acc") -> Table1:
    """Table 1 of these runs (:func:`table1_cells`), beside the paper's values where the row's
    settings are the paper's."""
    grouping = table1_cells(summaries)
    cells = grouping.runs
    rows = []
    row_keys = sorted(
        {k[:3] for k in cells},
        key=lambda k: (k[0], arch_rank(k[1]), row_setting_order(k[2])),
    )
    for dataset, arch, setting in row_keys:
        paper = PAPER_TABLE1.get(dataset, {}).get(arch)
        row = {"dataset": dataset, "arch": arch, "setting": {k: json.loads(v) for k, v in setting}}
        for i, (aug, dp) in enumerate(COLUMNS):
            runs = cells.get((dataset, arch, setting, aug, dp), [])
            # each half on its own settings: a setting only one half has (e.g. canaries) decides its columns
            at_paper_setting = paper is not None and matches_paper(grouping.settings(setting, dp))
            accs = [100 * r[metric] for r in runs]
            row[_column_name(aug, dp)] = {
                "mean": float(np.mean(accs)) if accs else None,
                "std": float(np.std(accs, ddof=1)) if len(accs) > 1 else None,
                "n": len(accs),
                "seeds": sorted(r["seed"] for r in runs),
                "paper": paper[i] if at_paper_setting else None,
                "all_private": all(r.get("private_release") for r in runs) if dp and runs else None,
            }
        rows.append(row)
    return Table1(rows, grouping.shared, metric, grouping.halves, grouping.aug_mult)


def is_stand_in(summary: dict) -> bool:
    """Whether a notebook trained this run as a quick stand-in for a missing one
    (:func:`dpecnn.analysis.pages.run.load_runs` records it under ``notes``)."""
    return bool(summary.get("notes", {}).get(STAND_IN_NOTE))


def setting_groups(summaries: list[dict]) -> list[tuple[dict, list[dict]]]:
    """Runs that agree on everything but the seed: ``(settings, runs sorted by seed)`` per
    group, ``settings`` being dataset, arch, dp and the applicable settings
    (:func:`grouping_settings`), in order of dataset, arch (:data:`~dpecnn.models.ARCHS`) and settings."""
    groups: dict[str, list[dict]] = {}
    for s in summaries:
        settings = {"dataset": s["dataset"], "arch": s["arch"], "dp": s["dp"], **grouping_settings(s)}
        groups.setdefault(json.dumps(settings, sort_keys=True), []).append(s)
    for runs in groups.values():
        refuse_repeated_seeds(runs)
    decoded = {k: json.loads(k) for k in groups}
    keys = sorted(
        groups, key=lambda k: (decoded[k]["dataset"], arch_rank(decoded[k]["arch"]), settings_order(decoded[k]))
    )
    return [(decoded[k], sorted(groups[k], key=lambda r: r["seed"])) for k in keys]


def refuse_repeated_seeds(runs: list[dict]) -> None:
    """One error line when two runs of one group (the same settings) have the same seed, e.g. a
    copied run folder: counted twice, a seed would pass for two, and a pairing by seed would keep
    one of them at random."""
    folders: dict[int, str | None] = {}
    for r in runs:
        if r["seed"] in folders:
            names = ", ".join(name for name in (folders[r["seed"]], r.get("run")) if name)
            raise DpecnnError(
                f"two runs of {r['arch']} on {r['dataset']} with the same settings at seed {r['seed']}"
                f"{f' ({names})' if names else ''}: a repeated seed is not another seed; keep one of them"
            )
        folders[r["seed"]] = r.get("run")


def settings_order(settings: dict) -> tuple:
    """A sort key for settings that orders numbers (and lists of numbers, such as layouts) by
    value, not as text: ε 1, 2, 4, 7.42, 10 rather than 1, 10, 2, 4, 7.42."""

    def value(v):
        if isinstance(v, bool) or v is None:
            return (1, (str(v),))
        if isinstance(v, (int, float)):
            return (0, (v,))
        if isinstance(v, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
            return (0, tuple(v))
        return (2, (json.dumps(v, sort_keys=True),))

    return tuple((k, value(settings[k])) for k in sorted(settings))


def row_setting_order(setting: tuple) -> tuple:
    """:func:`settings_order` of a row setting as cells key it: ``(field, JSON value)`` pairs."""
    return settings_order({k: json.loads(v) for k, v in setting})


def group_label(settings: dict, fields: list[str], runs: list[dict]) -> str:
    """The arch, then each of ``fields`` the group has (dp as DP / non-DP, others as
    ``name=value``), then "(stand-in)" when a notebook trained any of its runs as one."""
    words = [settings["arch"]] + [
        ("DP" if settings[f] else "non-DP") if f == "dp" else f"{f}={format_value(settings[f])}"
        for f in fields
        if f in settings
    ]
    return " ".join(words) + (" (stand-in)" if any(is_stand_in(r) for r in runs) else "")


def seed_groups(summaries: list[dict], metric: str = "val_acc") -> list[dict]:
    """Runs that agree on everything but the seed (:func:`setting_groups`), aggregated: one
    dict per group with ``arch``, ``params``, ``layout``, ``settings``, ``mean``/``std``/``n``/``seeds`` of
    ``metric`` (as a fraction; std over seeds, ddof 1, None for one seed; ``values``: one per seed) and ``line``: the
    arch plus every setting other than layout that differs between groups (:func:`group_label`),
    so that a width sweep draws one line per setting (Fig. 1 left)."""
    groups = setting_groups(summaries)
    varying, _ = split_settings([st for st, _ in groups], ignore=("arch", "layout"))
    points = []
    for st, runs in groups:
        values = [r[metric] for r in runs]
        points.append(
            {
                "arch": st["arch"],
                "params": runs[0]["params"],
                "layout": st["layout"],
                "settings": st,
                "line": group_label(st, varying, runs),
                "mean": float(np.mean(values)),
                "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
                "n": len(values),
                "seeds": [r["seed"] for r in runs],
                "values": values,
            }
        )
    return points


def matches_paper(settings: dict) -> bool:
    """Settings the paper's Table 1 reports (:data:`PAPER_SETTING`; one it lacks is not compared)."""
    return all(settings.get(k, v) == v for k, v in PAPER_SETTING.items())


def paper_accuracy(settings: dict) -> float | None:
    """The paper's Table 1 value (%) for a group's ``settings`` (:func:`setting_groups`), or
    None when the paper has no value for these settings."""
    if not matches_paper(settings):
        return None
    column = COLUMNS.index((settings.get("aug_mult", 1) > 1, bool(settings["dp"])))
    row = PAPER_TABLE1.get(settings["dataset"], {}).get(settings["arch"])
    return row[column] if row else None


def caption(table: Table1) -> str:
    """What every number in the table is: metric, aggregation, shared settings (the budget),
    the † mark, where hyper-parameters came from, and the paper's setting."""
    shared = ", ".join(f"{k} {format_value(v)}" for k, v in table.shared.items())
    split = table.metric.split("_")[0]
    dp_cells = [r[_column_name(aug, True)]["all_private"] for r in table.rows for aug in (False, True)]
    not_private, any_dp = False in dp_cells, any(c is not None for c in dp_cells)
    parts = [
        f"{table.metric.replace('_', ' ')} (%), mean ± std over seeds (n runs; seeds in the CSV).",
        f"Settings shared by all runs they apply to: {shared}." if shared else "",
        *(
            f"{'DP' if dp else 'Non-DP'} columns: " + ", ".join(f"{k} {format_value(v)}" for k, v in half.items()) + "."
            for dp, half in sorted(table.halves.items(), reverse=True)
            if half
        ),
        f"Aug columns: batch augmentation, aug_mult {table.aug_mult} views per image." if table.aug_mult else "",
        "Settings that differ between runs are given per row." if any(r["setting"] for r in table.rows) else "",
        "DP settings (epsilon, delta, max_grad_norm, accountant calibrating σ) apply to the DP columns.",
        "† DP runs that are not private releases (--reproducible: noise derived from the seed)."
        if not_private
        else "All DP runs are private releases."
        if any_dp
        else "",
        "Hyper-parameters: dpecnn's default optimiser and learning rate were chosen on BloodMNIST's validation "
        "split; validation accuracies are not independent of that choice."
        if split == "val"
        else "Hyper-parameters were chosen on BloodMNIST's validation split; the test split played no part in it.",
        f"Paper: Hölzl et al. (2022), Table 1 (validation accuracy), shown for rows at {PAPER_SETTING_TEXT}.",
    ]
    return " ".join(p for p in parts if p)


def _cell(c: dict, pm: str) -> tuple[str, str]:
    spread = "" if c["std"] is None else f"{pm}{c['std']:.2f}"
    mark = "†" if c["all_private"] is False else ""
    ours = "–" if c["mean"] is None else f"{c['mean']:.2f}{spread}{mark} (n={c['n']})"
    return ours, "–" if c["paper"] is None else f"{c['paper']:.2f}"


def _setting_text(row: dict) -> str:
    return ", ".join(f"{k}={format_value(v)}" for k, v in row["setting"].items())


def _csv(table: Table1, names: list[str]) -> str:
    """One row per table row, every cell's numbers in their own columns (pandas quotes what needs it)."""
    records = []
    for r in table.rows:
        record = {"dataset": r["dataset"], "arch": r["arch"], "setting": _setting_text(r)}
        for n in names:
            c = r[n]
            record |= {f"{n} {k}": "" if c[k] is None else f"{c[k]:.4g}" for k in ("mean", "std", "n")}
            record[f"{n} seeds"] = " ".join(map(str, c["seeds"]))
            record[f"{n} paper"] = "" if c["paper"] is None else f"{c['paper']:.4g}"
            record[f"{n} all_private"] = "" if c["all_private"] is None else str(c["all_private"]).lower()
        records.append(record)
    return pd.DataFrame.from_records(records).to_csv(index=False)


def latex_escape(text: str) -> str:
    """``text`` escaped as pandas' ``Styler`` escapes a cell (for the caption, which it leaves as is)."""
    cell = pd.DataFrame([[text]]).style.hide(axis="index").hide(axis="columns").format(escape="latex")
    return cell.to_latex().splitlines()[1].removesuffix(" \\\\")


def _latex(table: Table1, names: list[str], with_setting: bool) -> str:
    """Through pandas' ``Styler.to_latex``: cells escaped (an own dataset may be named ``a,b_c&d``),
    a two-level header (column, ours/paper), booktabs rules; then ±, †, – and the run counts typeset."""
    columns = [("Dataset", ""), ("Group", "")] + ([("Setting", "")] if with_setting else [])
    columns += [(n, part) for n in names for part in ("ours", "paper")]
    body = [
        [r["dataset"], r["arch"].replace("O2", "O(2)")]
        + ([_setting_text(r)] if with_setting else [])
        + [c for n in names for c in _cell(r[n], " ± ")]
        for r in table.rows
    ]
    frame = pd.DataFrame(body, columns=pd.MultiIndex.from_tuples(columns))
    text = (
        frame.style.hide(axis="index")
        .format(escape="latex")
        .format_index(escape="latex", axis="columns")
        .to_latex(
            caption=latex_escape(caption(table)),
            environment="table",
            position_float="centering",
            hrules=True,
            multicol_align="c",
            column_format="ll" + ("l" if with_setting else "") + "rr" * len(names),
        )
    )
    for plain, tex in LATEX_SYMBOLS.items():
        text = text.replace(plain, tex)
    return text.replace(" (n=", r" \scriptsize(")


def render(table: Table1, fmt: str) -> str:
    """``fmt``: ``csv``, ``md`` or ``latex``."""
    names = [_column_name(a, d) for a, d in COLUMNS]
    with_setting = any(r["setting"] for r in table.rows)
    if fmt == "csv":
        return _csv(table, names)
    if fmt == "latex":
        return _latex(table, names, with_setting)
    if fmt == "md":
        lines = [
            "| dataset | group | "
            + ("setting | " if with_setting else "")
            + " | ".join(f"{n} (ours) | {n} (paper)" for n in names)
            + " |",
            "|---|---|" + ("---|" if with_setting else "") + "---|---|" * len(names),
        ]
        for r in table.rows:
            cells = ([_setting_text(r)] if with_setting else []) + [c for n in names for c in _cell(r[n], " ± ")]
            lines.append(f"| {r['dataset']} | {r['arch']} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n\n" + caption(table) + "\n"
    raise ValueError(f"unknown format '{fmt}'; choose csv, md or latex")


def same_settings_except(a: dict, b: dict, ignore=("arch",)) -> bool:
    """Whether two groups' settings agree on every field both have, except ``ignore``."""
    return all(a[k] == b[k] for k in (set(a) & set(b)) - set(ignore))


def paired_rows(summaries: list[dict], metric: str = "val_acc", base_arch: str = "e") -> list[dict]:
    """Every group of another arch against the ``base_arch`` group with the same other
    settings, ``metric`` paired by seed (:func:`~dpecnn.analysis.stats.paired_difference`);
    ``setting`` names what else tells the group apart (e.g. ``readout=orientation``), leaving out a
    recipe's or DP field (:data:`HALF_FIELDS`) that has one value in each half. The rows
    are one family: ``p_holm`` is each test's Holm-adjusted p-value among the ``family`` tests,
    and ``significant_5pct`` is decided on it (:func:`~dpecnn.analysis.stats.holm`)."""
    from dpecnn.analysis.stats import holm, is_test, paired_difference

    groups = setting_groups(summaries)
    varying, _ = split_settings([s for s, _ in groups], ignore=("dataset", "arch", "dp"))
    # a recipe's or DP field with one value per half says no more than "DP" / "non-DP" (the caption states it)
    within = {k for dp in (False, True) for k in split_settings([s for s, _ in groups if s["dp"] == dp])[0]}
    named = [k for k in varying if k not in HALF_FIELDS or k in within]
    rows = []
    for settings, runs in groups:
        base = next(
            (
                r
                for s, r in groups
                if s["arch"] == base_arch and settings["arch"] != base_arch and same_settings_except(s, settings)
            ),
            None,
        )
        if base is None:
            continue
        test = paired_difference({r["seed"]: r[metric] for r in runs}, {r["seed"]: r[metric] for r in base})
        setting = " ".join(f"{k}={format_value(settings[k])}" for k in named if k in settings)
        rows.append(
            {
                "dataset": settings["dataset"],
                "dp": settings["dp"],
                "arch": settings["arch"],
                "setting": setting,
                "versus": base_arch,
                "metric": metric,
                **test,
            }
        )
    adjusted = holm([row["p_value"] for row in rows])
    family = sum(map(is_test, adjusted))
    for row, p_holm in zip(rows, adjusted):
        row |= {"family": family, "p_holm": p_holm, "significant_5pct": is_test(p_holm) and p_holm < 0.05}
    return rows


def _signed(value: float) -> str:
    return f"{value:+.2f}".replace("-", "−")


def paired_verdict(row: dict) -> str:
    """A :func:`paired_rows` row in words, with its evidence: ``bloodmnist DP C4 − e (val acc):
    +2.12 ± 2.60 points over seeds 0, 1, 2, p = 0.29, Holm-adjusted over 8 tests p = 1: not
    significant: no conclusion`` (the wording of :func:`~dpecnn.analysis.stats.no_conclusion`),
    decided on the Holm-adjusted p-value."""
    from dpecnn.analysis.stats import decisive_p, family_text, no_conclusion, p_text

    what = (
        f"{row['dataset']} {'DP' if row['dp'] else 'non-DP'} {row['arch']}"
        f"{' ' + row['setting'] if row['setting'] else ''} − {row['versus']} ({row['metric'].replace('_', ' ')})"
    )
    seeds = ", ".join(map(str, row["seeds"]))
    if row["n"] == 0:
        return f"{what}: no seed in common with {row['versus']}, nothing to pair: no conclusion"
    if row["n"] < 2:
        return f"{what}: {_signed(100 * row['mean_diff'])} points (seed {seeds}): {no_conclusion(None, row['n'])}"
    spread = f"{_signed(100 * row['mean_diff'])} ± {100 * row['std_diff']:.2f} points over seeds {seeds}"
    answer = no_conclusion(decisive_p(row["p_value"], row["family"], row["p_holm"]), row["n"]) or "significant"
    return f"{what}: {spread}, {p_text(row['p_value'])}{family_text(row['family'], row['p_holm'])}: {answer}"


def write_table1(runs_dir: str | Path, out_dir: str | Path, metric: str = "val_acc") -> dict[str, Path]:
    """Write ``table1.csv``, ``table1.md`` (with the paired verdicts) and ``table1.tex``, and
    ``paired.csv`` when there are pairs (else an earlier one is removed), atomically for the runs
    below ``runs_dir``."""
    summaries = finished_summaries(runs_dir)
    table = build_table1(summaries, metric)
    paired = paired_rows(summaries, metric)
    paths = {}
    for fmt, ext in (("csv", "csv"), ("md", "md"), ("latex", "tex")):
        paths[fmt] = Path(out_dir) / f"table1.{ext}"
        text = render(table, fmt)
        if fmt == "md" and paired:
            text += (
                "\nPaired by seed (paired t-test; the lines are one family, each decided on its Holm-adjusted "
                "p-value). Without DP a seed fixes every group's data order and augmentation draws; under DP "
                "sampling and noise are secret, so there the pairing shares nothing, which leaves the test valid:"
                "\n\n" + "".join(f"- {paired_verdict(r)}\n" for r in paired)
            )
        io.write_bytes(paths[fmt], text.encode())
    paired_csv = Path(out_dir) / "paired.csv"
    if paired:
        paths["paired"] = paired_csv
        io.write_bytes(paired_csv, pd.DataFrame(paired).to_csv(index=False).encode())
    else:
        paired_csv.unlink(missing_ok=True)
    return paths
