"""Does a dataset have a canonical orientation? A symmetry probe, run before any DP training.

Both measurements use the 8 elements ``T_k`` of the dihedral group D4 (flip, then a rotation by
a multiple of 90°), which map the pixel grid onto itself exactly, and both are repeated with
several training seeds (:attr:`ProbeConfig.seeds`, three by default) on the same images:

1. **Orientation detectability.** A small conventional CNN (ResNet-9 ``e``, no DP) learns which
   ``T_k`` was applied to a training image (``k`` uniform), and is tested on validation images,
   each under all 8 transforms. Chance is 1/8. Accuracy above chance means the *images* are not
   D4-invariant as a distribution: anatomy with an up and a down, a fixed acquisition layout. An
   image's eight views are not independent, so the unit of the interval is the image: its
   detection rate (over its views and the seeds' detectors), with a BCa bootstrap over images.
2. **Label sensitivity.** Does ``T_k`` keep the labels, i.e. may ``T_k x`` carry the label of
   ``x``? Per seed, a conventional CNN is trained on the task (no DP) without augmentation, and
   for each ``T_k`` a twin (same initial weights, same batches) whose training images are replaced
   by ``T_k x`` with probability ½, labels unchanged. All are evaluated on the *untransformed*
   validation split. Where ``T_k`` changes what the label means (up against down, say), the twin
   is taught contradictory examples and loses accuracy; where it keeps the labels, the twin
   loses nothing (or gains, as from any valid augmentation). Evaluating one un-augmented model on
   ``T_k x`` instead would mix this up with the model's own lack of invariance.

   A twin's loss must survive two sources of chance, each tested one-sided and Holm-corrected
   over the seven transforms (``statsmodels`` ``multipletests``): *training* (a one-sample t-test
   of the per-seed losses across seeds, :func:`scipy.stats.ttest_1samp`; a test on one trained
   pair, such as McNemar's, conditions on that pair and leaves seed-to-seed variation out) and
   *the images* (an exact sign test over images of the seed-averaged loss, which is McNemar's
   test for one seed; :func:`scipy.stats.binomtest`). A transform *breaks* the task when both
   adjusted p-values are below :data:`ALPHA` and the mean loss is at least :data:`MIN_DROP`; the
   95 % t-interval of the loss across seeds is reported beside it.

What it can and cannot separate: a loss measures what augmenting with ``T_k`` costs at this
budget (:attr:`ProbeConfig.steps`). A transform that changes the labels costs accuracy; so can
one that keeps them, when a fixed number of steps must now learn a harder, more varied task. A
break is therefore evidence that ``T_k`` cannot be used as a symmetry at this budget, and
strongest where a longer budget does not close it. Where no break is found, the report states
the smallest loss these images and seeds could have declared (:func:`smallest_detectable_drop`;
the seed part from the observed spread of the per-seed losses), and with more than
:data:`MAX_UNDETECTABLE` there is no verdict.

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
from dpecnn.analysis.stats import holm
from dpecnn.data import Split
from dpecnn.data.datasets import Dataset, open_dataset
from dpecnn.errors import DpecnnError
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


def smallest_detectable_drop(n_eval: int, n_seeds: int, seed_spread: float = 0.0) -> tuple[float, float]:
    """The smallest mean accuracy loss each label test could declare on ``n_eval`` images and
    ``n_seeds`` seeds, as ``(images, seeds)``; a break needs both. Images, even in the best case
    (``b`` images lost by the twin in every seed, none won): the exact sign test gives ``½^b``,
    which must clear Holm's first level ``ALPHA / 7``, and ``b`` images each lost by one twin of
    ``n_seeds`` are a loss of ``b / (n_seeds · n_eval)``. Seeds: the t-test across seeds at that
    level needs a mean of ``t · s / √n_seeds`` with the per-seed losses' standard deviation
    ``s = seed_spread``."""
    from scipy.stats import binomtest, t

    level = ALPHA / (len(TRANSFORMS) - 1)
    b = 1
    while binomtest(b, b, 0.5, alternative="greater").pvalue >= level:
        b += 1
    images = b / (max(n_seeds, 1) * max(n_eval, 1))
    seeds = float(t.ppf(1 - level, n_seeds - 1) * seed_spread / math.sqrt(n_seeds)) if n_seeds > 1 else math.inf
    return images, seeds


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


def image_sign_p(losses: np.ndarray) -> float:
    """One-sided exact sign test that the transform lowers accuracy, over images: ``losses[i]`` is
    image ``i``'s seed-averaged loss (plain correct − twin correct, each 0 or 1); among images
    with a non-zero loss, how likely this many or more were lost, if a loss and a gain were
    equally likely. With one seed this is the exact McNemar test."""
    from scipy.stats import binomtest

    lost, won = int((losses > 0).sum()), int((losses < 0).sum())
    if lost + won == 0:
        return 1.0
    return float(binomtest(lost, lost + won, 0.5, alternative="greater").pvalue)


def seed_t_p(losses: np.ndarray) -> float:
    """One-sided one-sample t-test across seeds that the mean per-seed loss is above 0
    (:func:`scipy.stats.ttest_1samp`); equal losses in every seed: 0 if positive, else 1."""
    from scipy.stats import ttest_1samp

    if np.ptp(losses) == 0:
        return 0.0 if losses[0] > 0 else 1.0
    return float(ttest_1samp(losses, 0.0, alternative="greater").pvalue)


def seed_interval(losses: np.ndarray) -> tuple[float, float]:
    """The 95 % t-interval of the mean per-seed loss (``len(losses) − 1`` degrees of freedom)."""
    from scipy.stats import t

    half = float(t.ppf(0.975, len(losses) - 1) * losses.std(ddof=1) / math.sqrt(len(losses)))
    return float(losses.mean() - half), float(losses.mean() + half)


def image_bootstrap_interval(rates: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """95 % BCa bootstrap interval (``scipy.stats.bootstrap``) of the mean of per-image rates."""
    from scipy.stats import bootstrap

    from dpecnn.analysis.stats import BOOTSTRAP_RESAMPLES

    if np.ptp(rates) == 0:
        return float(rates[0]), float(rates[0])
    result = bootstrap(
        (rates,), np.mean, n_resamples=BOOTSTRAP_RESAMPLES, method="BCa", random_state=np.random.default_rng(seed)
    )
    return tuple(map(float, result.confidence_interval))


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """``T_k x`` for ``k`` in 0…7 (:data:`TRANSFORM_NAMES`): exact permutations of pixels."""
    quarter_turns, flip = TRANSFORMS[k]
    return transform(x, 90 * quarter_turns, flip)


@dataclass
class ProbeConfig:
    """What the probe trains on and how long: per seed, nine small non-private conventional models
    (the detector, the plain classifier and its seven augmented twins)."""

    dataset: str = "bloodmnist"  # a MedMNIST name or own images (dpecnn.data.datasets)
    data_root: str | None = None
    size: int | None = None  # as TrainConfig.size
    channels: int | None = None  # as TrainConfig.channels
    train_subset: int | None = 4000  # training images (None: the whole split)
    eval_subset: int | None = 2000  # validation images (None: the whole split)
    layout: tuple[int, int, int] = (8, 16, 32)
    steps: int = 400  # optimiser steps per model, whatever the dataset's size
    batch_size: int = 64
    lr: float = 1e-2  # NAdam, cosine-annealed to 0 over the steps
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])  # training seeds (≥ 2); the first draws the subsets
    device: str = "cpu"

    def __post_init__(self):
        if isinstance(self.seeds, str) or not all(isinstance(s, int) for s in self.seeds):
            raise DpecnnError(f"seeds must be a list of integers, e.g. [0, 1, 2], got {self.seeds!r}")
        self.seeds = list(self.seeds)
        if len(set(self.seeds)) < 2 or min(self.seeds) < 0:
            raise DpecnnError(
                f"the probe tests across seeds: give at least 2 distinct non-negative seeds "
                f"(e.g. --seeds 0,1,2), got {','.join(map(str, self.seeds)) or 'none'}"
            )


@dataclass
class LabelTests:
    """The label-sensitivity figures of :func:`label_tests`, per transform (identity first: 0 / 1)."""

    drops: list[float]  # mean over seeds of the plain classifier's accuracy − the twin's
    drops_per_seed: list[list[float]]  # [transform][seed]
    drop_intervals: list[tuple[float, float]]  # 95 % t-interval across seeds
    p_seeds: list[float]
    p_images: list[float]
    p_seeds_holm: list[float]
    p_images_holm: list[float]
    breaks: list[bool]
    seed_spread: float  # the per-seed losses' standard deviation, pooled over the seven transforms


@dataclass
class ProbeReport(LabelTests):
    """The probe's figures (fractions; the label tests' from :class:`LabelTests`) and its verdict;
    :func:`format_report` prints it."""

    config: dict
    n_train: int
    n_eval: int
    seeds: list[int]
    detection_accuracy: float  # which of the 8 transforms was applied; chance 1/8
    detection_interval: tuple[float, float]  # BCa bootstrap over images
    detection_per_transform: list[float]
    accuracy: float  # the plain classifiers' mean accuracy on the validation images
    accuracy_per_seed: list[float]
    majority: float  # accuracy of always predicting the largest validation class
    smallest_break: tuple[float, float]  # (images, seeds): the least loss each test could declare
    keeping: list[str]  # the largest subgroups of D4 whose transforms all keep the labels
    verdict: str
    suggestion: str
    privacy: str = PRIVACY_NOTE
    names: list[str] = field(default_factory=lambda: list(TRANSFORM_NAMES))

    def to_dict(self) -> dict:
        return asdict(self)


def _fit(model: torch.nn.Module, train: Split, cfg: ProbeConfig, seed: int, relabel=None) -> torch.nn.Module:
    """``cfg.steps`` NAdam steps on batches shuffled by ``seed``, the learning rate annealed to 0
    on a cosine (at a constant rate the last iterate wanders, and its seed-to-seed spread is what
    the test across seeds must beat); ``relabel(x, y, generator)`` makes each batch's inputs and
    targets."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.NAdam(model.parameters(), lr=cfg.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
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
        schedule.step()
    return model.eval()


def _augmented_with(k: int, seed: int):
    """A ``relabel`` for :func:`_fit`: each image becomes ``T_k x`` with probability ½, its label
    kept. Its own generator (one per seed and transform), so the twin sees the same batches as
    the plain classifier."""
    coins = torch.Generator().manual_seed(seed * len(TRANSFORMS) + k)

    def augment(x: torch.Tensor, y: torch.Tensor, _gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        moved = torch.rand(len(x), generator=coins) < 0.5
        return _dihedral_each(x, torch.where(moved, k, 0)), y

    return augment


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


def _one_seed(train: Split, val: Split, classes: int, cfg: ProbeConfig, seed: int, report) -> tuple[np.ndarray, ...]:
    """One seed's nine models: the detector's hits ``(8, N)`` (view ``k`` of image ``i``
    recognised as ``T_k``) and the classifiers' hits ``(8, N)`` (the plain one, then the twin
    augmented with each ``T_k``), on the validation images."""
    models = len(TRANSFORMS) + 1
    torch.manual_seed(seed)
    detector = build_model("e", train.channels, len(TRANSFORMS), cfg.layout).to(cfg.device)
    _fit(detector, train, cfg, seed, relabel=_random_transforms)
    report(f"probe: seed {seed}: transform detector trained (1 of {models} models)")
    detected = np.stack(
        [predict_proba(detector, _transformed(val, k), cfg.device).argmax(1) == k for k in range(len(TRANSFORMS))]
    )
    correct = []
    for k in range(len(TRANSFORMS)):
        torch.manual_seed(seed)  # the same initial weights for all: twins differ by augmentation only
        model = build_model("e", train.channels, classes, cfg.layout).to(cfg.device)
        _fit(model, train, cfg, seed, _augmented_with(k, seed) if k else None)
        correct.append(predict_proba(model, val, cfg.device).argmax(1) == val.labels.numpy())
        what = f"trained with {TRANSFORM_NAMES[k]}" if k else "without augmentation"
        report(f"probe: seed {seed}: classifier {what} trained ({k + 2} of {models} models)")
    return detected.astype(np.float64), np.stack(correct).astype(np.float64)


def label_tests(correct: np.ndarray) -> LabelTests:
    """``correct``: (seeds, 8, images), 1 where a classifier got an image right (index 0: the plain
    classifier, ``k``: its twin augmented with ``T_k``). A transform breaks the task when its mean
    loss is ≥ :data:`MIN_DROP` and both Holm-adjusted one-sided tests (:func:`seed_t_p` across
    seeds, :func:`image_sign_p` over images) are below :data:`ALPHA`."""
    per_seed = correct[:, :1].mean(2) - correct.mean(2)  # (S, 8)
    per_image = (correct[:, :1] - correct).mean(0)  # (8, N): each image's loss, averaged over seeds
    others = range(1, len(TRANSFORMS))
    p_seeds = [1.0] + [seed_t_p(per_seed[:, k]) for k in others]
    p_images = [1.0] + [image_sign_p(per_image[k]) for k in others]
    p_seeds_holm, p_images_holm = [1.0] + holm(p_seeds[1:]), [1.0] + holm(p_images[1:])
    drops = per_seed.mean(0)
    return LabelTests(
        drops=drops.tolist(),
        drops_per_seed=per_seed.T.tolist(),
        drop_intervals=[(0.0, 0.0)] + [seed_interval(per_seed[:, k]) for k in others],
        p_seeds=p_seeds,
        p_images=p_images,
        p_seeds_holm=p_seeds_holm,
        p_images_holm=p_images_holm,
        breaks=[
            bool(k and p_seeds_holm[k] < ALPHA and p_images_holm[k] < ALPHA and drops[k] >= MIN_DROP)
            for k in range(len(TRANSFORMS))
        ],
        seed_spread=float(np.sqrt(per_seed[:, 1:].var(axis=0, ddof=1).mean())),
    )


def load_probe_data(cfg: ProbeConfig) -> Dataset:
    return open_dataset(cfg.dataset, cfg.data_root, cfg.size, cfg.channels)


def run_probe(cfg: ProbeConfig, data: Dataset | None = None, report=None) -> ProbeReport:
    """Train the probe's models for every seed of ``cfg.seeds`` on ``cfg.dataset`` (or ``data``,
    loaded from it) and judge its symmetry; ``report`` receives one line per trained model."""
    data = data or load_probe_data(cfg)
    report = report or (lambda line: None)
    train = data.splits["train"].subset(cfg.train_subset, cfg.seeds[0])
    val = data.splits["val"].subset(cfg.eval_subset, cfg.seeds[0])
    runs = [_one_seed(train, val, data.num_classes, cfg, seed, report) for seed in cfg.seeds]
    detected = np.stack([d for d, _ in runs])  # (S, 8, N)
    correct = np.stack([c for _, c in runs])  # (S, 8, N)
    tests = label_tests(correct)
    smallest = smallest_detectable_drop(len(val), len(cfg.seeds), tests.seed_spread)
    detection = image_bootstrap_interval(detected.mean(axis=(0, 1)))
    accuracy = float(correct[:, 0].mean())
    majority = float(np.bincount(val.labels.numpy(), minlength=data.num_classes).max() / len(val))
    unresolved = [
        TRANSFORM_NAMES[k]
        for k in range(1, len(TRANSFORMS))
        if not tests.breaks[k] and tests.drop_intervals[k][1] >= MIN_DROP
    ]
    detectable = (len(val), len(cfg.seeds), smallest)
    verdict, suggestion = judge(tests.breaks, detection[0], accuracy, majority, unresolved, detectable)
    return ProbeReport(
        config={**asdict(cfg), "layout": list(cfg.layout)},
        n_train=len(train),
        n_eval=len(val),
        seeds=list(cfg.seeds),
        detection_accuracy=float(detected.mean()),
        detection_interval=detection,
        detection_per_transform=detected.mean(axis=(0, 2)).tolist(),
        accuracy=accuracy,
        accuracy_per_seed=correct[:, 0].mean(1).tolist(),
        majority=majority,
        **asdict(tests),
        smallest_break=smallest,
        keeping=[subgroup_name(g) for g in keeping_subgroups(tests.breaks)],
        verdict=verdict,
        suggestion=suggestion,
    )


def judge(
    breaks: list[bool],
    detection_low: float,
    accuracy: float,
    majority: float,
    unresolved: Sequence[str] = (),
    detectable: tuple[int, int, tuple[float, float]] | None = None,
) -> tuple[str, str]:
    """The verdict line and the model suggestion from the largest subgroups of D4 that keep the
    labels (:func:`keeping_subgroups`), with a caution when the probe's classifier is barely
    above the majority class, and one naming the kept transforms whose interval does not rule
    out a loss of :data:`MIN_DROP` (``unresolved``). ``detectable``: ``(n_eval, n_seeds,
    (images, seeds))``, the validation images, the seeds and the smallest loss each test could
    declare (:func:`smallest_detectable_drop`); with no break found where either exceeds
    :data:`MAX_UNDETECTABLE`, there is no verdict: "too few images or seeds to tell"."""
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
        f"training with the transform as augmentation costs ≥ {100 * MIN_DROP:g} points, Holm-adjusted p < "
        f"{ALPHA:g} over 7 transforms both across seeds (t-test) and over images (sign test)"
    )
    if unresolved:
        weak += (
            f" Weak evidence for {', '.join(unresolved)}: kept, but the 95 % interval of the loss across seeds "
            f"reaches {100 * MIN_DROP:g} points, so a break there is not ruled out (more seeds would tell)."
        )
    if not broken and detectable is not None:
        n_eval, n_seeds, (by_images, by_seeds) = detectable
        least = max(by_images, by_seeds)
        limits = (
            f"on {n_eval} validation images and {n_seeds} seeds the label tests could not show a break that costs "
            f"less than {100 * least:.1f} points (images alone: {100 * by_images:.1f}; the seeds' spread: "
            f"{100 * by_seeds:.1f})"
        )
        if least > MAX_UNDETECTABLE:
            more = "more validation images (--eval-subset 0)" if by_images >= by_seeds else "more seeds (--seeds)"
            return f"too few images or seeds to tell: {limits}, so finding none says nothing", more
        weak += f" What it could see: {limits}."
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
    """One row per transform: detection accuracy, accuracy drop (mean over seeds, each seed's, the
    95 % interval across seeds; percent) and the two tests' p-values, raw and Holm-adjusted."""
    return [
        {
            "transform": name,
            "detected %": 100 * report.detection_per_transform[k],
            "accuracy drop %": 100 * report.drops[k],
            "drop per seed %": " ".join(f"{100 * d:+.1f}" for d in report.drops_per_seed[k]),
            "drop low %": 100 * report.drop_intervals[k][0],
            "drop high %": 100 * report.drop_intervals[k][1],
            "p seeds (t)": report.p_seeds[k],
            "p images (sign)": report.p_images[k],
            "p seeds (Holm)": report.p_seeds_holm[k],
            "p images (Holm)": report.p_images_holm[k],
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
        f"(95 % over images {100 * lo:.1f}–{100 * hi:.1f}, chance 12.5 %; {len(report.seeds)} seeds), "
        "not covered by ε",
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
        f"images, seeds {', '.join(map(str, report.seeds))}; {PRIVACY_NOTE}",
        f"which transform was applied: accuracy {100 * report.detection_accuracy:.1f} % "
        f"(95 % BCa bootstrap over images {100 * lo:.1f}–{100 * hi:.1f}; chance {100 * CHANCE:.1f} %)",
        f"task accuracy {100 * report.accuracy:.1f} % on untransformed images (per seed "
        f"{', '.join(f'{100 * a:.1f}' for a in report.accuracy_per_seed)}; "
        f"majority class {100 * report.majority:.1f} %)",
        f"{'transform':<12} {'detected':>9} {'acc drop':>9} {'per seed':>17} {'95 % (seeds)':>16} "
        f"{'p seeds':>8} {'p images':>8}  labels",
    ]
    for r in rows:
        lines.append(
            f"{r['transform']:<12} {r['detected %']:>8.1f}% {r['accuracy drop %']:>+8.1f}% {r['drop per seed %']:>17} "
            f"{r['drop low %']:>+7.1f}…{r['drop high %']:+.1f}% {r['p seeds (Holm)']:>8.3g} "
            f"{r['p images (Holm)']:>8.3g}  {r['labels']}"
        )
    lines += [
        "p: Holm-adjusted, one-sided (seeds: t-test of the per-seed losses; images: exact sign test of the "
        "seed-averaged loss per image). A loss is what augmenting with the transform costs at this budget "
        f"({report.config['steps']} steps): a change of labels, or a harder task in the same steps.",
        f"largest subgroup of D4 that keeps the labels: {' or '.join(report.keeping)}",
        f"verdict: {report.verdict}",
        f"suggested: {report.suggestion}",
    ]
    return "\n".join(lines)
