"""``python -m dpecnn.bench memory``: peak resident memory (RSS) of loading a dataset and training on it.

Each case runs in a fresh interpreter, which reports its own peak RSS (``VmHWM``) three times:
after importing dpecnn's trainer, after the :class:`~dpecnn.train.trainer.Trainer` is built (the
dataset read: all three splits held as uint8, :mod:`dpecnn.data.split`) and after training
``--steps`` DP steps of e (batch ``--batch``) and evaluating 256 validation and test images.

Cases: BloodMNIST at each of ``--sizes`` (MedMNIST+: 28, 64, 128, 224), and an image folder of
``--folder-images`` RGB PNGs of 512 × 512 px read at ``--folder-size``. A MedMNIST+ file that is
not in the data root is made from the 28-px file by bilinear upsampling (same image counts, shapes
and dtype as MedMNIST+, other pixels: memory does not depend on them) in ``--work``.

``--save`` writes ``results/memory/runs.csv`` (one row per case, each a fresh interpreter) and ``COMMAND``; ``python -m
dpecnn report`` puts the table in docs/benchmark.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIZES = (28, 64, 128, 224)
SAVED = Path("results/memory")
COLUMNS = (
    "case",
    "source",
    "size",
    "images",
    "uint8_mb",
    "float32_mb",
    "rss_imports_mb",
    "peak_loaded_mb",
    "peak_trained_mb",
    "steps",
    "batch",
    "seconds",
)


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (Linux ``/proc/self/status`` ``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status: the memory benchmark needs Linux")


def upsampled_medmnist(flag: str, size: int, root: Path, work: Path) -> Path:
    """``work/<flag>_<size>.npz`` made from ``root/<flag>.npz`` by bilinear upsampling (module docstring)."""
    from PIL import Image

    from dpecnn.data.medmnist_data import file_name

    target = work / file_name(flag, size)
    if not target.exists():
        with np.load(root / file_name(flag, 28)) as small:
            arrays = {
                key: (
                    np.stack(
                        [np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR)) for im in small[key]]
                    )
                    if key.endswith("_images")
                    else small[key]
                )
                for key in small.files
            }
        partial = target.with_suffix(".partial.npz")
        np.savez(partial, **arrays)
        partial.rename(target)
    return target


def measure(dataset: str, data_root: str | None, size: int | None, steps: int, batch: int) -> dict:
    """The three peaks of one case, in this process (run it in a fresh one: :func:`run_case`)."""
    from dpecnn.train.config import TrainConfig
    from dpecnn.train.trainer import Trainer

    imports = peak_rss_mb()
    cfg = TrainConfig(
        dataset=dataset,
        data_root=data_root,
        size=size,
        arch="e",
        epochs=1,
        batch_size=batch,
        physical_batch_size=batch,
        train_subset=steps * batch,
        eval_subset=256,
    ).validate()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(cfg, Path(out) / "run")
        splits = trainer.data.splits
        loaded = peak_rss_mb()
        trainer.run()
    return {
        "images": sum(len(s) for s in splits.values()),
        "uint8_mb": sum(s.pixels.numel() for s in splits.values()) / 2**20,
        "float32_mb": 4 * sum(s.pixels.numel() for s in splits.values()) / 2**20,
        "rss_imports_mb": imports,
        "peak_loaded_mb": loaded,
        "peak_trained_mb": peak_rss_mb(),
        "steps": steps,
        "batch": batch,
        "seconds": time.perf_counter() - start,
    }


def run_case(dataset: str, data_root: str | None, size: int | None, steps: int, batch: int) -> dict:
    child = [sys.executable, "-m", "dpecnn.bench", "memory", "--child", json.dumps([dataset, data_root, size])]
    done = subprocess.run(
        [*child, "--steps", str(steps), "--batch", str(batch)], capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise RuntimeError(f"memory case {dataset} at {size} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def run(args) -> list[dict]:
    from dpecnn.data.medmnist_data import file_name, resolve_root
    from dpecnn.data.synthetic import write_image_folder

    root, work = resolve_root(args.data_root), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in args.sizes:
        if (root / file_name("bloodmnist", size)).exists():
            data_root, source = root, "MedMNIST+ file"
        else:
            data_root, source = work, "upsampled from the 28-px file"
            upsampled_medmnist("bloodmnist", size, root, work)
        print(f"bloodmnist at {size} px …", file=sys.stderr, flush=True)
        row = run_case("bloodmnist", str(data_root), size, args.steps, args.batch)
        rows.append({"case": f"BloodMNIST {size} px", "source": source, "size": size, **row})
    folder = work / f"folder_{args.folder_images}_512px"
    if not folder.exists():
        partial = work / "folder.partial"
        write_image_folder(partial, n=args.folder_images, size=512, channels=3)
        partial.rename(folder)
    print(f"image folder at {args.folder_size} px …", file=sys.stderr, flush=True)
    row = run_case(str(folder), None, args.folder_size, args.steps, args.batch)
    rows.append(
        {
            "case": f"image folder: {args.folder_images} RGB PNGs of 512 px at --size {args.folder_size}",
            "source": "generated (dpecnn.data.synthetic.write_image_folder)",
            "size": args.folder_size,
            **row,
        }
    )
    return rows


def save(rows: list[dict], argv: list[str]) -> None:
    SAVED.mkdir(parents=True, exist_ok=True)
    with open(SAVED / "runs.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: f"{v:.1f}" if isinstance(v, float) else v for k, v in row.items()})
    command = "DPECNN_DATA_ROOT=<medmnist folder> python -m dpecnn.bench memory " + shlex.join(argv)
    (SAVED / "COMMAND").write_text(command + "\n")


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m dpecnn.bench memory", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=lambda t: [int(v) for v in t.split(",")], default=list(SIZES))
    parser.add_argument("--steps", type=int, default=2, help="DP steps of training (default %(default)s)")
    parser.add_argument("--batch", type=int, default=64, help="batch size (default %(default)s)")
    parser.add_argument("--folder-images", type=int, default=500)
    parser.add_argument("--folder-size", type=int, default=64)
    parser.add_argument("--data-root", help="MedMNIST folder (default $DPECNN_DATA_ROOT)")
    parser.add_argument("--work", default="outputs/bench/memory", help="where made inputs are kept")
    parser.add_argument("--save", action="store_true", help=f"also write {SAVED}/runs.csv")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # one case, in this process: [dataset, root, size]
    args = parser.parse_args(argv)
    if args.child:
        dataset, data_root, size = json.loads(args.child)
        print(json.dumps(measure(dataset, data_root, size, args.steps, args.batch)))
        return
    rows = run(args)
    for row in rows:
        print(json.dumps(row))
    if args.save:
        save(rows, [a for a in argv if a != "--save"] + ["--save"])
