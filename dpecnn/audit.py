"""``python -m dpecnn audit``: an empirical lower bound on ε from one training run.

One run is trained with ``M`` canaries (:mod:`dpecnn.privacy.canaries`), each included with
probability ½; after training every canary gets a score and
:func:`~dpecnn.privacy.one_run.epsilon_lower_bound` turns the scores and coins into an ε that
the run provably exceeds (at 95 % confidence) — a check of the implementation against the
claimed ε, from below:

* ``gradient`` canaries (white-box, the strongest test of DP-SGD's code): the score is
  ``Σ_t ⟨G_t, e_c⟩``, the noisy sums' component along the canary's coordinate.
* ``input`` canaries (black-box: what a membership-inference attacker on the released
  model sees): the score is minus the final model's loss on the mislabelled image.

What it shows and what it does not: a bound above the claimed ε proves a bug (or a broken
assumption); a bound below it is consistent with the claim but proves nothing about it — the
bound is limited by the canaries' number (the ceiling in ``audit.json``) and by how strong
the attack is. DP-SGD's guarantee is for the worst case, while these canaries are one
particular attack.

``DIR/audit.json`` holds everything needed to recompute the bound; ``DIR/run`` is the run
folder, which is never a private release (its canaries are in the model) and which
``export`` refuses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dpecnn import io
from dpecnn.errors import DpecnnError
from dpecnn.privacy.one_run import epsilon_lower_bound
from dpecnn.run_folder import RunFolder
from dpecnn.train.config import TrainConfig
from dpecnn.train.trainer import Trainer

AUDIT_FORMAT = "dpecnn-audit/1"


@torch.no_grad()
def input_canary_scores(trainer: Trainer) -> np.ndarray:
    """Minus the evaluation model's loss on each input canary with its wrong label."""
    model = trainer.eval_model().eval()
    logits = torch.cat([model(x.to(trainer.device)).cpu() for x in trainer.canary_images.split(512)])
    return -F.cross_entropy(logits, trainer.input_canaries.labels, reduction="none").double().numpy()


def run_audit(cfg: TrainConfig, out: str | Path, confidence: float = 0.95, report=None) -> dict:
    """Train (or resume) the audit run in ``out/run`` and write ``out/audit.json``."""
    out = Path(out)
    if not cfg.canaries:
        raise DpecnnError("an audit needs canaries (--canaries M with M ≥ 2)")
    if not 0.5 <= confidence < 1:
        raise DpecnnError(f"confidence must be in [0.5, 1), got {confidence}")
    if (out / "audit.json").exists():
        raise DpecnnError(f"{out} already holds an audit (audit.json); choose a new --out")
    folder = RunFolder(out / "run")
    resume = folder.has_checkpoint and not folder.finished
    trainer = Trainer(cfg, folder.path, resume=resume, report=report)
    if folder.finished:  # killed after training, before audit.json: read the finished run
        folder.check_identity(cfg)
        trainer.eval_model().load_state_dict(folder.load_weights())
        summary = folder.read_summary()
    else:
        summary = trainer.run()
    if cfg.canary_kind == "gradient":
        scores = folder.load_checkpoint()["canary_scores"].numpy()  # the final epoch's checkpoint
        canaries = trainer.gradient_canaries
        listed = {"coordinate": canaries.coordinates.tolist()}
        included = canaries.included.numpy()
    else:
        scores = input_canary_scores(trainer)
        canaries = trainer.input_canaries
        listed = {"train_index": canaries.index.tolist(), "wrong_label": canaries.labels.tolist()}
        included = canaries.included.numpy()
    bound = epsilon_lower_bound(scores, included, cfg.delta, confidence)
    audit = {
        "format": AUDIT_FORMAT,
        "kind": cfg.canary_kind,
        "canaries": cfg.canaries,
        "epsilon_claimed": folder.privacy_claim().get("epsilon_spent"),
        "delta": cfg.delta,
        "confidence": confidence,
        **bound,
        "dp": cfg.dp,
        "dataset": cfg.dataset,
        "arch": cfg.arch,
        "seed": cfg.seed,
        "identity": summary["identity"],
        "val_acc": summary["val_acc"],
        "test_acc": summary["test_acc"],
        "private_release": False,
        "note": summary["private_release_reason"],
        "scores": [float(s) for s in scores],
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
    return (
        f"{audit['kind']} canaries: {audit['canaries']}, {claimed}, δ = {audit['delta']:g}\n"
        f"ε lower bound at {audit['confidence']:.0%}: {audit['epsilon_lower_bound']:.3f} "
        f"({audit['correct']} of {audit['guesses']} guesses right; ceiling {audit['epsilon_ceiling']:.2f} "
        f"for {audit['canaries']} canaries; {audit['correction']})"
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
    bound, ceiling = audit["epsilon_lower_bound"], audit["epsilon_ceiling"]
    evidence = (
        f"{audit['correct']}/{audit['guesses']} guesses right among {audit['canaries']} {audit['kind']} "
        f"canaries, {audit['confidence']:.0%} confidence, ceiling {ceiling:.2f}"
    )
    claimed = audit["epsilon_claimed"]
    if claimed is None:
        found = (
            f"the canaries are detected: ε ≥ {bound:.2f}"
            if bound > 0
            else "this attack found no leakage at this budget (no conclusion)"
        )
        return f"{audit['dataset']} {audit_label(audit)}: no DP claimed; {found} ({evidence})"
    if bound > claimed:
        return (
            f"{audit['dataset']} {audit_label(audit)}: VIOLATION — ε ≥ {bound:.2f} exceeds the claimed "
            f"{claimed:.2f}: the run does not deliver its guarantee ({evidence})"
        )
    return (
        f"{audit['dataset']} {audit_label(audit)}: no violation — ε ≥ {bound:.2f} is within the claimed {claimed:.2f}; "
        f"consistent with the claim, not a proof of it ({evidence})"
    )


def audit_label(audit: dict) -> str:
    """``C4 ε = 1.00, gradient`` (or ``no DP``): which audit a verdict or a figure panel is about."""
    eps = f"ε = {audit['epsilon_claimed']:.2f}" if audit["epsilon_claimed"] is not None else "no DP"
    return f"{audit['arch']} {eps}, {audit['kind']}"


def audit_report(audits: list[dict], fig_dir=None, table_dir=None):
    """The notebook's figure, table (``privacy_audit.csv``) and verdict lines."""
    from dpecnn.analysis.report_base import Report, save_table
    from dpecnn.plotting.audit import audit_figure

    rows = [
        {
            "dataset": a["dataset"],
            "arch": a["arch"],
            "kind": a["kind"],
            "canaries": a["canaries"],
            "epsilon_claimed": a["epsilon_claimed"],
            "delta": a["delta"],
            "epsilon_lower_bound": a["epsilon_lower_bound"],
            "guesses": a["guesses"],
            "correct": a["correct"],
            "epsilon_ceiling": a["epsilon_ceiling"],
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
    from dpecnn.analysis.runs_table import run_rows
    from dpecnn.analysis.table import collect_summaries

    out = Path(out)
    audits = collect_audits(root)
    report = audit_report(audits, out, None)
    table = report.tables["privacy_audit"]
    runs = run_rows(collect_summaries(root))  # the audits' run folders, matched by identity
    columns = [c for c in runs.columns if c not in table.columns or c == "identity"]
    merged = table.merge(runs[columns], on="identity", how="left", validate="one_to_one")
    io.write_bytes(out / "runs.csv", merged.to_csv(index=False).encode())
    lines = [
        "| dataset | arch | canaries | ε claimed | ε lower bound (95 %) | right / guesses | ceiling | val acc |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for _, r in table.iterrows():
        claimed = (
            "no DP"
            if r["epsilon_claimed"] is None or r["epsilon_claimed"] != r["epsilon_claimed"]
            else f"{r['epsilon_claimed']:.2f}"
        )
        lines.append(
            f"| {r['dataset']} | {r['arch']} | {r['canaries']} {r['kind']} | {claimed} | "
            f"{r['epsilon_lower_bound']:.2f} | {r['correct']} / {r['guesses']} | {r['epsilon_ceiling']:.2f} | "
            f"{100 * r['val_acc']:.1f} % |"
        )
    lines += ["", "Verdicts:", ""] + [f"- {v}" for v in report.verdict.splitlines()]
    io.write_bytes(out / "audit.md", ("\n".join(lines) + "\n").encode())
    return {"runs": out / "runs.csv", "md": out / "audit.md", "figure": out / "privacy_audit.png"}
