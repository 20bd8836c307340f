"""The CUDA path (skipped without a GPU): per-sample gradients on CUDA equal the CPU ones,
DP training and the benchmark run on the device."""

import copy

import pytest
import torch
import torch.nn as nn

from dpecnn.bench import run as run_bench
from dpecnn.models import build_model
from dpecnn.privacy import per_sample_gradients
from dpecnn.train import TrainConfig, Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
LOSS = nn.CrossEntropyLoss(reduction="none")


@pytest.mark.parametrize("arch", ["e", "C4", "C16", "O2"])
def test_per_sample_gradients_on_cuda_equal_the_cpu_ones(arch):
    model = build_model(arch, 3, 5, layout=(4, 4, 8)).double().train()
    x, y = torch.randn(6, 3, 28, 28, dtype=torch.float64), torch.randint(0, 5, (6,))
    cpu = torch.cat([g.flatten(1) for g in per_sample_gradients(model, x, y, LOSS)], 1)
    gpu_model = copy.deepcopy(model).cuda()
    gpu = torch.cat([g.flatten(1) for g in per_sample_gradients(gpu_model, x.cuda(), y.cuda(), LOSS)], 1)
    assert float((gpu.cpu() - cpu).norm() / cpu.norm()) <= 1e-10


@pytest.mark.parametrize("dp", [True, False])
def test_training_on_cuda(synthetic_root, tmp_path, dp):
    cfg = TrainConfig(
        dataset="dermamnist",
        data_root=str(synthetic_root),
        arch="C4",
        layout=(4, 4, 8),
        epochs=2,
        batch_size=32,
        physical_batch_size=16,
        train_subset=128,
        eval_subset=64,
        aug_mult=2,
        dp=dp,
        device="cuda",
    )
    s = Trainer(cfg, tmp_path / "run").run()
    assert s["device"].startswith("cuda") and s["steps"] == 8
    if dp:
        assert 7.0 < s["epsilon_spent"] <= 7.42


def test_bench_on_cuda_reports_peak_memory():
    result = run_bench(("e", "O2"), batch=32, warmup=1, repeats=1, device="cuda")
    assert result["gpu"] and all(result[a]["dp_peak_mem_mb"] > 0 and result[a]["dp_step_s"] > 0 for a in ("e", "O2"))
