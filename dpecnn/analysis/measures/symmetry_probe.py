"""Does a dataset have a canonical orientation? A symmetry probe, run before any DP training.

Both measurements use the 8 elements ``T_k`` of the dihedral group D4 (flip, then a rotation by
a multiple of 90°), which map the pixel grid onto itself exactly:

1. **Orientation detectability.** A small conventional CNN (ResNet-9 ``e``, no DP) learns which
   ``T_k`` was applied to a training image (``k`` uniform), and is tested on validation images,
   each under all 8 transforms. Chance is 1/8. Accuracy above chance means the *images* are not
   D4-invariant as a distribution: anatomy with an up and a down, a fixed acquisition layout.
2. **Label sensitivity.** Does ``T_k`` keep the labels, i.e. may ``T_k x`` carry the label of
   ``x``? A conventional CNN is trained on the task (no DP) without augmentation, and for each
   ``T_k`` a twin (same initial weights, same batches) whose training images are replaced by
   ``T_k x`` with probability ½, labels unchanged. Both are evaluated on the *untransformed*
   validation split. Where ``T_k`` changes what the label means (up against down, say), the twin
   is taught contradictory examples and loses accuracy; where it keeps the labels, the twin
   loses nothing (or gains, as from any valid augmentation). Evaluating one un-augmented model on
   ``T_k x`` instead would mix this up with the model's own lack of invariance: it has never
   seen a turned image, so it loses accuracy under a turn even when the labels do not care.
   The twin's loss, paired per image, is tested with an exact one-sided McNemar test (images
   only the plain model gets right against the reverse; :func:`scipy.stats.binomtest`), and
   the seven p-values are corrected with Holm's method (``statsmodels`` ``multipletests``), so
   that the family of seven tests errs with probability at most :data:`ALPHA`. A transform
   *breaks* the task when its Holm-adjusted p-value is below :data:`ALPHA` and the loss is at
   least :data:`MIN_DROP`; a 95 % normal interval of the loss is reported beside it.

The verdict is group-consistent: the *largest subgroups of D4* all of whose transforms keep
the labels (:func:`keeping_subgroups`; a set of kept transforms that is not closed under
composition, e.g. rot90 kept but rot270 broken, says nothing a group-invariant model can use).
With D4 itself, invariant models (the paper's) are appropriate; otherwise the subgroup says
which smaller symmetry still fits, and ``--readout orientation`` keeps equivariant features
without invariant predictions.

Privacy: the probe reads raw training and validation images and trains without DP. Nothing it
outputs is covered by ε; it belongs on the data owner's side, like the hyper-parameter search.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from dpecnn.analysis.measures.equivariance import transform
from dpecnn.analysis.pages.report_base import Report, save_table
from dpecnn.data import Split
from dpecnn.data.datasets import Dataset, open_dataset
from dpecnn.models import build_model
from dpecnn.plotting.probe import probe_figure
from dpecnn.privacy.coverage import NOT_COVERED
from dpecnn.train.metrics import predict_proba

TRANSFORMS = tuple((quarter_turns, flip) for flip in (False, True) for quarter_turns in range(4))
TRANSFORM_NAMES = ("identity", "rot90", "rot180", "rot270", "flip", "flip+rot90", "flip+rot180", "flip+rot270")
CHANCE = 1 / len(TRANSFORMS)
MIN_DROP = 0.03  # smallest accuracy drop (absolute) that counts as a broken symmetry
ALPHA = 0.05  # family-wise error rate of the seven label-sensitivity tests (Holm)
DETECTABLE = 2 * CHANCE  # the detectability interval must clear twice chance
WEAK_MARGIN = 0.10  # a probe classifier less than this above the majority class gives weak evidence
# No verdict "orientation-free" when the validation images could not show a break smaller than this.
MAX_UNDETECTABLE = 0.10


def smallest_detectable_drop(n_eval: int) -> float:
    """The smallest accuracy drop the label test could declare on ``n_eval`` images, even in the
    best case (the augmented twin loses on ``b`` images and wins on none): exact McNemar gives
    ``p = 2·½^b``, which must clear Holm's first level ``ALPHA / 7``, so ``b`` images are needed."""
    b = 1
    while 2 * 0.5**b >= ALPHA / (len(TRANSFORMS) - 1):
        b += 1
    return b / max(n_eval, 1)


Z95 = 1.959964
PRIVACY_NOTE = "not covered by ε. " + NOT_COVERED["symmetry probe"]


def compose(b: int, a: int) -> int:
    """The index of ``T_b ∘ T_a`` (apply ``T_a`` first). With ``T = r^q f^s`` (flip, then ``q``
    quarter turns) and ``f r = r⁻¹ f``: ``r^q2 f^s2 r^q1 f^s1 = r^(q2 + (−1)^s2 q1) f^(s1 + s2)``."""
    (q1, s1), (q2, s2) = TRANSFORMS[a], TRANSFORMS[b]
    return TRANSFORMS.index(((q2 + (-q1 if s2 else q1)) % 4, s1 != s2))


def subgroups() -> list[frozenset[int]]:
    """Every subgroup of D4 as a set of transform indices (10 of them: trivial, five of order 2,
    C4 and two Klein four-groups, D4), largest first."""
    found = []
    for size in range(len(TRANSFORMS)):
        for rest in itertools.combinations(range(1, len(TRANSFORMS)), size):
            members = frozenset((0, *rest))
            if all(compose(b, a) in members for a in members for b in members):
                found.append(members)
    return sorted(found, key=lambda g: (-len(g), sorted(g)))


def subgroup_name(members: frozenset[int]) -> str:
    """``D4``, ``C4``, ``C2``, ``trivial``, or the elements, e.g. ``{identity, flip}``."""
    rotations = {k for k in members if not TRANSFORMS[k][1]}
    if len(members) == 8:
        return "D4"
    if members == frozenset({0, 1, 2, 3}):
        return "C4"
    if members == frozenset({0, 2}):
        return "C2"
    if len(members) == 1:
        return "trivial"
    kind = "D2" if len(members) == 4 else "reflection group" if len(rotations) == 1 else "group"
    return f"{kind} {{{', '.join(TRANSFORM_NAMES[k] for k in sorted(members))}}}"


def keeping_subgroups(breaks: list[bool]) -> list[frozenset[int]]:
    """The largest subgroups of D4 containing no transform that breaks the labels (ties: all)."""
    keeping = [g for g in subgroups() if not any(breaks[k] for k in g)]
    return [g for g in keeping if len(g) == len(keeping[0])]


def holm(p_values: list[float]) -> list[float]:
    """Holm-adjusted p-values (statsmodels' ``multipletests(method="holm")``)."""
    from statsmodels.stats.multitest import multipletests

    return [float(p) for p in multipletests(p_values, alpha=ALPHA, method="holm")[1]]


def mcnemar_p(correct_plain: np.ndarray, correct_moved: np.ndarray) -> float:
    """One-sided exact McNemar test that the transform lowers accuracy: among images the two
    disagree on, how likely this many or more were right only untransformed, if either way were equally likely."""
    from scipy.stats import binomtest

    only_plain = int(((correct_plain == 1) & (correct_moved == 0)).sum())
    only_moved = int(((correct_plain == 0) & (correct_moved == 1)).sum())
    if only_plain + only_moved == 0:
        return 1.0
    return float(binomtest(only_plain, only_plain + only_moved, 0.5, alternative="greater").pvalue)


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """``T_k x`` for ``k`` in 0…7 (:data:`TRANSFORM_NAMES`): exact permutations of pixels."""
    quarter_turns, flip = TRANSFORMS[k]
    return transform(x, 90 * quarter_turns, flip)


@dataclass
class ProbeConfig:
    """What the probe trains on and how long (nine small non-private conventional models: the
    detector, the plain classifier and its seven augmented twins)."""

    dataset: str = "bloodmnist"  # a MedMNIST name or own images (dpecnn.data.datasets)
    data_root: str | None = None
    size: int | None = None  # as TrainConfig.size
    channels: int | None = None  # as TrainConfig.channels
    train_subset: int | None = 4000  # training images (None: the whole split)
    eval_subset: int | None = 2000  # validation images (None: the whole split)
    layout: tuple[int, int, int] = (8, 16, 32)
    steps: int = 400  # optimiser steps per model, whatever the dataset's size
    batch_size: int = 64
    lr: float = 1e-2  # NAdam
    seed: int = 0
    device: str = "cpu"


@dataclass
class ProbeReport:
    """The probe's figures (fractions) and its verdict; :func:`format_report` prints it."""

    config: dict
    n_train: int
    n_eval: int
    detection_accuracy: float  # which of the 8 transforms was applied; chance 1/8
    detection_interval: tuple[float, float]
    detection_per_transform: list[float]
    accuracy: float  # the plain classifier's accuracy on the validation images
    majority: float  # accuracy of always predicting the largest validation class
    drops: list[float]  # accuracy of the plain classifier − accuracy of its twin augmented with T_k
    drop_intervals: list[tuple[float, float]]
    p_values: list[float]  # one-sided exact McNemar test per transform (identity: 1)
    p_holm: list[float]  # Holm-adjusted over the seven transforms (identity: 1)
    breaks: list[bool]
    keeping: list[str]  # the largest subgroups of D4 whose transforms all keep the labels
    verdict: str
    suggestion: str
    privacy: str = PRIVACY_NOTE
    names: list[str] = field(default_factory=lambda: list(TRANSFORM_NAMES))

    def to_dict(self) -> dict:
        return asdict(self)


def _fit(model: torch.nn.Module, train: Split, cfg: ProbeConfig, relabel=None) -> torch.nn.Module:
    """``cfg.steps`` NAdam steps on shuffled batches; ``relabel(x, y, generator)`` makes each
    batch's inputs and targets."""
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.NAdam(model.parameters(), lr=cfg.lr)
    model.train()
    batches = iter(())
    for _ in range(cfg.steps):
        idx = next(batches, None)
        if idx is None:  # a new epoch
            batches = iter(torch.randperm(len(train), generator=gen).split(cfg.batch_size))
            idx = next(batches)
        x, y = train.inputs(idx), train.labels[idx]
        if relabel is not None:
            x, y = relabel(x, y, gen)
        opt.zero_grad()
        F.cross_entropy(model(x.to(cfg.device)), y.to(cfg.device)).backward()
        opt.step()
    return model.eval()


def _augmented_with(k: int, seed: int):
    """A ``relabel`` for :func:`_fit`: each image becomes ``T_k x`` with probability ½, its label
    kept. Its own generator, so the twin sees the same batches as the plain classifier."""
    coins = torch.Generator().manual_seed(seed)

    def augment(x: torch.Tensor, y: torch.Tensor, _gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        moved = torch.rand(len(x), generator=coins) < 0.5
        return _dihedral_each(x, torch.where(moved, k, 0)), y

    return augment


def _classifier(channels: int, classes: int, train: Split, cfg: ProbeConfig, relabel=None) -> torch.nn.Module:
    torch.manual_seed(cfg.seed)  # the same initial weights for all: twins differ by augmentation only
    model = build_model("e", channels, classes, cfg.layout).to(cfg.device)
    return _fit(model, train, cfg, relabel)


def _dihedral_each(x: torch.Tensor, ks: torch.Tensor) -> torch.Tensor:
    """``T_{ks[i]} x[i]`` for every image ``i`` of the batch."""
    out = torch.empty_like(x)
    for k in range(len(TRANSFORMS)):
        out[ks == k] = dihedral(x[ks == k], k)
    return out


def _transformed(split: Split, k: int) -> Split:
    """``split`` with ``T_k`` applied to every image (on the uint8 pixels: moving pixels is exact)."""
    channels_first = split.pixels.permute(0, 3, 1, 2)
    return Split(dihedral(channels_first, k).permute(0, 2, 3, 1).contiguous(), split.labels)


def _random_transforms(x: torch.Tensor, _y: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    ks = torch.randint(len(TRANSFORMS), (len(x),), generator=gen)
    return _dihedral_each(x, ks), ks


def _mean_interval(values: np.ndarray) -> tuple[float, float]:
    half = Z95 * values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return float(values.mean() - half), float(values.mean() + half)


def load_probe_data(cfg: ProbeConfig) -> Dataset:
    return open_dataset(cfg.dataset, cfg.data_root, cfg.size, cfg.channels)


def run_probe(cfg: ProbeConfig, data: Dataset | None = None, report=None) -> ProbeReport:
    """Train the probe's nine models on ``cfg.dataset`` (or ``data``, loaded from it) and judge its
    symmetry; ``report`` receives one line per trained model."""
    data = data or load_probe_data(cfg)
    report = report or (lambda line: None)
    train = data.splits["train"].subset(cfg.train_subset, cfg.seed)
    val = data.splits["val"].subset(cfg.eval_subset, cfg.seed)
    channels, n_cls = train.channels, data.num_classes
    torch.manual_seed(cfg.seed)
    detector = _fit(
        build_model("e", channels, len(TRANSFORMS), cfg.layout).to(cfg.device), train, cfg, relabel=_random_transforms
    )
    report(f"probe: transform detector trained (1 of {len(TRANSFORMS) + 1} models)")
    classifiers = []
    for k in range(len(TRANSFORMS)):
        classifiers.append(_classifier(channels, n_cls, train, cfg, _augmented_with(k, cfg.seed + k) if k else None))
        report(
            f"probe: classifier {'trained with ' + TRANSFORM_NAMES[k] if k else 'without augmentation'} trained "
            f"({k + 2} of {len(TRANSFORMS) + 1} models)"
        )

    moved = [_transformed(val, k) for k in range(len(TRANSFORMS))]
    detected = np.stack(
        [predict_proba(detector, split, cfg.device).argmax(1) == k for k, split in enumerate(moved)]
    ).astype(np.float64)  # (8, N)
    correct = np.stack(
        [predict_proba(model, val, cfg.device).argmax(1) == val.labels.numpy() for model in classifiers]
    ).astype(np.float64)  # (8, N): the plain classifier, then the twin augmented with each T_k
    drops = correct[0] - correct  # per transform and image: 1 when only the plain classifier is right
    intervals = [_mean_interval(d) if k else (0.0, 0.0) for k, d in enumerate(drops)]
    p_values = [1.0] + [mcnemar_p(correct[0], correct[k]) for k in range(1, len(TRANSFORMS))]
    p_holm = [1.0] + holm(p_values[1:])
    breaks = [bool(k and p_holm[k] < ALPHA and drops[k].mean() >= MIN_DROP) for k in range(len(TRANSFORMS))]
    p = float(detected.mean())
    half = Z95 * math.sqrt(p * (1 - p) / detected.size)
    majority = float(np.bincount(val.labels.numpy(), minlength=n_cls).max() / len(val))
    unresolved = [
        TRANSFORM_NAMES[k] for k in range(1, len(TRANSFORMS)) if not breaks[k] and intervals[k][1] >= MIN_DROP
    ]
    verdict, suggestion = judge(breaks, p - half, float(correct[0].mean()), majority, unresolved, len(val))
    return ProbeReport(
        config={**asdict(cfg), "layout": list(cfg.layout)},
        n_train=len(train),
        n_eval=len(val),
        detection_accuracy=p,
        detection_interval=(p - half, p + half),
        detection_per_transform=detected.mean(1).tolist(),
        accuracy=float(correct[0].mean()),
        majority=majority,
        drops=drops.mean(1).tolist(),
        drop_intervals=intervals,
        p_values=p_values,
        p_holm=p_holm,
        breaks=breaks,
        keeping=[subgroup_name(g) for g in keeping_subgroups(breaks)],
        verdict=verdict,
        suggestion=suggestion,
    )


def judge(
    breaks: list[bool],
    detection_low: float,
    accuracy: float,
    majority: float,
    unresolved: Sequence[str] = (),
    n_eval: int | None = None,
) -> tuple[str, str]:
    """The verdict line and the model suggestion from the largest subgroups of D4 that keep the
    labels (:func:`keeping_subgroups`), with a caution when the probe's classifier is barely
    above the majority class, and one naming the kept transforms whose interval does not rule
    out a loss of :data:`MIN_DROP` (``unresolved``: few validation images keep a test from
    rejecting without showing that nothing is lost). With no break found on ``n_eval`` images too
    few to show one of :data:`MAX_UNDETECTABLE` (:func:`smallest_detectable_drop`), there is no
    verdict: "too few images to tell"."""
    if accuracy <= majority:
        return (
            "inconclusive: the probe's classifier does not beat the majority class, so its accuracy drops say nothing",
            "train the probe longer or on more images (--steps, --train-subset)",
        )
    broken = [TRANSFORM_NAMES[k] for k, b in enumerate(breaks) if b]
    weak = (
        f" Weak evidence: the probe's classifier beats the majority class by only "
        f"{100 * (accuracy - majority):.1f} points."
        if accuracy - majority < WEAK_MARGIN
        else ""
    )
    test = (
        f"training with the transform as augmentation costs ≥ {100 * MIN_DROP:g} points, "
        f"Holm-adjusted McNemar p < {ALPHA:g} over 7 transforms"
    )
    if unresolved:
        weak += (
            f" Weak evidence for {', '.join(unresolved)}: kept, but the 95 % interval of the loss reaches "
            f"{100 * MIN_DROP:g} points, so a break there is not ruled out (more validation images would tell)."
        )
    if not broken and n_eval is not None and smallest_detectable_drop(n_eval) > MAX_UNDETECTABLE:
        return (
            f"too few images to tell: on {n_eval} validation images the label test could not show a break that "
            f"costs less than {100 * smallest_detectable_drop(n_eval):.0f} points, so finding none says nothing",
            "more validation images (--eval-subset 0 and a larger validation split)",
        )
    if not broken and n_eval is not None:
        weak += (
            f" The smallest break these {n_eval} validation images could show costs "
            f"{100 * smallest_detectable_drop(n_eval):.1f} points."
        )
    if not broken:
        seen = (
            " The images themselves have a detectable orientation (e.g. an acquisition layout); the labels "
            "do not use it."
            if detection_low > DETECTABLE
            else ""
        )
        return (
            f"orientation-free: no transform is shown to change the labels ({test}), so D4 keeps them: invariant "
            "models are appropriate." + seen + weak,
            "the paper's invariant readout, C_N or O2 (rotations and flips keep the labels)",
        )
    groups = keeping_subgroups(breaks)
    names = " or ".join(subgroup_name(g) for g in groups)
    verdict = (
        f"canonical orientation: the largest subgroup of D4 whose transforms all keep the labels is {names}; "
        f"labels change under {', '.join(broken)} ({test}). Prefer `--readout orientation` or a model "
        "invariant to that subgroup only." + weak
    )
    if frozenset({0, 1, 2, 3}) in groups:
        suggestion = (
            "C_N with the invariant readout and --no-restrict (rotations keep the labels, flips do not): not O2"
        )
    elif any(2 in g for g in groups):
        suggestion = (
            "C4 restricted to C2 (the paper's C4: only its 180° invariance survives) or any group with "
            "`--readout orientation`"
        )
    elif any(len(g) > 1 for g in groups):
        suggestion = "no dpecnn group is flip-only: `--readout orientation` (or e)"
    else:
        suggestion = "`--readout orientation` (equivariant features, orientation-aware head) or e"
    return verdict, suggestion


def probe_rows(report: ProbeReport) -> list[dict]:
    """One row per transform: detection accuracy, accuracy drop with its interval (percent)."""
    return [
        {
            "transform": name,
            "detected %": 100 * report.detection_per_transform[k],
            "accuracy drop %": 100 * report.drops[k],
            "drop low %": 100 * report.drop_intervals[k][0],
            "drop high %": 100 * report.drop_intervals[k][1],
            "p (McNemar)": report.p_values[k],
            "p (Holm)": report.p_holm[k],
            "labels": "-" if k == 0 else "break" if report.breaks[k] else "keep",
        }
        for k, name in enumerate(TRANSFORM_NAMES)
    ]


def symmetry_report(cfg: ProbeConfig, fig_dir=None, table_dir=None) -> tuple[ProbeReport, Report]:
    """:func:`run_probe`, then its figure (``fig_dir/symmetry_probe``), its table
    (``table_dir/symmetry_probe.csv``) and the verdict with the suggestion, for the notebook."""
    data = load_probe_data(cfg)
    report = run_probe(cfg, data)
    example = data.splits["val"].inputs(slice(0, 1))
    examples = torch.cat([dihedral(example, k) for k in range(len(TRANSFORMS))]).numpy()
    lo, hi = report.detection_interval
    figure = probe_figure(
        examples,
        TRANSFORM_NAMES,
        report.detection_per_transform,
        report.drops,
        report.drop_intervals,
        report.breaks,
        CHANCE,
        f"{data.name}: transform detected {100 * report.detection_accuracy:.1f} % "
        f"(95 % {100 * lo:.1f}–{100 * hi:.1f}, chance 12.5 %), not covered by ε",
        fig_dir,
    )
    table = save_table(probe_rows(report), table_dir, "symmetry_probe")
    return report, Report(figure, {"symmetry_probe": table}, f"{report.verdict}\nsuggested: {report.suggestion}")


def format_report(report: ProbeReport) -> str:
    """The figures behind the verdict, as plain text lines."""
    lo, hi = report.detection_interval
    rows = probe_rows(report)
    lines = [
        f"symmetry probe of {report.config['dataset']}: {report.n_train} training, {report.n_eval} validation "
        f"images; {PRIVACY_NOTE}",
        f"which transform was applied: accuracy {100 * report.detection_accuracy:.1f} % "
        f"(95 % {100 * lo:.1f}–{100 * hi:.1f}; chance {100 * CHANCE:.1f} %)",
        f"task accuracy {100 * report.accuracy:.1f} % on untransformed images (majority class "
        f"{100 * report.majority:.1f} %)",
        f"{'transform':<12} {'detected':>9} {'acc drop':>9} {'95 % interval':>16} {'p Holm':>8}  labels",
    ]
    for r in rows:
        lines.append(
            f"{r['transform']:<12} {r['detected %']:>8.1f}% {r['accuracy drop %']:>+8.1f}% "
            f"{r['drop low %']:>+7.1f}…{r['drop high %']:+.1f}% {r['p (Holm)']:>8.3g}  {r['labels']}"
        )
    lines += [
        f"largest subgroup of D4 that keeps the labels: {' or '.join(report.keeping)}",
        f"verdict: {report.verdict}",
        f"suggested: {report.suggestion}",
    ]
    return "\n".join(lines)
