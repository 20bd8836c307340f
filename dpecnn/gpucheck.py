"""``python -m dpecnn.gpucheck``: the GPU acceptance check, printed as one JSON report.

1. the CUDA tests (``pytest tests/test_cuda.py``: per-sample gradients on CUDA equal the CPU
   ones, a DP training run on CUDA);
2. the benchmark (:mod:`dpecnn.bench`) on the device: non-DP and DP step, their ratio,
   images/s and peak GPU memory per architecture;
3. one DP epoch per architecture on a real dataset (BloodMNIST by default; ε = 7.42 over
   the planned epochs, secret noise): wall time, validation accuracy, ε spent;
4. the projected training time of the paper's Table 1 grid (``sweep --preset table1``, 216
   runs at dpecnn's defaults) on one such device, from the benchmark's step costs.

``scripts/gpu_check.sh`` installs the carried wheels on an offline node and calls this.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dpecnn.bench import run as run_bench
from dpecnn.models import ARCHS
from dpecnn.train.config import TrainConfig
from dpecnn.train.plan import plan_rows, sweep_configs
from dpecnn.train.trainer import Trainer, resolve_device

REPO = Path(__file__).resolve().parents[1]


def cuda_tests() -> dict:
    start = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(REPO / "tests/test_cuda.py")],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    lines = res.stdout.strip().splitlines()
    return {
        "returncode": res.returncode,
        "result": lines[-1] if lines else res.stderr.strip()[-300:],
        "seconds": time.perf_counter() - start,
    }


def one_epoch(
    arch: str,
    dataset: str,
    device: str,
    data_root: str | None,
    train_subset: int | None,
    eval_subset: int | None,
    batch_size: int,
    out: Path,
) -> dict:
    cfg = TrainConfig(
        dataset=dataset,
        arch=arch,
        epochs=1,
        device=device,
        data_root=data_root,
        train_subset=train_subset,
        eval_subset=eval_subset,
        batch_size=batch_size,
        physical_batch_size=batch_size,
    )
    start = time.perf_counter()
    s = Trainer(cfg, out / arch).run()
    return {
        "seconds": time.perf_counter() - start,
        "train_seconds": s["wall_time_s"],
        "steps": s["steps"],
        "step_s_in_training": s["wall_time_s"] / max(1, s["steps"]),
        "val_acc": s["val_acc"],
        "epsilon_spent": s["epsilon_spent"],
        "noise_multiplier": s["noise_multiplier"],
    }


def table1_projection(bench: dict) -> dict:
    configs = sweep_configs("table1")  # the grid and recipe of `sweep --preset table1 --plan`
    with tempfile.TemporaryDirectory() as empty:
        seconds = sum(r["seconds"] for r in plan_rows(configs, empty, bench))
    return {
        "runs": len(configs),
        "hours": seconds / 3600,
        "note": "training steps only, one run after another, from the benchmark's step costs scaled by K, batch "
        "and layout; compare dp_epoch.*.step_s_in_training, which includes evaluation and diagnostics",
    }


def run_check(
    device: str = "cuda",
    archs=ARCHS,
    dataset: str = "bloodmnist",
    data_root: str | None = None,
    train_subset: int | None = None,
    eval_subset: int | None = None,
    batch_size: int = 256,
    bench_repeats: int = 5,
    tests: bool = True,
) -> dict:
    dev = resolve_device(device)
    report = {
        "device": str(dev),
        "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
    }
    if tests:
        report["cuda_tests"] = cuda_tests()
    report["bench"] = run_bench(archs, batch_size, 2, bench_repeats, device)
    with tempfile.TemporaryDirectory() as runs:
        report["dp_epoch"] = {
            arch: one_epoch(arch, dataset, device, data_root, train_subset, eval_subset, batch_size, Path(runs))
            for arch in archs
        }
    if set(ARCHS) <= set(archs):
        report["table1_projection"] = table1_projection(report["bench"])
    return report


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m dpecnn.gpucheck", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--archs", default=",".join(ARCHS))
    parser.add_argument("--dataset", default="bloodmnist")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--bench-repeats", type=int, default=5)
    parser.add_argument("--no-tests", dest="tests", action="store_false")
    parser.add_argument("--out", default=None, help="also write the report to this JSON file")
    args = parser.parse_args(argv)
    report = run_check(
        args.device,
        tuple(args.archs.split(",")),
        args.dataset,
        args.data_root,
        bench_repeats=args.bench_repeats,
        tests=args.tests,
    )
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    tests = report.get("cuda_tests")
    if tests and (tests["returncode"] != 0 or " passed" not in tests["result"] or "skipped" in tests["result"]):
        print(f"error: the CUDA tests did not all pass: {tests['result']}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
