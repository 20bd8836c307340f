"""Equal tuning: does each group's own DP search support the shared recipe? (issue 33)

Every group trains under DP with the paper recipe's DP half (:data:`~dpecnn.train.config.RECIPES`),
which the conventional model's search chose. So that no group is judged on a recipe tuned for
another, ``scripts/recipe_search.sh`` gives C4 the same search (every configuration at seed 0, the
schedule at seeds 0–2) and O(2) e's best configurations at seed 0. Per group, by a rule fixed
before C4's and O(2)'s runs were seen, on validation accuracy (what the search selects on; test
accuracy is never used for a choice):

* an alternative measured on ≥ 2 search seeds replaces the recipe for that group only when it is
  more accurate with Welch p < 0.05 (:func:`~dpecnn.analysis.stats.welch_difference`);
* an alternative that beats the recipe at seed 0, measured on that seed alone, is a *candidate*:
  one seed is no evidence (e's recipe varies by about ±1.2 points between seeds), so it would
  need the other search seeds before it could replace the recipe;
* otherwise the search supports the shared recipe for the group; an alternative measured on
  ≥ 2 seeds that is above the recipe on average, but not significantly, is named with its evidence.
  An alternative measured at one seed other than 0 only, or one whose test has no p-value (the
  recipe at one seed, no spread, or a NaN among the values), is not judged, and is named as such.
"""

from __future__ import annotations

from dpecnn.analysis.pages import table
from dpecnn.analysis.stats import Estimate, is_test, welch_difference
from dpecnn.train.config import TrainConfig, with_recipe

RECIPE = "paper"
ALPHA = 0.05


def is_recipe_run(summary: dict) -> bool:
    """Whether a search run is the recipe's DP half for its dataset, group and seed (same identity)."""
    settings = {"dp": True, "dataset": summary["dataset"], "arch": summary["arch"], "seed": summary["seed"]}
    return TrainConfig(**with_recipe(RECIPE, settings)).identity_hash() == summary["identity"]


def _difference_text(values: list[float], recipe: list[float]) -> str:
    return f"{Estimate.over_seeds(values).text(2, 100)} against the recipe's {Estimate.over_seeds(recipe).text(2, 100)}"


def tuning_verdicts(summaries: list[dict]) -> list[str]:
    """One line per dataset and group with DP search runs: what its search supports (module docstring)."""
    lines = []
    cells = {(s["dataset"], s["arch"]) for s in summaries if s["dp"]}
    for dataset, arch in sorted(cells, key=lambda c: (c[0], table.arch_rank(c[1]))):
        runs = [s for s in summaries if s["dp"] and (s["dataset"], s["arch"]) == (dataset, arch)]
        recipe_runs, other_runs = [], []
        for s in runs:  # each run's identity is checked once
            (recipe_runs if is_recipe_run(s) else other_runs).append(s)
        recipe = {s["seed"]: s["val_acc"] for s in recipe_runs}
        where = f"{dataset}, {arch} under DP ({len(runs)} search run{'s' if len(runs) > 1 else ''})"
        if 0 not in recipe:
            lines.append(f"{where}: the recipe was not run at seed 0, so the search cannot judge it")
            continue
        alternatives = table.setting_groups(other_runs)
        if not alternatives:
            lines.append(f"{where}: only the recipe measured so far, no comparison yet")
            continue
        recipe_settings = table.setting_groups(recipe_runs)[0][0]
        replaced, above_on_average, candidates, unjudged = [], [], [], []
        for settings, group in alternatives:
            values = [s["val_acc"] for s in group]
            # every field that tells it from the recipe, also one only it has (e.g. aug_rot90)
            differs = sorted(
                k for k in settings.keys() | recipe_settings.keys() if settings.get(k) != recipe_settings.get(k)
            )
            name = table.group_label(settings, differs, group)
            if len(group) >= 2:
                contrast = welch_difference(values, list(recipe.values()))
                evidence = f"{name} ({_difference_text(values, list(recipe.values()))}; {contrast.text()})"
                if not is_test(contrast.p_value):  # e.g. the recipe at seed 0 only: there is no test
                    unjudged.append(evidence)
                elif contrast.estimate > 0 and contrast.p_value < ALPHA:
                    replaced.append(evidence)
                elif contrast.estimate > 0:
                    above_on_average.append(evidence)
            elif group[0]["seed"] != 0:  # the rule judges one seed only at seed 0
                unjudged.append(f"{name} (seed {group[0]['seed']} only)")
            elif values[0] > recipe[0]:
                candidates.append((values[0] - recipe[0], name))
        if replaced:
            lines.append(f"{where}: the search supports replacing the recipe: {'; '.join(replaced)}")
            continue
        not_judged = "not judged (one seed other than 0, no spread on a side, or an undefined value): " + "; ".join(
            unjudged
        )
        judged = len(alternatives) - len(unjudged)
        if not judged:
            lines.append(f"{where}: no alternative the rule can judge yet; {not_judged}")
            continue
        recipe_text = Estimate.over_seeds(list(recipe.values())).text(2, 100)
        verdict = (
            f"{where}: the search supports the shared recipe (val acc {recipe_text}): of the {judged} "
            f"other configuration{'s' if judged != 1 else ''} the rule can judge so far, none is better by it"
        )
        if unjudged:
            verdict += f"; {not_judged}"
        if above_on_average:
            verdict += "; above it on average over seeds, not significantly: " + "; ".join(above_on_average)
        if candidates:
            best = sorted(candidates, reverse=True)
            verdict += "; above it at seed 0 alone, no evidence without the other seeds: " + ", ".join(
                f"{name} (+{100 * gain:.2f} points)" for gain, name in best
            )
        lines.append(verdict)
    return lines
