"""``python -m dpecnn export RUN --out DIR``: a release folder for a finished run.

The folder holds exactly what may be published with the model: ``model.safetensors`` (the
evaluation weights), ``model.onnx`` (the same model without escnn, checked on the test split:
:mod:`dpecnn.deploy`) and a model card (``model_card.json`` and ``model_card.md``) stating the
privacy parameters (ε from the run's accountant and from dp-accounting's PLD, δ, σ, q,
steps, clipping norm), whether the run is a private release, and what ε does not cover.
Logs, checkpoints and diagnostics stay behind. A run that is not a private release (non-DP
or ``--reproducible``) is refused unless ``force``; its card then says why it is not one. An
audit run (canaries trained in on purpose) is always refused. The folder is written under a
temporary name and renamed when complete.

Every privacy statement of the card is derived, never read back (:func:`~dpecnn.run_folder.verified_privacy`):
whether the run is a private release comes from the identity-checked ``config.json``; ε is
recomputed by the accountant from the recorded history, which must be the one the config
implies (σ calibrated for the configured target, ``epochs·⌊N/B⌋`` steps, the trainer's rule). An edited
``summary.json`` therefore cannot upgrade a run, and neither can a summary or weights moved in from
another run (:meth:`~dpecnn.run_folder.RunFolder.read_finished`): each is refused with one error line.
"""

from __future__ import annotations

import hashlib
import shutil
from importlib import metadata
from pathlib import Path

from dpecnn import io
from dpecnn.data.datasets import config_split
from dpecnn.data.images import InputPipeline
from dpecnn.data.medmnist_data import class_names
from dpecnn.deploy import write_onnx
from dpecnn.errors import DpecnnError
from dpecnn.privacy.coverage import card_statements
from dpecnn.run_folder import RunFolder, verified_privacy
from dpecnn.train.config import TrainConfig

CARD_FORMAT = "dpecnn-model-card/2"  # 2: the input pipeline and the data record
READOUT_STATEMENTS = {
    "invariant": "group pooling: the prediction does not change when the image is turned or flipped by an element "
    "of the model's group (exactly for 90° turns of C4/C8/C16 before restriction and flips of O(2), see the docs)",
    "orientation": "orientation-aware: the prediction may change when the image is turned or flipped; feed images "
    "in the orientation the training images had",
    "none": "no symmetry group: the prediction may change when the image is turned or flipped; feed images in the "
    "orientation the training images had",
}
PATIENT_CAVEATS = (
    "The unit of privacy is one image: a patient with k images in training is protected only at group privacy, "
    "(kε, k·e^((k−1)ε)·δ); keep one image per patient or account for the largest k.",
    "Splits drawn by dpecnn are by image: images of one patient may sit in training and test, which can inflate "
    "the test accuracy; split by patient yourself (a CSV with a split column).",
)


def _versions() -> dict[str, str]:
    found = {}
    for name in ("dpecnn", "torch", "opacus", "escnn"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "unknown"
    return found


def input_pipeline(summary: dict, cfg: TrainConfig) -> dict:
    """The run's input pipeline (:class:`~dpecnn.data.images.InputPipeline`); runs recorded before
    it was kept are MedMNIST at 28 × 28 with the dataset's channels."""
    if "input" in summary:
        return InputPipeline.from_dict(summary["input"]).to_dict()
    return InputPipeline(28, int(summary["in_channels"]), class_names(cfg.dataset)).to_dict()


def data_record(summary: dict) -> dict:
    """What the card says about the training data: MedMNIST by name; own data by kind, content hash
    and split rule only — never a path or a folder name."""
    data = summary.get("data") or {"name": summary["dataset"], "source": "medmnist", "content_hash": None}
    if data["source"] == "medmnist":
        return {"dataset": data["name"], "source": "medmnist"} | (
            {"split_rule": data["split_rule"]} if "split_rule" in data else {}
        )
    return {
        "dataset": f"own images ({data['source']})",
        "source": data["source"],
        "content_hash": data["content_hash"],
        "split_rule": data["split_rule"],
        "n": data["n"],
    } | ({"notices": data["notices"]} if data.get("notices") else {})


def accuracy_evidence(accuracy: float, counts: dict | None, class_names) -> dict:
    """An accuracy with its evidence: n, a 95 % Wilson interval and what always predicting the
    split's most common class scores (None where the run did not record its counts)."""
    if not counts:
        return {"acc": accuracy}
    from scipy.stats import binomtest

    n, class_counts = int(counts["n"]), counts["class_counts"]
    interval = binomtest(round(accuracy * n), n).proportion_ci(0.95, method="wilson")
    top = max(range(len(class_counts)), key=class_counts.__getitem__)
    return {
        "acc": accuracy,
        "n": n,
        "ci95": [float(interval.low), float(interval.high)],
        "majority_class": class_names[top],
        "majority_rate": class_counts[top] / n,
    }


def model_card(summary: dict, cfg: TrainConfig, privacy: dict, weights_sha256: str, onnx: dict | None = None) -> dict:
    """The card as a JSON-ready dictionary (``privacy`` from :func:`verified_privacy`, ``onnx`` from
    :func:`~dpecnn.deploy.write_onnx` with the file's sha256)."""
    data = data_record(summary)
    return {
        "format": CARD_FORMAT,
        "data": data,
        "input": input_pipeline(summary, cfg),
        "model": {
            "dataset": data["dataset"],
            "arch": summary["arch"],
            "layout": summary["layout"],
            "restrict": cfg.restrict,
            "fields": cfg.fields,
            "readout": cfg.readout,
            "in_channels": summary["in_channels"],
            "num_classes": summary["num_classes"],
            "params": summary["params"],
            "weights": "model.safetensors",
            "weights_sha256": weights_sha256,
        }
        | ({"onnx": onnx} if onnx else {}),
        "privacy": privacy,
        "not_covered_by_epsilon": card_statements(),
        "training": {
            k: cfg.identity()[k]
            for k in ("optimizer", "lr", "momentum", "weight_decay", "aug_mult", "aug_rot90", "ema", "seed")
        }
        | {
            "lr_schedule": cfg.lr_schedule,
            "warmup_steps": cfg.warmup_steps,
            "batch_size": cfg.batch_size,
            "epochs": cfg.epochs,
            "steps": summary["steps"],
        }
        | {"n_train": summary["n_train"], "identity": summary["identity"]},
        "evaluation": {k: summary[k] for k in ("val_acc", "val_auc", "test_acc", "test_auc", "brier", "ece")}
        | {
            "accuracy": {
                split: accuracy_evidence(
                    summary[f"{split}_acc"],
                    summary.get("evaluation_counts", {}).get(split),
                    input_pipeline(summary, cfg)["class_names"],
                )
                for split in ("val", "test")
            },
            "seeds": [summary["seed"]],
            "note": "one training run (one seed); validation accuracy is not an "
            "independent estimate if hyper-parameters were tuned on it",
        },
        "software": _versions(),
    }


def render_card(card: dict) -> str:
    m, p, e = card["model"], card["privacy"], card["evaluation"]
    lines = [f"# Model card: {m['arch']} ResNet-9 on {m['dataset']}", ""]
    if p["private_release"]:
        lines.append(
            f"**Differentially private release**: (ε = {p['epsilon_spent']:.3f}, δ = {p['delta']:g}) "
            f"by the {p['accountant'].upper()} accountant; the tight PLD accountant (dp-accounting) gives "
            f"ε = {p['epsilon_pld']:.3f} for the same mechanism."
        )
    else:
        lines.append(f"**NOT a differentially private release**: {p['private_release_reason']}.")
    lines += [
        "",
        "## Model",
        "",
        f"- layout {'-'.join(map(str, m['layout']))}, {m['params']:,} trainable parameters, "
        f"{m['in_channels']} input channels, {m['num_classes']} classes",
        f"- weights: `{m['weights']}` (sha256 `{m['weights_sha256']}`)",
        *(
            [
                f"- without escnn: `{m['onnx']['file']}` (sha256 `{m['onnx']['sha256']}`), from "
                f"{m['onnx']['exporter']}, opset {m['onnx']['opset']}; on the {m['onnx']['checked_images']} test "
                f"images {m['onnx']['checked_with']} gives probabilities within "
                f"{m['onnx']['max_probability_difference']:.1g} of the torch model's; Grad-CAM: "
                + (
                    f"from the graph, within {m['onnx']['grad_cam_max_relative_difference']:.1g} of Captum's "
                    "(relative to the largest Grad-CAM value)"
                    if "grad_cam_checked_images" in m["onnx"]
                    else m["onnx"]["grad_cam"]
                )
            ]
            if "onnx" in m
            else []
        ),
        "",
        "## Privacy",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in p.items()]
    lines += ["", "## What ε does not cover", ""] + [f"- {t}" for t in card["not_covered_by_epsilon"]]
    lines += ["", "## Patients", ""] + [f"- {t}" for t in PATIENT_CAVEATS]
    lines += ["", "## Training", ""] + [f"- {k}: {v}" for k, v in card["training"].items() if v is not None]
    lines += ["", "## Evaluation", ""] + [accuracy_line(split, a) for split, a in e["accuracy"].items()]
    lines += [f"- {k}: {v}" for k, v in e.items() if k not in ("accuracy", "val_acc", "test_acc")]
    lines += ["", "## Software", ""] + [f"- {k} {v}" for k, v in card["software"].items()]
    i = card["input"]
    lines += [
        "",
        "## Input",
        "",
        f"- images {i['size']}×{i['size']}, {i['channels']} channel(s); other sizes are resized: {i['interpolation']}; "
        "the aspect ratio is not kept (crop non-square images yourself first)",
        f"- pixels scaled {i['scaling']}",
        "- colour to grey by ITU-R 601-2 luma (PIL's convert('L')), grey to colour by repeating the grey value",
        "- 8-bit images only: a 16-bit image (X-ray and CT exports often hold 12 bits, 0–4095) is refused with "
        "the conversion that fits its values; convert with the window your data use",
        f"- readout: {READOUT_STATEMENTS['none' if m['arch'] in ('e', 'C1') else m['readout']]}",
        "- classes in label order: " + ", ".join(f"{k} {n}" for k, n in enumerate(i["class_names"])),
        f"- training data: {card['data']['dataset']}"
        + (f", content sha256 `{card['data']['content_hash']}`" if card["data"].get("content_hash") else "")
        + (f"; splits: {card['data']['split_rule']}" if "split_rule" in card["data"] else ""),
        *[f"- on the way in: {notice}" for notice in card["data"].get("notices", [])],
        "",
        "## Use",
        "",
        "```python",
        "import dpecnn.release",
        "",
        "release = dpecnn.release.load('THIS_FOLDER')  # checks the weights' sha256",
        "labels = release.predict(['image.png'])  # or uint8 arrays; preprocessed as above",
        "```",
        "",
        "or `python -m dpecnn predict THIS_FOLDER image.png …`. Where escnn cannot be installed, `load` runs "
        "`model.onnx` on onnxruntime (`backend='onnx'` asks for it); in any ONNX runtime feed input `image` "
        f"(N, {i['channels']}, {i['size']}, {i['size']}) preprocessed as above and read output `logits`. By hand: "
        "`safetensors.torch.load_file('model.safetensors')` into "
        f"`dpecnn.models.build_model('{m['arch']}', {m['in_channels']}, {m['num_classes']}, "
        f"{tuple(m['layout'])}, restrict={m['restrict']}, fields='{m['fields']}', "
        f"readout='{m['readout']}')`, inputs (N, {i['channels']}, {i['size']}, {i['size']}) scaled as above.",
        "",
    ]
    return "\n".join(lines)


def accuracy_line(split: str, a: dict) -> str:
    """``- test accuracy 0.742 (n = 31, 95 % CI 0.566–0.863); always predicting 'benign': 0.742 …``"""
    if "n" not in a:
        return f"- {split} accuracy {a['acc']:.3f} (the run did not record its split's counts)"
    low, high = a["ci95"]
    line = (
        f"- {split} accuracy {a['acc']:.3f} (n = {a['n']}, 95 % CI {low:.3f}–{high:.3f}); always predicting "
        f"'{a['majority_class']}': {a['majority_rate']:.3f}"
    )
    if low <= a["majority_rate"]:
        line += " — NOT distinguishable from that constant answer on these images"
    return line


def export_run(run: str | Path, out: str | Path, force: bool = False) -> list[Path]:
    """Write the release folder ``out`` for the finished run ``run``; returns its files."""
    folder, out = RunFolder(run), Path(out)
    cfg, summary = folder.read_finished()
    privacy = verified_privacy(cfg, summary, str(folder.summary_file))
    if cfg.canaries:
        raise DpecnnError(f"{folder} is an audit run and never a release ({privacy['private_release_reason']})")
    if not privacy["private_release"] and not force:
        raise DpecnnError(
            f"{folder} is not a private release ({privacy['private_release_reason']}); "
            "pass --force to export it with a card that says so"
        )
    if out.exists() and any(out.iterdir()):
        raise DpecnnError(f"{out} exists and is not empty; choose a new --out")
    model = folder.load_model(cfg, summary)  # validates the weights before anything is written
    test = config_split(cfg, "test")  # the ONNX graph's check
    staging = io.make_staging_dir(out)
    try:
        io.save_tensors(
            staging / "model.safetensors",
            model.state_dict(),
            {"dpecnn_arch": cfg.arch, "dpecnn_identity": summary["identity"]},
        )
        sha = hashlib.sha256((staging / "model.safetensors").read_bytes()).hexdigest()
        onnx = write_onnx(model, test, staging / "model.onnx")
        onnx["sha256"] = io.file_digest(staging / "model.onnx")
        card = model_card(summary, cfg, privacy, sha, onnx)
        io.write_json(staging / "model_card.json", card)
        io.write_bytes(staging / "model_card.md", render_card(card).encode())
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [out / "model.safetensors", out / "model.onnx", out / "model_card.json", out / "model_card.md"]
