"""The generated blocks of README and the docs, so that no measured number is typed by hand.

A block is the text between ``<!-- generated: NAME … -->`` and ``<!-- /generated: NAME -->``
(:func:`markers`) in a Markdown file; :data:`BLOCKS` names what writes each one, from the
repository (``results/``, the benchmark's saved step costs, the code itself).
``python -m dpecnn report`` rewrites every block of README.md and docs/*.md; a test fails when
a committed block differs from what its writer gives.

The results are computed from the run records kept in ``results/<folder>/runs/`` (never read
back from a generated table), and the protocol is checked on the way: a run of the recipe search
(same identity) among the reported runs is an error, not a footnote. Results tables that a
results folder's own command writes (``audit.md``, ``throughput.md``) are shown as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from dpecnn import io
from dpecnn.analysis.pages import privacy_utility, table, tuning
from dpecnn.errors import DpecnnError

SEARCH, REPORTED = "recipe_search", ("privacy_utility", "table1", "width")  # results/: the search, reported runs
DOCUMENTS = ("README.md", "docs/*.md")  # the files whose blocks `report` rewrites


def markers(name: str) -> tuple[str, str]:
    return (f"<!-- generated: {name} by `python -m dpecnn report`; do not edit -->", f"<!-- /generated: {name} -->")


def _runs(folder: Path) -> list[dict]:
    return table.collect_summaries(folder / "runs") if (folder / "runs").is_dir() else []


def check_search_apart(runs: dict[str, list[dict]]) -> None:
    """No reported folder may hold a run of the search (same identity); ``runs`` by folder name."""
    searched = {s["identity"]: s["run"] for s in runs[SEARCH]}
    for name in REPORTED:
        for s in runs[name]:
            if s["identity"] in searched:
                raise DpecnnError(
                    f"results/{name}/runs/{s['run']} is run {searched[s['identity']]} of the recipe "
                    "search: reported runs must use seeds the search did not"
                )


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def _command(folder: Path) -> str | None:
    """The command recorded in ``folder/COMMAND`` or in a folder above it below ``results/`` (what
    made the folder), if any."""
    for candidate in (folder, *folder.parents):
        if (candidate / "COMMAND").is_file():
            return (candidate / "COMMAND").read_text().strip() or None
        if candidate.name == "results":
            return None
    return None


def _made_by(folder: Path) -> str:
    command = _command(folder)
    if not command:
        return ""
    ray = (
        "; Ray trained two runs at a time, so the elapsed time was about half the sum"
        if "ENGINE=ray" in command
        else ""
    )
    return f"Made by `{command}`{ray}."


def privacy_utility_part(folder: Path, runs: list[dict]) -> list[str]:
    if not runs:
        return ["**Privacy–utility:** not measured yet (`scripts/privacy_utility.sh`)."]
    points = privacy_utility.privacy_points(runs)
    test, val = (privacy_utility.render_markdown(points, m).split("\n\nVerdicts")[0] for m in ("test_acc", "val_acc"))
    at_paper = [v for v in privacy_utility.privacy_utility_verdict(points, "test_acc").splitlines() if "ε = 7.42" in v]
    wall = [s["wall_time_s"] for s in runs]
    devices = ", ".join(sorted({str(s.get("device")) for s in runs}))
    return [
        "**Privacy–utility** on BloodMNIST, test accuracy (%), paper recipe "
        "([tables and every budget's verdicts](results/privacy_utility/privacy_utility.md),"
        " [one row per run](results/privacy_utility/runs.csv)):",
        "",
        test.rstrip(),
        "",
        "Validation accuracy, which chose the recipe and which the paper reports, beside the paper's values:",
        "",
        val.rstrip(),
        "",
        "![accuracy against ε and the privacy–utility gap](results/privacy_utility/privacy_utility.png)",
        "",
        "At the paper's budget (ε = 7.42, δ = 1e-5):",
        "",
        *([f"- {v}" for v in at_paper] or ["- no group is compared with e at this budget yet"]),
        "",
        f"Cost: {len(runs)} runs whose wall times add up to {_hours(sum(wall))} (device: {devices}; one run "
        f"{_hours(min(wall))} to {_hours(max(wall))}). {_made_by(folder)}".rstrip(),
    ]


def search_part(runs: dict[str, list[dict]]) -> list[str]:
    search = runs[SEARCH]
    if not search:
        return ["**Recipe search:** not measured yet (`scripts/recipe_search.sh`)."]
    seeds = ", ".join(map(str, sorted({s["seed"] for s in search})))
    reported = sorted({s["seed"] for name in REPORTED for s in runs[name]})
    apart = (
        f"; the reported runs use seeds {', '.join(map(str, reported))} and none of them is a run of the search"
        if reported
        else ""
    )
    return [
        f"**Recipe search** ([runs](results/recipe_search/runs.csv), "
        f"[grouped](results/recipe_search/table1.md)): {len(search)} runs on the search seeds {seeds}{apart}.",
        "",
        "**Equal tuning** (does each group's own DP search support the shared recipe? validation accuracy; "
        "the rule, fixed before C4's and O(2)'s searches ran, is in `dpecnn/analysis/pages/tuning.py`):",
        "",
        *(f"- {line}" for line in tuning.tuning_verdicts(search)),
    ]


def results_block(root: Path) -> str:
    """What README shows of ``results/``: the privacy–utility table, its verdicts and the search."""
    results = root / "results"
    runs = {name: _runs(results / name) for name in (SEARCH, *REPORTED)}
    check_search_apart(runs)
    return "\n".join(
        privacy_utility_part(results / "privacy_utility", runs["privacy_utility"]) + [""] + search_part(runs)
    )


def _shown_table(root: Path, relative: str, title: str) -> str:
    path = root / relative
    if not path.is_file():
        return f"**{title}:** not measured yet."
    text = re.sub(r"^# .*\n+", "", path.read_text().strip())  # the page has its own heading
    command = _command(path.parent)
    made = f"made by `{command}`" if command else "no COMMAND recorded"
    return f"**{title}** ([{relative}]({relative}); {made}):\n\n{text}"


def _plan_part(root: Path, relative: str, title: str = "Still to train") -> str:
    """How many runs of a block ``sweep --plan`` (as its script saved it) still lists, and their projected cost."""
    path = root / relative
    if not path.is_file():
        return f"**{title}:** no plan saved."
    text = path.read_text()
    totals = re.findall(r"^(\d+) runs \((\d+) finished\); projected (.+?) of training", text, re.M)
    if not totals:  # sweep --plan's summary line changed: counting nothing would read as "0 of 0 runs"
        raise DpecnnError(f"{relative}: no `N runs (M finished); projected …` line of sweep --plan")
    runs, finished = sum(int(t[0]) for t in totals), sum(int(t[1]) for t in totals)
    projected = " + ".join(t[2] for t in totals)
    measured = re.findall(r"took ([\d.]+)× their projection .* what is left takes (.+)$", text, re.M)
    really = (
        f"; at the wall-time ratio of the block's finished runs ({', '.join(m[0] + '×' for m in measured)}), "
        f"{' + '.join(m[1] for m in measured)}"
        if measured
        else ""
    )
    return (
        f"**{title}** ([{relative}]({relative})): {runs - finished} of {runs} runs, projected {projected} "
        f"of training steps at the reference machine's step costs{really}. On one GPU: not projected, as the "
        "repository holds CPU step costs only; on a GPU, `python -m dpecnn.bench --save` saves its step costs and "
        "the block's `sweep --plan --device cuda` projects these runs from them (`scripts/gpu_check.sh` reports "
        "the whole Table 1 grid's)."
    )


def results_page_block(root: Path) -> str:
    """docs/results.md: README's block, Table 1 and the width sweep with what is left of each, then the audit
    and the Ray throughput, as their commands wrote them."""
    return "\n\n".join(
        [
            results_block(root),
            _shown_table(root, "results/table1/table1.md", "Table 1, BloodMNIST block (test accuracy)"),
            _plan_part(root, "results/table1/PLAN.md"),
            _shown_table(root, "results/table1/gaps.md", "The price of privacy, Table 1 cells"),
            _shown_table(root, "results/width/width.md", "Fig. 1 left, BloodMNIST: accuracy against parameters, DP"),
            "![test accuracy against parameters under DP](results/width/accuracy_vs_params.png)",
            _plan_part(root, "results/width/PLAN.md", "Width sweep still to train"),
            _shown_table(root, "results/audit/audit.md", "Privacy audit"),
            _shown_table(root, "results/ray_throughput/throughput.md", "Ray throughput"),
        ]
    )


def benchmark_block(root: Path) -> str:
    """The step costs that ``python -m dpecnn.bench --save`` recorded for the 2-core reference machine."""
    import pandas as pd

    costs = io.read_json(root / "dpecnn/train/reference_cpu_step_costs.json")
    runs_csv = root / "results/step_costs/runs.csv"
    per_run = pd.read_csv(runs_csv) if runs_csv.is_file() else None
    made = _command(runs_csv.parent)
    rows = [
        "| arch | params | non-DP step | DP step | DP / non-DP | DP / non-DP, each run | DP / non-DP, one thread "
        "| DP / Opacus' DP step |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def ratios(arch: str, threads: int) -> str:
        if per_run is None:
            return "–"
        runs = per_run[(per_run.arch == arch) & (per_run.threads == threads)].sort_values("run")
        return ", ".join(f"{r:.2f}" for r in runs.dp_over_nondp) or "–"

    for arch in ("e", "C1", "C4", "C8", "C16", "O2"):
        c = costs[arch]
        opacus = f"{c['dp_over_opacus']:.2f}" if c.get("dp_over_opacus") else "–"
        rows.append(
            f"| {arch} | {c['params']:,} | {c['nondp_step_s']:.3g} s | {c['dp_step_s']:.3g} s | "
            f"{c['dp_over_nondp']:.2f} | {ratios(arch, costs['threads'])} | {ratios(arch, 1)} | {opacus} |"
        )
    layout = "-".join(map(str, costs["layout"]))
    return "\n".join(
        rows
        + [
            "",
            f"Batch {costs['batch']}, layout {layout}, {costs['device']} with {costs['threads']} threads, torch "
            f"{costs['torch']}, {costs['date']}: {costs['note']}. Saved in "
            "`dpecnn/train/reference_cpu_step_costs.json`, the costs `sweep --plan` uses on a CPU without its own "
            "benchmark" + (f"; each run's ratio in `results/step_costs/runs.csv` (`{made}`)." if made else "."),
        ]
    )


def memory_block(root: Path) -> str:
    """Peak RSS of loading and training (``python -m dpecnn.bench memory --save``) and the command
    line's answer time (``python -m dpecnn.bench startup --save``)."""
    import csv

    folder = root / "results/memory"
    rows = list(csv.DictReader((folder / "runs.csv").open()))
    lines = [
        "| case | images | held (uint8) | as float32 would be | RSS after imports | peak, data loaded | peak, trained "
        "| source |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {int(r['images']):,} | {float(r['uint8_mb']):,.0f} MB | "
            f"{float(r['float32_mb']):,.0f} MB | {float(r['rss_imports_mb']):,.0f} MB | "
            f"{float(r['peak_loaded_mb']):,.0f} MB | {float(r['peak_trained_mb']):,.0f} MB | {r['source']} |"
        )
    lines += [
        "",
        f"Trained: {rows[0]['steps']} DP steps of e at batch {rows[0]['batch']}, then 256 validation and 256 test "
        f"images evaluated. Made by `{_command(folder)}`.",
    ]
    startup = io.read_json(root / "results/startup/startup.json")
    lines += ["", "| command | seconds to answer (median) |", "|---|---:|"]
    lines += [f"| `{name}` | {seconds:.2f} |" for name, seconds in startup["seconds"].items()]
    lines += [
        "",
        f"Median of {startup['repeats']} fresh interpreters, Python {startup['python']}, {startup['date']}; "
        f"`{startup['command']}`.",
    ]
    return "\n".join(lines)


def parameters_block(root: Path) -> str:
    """Trainable parameters of every group at 8-16-32 under both field rules (computed by building the models)."""
    from dpecnn.models import DEFAULT_LAYOUT, parameter_table

    rules = {rule: parameter_table(DEFAULT_LAYOUT, fields=rule) for rule in ("layout", "fixed-params")}
    rows = [
        "| arch | `layout` fields | params | `fixed-params` fields | params | paper |",
        "|---|---|---:|---|---:|---:|",
    ]
    for a, b in zip(rules["layout"], rules["fixed-params"]):
        paper = f"{a['paper'] // 1000}k" if a["paper"] else "–"
        rows.append(
            f"| {a['arch']} | {'-'.join(map(str, a['fields']))} | {a['params']:,} | "
            f"{'-'.join(map(str, b['fields']))} | {b['params']:,} | {paper} |"
        )
    return "\n".join(rows + ["", "3 input channels, 8 classes (BloodMNIST); `python -m dpecnn models --fields all`."])


def not_covered_block(root: Path) -> str:
    from dpecnn.privacy.coverage import markdown_list

    return markdown_list()


def symmetry_block(root: Path) -> str:
    """docs/models.md: each probe report in ``results/symmetry`` (``scripts/symmetry_results.sh``)."""
    reports = sorted((root / "results/symmetry").glob("probe_*.json"))
    if not reports:
        return "**Symmetry probe:** not measured yet (`scripts/symmetry_results.sh`)."
    rows = [
        "| dataset | images (train / val) | seeds | transform detected % (95 % over images) | task acc % | "
        "breaks | largest subgroup kept | smallest showable break (points) |",
        "|---|---|---|---|---:|---|---|---:|",
    ]
    verdicts = []
    for path in reports:
        r = io.read_json(path)
        if "seeds" not in r:
            raise DpecnnError(f"{path}: a one-seed probe report; run scripts/symmetry_results.sh again")
        lo, hi = r["detection_interval"]
        broken = [n for n, b in zip(r["names"], r["breaks"], strict=True) if b] or ["none"]
        rows.append(
            f"| {r['config']['dataset']} | {r['n_train']} / {r['n_eval']} | {len(r['seeds'])} | "
            f"{100 * r['detection_accuracy']:.1f} ({100 * lo:.1f}–{100 * hi:.1f}) | {100 * r['accuracy']:.1f} | "
            f"{', '.join(broken)} | {' or '.join(r['keeping'])} | {100 * max(r['smallest_break']):.1f} |"
        )
        verdicts.append(f"* **{r['config']['dataset']}**: {r['verdict']}")
    made = _made_by(root / "results/symmetry")
    return "\n".join(rows + ["", *verdicts, "", f"Not covered by ε (the probe trains without DP). {made}".strip()])


BLOCKS: dict[str, Callable[[Path], str]] = {
    "symmetry": symmetry_block,
    "results": results_block,
    "results-page": results_page_block,
    "benchmark": benchmark_block,
    "memory": memory_block,
    "parameters": parameters_block,
    "not-covered": not_covered_block,
}


def documents(root: Path) -> list[Path]:
    return [p for pattern in DOCUMENTS for p in sorted(root.glob(pattern))]


def render(text: str, root: Path, source: str = "text") -> str:
    """``text`` with every generated block rewritten by its writer."""
    pattern = re.compile(r"<!-- generated: ([\w-]+) [^>]*-->\n.*?<!-- /generated: \1 -->\n", re.S)
    for name in re.findall(r"<!-- generated: ([\w-]+) ", text):
        if name not in BLOCKS:
            raise DpecnnError(f"{source}: unknown generated block {name!r}; known: {', '.join(BLOCKS)}")
    if len(pattern.findall(text)) != text.count("<!-- generated: "):
        raise DpecnnError(f"{source}: a generated block lacks its closing '<!-- /generated: NAME -->' line")

    def write(match: re.Match) -> str:
        begin, end = markers(match.group(1))
        return f"{begin}\n\n{BLOCKS[match.group(1)](root).strip()}\n\n{end}\n"

    return pattern.sub(write, text)


def stale(root: str | Path = ".") -> list[Path]:
    """The documents whose generated blocks differ from what their writers give."""
    root = Path(root)
    return [p for p in documents(root) if render(p.read_text(), root, str(p)) != p.read_text()]


def update(root: str | Path = ".") -> list[Path]:
    """Rewrite the generated blocks of every document; the documents that changed."""
    root, changed = Path(root), []
    for path in documents(root):
        text = path.read_text()
        new = render(text, root, str(path))
        if new != text:
            io.write_bytes(path, new.encode())
            changed.append(path)
    return changed
