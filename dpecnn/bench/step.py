"""``python -m dpecnn.bench [step]``: DP-SGD step cost, printed as one JSON object.

For each architecture (``--archs``, default all; layout 8-16-32, batch 256, images ``--size``
(default 28), current device),
all measured in this process on the same random batch:

* ``dp_over_nondp``: dpecnn's DP step (per-sample gradients, clipping, noise, update)
  divided by the non-private step (forward, backward, update) of the same model;
* ``e.dp_over_opacus``: dpecnn's DP step divided by the step of Opacus' own
  ``PrivacyEngine`` (hooks mode) on the same conventional model.

* ``images_per_s`` of both steps and, on CUDA, ``peak_mem_mb`` (peak allocated memory).

``--profile`` prints instead where each step spends its time: forward convolutions, filter
expansion, per-sample filter gradients, the transposed basis expansion, clipping, noise and
the rest (``dpecnn::`` ranges of ``torch.profiler``). With more than one CPU thread, large
layers compute their per-example gradients in one Python thread per part of the batch
(:func:`~dpecnn.privacy.grad_sample.in_thread_parts`), whose own phases the profiler does not
trace; their wall time is ``per_sample_in_threads``. Run with one thread for the finer split.

Times are medians over ``--repeats`` steps after ``--warmup`` steps (the DP and non-DP steps in
alternation, and fast steps repeated until each has run two seconds). ``--save`` also writes
the object to ``outputs/bench/<device key>.json``, where ``sweep --plan`` finds the per-step
costs of that device.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import re
import statistics
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from opacus import PrivacyEngine
from torch.utils.data import DataLoader, TensorDataset

from dpecnn import io
from dpecnn.data import AugmentConfig
from dpecnn.models import ARCHS, build_model, count_parameters
from dpecnn.models.layers import Conv2d, GroupNorm
from dpecnn.privacy import DPSGD, MechanismRandomness, make_accountant
from dpecnn.train.trainer import resolve_device

# A ratio's two steps are timed in alternation, one step each in turn, so that a change of the
# machine's speed during the measurement (other work on the shared host) acts on both alike; and
# fast steps are repeated until each has run this many seconds: medians of five 0.1 s steps, timed
# one step after the other, put e's DP / non-DP at 1.15, 1.24 and 1.32 in three runs of one day
# (results/step_costs, 2026-12-07).
MIN_TIMED_SECONDS = 2.0


def _seconds(step, dev: torch.device) -> float:
    """Seconds of one call of ``step``, CUDA work included."""
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    start = time.perf_counter()
    step()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return time.perf_counter() - start


def _alternating_median_times(steps, warmup: int, repeats: int, dev: torch.device) -> list[float]:
    """Median seconds of each of ``steps``, timed in turn (one call of each per round) for at least
    ``repeats`` rounds and until every step has run :data:`MIN_TIMED_SECONDS`, after ``warmup``
    calls of each."""
    for step in steps:
        for _ in range(warmup):
            step()
    times = [[] for _ in steps]
    while len(times[0]) < repeats or min(map(sum, times)) < MIN_TIMED_SECONDS:
        for step, timed in zip(steps, times):
            timed.append(_seconds(step, dev))
    return [statistics.median(timed) for timed in times]


def _nondp_step(model, x, y):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return step


@contextmanager
def _dpecnn_step(model, x, y):
    """dpecnn's DP step (:class:`~dpecnn.privacy.DPSGD`) on the fixed batch ``(x, y)``."""
    mechanism = DPSGD(
        model,
        torch.optim.SGD(model.parameters(), lr=1e-3),
        make_accountant("rdp"),
        n_train=len(y),
        expected_batch_size=len(y),
        noise_multiplier=1.0,
        max_grad_norm=1.0,
        physical_batch_size=len(y),
        augment=AugmentConfig(),
        randomness=MechanismRandomness.create(x.device, 0, reproducible=False),
        device=x.device,
    )
    with mechanism.attached():
        yield lambda: mechanism.release(mechanism.clipped_sum(x, y))


def _with_torch_layers(model: nn.Module) -> nn.Module:
    """The same network with ``torch.nn.Conv2d`` and ``torch.nn.GroupNorm`` layers, so that Opacus
    uses its own per-sample rules for them."""
    for name, child in model.named_children():
        if isinstance(child, Conv2d):
            conv = nn.Conv2d(
                child.in_channels, child.out_channels, child.kernel_size, padding=child.padding, bias=False
            )
            conv.weight.data.copy_(child.weight.data)
            setattr(model, name, conv)
        elif isinstance(child, GroupNorm):
            norm = nn.GroupNorm(child.num_groups, child.num_channels, child.eps)
            norm.load_state_dict(child.state_dict())
            setattr(model, name, norm)
        else:
            _with_torch_layers(child)
    return model


def _opacus_step(model, x, y):
    model = _with_torch_layers(model)
    loader = DataLoader(TensorDataset(x, y), batch_size=len(y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module, opt, _ = PrivacyEngine(accountant="rdp").make_private(
            module=model,
            optimizer=torch.optim.SGD(model.parameters(), lr=1e-3),
            data_loader=loader,
            noise_multiplier=1.0,
            max_grad_norm=1.0,
            poisson_sampling=False,
            grad_sample_mode="hooks",
        )

    def step():
        F.cross_entropy(module(x), y).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step, module


BENCH_DIR = Path("outputs/bench")


def device_key(dev: torch.device) -> str:
    """``cpu-2threads`` or ``cuda-nvidia-h100-80gb-hbm3``: whose step costs a file holds."""
    if dev.type == "cuda":
        return "cuda-" + re.sub(r"[^a-z0-9]+", "-", torch.cuda.get_device_name(dev).lower()).strip("-")
    return f"cpu-{torch.get_num_threads()}threads"


def _peak_mb(step, dev: torch.device) -> float | None:
    if dev.type != "cuda":
        return None
    torch.cuda.reset_peak_memory_stats(dev)
    step()
    torch.cuda.synchronize(dev)
    return torch.cuda.max_memory_allocated(dev) / 2**20


def run(archs=ARCHS, batch: int = 256, warmup: int = 2, repeats: int = 5, device: str = "auto", size: int = 28) -> dict:
    dev = resolve_device(device)
    torch.manual_seed(0)
    x = torch.randn(batch, 3, size, size, device=dev)
    y = torch.randint(0, 8, (batch,), device=dev)
    result = {
        "device": str(dev),
        "device_key": device_key(dev),
        "cpu": platform.processor() or platform.machine(),
        "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "batch": batch,
        "layout": [8, 16, 32],
        "size": size,
        "repeats": repeats,
        "date": time.strftime("%Y-%m-%d"),
    }
    # A process's first timed steps ran slow (results/step_costs run 1: e's non-DP step 0.19 s, then
    # 0.11 s in runs 2 and 3, a DP / non-DP of 0.82): one discarded measurement first.
    _alternating_median_times((_nondp_step(build_model(archs[0], 3, 8).to(dev).train(), x, y),), warmup, 1, dev)
    for arch in archs:
        model = build_model(arch, 3, 8).to(dev).train()
        entry = {"params": count_parameters(model)}
        nondp = _nondp_step(copy.deepcopy(model), x, y)  # a copy: the DP step's hooks stay off it
        with _dpecnn_step(model, x, y) as step:
            entry["nondp_step_s"], entry["dp_step_s"] = _alternating_median_times((nondp, step), warmup, repeats, dev)
            entry["dp_peak_mem_mb"] = _peak_mb(step, dev)
        entry["nondp_peak_mem_mb"] = _peak_mb(nondp, dev)
        entry["dp_over_nondp"] = entry["dp_step_s"] / entry["nondp_step_s"]
        entry["nondp_images_per_s"] = batch / entry["nondp_step_s"]
        entry["dp_images_per_s"] = batch / entry["dp_step_s"]
        if arch == "e":
            step, module = _opacus_step(build_model(arch, 3, 8).to(dev).train(), x, y)
            (entry["opacus_step_s"],) = _alternating_median_times((step,), warmup, repeats, dev)
            entry["dp_over_opacus"] = entry["dp_step_s"] / entry["opacus_step_s"]
        result[arch] = entry
    return result


PHASES = (
    "conv_forward",
    "filter_expansion",
    "per_sample_filter_grad",
    "basis_transpose",
    "per_sample_basis_grad",
    "per_sample_in_threads",
    "clipping",
    "noise",
)


def _phase_times(step, steps: int, dev: torch.device) -> dict:
    """Seconds per step: the whole step and each labelled phase (``dpecnn::<phase>`` ranges;
    ``other`` is the rest: non-convolution layers, autograd backward, the optimiser)."""
    from torch.profiler import ProfilerActivity, profile

    step()  # warm-up outside the trace
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        total = (time.perf_counter() - start) / steps
    phases = dict.fromkeys(PHASES, 0.0)
    for event in prof.key_averages():
        name = event.key.removeprefix("dpecnn::")
        if event.key.startswith("dpecnn::") and name in phases:
            micros = event.device_time_total if dev.type == "cuda" else event.cpu_time_total
            phases[name] = micros / 1e6 / steps
    return {"step_s": total, "phases_s": phases, "other_s": total - sum(phases.values())}


def profile_steps(archs=ARCHS, batch: int = 256, steps: int = 3, device: str = "auto", size: int = 28) -> dict:
    """Where a non-DP and a DP step spend their time, per architecture (see :func:`_phase_times`)."""
    dev = resolve_device(device)
    torch.manual_seed(0)
    x = torch.randn(batch, 3, size, size, device=dev)
    y = torch.randint(0, 8, (batch,), device=dev)
    result = {"device": str(dev), "device_key": device_key(dev), "batch": batch, "size": size, "steps": steps}
    for arch in archs:
        model = build_model(arch, 3, 8).to(dev).train()
        entry = {"nondp": _phase_times(_nondp_step(model, x, y), steps, dev)}
        with _dpecnn_step(model, x, y) as step:
            entry["dp"] = _phase_times(step, steps, dev)
        result[arch] = entry
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m dpecnn.bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--archs", default=",".join(ARCHS))
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--size", type=int, default=28, help="images size × size (default %(default)s)")
    parser.add_argument("--save", action="store_true", help=f"also write {BENCH_DIR}/<device key>.json")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead: seconds per step in each phase (" + ", ".join(PHASES) + ", other)",
    )
    args = parser.parse_args(argv)
    if args.profile:
        print(
            json.dumps(
                profile_steps(tuple(args.archs.split(",")), args.batch, args.repeats, args.device, args.size), indent=2
            )
        )
        return
    result = run(tuple(args.archs.split(",")), args.batch, args.warmup, args.repeats, args.device, args.size)
    print(json.dumps(result, indent=2))
    if args.save:
        io.write_json(BENCH_DIR / f"{result['device_key']}.json", result)
