"""Own images in (folder, CSV, npz; any size), the bad inputs they bring, and a release that
reproduces its card from raw image files."""

import gc
import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import flags
from PIL import Image

from dpecnn.data import open_dataset, write_image_folder, write_synthetic_npz
from dpecnn.data.own_data import content_hash
from dpecnn.errors import DataError, DpecnnError
from dpecnn.train import TrainConfig, Trainer

TINY = dict(arch="C4", layout=(4, 4, 8), epochs=1, batch_size=32, physical_batch_size=32)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("own") / "scans", n=120, size=64)


@pytest.fixture(scope="module")
def split_folder(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("own") / "ward7", splits=(96, 24, 24), size=64, seed=1)


def cli(*args):
    return subprocess.run([sys.executable, "-m", "dpecnn", *map(str, args)], capture_output=True, text=True)


def test_a_folder_without_splits_is_split_stratified_and_hashed(folder):
    data = open_dataset(str(folder))
    assert (
        data.name == "scans"
        and data.source == "folder"
        and data.pipeline.class_names == ("benign", "malignant", "normal")
    )
    assert {s: len(d) for s, d in data.splits.items()} == {"train": 96, "val": 12, "test": 12}
    for split in ("val", "test"):  # 40 images per class: 4 of each in val and test
        assert np.bincount(data.splits[split].labels.numpy()).tolist() == [4, 4, 4]
    assert data.splits["train"].inputs().shape[1:] == (1, 64, 64) and "stratified" in data.split_rule
    again = open_dataset(str(folder))
    assert all((again.splits[s].labels == data.splits[s].labels).all() for s in data.splits)  # the same split
    assert data.content_hash == content_hash(str(folder))


def test_given_splits_size_and_channels(split_folder):
    data = open_dataset(str(split_folder), size=32, channels=3)
    assert data.split_rule == "given" and {s: len(d) for s, d in data.splits.items()} == {
        "train": 96,
        "val": 24,
        "test": 24,
    }
    assert data.splits["val"].inputs().shape[1:] == (3, 32, 32) and data.pipeline.size == 32


def test_a_csv_of_paths_labels_and_splits(folder, tmp_path):
    files = sorted(folder.rglob("*.png"))
    rows = ["path,label,split"] + [
        f"{f.relative_to(folder)},{f.parent.name},{('train', 'val', 'test')[i % 3]}" for i, f in enumerate(files)
    ]
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    try:
        data = open_dataset(str(folder / "labels.csv"))
        assert data.source == "csv" and data.name == "labels" and data.split_rule == "given"
        assert {s: len(d) for s, d in data.splits.items()} == {"train": 40, "val": 40, "test": 40}
        (folder / "labels.csv").write_text(
            "path,label\n"
            + "".join(
                f"{f.relative_to(folder)},{ {'benign': 10, 'malignant': 2, 'normal': 1}[f.parent.name] }\n"
                for f in files
            )
        )
        numeric = open_dataset(str(folder / "labels.csv"))
        assert numeric.pipeline.class_names == ("1", "2", "10") and "stratified" in numeric.split_rule
    finally:
        (folder / "labels.csv").unlink()


def test_an_npz_with_medmnist_keys_and_class_names(tmp_path):
    path = write_synthetic_npz("breastmnist", tmp_path, sizes=(60, 20, 20))
    own = tmp_path / "mine.npz"
    with np.load(path) as d:
        np.savez(own, **{k: d[k] for k in d.files}, class_names=np.array(["no", "yes"]))
    data = open_dataset(str(own), size=48)
    assert data.source == "npz" and data.pipeline.class_names == ("no", "yes")
    assert data.splits["test"].inputs().shape == (20, 1, 48, 48)


def test_medmnist_at_64_pixels_through_its_own_file(tmp_path):
    write_synthetic_npz("bloodmnist", tmp_path, sizes=(64, 32, 32), size=64)
    cfg = TrainConfig(dataset="bloodmnist", data_root=str(tmp_path), size=64, **TINY)
    trainer = Trainer(cfg, tmp_path / "run")
    assert all(s.pixels.dtype == torch.uint8 for s in trainer.data.splits.values())  # converted per batch
    assert trainer.data.splits["train"].pixels.shape[1:] == (64, 64, 3)
    summary = trainer.run()
    assert summary["input"]["size"] == 64 and summary["settings"]["size"] == 64
    assert TrainConfig(size=28).validate().identity_hash() == TrainConfig().validate().identity_hash()
    with pytest.raises(DataError, match="sizes 28, 64, 128, 224, not 100"):
        TrainConfig(size=100).validate()


def test_a_changed_dataset_gets_a_new_identity_and_is_never_resumed(folder, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(folder, data)
    cfg = TrainConfig(dataset=str(data), **TINY).validate()
    first = cfg.identity_hash()
    png = next(data.rglob("*.png"))
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(png)
    assert TrainConfig(dataset=str(data), **TINY).validate().identity_hash() != first
    with pytest.raises(DpecnnError, match="has changed since this run was configured"):
        cfg.validate()


def _bad(tmp_path, make):
    root = tmp_path / "bad"
    shutil.rmtree(root, ignore_errors=True)
    write_image_folder(root, n=30, size=32)
    return make(root) or root


@pytest.mark.parametrize(
    "case, message",
    [
        ("one class", "one class only"),
        ("unreadable", "not a readable image"),
        ("mixed sizes", "pass --size N"),
        ("missing label", "row 3: no label"),
        ("too few", "batch size 256 exceeds the"),
        ("no such path", "no such file or folder"),
        ("labels by case", "differ only by case"),
        ("12-bit in a 16-bit png", "a 16-bit image (values 0…3996); dpecnn reads 8-bit images"),
        ("npz string labels", "not integers 0…K−1"),
        ("npz channel-first", "look channel-first (N, C, H, W)"),
        ("npz empty class", "class '1' has no training image"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, case, message):
    def one_class(root):
        for d in ("malignant", "normal"):
            shutil.rmtree(root / d)

    def unreadable(root):
        (root / "benign" / "broken.png").write_bytes(b"not a png")

    def mixed(root):
        Image.fromarray(np.zeros((40, 40), np.uint8)).save(root / "normal" / "big.png")

    def missing_label(root):
        files = sorted(root.rglob("*.png"))
        (root / "labels.csv").write_text(
            "path,label\n"
            + "".join(f"{f.relative_to(root)},{'' if i == 1 else f.parent.name}\n" for i, f in enumerate(files))
        )
        return root / "labels.csv"

    def labels_by_case(root):  # one row in ten says Benign instead of benign
        files = sorted(root.rglob("*.png"))
        rows = [
            f"{f.relative_to(root)},{f.parent.name.title() if i % 10 == 3 else f.parent.name}"
            for i, f in enumerate(files)
        ]
        (root / "labels.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
        return root / "labels.csv"

    def npz(root, images=None, labels=None):
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (40, 16, 16), dtype=np.uint8) if images is None else images
        y = np.arange(40) % 2 if labels is None else labels
        np.savez(root / "mine.npz", train_images=x, train_labels=y)
        return root / "mine.npz"

    def twelve_bit(root):  # an X-ray export: 12-bit values in 16-bit PNGs
        values = (np.arange(32 * 32).reshape(32, 32) * 3996 // (32 * 32 - 1)).astype(np.uint16)
        Image.fromarray(values).save(root / "normal" / "xray.png")

    makers = {
        "12-bit in a 16-bit png": twelve_bit,
        "labels by case": labels_by_case,
        "npz string labels": lambda root: npz(root, labels=np.array(["benign", "malignant"] * 20)),
        "npz channel-first": lambda root: npz(root, images=np.zeros((40, 3, 16, 16), np.uint8)),
        "npz empty class": lambda root: npz(root, labels=(np.arange(40) % 2) * 2),
        "one class": one_class,
        "unreadable": unreadable,
        "mixed sizes": mixed,
        "missing label": missing_label,
        "too few": lambda root: None,
        "no such path": lambda root: root / "absent",
    }
    dataset = _bad(tmp_path, makers[case])
    out = tmp_path / "run"
    args = ["train", "--dataset", dataset, "--out", out, "--arch", "e", "--epochs", "1"]
    if case == "no such path":  # one case through a real process: the exit status itself
        res = cli(*args)
        code, stderr = res.returncode, res.stderr
    else:  # the others in this process (the same main(), without a second interpreter start)
        from dpecnn.cli import main

        code, stderr = main(list(map(str, args))), capsys.readouterr().err
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], stderr
    if case in ("unreadable", "mixed sizes"):
        assert lines[0].startswith(f"error: {dataset}") and ("broken.png" in lines[0] or "big.png" in lines[0])
    if case == "mixed sizes":  # the odd image is named, beside the common size
        assert "40×40, unlike 30 of the 31 images (32×32)" in lines[0], lines[0]
    if case == "12-bit in a 16-bit png":
        assert "xray.png" in lines[0] and "(x / 4095 * 255).round().astype('uint8') for 12-bit data" in lines[0]
    if case == "labels by case":
        assert "'Benign' (rows " in lines[0] and "'benign' (rows " in lines[0]
    assert not (out / "summary.json").exists() and not (out / "model.safetensors").exists()


def test_hidden_folders_are_skipped_and_mixed_channels_are_announced_and_recorded(tmp_path):
    root = write_image_folder(tmp_path / "scans", n=30, size=32)
    checkpoints = root / ".ipynb_checkpoints"  # what Jupyter leaves in a folder it opens
    (checkpoints).mkdir()
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(checkpoints / "x-checkpoint.png")
    (root / "benign" / ".ipynb_checkpoints").mkdir()
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(root / "benign" / ".ipynb_checkpoints" / "y-checkpoint.png")
    data = open_dataset(str(root))
    assert data.pipeline.class_names == ("benign", "malignant", "normal")
    assert sum(len(d) for d in data.splits.values()) == 30 and not data.notices
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(root / "normal" / "colour.png")
    with pytest.warns(UserWarning, match="30 grey and 1 colour images: the grey ones were made RGB"):
        mixed = open_dataset(str(root))
    assert mixed.pipeline.channels == 3 and "30 grey and 1 colour" in mixed.record()["notices"][0]


def test_arch_names_are_taken_in_any_case():
    from dpecnn.cli.parser import build_parser

    assert build_parser().parse_args(["train", "--arch", "c4", "--out", "x"]).arch == "C4"
    assert build_parser().parse_args(["sweep", "--archs", "E,o2"]).archs == ["e", "O2"]


def test_dp_run_probe_export_and_a_loader_that_reproduces_the_card(split_folder, tmp_path):
    res = cli(
        "train",
        *flags(
            dataset=split_folder,
            out=tmp_path / "run",
            arch="C4",
            layout="4,4,8",
            epochs=2,
            batch_size=32,
            physical_batch_size=32,
        ),
    )
    assert res.returncode == 0, res.stderr
    assert cli("export", tmp_path / "run", "--out", tmp_path / "release").returncode == 0
    card = json.loads((tmp_path / "release" / "model_card.json").read_text())
    assert card["privacy"]["private_release"] and card["input"]["size"] == 64
    assert card["data"]["content_hash"] == content_hash(str(split_folder)) and card["data"]["split_rule"] == "given"
    for name in ("model_card.json", "model_card.md"):  # the hash, never the data's path or name
        text = (tmp_path / "release" / name).read_text()
        assert "/" + split_folder.parent.name not in text and "ward7" not in text

    import dpecnn.release

    release = dpecnn.release.load(tmp_path / "release")
    files = sorted((split_folder / "test").rglob("*.png"))
    predicted = release.predict(files)
    accuracy = np.mean([p == f.parent.name for p, f in zip(predicted, files)])
    assert accuracy == pytest.approx(card["evaluation"]["test_acc"])
    one = np.asarray(Image.open(files[0]))
    assert release.predict(str(files[0])) == release.predict(files[0]) == release.predict(one) == predicted[:1]
    assert release.predict_proba(np.stack([one, one])).shape == (2, len(release.class_names))
    with pytest.raises(DataError, match="16-bit image"):  # the same rule as in training
        release.predict(Image.fromarray(np.full((64, 64), 3000, np.uint16)))
    onnx = card["model"]["onnx"]
    assert onnx["checked_images"] == len(files) and onnx["max_probability_difference"] <= 1e-5
    assert "without escnn: `model.onnx`" in (tmp_path / "release" / "model_card.md").read_text()
    np.save(tmp_path / "torch_probs.npy", release.predict_proba(files))
    np.save(tmp_path / "torch_cams.npy", release.grad_cam(files))  # Captum on the torch model
    without_escnn = (  # a fresh interpreter in which escnn cannot be imported
        "import sys\nsys.modules['escnn'] = None\nimport numpy as np, dpecnn.release\n"
        "release = dpecnn.release.load(sys.argv[1])\nfiles = sys.argv[4:]\n"
        "probs, cams = release.predict_proba(files), release.grad_cam(files)\n"
        "p, c = np.load(sys.argv[2]), np.load(sys.argv[3])\nscale = c.max()\n"
        "print(release.backend, np.abs(probs - p).max(), (np.abs(cams - c) / scale).max(), 'escnn' in sys.modules and "
        "sys.modules['escnn'] is not None)"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            without_escnn,
            tmp_path / "release",
            *(tmp_path / f"torch_{k}.npy" for k in ("probs", "cams")),
            *files,
        ],
        capture_output=True,
        text=True,
    )
    backend, difference, cam_difference, escnn_loaded = done.stdout.split()
    assert done.returncode == 0 and backend == "onnx" and escnn_loaded == "False", done.stderr
    assert float(difference) <= 1e-5 and float(cam_difference) <= 1e-5 and onnx["grad_cam_checked_images"] > 0
    assert dpecnn.release.load(tmp_path / "release", backend="onnx").predict(files) == predicted
    printed = cli("predict", tmp_path / "release", *files[:3])
    assert printed.returncode == 0 and printed.stdout.splitlines()[0].split("\t")[1] == predicted[0]
    by_onnx = cli("predict", tmp_path / "release", *files[:3], "--backend", "onnx")
    assert [line.split("\t")[1] for line in by_onnx.stdout.splitlines()] == predicted[:3]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    mixed = cli("predict", tmp_path / "release", files[0], broken, files[1], "--csv", tmp_path / "p.csv")
    assert mixed.returncode == 2 and len(mixed.stdout.splitlines()) == 2, mixed.stderr  # the good ones, in order
    assert "broken.png" in mixed.stderr and "1 of 3 images could not be read" in mixed.stderr
    table = pd.read_csv(tmp_path / "p.csv")
    assert list(table["class"]) == [predicted[0], predicted[1]]
    assert np.allclose(table[[f"p({n})" for n in release.class_names]].sum(1), 1.0, atol=1e-5)

    probe = cli(
        "probe",
        split_folder,
        "--steps",
        "20",
        "--train-subset",
        "0",
        "--eval-subset",
        "0",
        "--out",
        tmp_path / "probe.json",
    )
    assert probe.returncode == 0, probe.stderr
    assert json.loads((tmp_path / "probe.json").read_text())["n_eval"] == 24


def test_the_loader_refuses_a_tampered_release(split_folder, tmp_path):
    import dpecnn.release

    cfg = TrainConfig(dataset=str(split_folder), **TINY)
    Trainer(cfg, tmp_path / "run").run()
    assert cli("export", tmp_path / "run", "--out", tmp_path / "release").returncode == 0
    for name, backend in (("model.onnx", "onnx"), ("model.safetensors", "auto")):
        changed = tmp_path / "release" / name
        changed.write_bytes(changed.read_bytes()[:-1] + b"\0")
        with pytest.raises(DpecnnError, match=f"{name} is missing or not the file the card names"):
            dpecnn.release.load(tmp_path / "release", backend=backend)


def test_analyse_table_explorer_and_a_suite_config_on_own_images(split_folder, tmp_path):
    from dpecnn.analysis.pages.run import load_run
    from dpecnn.explore import Explorer
    from dpecnn.suite import SuiteConfig

    runs = tmp_path / "runs"
    for arch in ("e", "C4"):
        Trainer(TrainConfig(dataset=str(split_folder), **{**TINY, "arch": arch}), runs / arch).run()
    res = cli("analyse", runs / "C4", "--out", tmp_path / "analysis", "--images", 2)
    assert res.returncode == 0, res.stderr
    assert any((tmp_path / "analysis").rglob("*.png"))
    res = cli("table", runs, "--out", tmp_path / "table")
    assert res.returncode == 0 and "| ward7 | C4 |" in (tmp_path / "table" / "table1.md").read_text()
    explorer = Explorer.from_runs([load_run(runs / "e"), load_run(runs / "C4")])
    assert explorer.class_names == ["benign", "malignant", "normal"]
    assert all(v.fir.ndim == 2 for v in explorer.views.values())
    explorer.angle.value = 90.0
    assert "rotation 90°" in explorer.summary.value
    suite = SuiteConfig(
        dataset=str(split_folder.relative_to(split_folder.parent.parent)), archs=["e"], train={"size": 32}
    )
    import os

    here = os.getcwd()
    os.chdir(split_folder.parent.parent)
    try:
        configs = suite.validate().train_configs()
    finally:
        os.chdir(here)
    assert configs[0].dataset == str(split_folder) and configs[0].size == 32 and configs[0].data_hash


def test_a_folder_is_decoded_one_image_at_a_time(tmp_path, monkeypatch):
    """Sizes and colours come from the headers; each image is decoded, fitted and dropped before the
    next (the old loader held every full-resolution image at once)."""
    from dpecnn.data import own_data

    write_image_folder(tmp_path / "big", n=40, size=96, channels=3)
    alive, peak, real_to_pil = [0], [0], own_data.to_pil

    class Counted:
        def __init__(self, image):
            self.image = image
            alive[0] += 1
            peak[0] = max(peak[0], alive[0])

        def __del__(self):
            alive[0] -= 1

    def counted_to_pil(path):
        gc.collect()  # images freed by the loader but kept by a reference cycle inside PIL
        picture = real_to_pil(path)
        picture.info["counted"] = Counted(picture)  # lives as long as the decoded image
        return picture

    monkeypatch.setattr(own_data, "to_pil", counted_to_pil)
    data = open_dataset(str(tmp_path / "big"), size=32)
    assert peak[0] == 1 and sum(len(s) for s in data.splits.values()) == 40
    assert data.splits["train"].pixels.dtype == torch.uint8
    x = data.splits["train"].inputs()
    pixels = data.splits["train"].pixels
    assert torch.equal(x, (pixels.float() / 127.5 - 1).permute(0, 3, 1, 2))  # the scaling, per batch
