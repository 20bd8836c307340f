"""Does a dataset have a canonical orientation? A symmetry probe, run before any DP training.

Both measurements use the 8 elements ``T_k`` of the dihedral group D4 (flip, then a rotation by
a multiple of 90°), which map the pixel grid onto itself exactly:

1. **Orientation detectability.** A small conventional CNN (ResNet-9 ``e``, no DP) learns which
   ``T_k`` was applied to a training image (``k`` uniform), and is tested on validation images,
   each under all 8 transforms. Chance is 1/8. Accuracy above chance means the *images* are not
   D4-invariant as a distribution: anatomy with an up and a down, a fixed acquisition layout.
2. **Label sensitivity.** A conventional CNN trained on the task itself (no DP, no augmentation)
   is evaluated on the validation split under each ``T_k``. The drop in accuracy from the
   untransformed images, paired per image with a 95 % normal interval, says whether ``T_k``
   keeps the labels as a model learns them. A transform *breaks* the task when the interval
   excludes 0 and the drop is at least :data:`MIN_DROP`.

The verdict follows the label sensitivity, which is what an invariant model gives up: with no
transform breaking the task, group-invariant models (the paper's) are appropriate; otherwise the
transforms that keep the labels say which smaller group still fits, and ``--readout
orientation`` keeps equivariant features without invariant predictions.

Privacy: the probe reads raw training and validation images and trains without DP. Nothing it
outputs is covered by ε; it belongs on the data owner's side, like the hyper-parameter search.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from dpecnn.analysis.equivariance import transform
from dpecnn.analysis.reports import Report, save_table
from dpecnn.data import Split, load_dataset, num_classes
from dpecnn.models import build_model
from dpecnn.plotting.probe import probe_figure
from dpecnn.train.metrics import predict_proba

TRANSFORMS = tuple((quarter_turns, flip) for flip in (False, True) for quarter_turns in range(4))
TRANSFORM_NAMES = ("identity", "rot90", "rot180", "rot270", "flip", "flip+rot90", "flip+rot180", "flip+rot270")
ROTATIONS, FLIPS = (1, 2, 3), (4, 5, 6, 7)
CHANCE = 1 / len(TRANSFORMS)
MIN_DROP = 0.03  # smallest accuracy drop (absolute) that counts as a broken symmetry
DETECTABLE = 2 * CHANCE  # the detectability interval must clear twice chance
WEAK_MARGIN = 0.10  # a probe classifier less than this above the majority class gives weak evidence
Z95 = 1.959964
NOT_COVERED = ("reads raw training and validation images and trains without DP: not covered by ε "
               "(the data owner's side)")


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """``T_k x`` for ``k`` in 0…7 (:data:`TRANSFORM_NAMES`): exact permutations of pixels."""
    quarter_turns, flip = TRANSFORMS[k]
    return transform(x, 90 * quarter_turns, flip)


@dataclass
class ProbeConfig:
    """What the probe trains on and how long (two small non-private conventional models)."""

    dataset: str = "bloodmnist"
    data_root: str | None = None
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
    accuracy: float  # task accuracy on untransformed validation images
    majority: float  # accuracy of always predicting the largest validation class
    drops: list[float]  # accuracy(identity) − accuracy(T_k), per transform
    drop_intervals: list[tuple[float, float]]
    breaks: list[bool]
    verdict: str
    suggestion: str
    privacy: str = NOT_COVERED
    names: list[str] = field(default_factory=lambda: list(TRANSFORM_NAMES))

    def to_dict(self) -> dict:
        return asdict(self)


def _fit(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, cfg: ProbeConfig,
         relabel=None) -> torch.nn.Module:
    """``cfg.steps`` NAdam steps on shuffled batches; ``relabel(x, y, generator)`` makes each
    batch's inputs and targets."""
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.NAdam(model.parameters(), lr=cfg.lr)
    model.train()
    batches = iter(())
    for _ in range(cfg.steps):
        idx = next(batches, None)
        if idx is None:  # a new epoch
            batches = iter(torch.randperm(len(labels), generator=gen).split(cfg.batch_size))
            idx = next(batches)
        x, y = images[idx], labels[idx]
        if relabel is not None:
            x, y = relabel(x, y, gen)
        opt.zero_grad()
        F.cross_entropy(model(x.to(cfg.device)), y.to(cfg.device)).backward()
        opt.step()
    return model.eval()


def _random_transforms(x: torch.Tensor, _y: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    ks = torch.randint(len(TRANSFORMS), (len(x),), generator=gen)
    out = torch.empty_like(x)
    for k in range(len(TRANSFORMS)):
        out[ks == k] = dihedral(x[ks == k], k)
    return out, ks


def _mean_interval(values: np.ndarray) -> tuple[float, float]:
    half = Z95 * values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return float(values.mean() - half), float(values.mean() + half)


def run_probe(cfg: ProbeConfig, data: dict[str, Split] | None = None) -> ProbeReport:
    """Train both probe models on ``cfg.dataset`` (or ``data``) and judge its symmetry."""
    data = data or load_dataset(cfg.dataset, cfg.data_root)
    train = data["train"].subset(cfg.train_subset, cfg.seed)
    val = data["val"].subset(cfg.eval_subset, cfg.seed)
    channels, n_cls = train.images.shape[1], num_classes(cfg.dataset)
    torch.manual_seed(cfg.seed)
    detector = _fit(build_model("e", channels, len(TRANSFORMS), cfg.layout).to(cfg.device), train.images,
                    train.labels, cfg, relabel=_random_transforms)
    classifier = _fit(build_model("e", channels, n_cls, cfg.layout).to(cfg.device), train.images, train.labels, cfg)

    moved = [Split(dihedral(val.images, k), val.labels) for k in range(len(TRANSFORMS))]
    detected = np.stack([predict_proba(detector, split, cfg.device).argmax(1) == k
                         for k, split in enumerate(moved)]).astype(np.float64)  # (8, N)
    correct = np.stack([predict_proba(classifier, split, cfg.device).argmax(1) == val.labels.numpy()
                        for split in moved]).astype(np.float64)
    drops = correct[0] - correct  # per transform and image: 1 when only the untransformed image is right
    intervals = [_mean_interval(d) if k else (0.0, 0.0) for k, d in enumerate(drops)]
    breaks = [bool(k and lo > 0 and d.mean() >= MIN_DROP) for k, (d, (lo, _)) in enumerate(zip(drops, intervals))]
    p = float(detected.mean())
    half = Z95 * math.sqrt(p * (1 - p) / detected.size)
    majority = float(np.bincount(val.labels.numpy(), minlength=n_cls).max() / len(val))
    verdict, suggestion = judge(breaks, p - half, float(correct[0].mean()), majority)
    return ProbeReport(
        config={**asdict(cfg), "layout": list(cfg.layout)}, n_train=len(train), n_eval=len(val),
        detection_accuracy=p, detection_interval=(p - half, p + half),
        detection_per_transform=detected.mean(1).tolist(), accuracy=float(correct[0].mean()), majority=majority,
        drops=drops.mean(1).tolist(), drop_intervals=intervals, breaks=breaks, verdict=verdict, suggestion=suggestion)


def judge(breaks: list[bool], detection_low: float, accuracy: float, majority: float) -> tuple[str, str]:
    """The verdict line and the model suggestion from which transforms break the task (with a
    caution when the probe's classifier is barely above the majority class)."""
    if accuracy <= majority:
        return ("inconclusive: the probe's classifier does not beat the majority class, so its accuracy drops "
                "say nothing", "train the probe longer or on more images (--steps, --train-subset)")
    broken = [TRANSFORM_NAMES[k] for k, b in enumerate(breaks) if b]
    weak = (f" Weak evidence: the probe's classifier beats the majority class by only "
            f"{100 * (accuracy - majority):.1f} points." if accuracy - majority < WEAK_MARGIN else "")
    if not broken:
        seen = (" The images themselves have a detectable orientation (e.g. an acquisition layout); the labels "
                "do not use it." if detection_low > DETECTABLE else "")
        return ("orientation-free: invariant models are appropriate." + seen + weak,
                "the paper's invariant readout, C_N or O2 (rotations and flips keep the labels)")
    verdict = ("canonical orientation: prefer `--readout orientation` or a smaller group "
               f"(labels change under {', '.join(broken)})." + weak)
    rotations_keep, flips_keep = not any(breaks[k] for k in ROTATIONS), not any(breaks[k] for k in FLIPS)
    if rotations_keep:
        suggestion = "C_N with the invariant readout (rotations keep the labels, flips do not): not O2"
    elif not breaks[2]:
        suggestion = ("C4 restricted to C2 (the paper's C4: only its 180° invariance survives) or any group with "
                      "`--readout orientation`")
    elif flips_keep:
        suggestion = "no dpecnn group is flip-only: `--readout orientation` (or e)"
    else:
        suggestion = "`--readout orientation` (equivariant features, orientation-aware head) or e"
    return verdict, suggestion


def probe_rows(report: ProbeReport) -> list[dict]:
    """One row per transform: detection accuracy, accuracy drop with its interval (percent)."""
    return [{"transform": name, "detected %": 100 * report.detection_per_transform[k],
             "accuracy drop %": 100 * report.drops[k], "drop low %": 100 * report.drop_intervals[k][0],
             "drop high %": 100 * report.drop_intervals[k][1],
             "labels": "-" if k == 0 else "break" if report.breaks[k] else "keep"}
            for k, name in enumerate(TRANSFORM_NAMES)]


def symmetry_report(cfg: ProbeConfig, fig_dir=None, table_dir=None) -> tuple[ProbeReport, Report]:
    """:func:`run_probe`, then its figure (``fig_dir/symmetry_probe``), its table
    (``table_dir/symmetry_probe.csv``) and the verdict with the suggestion, for the notebook."""
    data = load_dataset(cfg.dataset, cfg.data_root)
    report = run_probe(cfg, data)
    example = data["val"].images[:1]
    examples = torch.cat([dihedral(example, k) for k in range(len(TRANSFORMS))]).numpy()
    lo, hi = report.detection_interval
    figure = probe_figure(examples, TRANSFORM_NAMES, report.detection_per_transform, report.drops,
                          report.drop_intervals, report.breaks, CHANCE,
                          f"{cfg.dataset}: transform detected {100 * report.detection_accuracy:.1f} % "
                          f"(95 % {100 * lo:.1f}–{100 * hi:.1f}, chance 12.5 %), not covered by ε",
                          fig_dir)
    table = save_table(probe_rows(report), table_dir, "symmetry_probe")
    return report, Report(figure, {"symmetry_probe": table}, f"{report.verdict}\nsuggested: {report.suggestion}")


def format_report(report: ProbeReport) -> str:
    """The figures behind the verdict, as plain text lines."""
    lo, hi = report.detection_interval
    rows = probe_rows(report)
    lines = [f"symmetry probe of {report.config['dataset']}: {report.n_train} training, {report.n_eval} validation "
             f"images; {NOT_COVERED}",
             f"which transform was applied: accuracy {100 * report.detection_accuracy:.1f} % "
             f"(95 % {100 * lo:.1f}–{100 * hi:.1f}; chance {100 * CHANCE:.1f} %)",
             f"task accuracy {100 * report.accuracy:.1f} % on untransformed images (majority class "
             f"{100 * report.majority:.1f} %)",
             f"{'transform':<12} {'detected':>9} {'acc drop':>9} {'95 % interval':>16}  labels"]
    for r in rows:
        lines.append(f"{r['transform']:<12} {r['detected %']:>8.1f}% {r['accuracy drop %']:>+8.1f}% "
                     f"{r['drop low %']:>+7.1f}…{r['drop high %']:+.1f}%  {r['labels']}")
    lines += [f"verdict: {report.verdict}", f"suggested: {report.suggestion}"]
    return "\n".join(lines)
