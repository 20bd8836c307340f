"""The benchmark's profile attributes time to the labelled phases of a step."""

import time

import torch

from dpecnn.bench import profile_steps, run


def test_profile_attributes_dp_work_to_its_phases():
    result = profile_steps(("C4",), batch=8, steps=1, device="cpu")["C4"]
    dp, nondp = result["dp"]["phases_s"], result["nondp"]["phases_s"]
    assert dp["per_sample_filter_grad"] > 0 and dp["basis_transpose"] > 0 and dp["clipping"] > 0
    assert nondp["per_sample_filter_grad"] == nondp["basis_transpose"] == nondp["clipping"] == 0
    assert nondp["conv_forward"] > 0 and nondp["filter_expansion"] > 0
    assert result["dp"]["other_s"] > 0


def test_bench_reports_ratios_and_throughput(monkeypatch):
    from dpecnn.bench import step

    monkeypatch.setattr(step, "MIN_TIMED_SECONDS", 0.0)
    result = run(("e",), batch=8, warmup=0, repeats=1, device="cpu")
    e = result["e"]
    assert e["dp_over_nondp"] == e["dp_step_s"] / e["nondp_step_s"] and e["dp_images_per_s"] == 8 / e["dp_step_s"]
    assert e["dp_peak_mem_mb"] is None and result["device_key"].startswith("cpu-")


def test_a_ratios_two_steps_are_timed_in_turn_until_each_has_run_long_enough(monkeypatch):
    from dpecnn.bench import step

    monkeypatch.setattr(step, "MIN_TIMED_SECONDS", 0.01)
    calls = []
    fast = lambda: (calls.append("fast"), time.sleep(0.0005))  # noqa: E731
    slow = lambda: (calls.append("slow"), time.sleep(0.005))  # noqa: E731
    median_fast, median_slow = step._alternating_median_times((fast, slow), 1, 2, torch.device("cpu"))
    timed = calls[2:]  # after one warm-up call of each
    rounds = len(timed) // 2
    assert timed == ["fast", "slow"] * rounds
    # the slow step had run 0.01 s after the 2 rounds asked for; the fast one had not, so it ran on
    assert rounds >= 3
    assert median_fast < median_slow


def test_the_memory_benchmark_reports_the_peaks_of_a_fresh_interpreter(synthetic_root):
    from dpecnn.bench.memory import run_case

    row = run_case("bloodmnist", str(synthetic_root), None, steps=1, batch=32)
    assert row["images"] == 192 + 64 + 64 and row["float32_mb"] == 4 * row["uint8_mb"]
    assert 0 < row["rss_imports_mb"] <= row["peak_loaded_mb"] <= row["peak_trained_mb"]
