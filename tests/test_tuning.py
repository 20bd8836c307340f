"""Equal tuning: the rule that decides whether a group's own DP search supports the shared recipe,
on search runs with known accuracies."""

import dataclasses

from dpecnn.analysis.pages.tuning import is_recipe_run, tuning_verdicts
from dpecnn.train.config import TrainConfig, with_recipe


def search_run(arch: str, seed: int, val_acc: float, **changes) -> dict:
    cfg = TrainConfig(**with_recipe("paper", {"dp": True, "dataset": "bloodmnist", "arch": arch, "seed": seed}))
    cfg = dataclasses.replace(cfg, **changes)
    return {
        "dataset": "bloodmnist",
        "arch": arch,
        "dp": True,
        "seed": seed,
        "settings": cfg.identity(),
        "identity": cfg.identity_hash(),
        "val_acc": val_acc,
    }


RECIPE_E = [search_run("e", s, v) for s, v in ((0, 0.86), (1, 0.87), (2, 0.85))]


def test_an_alternative_better_over_the_search_seeds_replaces_the_recipe():
    cosine = [search_run("e", s, v, lr_schedule="cosine") for s, v in ((0, 0.90), (1, 0.905), (2, 0.91))]
    assert is_recipe_run(RECIPE_E[0]) and not is_recipe_run(cosine[0])
    (line,) = tuning_verdicts(RECIPE_E + cosine)
    assert line.startswith("bloodmnist, e under DP (6 search runs): the search supports replacing the recipe: e ")
    assert "lr_schedule=cosine" in line and "p = " in line


def test_one_seed_above_the_recipe_is_a_candidate_and_no_better_alternative_keeps_it():
    worse = [search_run("C4", s, v, lr_schedule="cosine") for s, v in ((0, 0.85), (1, 0.86), (2, 0.84))]
    recipe_c4 = [search_run("C4", s, v) for s, v in ((0, 0.88), (1, 0.89), (2, 0.87))]
    higher_at_0 = search_run("C4", 0, 0.90, lr=1.0)
    lower_at_0 = search_run("C4", 0, 0.80, lr=0.1)
    (line,) = tuning_verdicts(recipe_c4 + worse + [higher_at_0, lower_at_0])
    assert line.startswith("bloodmnist, C4 under DP (8 search runs): the search supports the shared recipe (val acc 88")
    assert "of the 3 other configurations the rule can judge so far, none is better by it" in line
    assert line.endswith("no evidence without the other seeds: C4 lr=1 (+2.00 points)"), line
    # one run at a seed other than 0 is not judged, and so not counted among those found no better
    (line,) = tuning_verdicts(recipe_c4 + worse + [higher_at_0, lower_at_0, search_run("C4", 1, 0.95, lr=2.0)])
    assert "of the 3 other configurations the rule can judge so far" in line
    assert (
        "not judged (one seed other than 0, no spread on a side, or an undefined value): C4 lr=2 (seed 1 only)" in line
    ), line
    # nothing the rule can judge: no verdict on the recipe
    (line,) = tuning_verdicts([recipe_c4[0], search_run("C4", 1, 0.95, lr=2.0)])
    assert line == (
        "bloodmnist, C4 under DP (2 search runs): no alternative the rule can judge yet; not judged (one seed "
        "other than 0, no spread on a side, or an undefined value): C4 lr=2 (seed 1 only)"
    )
    # an alternative over seeds against the recipe at seed 0 only has no test: not "above it, not significantly"
    (line,) = tuning_verdicts([recipe_c4[0], higher_at_0, search_run("C4", 1, 0.91, lr=1.0), lower_at_0])
    assert "of the 1 other configuration the rule can judge so far" in line
    assert "not judged (one seed other than 0, no spread on a side, or an undefined value): C4 lr=1 (90.50" in line, (
        line
    )
    assert "not significantly" not in line
    # a NaN among an alternative's values (a diverged run) leaves its test undefined: not judged, not "no better"
    diverged = [search_run("C4", 0, float("nan"), lr=3.0), search_run("C4", 1, 0.95, lr=3.0)]
    (line,) = tuning_verdicts(recipe_c4 + worse + diverged)
    assert "of the 1 other configuration the rule can judge so far" in line, line
    assert "or an undefined value): C4 lr=3 (" in line and "p undefined" in line, line
    assert tuning_verdicts(recipe_c4[:1]) == [
        "bloodmnist, C4 under DP (1 search run): only the recipe measured so far, no comparison yet"
    ]
    assert "cannot judge it" in tuning_verdicts([higher_at_0])[0]


def test_an_alternative_above_the_recipe_on_average_but_not_significantly_is_named_with_its_evidence():
    recipe_c4 = [search_run("C4", s, v) for s, v in ((0, 0.88), (1, 0.90), (2, 0.86))]
    noisy_higher = [search_run("C4", s, v, lr=1.0) for s, v in ((0, 0.91), (2, 0.87))]
    (line,) = tuning_verdicts(recipe_c4 + noisy_higher)
    assert "the search supports the shared recipe" in line and "none is better by it" in line
    assert line.endswith(
        "; above it on average over seeds, not significantly: C4 lr=1 (89.00 ± 2.83 (2 seeds) against the "
        "recipe's 88.00 ± 2.00 (3 seeds); +1.00 points [95 % CI −10.95, +12.95], p = 0.71 (Welch; 2, 3 seeds))"
    ), line
    lower = [search_run("C4", s, v, lr=1.0) for s, v in ((0, 0.85), (2, 0.86))]
    assert "above it on average" not in tuning_verdicts(recipe_c4 + lower)[0]


def test_alternatives_are_named_by_every_setting_that_tells_them_from_the_recipe():
    """Two augmented alternatives that differ only in a setting the recipe does not have
    (90° rotations apply only with augmentation) get two names."""
    recipe_c4 = [search_run("C4", s, v) for s, v in ((0, 0.88), (1, 0.89), (2, 0.87))]
    rotated = search_run("C4", 0, 0.91, aug_mult=4, aug_rot90=True)
    plain = search_run("C4", 0, 0.90, aug_mult=4, aug_rot90=False)
    (line,) = tuning_verdicts(recipe_c4 + [rotated, plain])
    assert line.endswith("C4 aug_mult=4 aug_rot90=True (+3.00 points), C4 aug_mult=4 aug_rot90=False (+2.00 points)"), (
        line
    )
