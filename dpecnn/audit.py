"""``python -m dpecnn audit``: an empirical lower bound on ε from one training run.

One run is trained with ``M`` canaries (:mod:`dpecnn.privacy.canaries`), each included with
probability ½; after training every canary gets a score, and
:func:`~dpecnn.privacy.one_run.epsilon_lower_bound` turns the scores and coins into two bounds that
the run provably exceeds at 95 % confidence: Steinke et al.'s (ε, δ) bound, and the f-DP bound of
Mahloujifar et al. (against the Gaussian trade-off curve at (ε, δ); tighter, for a stronger
hypothesis). A check of the implementation against the claimed ε, from below:

* ``gradient`` canaries (white-box, the strongest test of DP-SGD's code): Dirac canaries on the
  coordinates the data move least, scored by the per-step likelihood-ratio test of the
  subsampled Gaussian (the plain sum over steps is kept as a baseline).
* ``input`` canaries (black-box: what a membership-inference attacker on the released model
  sees): mislabelled images, scored by their loss under a reference model trained without any of
  them (a second run, ``DIR/reference``) minus their loss under the audited model (the audited
  model's −loss alone is the baseline).

What it shows and what it does not: a one-run bound above the claimed ε proves a bug (or a
broken assumption); a bound below it is consistent with the claim but proves nothing about it —
the bound is limited by the canaries' number (the ceilings in ``audit.json``) and by how strong
the attack is, and where the ceiling is below the claim the audit cannot test the claim above
it. DP-SGD's guarantee is for the worst case, while these canaries are one particular attack.

``DIR/audit.json`` holds every score and membership bit (each bound can be recomputed from it),
``DIR/observations.safetensors`` every step's released value on each gradient canary; ``DIR/run``
(and ``DIR/reference``) are run folders that are never private releases and that ``export``
refuses.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dpecnn import io
from dpecnn.errors import DpecnnError
from dpecnn.privacy.canaries import likelihood_ratio_scores, plain_sum_scores, reference_scores
from dpecnn.privacy.one_run import epsilon_lower_bound
from dpecnn.run_folder import RunFolder
from dpecnn.train.config import AUDIT_CANARY_KINDS, TrainConfig
from dpecnn.train.trainer import Trainer

AUDIT_FORMAT = "dpecnn-audit/2"  # 2: two bounds, the primary score beside its baseline
# The scores of each canary kind: the first is the attack, the second its baseline.
SCORES = {"gradient": ("likelihood ratio", "plain sum"), "input": ("reference", "loss")}


@torch.no_grad()
def input_canary_losses(trainer: Trainer) -> np.ndarray:
    """The evaluation model's loss on each input canary with its wrong label."""
    model = trainer.eval_model().eval()
    canaries = trainer.canary_images
    logits = torch.cat(
        [model(canaries.inputs(slice(i, i + 512), trainer.device)).cpu() for i in range(0, len(canaries), 512)]
    )
    return F.cross_entropy(logits, trainer.input_canaries.labels, reduction="none").double().numpy()


def _trained(cfg: TrainConfig, path: Path, report) -> tuple[Trainer, dict]:
    """Train (or resume) the run of ``cfg`` in ``path``; a finished run is read, not retrained."""
    folder = RunFolder(path)
    trainer = Trainer(cfg, folder.path, resume=folder.has_checkpoint and not folder.finished, report=report)
    if folder.finished:  # killed after training, before audit.json
        folder.check_identity(cfg)
        trainer.eval_model().load_state_dict(folder.load_weights())
        return trainer, folder.read_summary()
    return trainer, trainer.run()


def _scores(cfg: TrainConfig, out: Path, trainer: Trainer, summary: dict, report) -> tuple[dict, np.ndarray, dict]:
    """The attack's and the baseline's scores, the coins, and what identifies each canary."""
    if cfg.canary_kind == "gradient":
        recorded = RunFolder(out / "run").load_checkpoint()["canaries"]  # the final epoch's checkpoint
        observations = recorded["observations"].double()
        io.save_tensors(out / "observations.safetensors", {"observations": observations})
        noise_std = summary["noise_multiplier"] * cfg.max_grad_norm
        attack = likelihood_ratio_scores(observations.numpy(), summary["sample_rate"], cfg.max_grad_norm, noise_std)
        scores = {"likelihood ratio": attack, "plain sum": plain_sum_scores(observations.numpy())}
        return scores, recorded["included"].numpy(), {"coordinate": recorded["coordinates"].tolist()}
    reference, _ = _trained(dataclasses.replace(cfg, canary_kind="input-reference"), out / "reference", report)
    losses = input_canary_losses(trainer)
    scores = {"reference": reference_scores(losses, input_canary_losses(reference)), "loss": -losses}
    canaries = trainer.input_canaries
    listed = {"train_index": canaries.index.tolist(), "wrong_label": canaries.labels.tolist()}
    return scores, canaries.included.numpy(), listed


def run_audit(cfg: TrainConfig, out: str | Path, confidence: float = 0.95, report=None) -> dict:
    """Train (or resume) the audit run in ``out/run`` (and its reference) and write ``out/audit.json``."""
    out = Path(out)
    if not cfg.canaries:
        raise DpecnnError("an audit needs canaries (--canaries M with M ≥ 2)")
    if cfg.canary_kind not in AUDIT_CANARY_KINDS:
        raise DpecnnError(f"an audit's canaries are {' or '.join(AUDIT_CANARY_KINDS)}, not {cfg.canary_kind!r}")
    if not 0.5 <= confidence < 1:
        raise DpecnnError(f"confidence must be in [0.5, 1), got {confidence}")
    if (out / "audit.json").exists():
        raise DpecnnError(f"{out} already holds an audit (audit.json); choose a new --out")
    trainer, summary = _trained(cfg, out / "run", report)
    scores, included, listed = _scores(cfg, out, trainer, summary, report)
    bounds = {
        name: epsilon_lower_bound(s, included, cfg.delta, confidence, summary["sample_rate"], summary["steps"])
        for name, s in scores.items()
    }
    attack, baseline = SCORES[cfg.canary_kind]
    audit = {
        "format": AUDIT_FORMAT,
        "kind": cfg.canary_kind,
        "canaries": cfg.canaries,
        "epsilon_claimed": RunFolder(out / "run").privacy_claim().get("epsilon_spent"),
        "delta": cfg.delta,
        "confidence": confidence,
        "score": attack,
        **bounds[attack],
        "baseline": {"score": baseline, **bounds[baseline]},
        "sample_rate": summary["sample_rate"],
        "steps": summary["steps"],
        "dp": cfg.dp,
        "dataset": cfg.dataset,
        "arch": cfg.arch,
        "seed": cfg.seed,
        "identity": summary["identity"],
        "val_acc": summary["val_acc"],
        "test_acc": summary["test_acc"],
        "private_release": False,
        "note": summary["private_release_reason"],
        "scores": {name: [float(v) for v in s] for name, s in scores.items()},
        "included": [bool(b) for b in included],
        **listed,
    }
    io.write_json(out / "audit.json", audit)
    return audit


def format_audit(audit: dict) -> str:
    claimed = (
        f"claimed ε = {audit['epsilon_claimed']:.3f}"
        if audit["epsilon_claimed"] is not None
        else "no DP (no ε claimed)"
    )
    base = audit["baseline"]
    return (
        f"{audit['kind']} canaries: {audit['canaries']}, {claimed}, δ = {audit['delta']:g}\n"
        f"ε lower bound at {audit['confidence']:.0%}, {audit['score']} score: {audit['epsilon_lower_bound']:.3f} "
        f"(Steinke et al.; {audit['correct']} of {audit['guesses']} guesses right, {audit['guess']}; ceiling "
        f"{audit['epsilon_ceiling']:.2f}), f-DP {audit['epsilon_lower_bound_fdp']:.3f} (Gaussian trade-off; "
        f"ceiling {audit['epsilon_ceiling_fdp']:.2f})\n"
        f"baseline, {base['score']} score: {base['epsilon_lower_bound']:.3f}, "
        f"f-DP {base['epsilon_lower_bound_fdp']:.3f}\n{audit_verdict(audit)}"
    )


def load_or_run_audit(cfg: TrainConfig, out: str | Path, confidence: float = 0.95, report=None) -> dict:
    """``out/audit.json`` if it holds the audit of ``cfg``, else :func:`run_audit`."""
    path = Path(out) / "audit.json"
    if path.exists():
        audit = io.read_json(path)
        if (
            not isinstance(audit, dict)
            or audit.get("identity") != cfg.identity_hash()
            or audit.get("confidence") != confidence
        ):
            raise DpecnnError(f"{path} holds another audit; choose another folder")
        return audit
    return run_audit(cfg, out, confidence, report)


def audit_verdict(audit: dict) -> str:
    """What one audit shows, with its evidence; never more than it shows."""
    bound, fdp = audit["epsilon_lower_bound"], audit["epsilon_lower_bound_fdp"]
    ceiling, ceiling_fdp = audit["epsilon_ceiling"], audit["epsilon_ceiling_fdp"]
    base = audit["baseline"]
    evidence = (
        f"{audit['score']} score; {audit['correct']}/{audit['guesses']} {audit['guess']} guesses right among "
        f"{audit['canaries']} {audit['kind']} canaries, {audit['confidence']:.0%} confidence, ceilings {ceiling:.2f} "
        f"(f-DP {ceiling_fdp:.2f}); baseline {base['score']} score: ε ≥ {base['epsilon_lower_bound']:.2f} "
        f"(f-DP {base['epsilon_lower_bound_fdp']:.2f})"
    )
    found = f"ε ≥ {bound:.2f} (Steinke et al.), ≥ {fdp:.2f} (f-DP, Gaussian trade-off)"
    where = f"{audit['dataset']} {audit_label(audit)}"
    claimed = audit["epsilon_claimed"]
    if claimed is None:
        if bound > 0 or fdp > 0:
            return f"{where}: no DP claimed; the canaries are detected: {found} ({evidence})"
        return f"{where}: no DP claimed; this attack found no leakage (no conclusion) ({evidence})"
    if bound > claimed:
        return (
            f"{where}: VIOLATION — {found} exceeds the claimed {claimed:.2f}: the run does not deliver its "
            f"guarantee ({evidence})"
        )
    if fdp > claimed:
        return (
            f"{where}: LESS PRIVATE THAN THE GAUSSIAN CURVE at the claimed ε = {claimed:.2f}: {found}; not an "
            f"(ε, δ) violation by itself, but DP-SGD's curve is close to Gaussian: investigate ({evidence})"
        )
    limit = ""
    if ceiling < claimed:
        limit = (
            f"; Steinke et al.'s bound can test the claim only up to ε = {ceiling:.2f} (the f-DP bound reaches "
            f"{ceiling_fdp:.2f}, for the Gaussian-curve hypothesis)"
            if ceiling_fdp >= claimed
            else f"; neither bound can test the claim above ε = {max(ceiling, ceiling_fdp):.2f}"
        )
    return (
        f"{where}: no violation found — {found} is within the claimed {claimed:.2f}; consistent with the claim, "
        f"not a proof of it{limit} ({evidence})"
    )


def audit_label(audit: dict) -> str:
    """``C4 ε = 1.00, 1000 gradient`` (or ``no DP``): which audit a verdict or a figure panel is about."""
    eps = f"ε = {audit['epsilon_claimed']:.2f}" if audit["epsilon_claimed"] is not None else "no DP"
    return f"{audit['arch']} {eps}, {audit['canaries']} {audit['kind']}"


def audit_report(audits: list[dict], fig_dir=None, table_dir=None):
    """The notebook's figure, table (``privacy_audit.csv``) and verdict lines."""
    from dpecnn.analysis.pages.report_base import Report, save_table
    from dpecnn.plotting.audit import audit_figure

    rows = [
        {
            "dataset": a["dataset"],
            "arch": a["arch"],
            "kind": a["kind"],
            "canaries": a["canaries"],
            "epsilon_claimed": a["epsilon_claimed"],
            "delta": a["delta"],
            "score": a["score"],
            "epsilon_lower_bound": a["epsilon_lower_bound"],
            "guess": a["guess"],
            "guesses": a["guesses"],
            "correct": a["correct"],
            "epsilon_lower_bound_fdp": a["epsilon_lower_bound_fdp"],
            "epsilon_ceiling": a["epsilon_ceiling"],
            "epsilon_ceiling_fdp": a["epsilon_ceiling_fdp"],
            "baseline_score": a["baseline"]["score"],
            "baseline_epsilon_lower_bound": a["baseline"]["epsilon_lower_bound"],
            "baseline_epsilon_lower_bound_fdp": a["baseline"]["epsilon_lower_bound_fdp"],
            "sample_rate": a["sample_rate"],
            "val_acc": a["val_acc"],
            "seed": a["seed"],
            "identity": a["identity"],
        }
        for a in audits
    ]
    table = save_table(rows, table_dir, "privacy_audit")
    return Report(
        audit_figure(audits, [audit_label(a) for a in audits], fig_dir),
        {"privacy_audit": table},
        "\n".join(map(audit_verdict, audits)),
    )


def collect_audits(root: str | Path) -> list[dict]:
    """Every ``audit.json`` below ``root``, in a stable order (dataset, arch, kind, ε, seed)."""
    audits = [io.read_json(p) for p in sorted(Path(root).rglob("audit.json"))]
    bad = [a for a in audits if not isinstance(a, dict) or a.get("format") != AUDIT_FORMAT]
    if bad or not audits:
        raise DpecnnError(f"{root} holds no dpecnn audits" if not audits else f"{root} holds a foreign audit.json")
    return sorted(
        audits,
        key=lambda a: (
            a["dataset"],
            a["arch"],
            a["kind"],
            a["epsilon_claimed"] is None,
            a["epsilon_claimed"] or 0,
            a["seed"],
        ),
    )


def write_audit_results(root: str | Path, out: str | Path) -> dict[str, Path]:
    """``out/runs.csv`` (one row per audit run), ``out/audit.md`` (with the verdicts) and the
    figure ``out/privacy_audit.{png,pdf}`` from the audits below ``root``."""
    from dpecnn.analysis.pages.runs_table import run_rows
    from dpecnn.analysis.pages.table import collect_summaries

    out = Path(out)
    audits = collect_audits(root)
    report = audit_report(audits, out, None)
    table = report.tables["privacy_audit"]
    runs = run_rows(collect_summaries(root))  # the audits' run folders, matched by identity
    columns = [c for c in runs.columns if c not in table.columns or c == "identity"]
    merged = table.merge(runs[columns], on="identity", how="left", validate="one_to_one")
    io.write_bytes(out / "runs.csv", merged.to_csv(index=False).encode())
    lines = [
        "| dataset | arch | canaries | ε claimed | score | ε ≥ (one run) | right / guesses | ε ≥ (f-DP) "
        "| ceilings | baseline score: ε ≥ (one run / f-DP) | val acc |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in table.iterrows():
        claimed = (
            "no DP"
            if r["epsilon_claimed"] is None or r["epsilon_claimed"] != r["epsilon_claimed"]
            else f"{r['epsilon_claimed']:.2f}"
        )
        lines.append(
            f"| {r['dataset']} | {r['arch']} | {r['canaries']} {r['kind']} | {claimed} | {r['score']} | "
            f"{r['epsilon_lower_bound']:.2f} | {r['correct']} / {r['guesses']} ({r['guess']}) | "
            f"{r['epsilon_lower_bound_fdp']:.2f} | {r['epsilon_ceiling']:.2f} / {r['epsilon_ceiling_fdp']:.2f} | "
            f"{r['baseline_score']}: {r['baseline_epsilon_lower_bound']:.2f} / "
            f"{r['baseline_epsilon_lower_bound_fdp']:.2f} | {100 * r['val_acc']:.1f} % |"
        )
    lines += [
        "",
        "One run: Steinke, Nasr & Jagielski (2023), an (ε, δ) lower bound. f-DP: Mahloujifar, Melis & Chaudhuri "
        "(2025) against the Gaussian trade-off curve at (ε, δ), tighter for a stronger hypothesis. Ceilings: the "
        "bounds if every guess were right (one run / f-DP). Both at 95 % confidence, δ = 1e-5, Bonferroni over the "
        "guess counts; the baseline is the same canaries under the previous score (plain sum over steps, or the "
        "audited model's loss alone).",
    ]
    lines += ["", "Verdicts:", ""] + [f"- {v}" for v in report.verdict.splitlines()]
    io.write_bytes(out / "audit.md", ("\n".join(lines) + "\n").encode())
    return {"runs": out / "runs.csv", "md": out / "audit.md", "figure": out / "privacy_audit.png"}
