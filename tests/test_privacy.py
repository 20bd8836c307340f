import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from dpecnn.data import AugmentConfig
from dpecnn.models import build_model
from dpecnn.privacy import (
    DPSGD,
    MechanismRandomness,
    calibrate_noise,
    epsilon_for_history,
    epsilon_pld,
    make_accountant,
    per_sample_gradients,
)

LOSS = nn.CrossEntropyLoss(reduction="none")


def naive_per_sample(model, x, y):
    params = [p for p in model.parameters() if p.requires_grad]
    per_example = [torch.autograd.grad(LOSS(model(x[i : i + 1]), y[i : i + 1]).sum(), params) for i in range(len(y))]
    return [torch.stack(gs) for gs in zip(*per_example)]


@pytest.mark.parametrize(
    "arch,readout,field_blocks",
    [
        ("e", "invariant", False),
        ("C4", "invariant", False),
        ("O2", "invariant", False),
        ("C4", "orientation", False),
        ("O2", "orientation", False),
        ("C16", "invariant", True),  # every one-field-type layer by field blocks
    ],
)
def test_per_sample_gradients_equal_a_naive_loop(arch, readout, field_blocks, monkeypatch):
    if field_blocks:
        from dpecnn.privacy import grad_sample

        monkeypatch.setattr(grad_sample, "FIELD_BLOCKS_MIN_BYTES", 0)
    model = build_model(arch, 3, 5, layout=(4, 4, 8), readout=readout).double().train()
    x, y = torch.randn(6, 3, 28, 28, dtype=torch.float64), torch.randint(0, 5, (6,))
    fast, slow = per_sample_gradients(model, x, y, LOSS), naive_per_sample(model, x, y)
    flat = lambda gs: torch.cat([g.flatten(1) for g in gs], 1)  # noqa: E731
    err = float((flat(fast) - flat(slow)).norm(dim=1).max() / flat(slow).norm(dim=1).min())
    assert err <= 1e-5, f"{arch}: relative error {err:.2e}"
    assert all(f.shape == s.shape for f, s in zip(fast, slow))
    assert not any(hasattr(p, "grad_sample") or p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("arch", ["e", "C4", "O2"])
def test_per_sample_gradients_split_over_threads_equal_a_naive_loop(arch, monkeypatch):
    """Every convolution in thread parts (threshold 0, 4 threads: 6 examples in parts of 2, 2 and 2),
    whichever route it takes; the thread count is back after each layer."""
    from dpecnn.privacy import grad_sample

    monkeypatch.setattr(grad_sample, "THREAD_SPLIT_MIN_BYTES", 0)
    split_layers, pool = [], grad_sample._thread_pool

    def counting_pool(workers):
        split_layers.append((workers, torch.get_num_threads()))
        return pool(workers)

    monkeypatch.setattr(grad_sample, "_thread_pool", counting_pool)
    threads = torch.get_num_threads()
    torch.set_num_threads(4)
    try:
        model = build_model(arch, 3, 5, layout=(4, 4, 8)).double().train()
        x, y = torch.randn(6, 3, 28, 28, dtype=torch.float64), torch.randint(0, 5, (6,))
        fast, slow = per_sample_gradients(model, x, y, LOSS), naive_per_sample(model, x, y)
        assert torch.get_num_threads() == 4
    finally:
        torch.set_num_threads(threads)
    convs = sum(isinstance(m, (grad_sample.SteerableConv2d, grad_sample.Conv2d)) for m in model.modules())
    assert split_layers == [(3, 1)] * convs  # three parts, one intra-op thread while they run
    for f, s_ in zip(fast, slow, strict=True):
        assert torch.allclose(f, s_, rtol=1e-7, atol=1e-10)


def test_per_sample_gradients_in_float32_within_1e_5():
    model = build_model("C4", 3, 5, layout=(4, 4, 8)).train()
    x, y = torch.randn(4, 3, 28, 28), torch.randint(0, 5, (4,))
    fast = torch.cat([g.flatten(1) for g in per_sample_gradients(model, x, y, LOSS)], 1)
    slow = torch.cat([g.flatten(1) for g in naive_per_sample(model, x, y)], 1)
    assert float((fast - slow).norm() / slow.norm()) <= 1e-5


def test_a_layer_used_twice_per_forward_is_refused():
    """dpecnn stores each layer's per-example gradients as computed (no accumulation buffer): a
    layer run twice would silently keep only one use's gradients, so it must raise instead."""
    from dpecnn.models.layers import Conv2d

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.head = Conv2d(3, 3, 3, padding=1, bias=False), nn.Linear(3, 2)

        def forward(self, x):
            return self.head(self.conv(self.conv(x)).mean((2, 3)))

    with pytest.raises(RuntimeError, match="two per-example gradients"):
        per_sample_gradients(Twice(), torch.randn(4, 3, 8, 8), torch.randint(0, 2, (4,)), LOSS)


def seeded_from_32_bits(gen: torch.Generator) -> bool:
    """Whether a fresh CPU generator's MT19937 state is the one ``manual_seed`` makes from a 32-bit
    word: such a state obeys the seeding recurrence s_i = 1812433253·(s_{i−1} ⊕ (s_{i−1} ≫ 30)) + i."""
    words = gen.get_state()[24 : 24 + 8 * 624].view(torch.int64).tolist()
    return all(words[i] == (1812433253 * (words[i - 1] ^ (words[i - 1] >> 30)) + i) & 0xFFFFFFFF for i in range(1, 624))


def test_secret_generators_are_not_reproducible_from_a_32_bit_word():
    assert seeded_from_32_bits(torch.Generator().manual_seed(5 + 2**32))  # the detector sees manual_seed's states
    a, b = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5 + 2**32)
    assert torch.equal(torch.rand(4, generator=a), torch.rand(4, generator=b))  # why: torch keeps 32 bits of a seed
    secret = MechanismRandomness.create(torch.device("cpu"), 0, reproducible=False)
    for gen in (secret.sampling, secret.augmentation, secret.noise):
        assert not seeded_from_32_bits(gen) and gen.initial_seed() == 0
    other = MechanismRandomness.create(torch.device("cpu"), 0, reproducible=False)
    assert not torch.equal(torch.rand(8, generator=secret.noise), torch.rand(8, generator=other.noise))


def dp_step(model, x, y, noise, clip, lr=0.1, hook=None, expected=None):
    """One step of the mechanism on the whole batch ``(x, y)`` (no sampling)."""
    mech = DPSGD(
        model,
        torch.optim.SGD(model.parameters(), lr=lr),
        make_accountant("rdp"),
        n_train=len(y),
        expected_batch_size=expected or len(y),
        noise_multiplier=noise,
        max_grad_norm=clip,
        physical_batch_size=len(y),
        augment=AugmentConfig(),
        device=torch.device("cpu"),
        randomness=MechanismRandomness.create(torch.device("cpu"), 0, reproducible=False),
        pre_noise_hook=hook,
    )
    with mech.attached():
        mech.release(mech.clipped_sum(x, y))


def test_dp_step_without_noise_or_clipping_is_an_sgd_step():
    torch.manual_seed(1)
    a = build_model("C4", 3, 5, layout=(4, 4, 8)).double()
    b = build_model("C4", 3, 5, layout=(4, 4, 8)).double()
    b.load_state_dict(a.state_dict())
    x, y = torch.randn(8, 3, 28, 28, dtype=torch.float64), torch.randint(0, 5, (8,))
    dp_step(a, x, y, noise=0.0, clip=1e9)
    sgd = torch.optim.SGD(b.parameters(), lr=0.1)
    F.cross_entropy(b(x), y).backward()
    sgd.step()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(pa, pb, rtol=1e-9, atol=1e-12), name


def test_every_clipped_per_sample_gradient_has_norm_at_most_c():
    model = build_model("e", 3, 5, layout=(4, 4, 8))
    x, y = torch.randn(6, 3, 28, 28), torch.randint(0, 5, (6,))
    raw = torch.cat([g.flatten(1) for g in per_sample_gradients(model, x, y, LOSS)], 1).norm(dim=1)
    clip = float(raw.median())
    norms = []
    for i in range(6):  # a batch of one: the averaged clipped gradient is that example's
        dp_step(
            model,
            x[i : i + 1],
            y[i : i + 1],
            noise=0.0,
            clip=clip,
            lr=0.0,
            hook=lambda gs: norms.append(float(torch.cat([g.flatten() for g in gs]).norm())),
        )
    norms = torch.tensor(norms)
    assert (norms <= clip * (1 + 1e-5)).all(), (norms, clip)
    assert torch.allclose(norms, torch.minimum(raw, torch.tensor(clip)), rtol=1e-4)


def test_added_noise_has_the_calibrated_standard_deviation():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1000, 200, bias=False))
    nn.init.zeros_(model[0].weight)
    x, y = torch.zeros(4, 1000), torch.zeros(4, 200)  # zero input: every per-sample gradient is 0
    sigma, clip, expected = 1.3, 0.7, 4
    dp_step(model, x, y[:, 0].long(), noise=sigma, clip=clip, lr=1.0, expected=expected)
    update = -model[0].weight.detach().flatten() * expected  # undo the 1/expected-batch average
    n = update.numel()
    target = sigma * clip
    assert abs(float(update.mean())) < 5 * target / math.sqrt(n)
    assert abs(float(update.std()) / target - 1) < 5 * math.sqrt(1 / (2 * n))  # 5σ of the sample std


def test_noise_calibration_reaches_the_target_epsilon():
    q, steps = 256 / 11959, 460
    sigma = calibrate_noise(7.42, 1e-5, q, steps)
    eps = epsilon_for_history([(sigma, q, steps)], 1e-5)
    assert 7.3 < eps <= 7.42
    assert epsilon_for_history([(sigma * 0.9, q, steps)], 1e-5) > 7.42


def test_accountants_are_explicit():
    assert type(make_accountant("rdp")).__name__ == "RDPAccountant"
    assert type(make_accountant("prv")).__name__ == "PRVAccountant"


def test_expansion_transpose_equals_autograd_for_interleaved_field_types():
    from escnn import nn as enn

    from dpecnn.models.equivariant import InducedO2Family, SteerableConv2d
    from dpecnn.privacy.grad_sample import expansion_transpose

    fam = InducedO2Family()
    mixed = enn.FieldType(fam.gspace, [fam.ind0, fam.ind1, fam.ind0, fam.ind1])  # non-contiguous blocks
    conv = SteerableConv2d(mixed, enn.FieldType(fam.gspace, [fam.ind1, fam.ind0, fam.ind1])).double()
    assert not all(conv.expansion._contiguous.values())
    grads = torch.randn(3, *conv.expand_filter().shape, dtype=torch.float64)
    _, vjp = torch.func.vjp(conv.expand_filter, conv.weight)
    expected = torch.stack([vjp(g)[0] for g in grads])
    assert torch.allclose(expansion_transpose(conv.expansion, grads), expected, atol=1e-10)


@pytest.mark.parametrize(
    "sigma, q, steps",
    [
        (0.731, 0.0586, 51),  # the paper's setting (DESIGN.md section 5)
        (0.669, 256 / 11959, 276),
        (1.1, 0.01, 1000),
        (0.6, 0.1, 20),
        (2.0, 0.004, 3000),
        (0.9, 0.02, 460),
    ],
)
def test_reported_epsilon_agrees_with_googles_dp_accounting(sigma, q, steps):
    import dp_accounting
    from dp_accounting.rdp.rdp_privacy_accountant import RdpAccountant

    ours = epsilon_for_history([(sigma, q, steps)], 1e-5)  # what summaries report (Opacus RDP)
    event = dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma))
    reference_rdp = RdpAccountant().compose(event, steps).get_epsilon(1e-5)
    pld = epsilon_pld([(sigma, q, steps)], 1e-5)
    assert ours >= pld, "the reported ε must upper-bound the tight PLD ε"
    assert abs(ours - reference_rdp) <= 0.05 * reference_rdp


def test_paper_setting_epsilon_values():
    history = [(calibrate_noise(7.42, 1e-5, 0.0586, 51), 0.0586, 51)]  # σ = 0.7306 (DESIGN.md: 0.731)
    assert epsilon_for_history(history, 1e-5) == pytest.approx(7.415, abs=5e-3)
    assert epsilon_pld(history, 1e-5) == pytest.approx(6.314, abs=1e-2)
    assert epsilon_pld(history + history, 1e-5) > epsilon_pld(history, 1e-5)  # histories compose


def autograd_weight_grads(conv, size: int, batch: int = 4):
    """A random float64 input ``a`` and output gradient ``δ`` of the steerable ``conv`` on
    ``size × size`` maps, and each example's weight gradient by autograd, one at a time."""
    a = torch.randn(batch, conv.in_type.size, size, size, dtype=torch.float64)
    delta = torch.randn(batch, conv.out_type.size, size, size, dtype=torch.float64)
    expected = []
    for i in range(batch):
        w = conv.weight.detach().clone().requires_grad_(True)
        out = F.conv2d(a[i : i + 1], conv.expand_filter(w), padding=1)
        expected.append(torch.autograd.grad((out * delta[i : i + 1]).sum(), w)[0])
    return a, delta, torch.stack(expected)


@pytest.mark.parametrize("mixed", [False, True], ids=["contiguous-fields", "interleaved-fields"])
def test_both_steerable_per_sample_routes_equal_autograd(mixed, monkeypatch):
    """Filter first (grouped weight-gradient convolution, then the transposed basis expansion;
    whole batch, and in chunks of 3 examples and a last chunk of 1) and basis first (basis
    convolutions, then one batched product) give the same per-example weight gradients;
    interleaved field types make escnn index channels by meshgrids."""
    from escnn import gspaces
    from escnn import nn as enn

    from dpecnn.models.equivariant import SteerableConv2d
    from dpecnn.privacy import grad_sample
    from dpecnn.privacy.grad_sample import per_sample_basis_grads, per_sample_filter_first

    gs = gspaces.flipRot2dOnR2(N=4)
    reps = (
        [gs.regular_repr, gs.trivial_repr, gs.irrep(1, 1), gs.regular_repr, gs.trivial_repr]
        if mixed
        else [gs.trivial_repr] * 2 + [gs.regular_repr] * 2
    )
    conv = SteerableConv2d(enn.FieldType(gs, reps), enn.FieldType(gs, reps[::-1] + [gs.irrep(1, 1)])).double()
    a, delta, expected = autograd_weight_grads(conv, size=9)
    whole_batch = per_sample_filter_first(conv.expansion, a, delta, 3, 1)
    monkeypatch.setattr(grad_sample, "FILTER_FIRST_CHUNK_BYTES", 3 * conv.out_type.size * conv.in_type.size * 9 * 8)
    in_chunks = per_sample_filter_first(conv.expansion, a, delta, 3, 1)
    basis_first = per_sample_basis_grads(conv.expansion, a, delta, 3, 1)
    for route in (whole_batch, in_chunks, basis_first):
        assert float((route - expected).norm() / expected.norm()) < 1e-12


def test_field_block_route_equals_autograd_and_needs_one_field_type(monkeypatch):
    """Field blocks (filter gradients in the basis' block order) give autograd's per-example
    weight gradients, whole batch and in chunks of 3 examples then 1; a layer with several
    field types is refused rather than read in the wrong order."""
    from escnn import gspaces
    from escnn import nn as enn

    from dpecnn.models.equivariant import SteerableConv2d
    from dpecnn.privacy import grad_sample
    from dpecnn.privacy.grad_sample import per_sample_field_blocks

    gs = gspaces.rot2dOnR2(N=8)
    conv = SteerableConv2d(enn.FieldType(gs, [gs.regular_repr] * 3), enn.FieldType(gs, [gs.regular_repr] * 2)).double()
    a, delta, expected = autograd_weight_grads(conv, size=7)
    whole_batch = per_sample_field_blocks(conv.expansion, a, delta, 3, 1)
    monkeypatch.setattr(grad_sample, "FILTER_FIRST_CHUNK_BYTES", 3 * conv.out_type.size * conv.in_type.size * 9 * 8)
    in_chunks = per_sample_field_blocks(conv.expansion, a, delta, 3, 1)
    for route in (whole_batch, in_chunks):
        assert float((route - expected).norm() / expected.norm()) < 1e-12
    mixed = SteerableConv2d(enn.FieldType(gs, [gs.regular_repr, gs.trivial_repr]), conv.out_type)
    with pytest.raises(ValueError, match="one block pair"):
        per_sample_field_blocks(mixed.expansion, *(torch.randn(1, c, 5, 5) for c in (mixed.in_type.size, 16)), 3, 1)


@pytest.mark.parametrize("route", ["grouped", "batched-product"])
def test_both_filter_gradient_routes_equal_autograd_whole_batch_and_in_chunks(route, monkeypatch):
    """The per-example filter gradients of a plain convolution, by grouped weight-gradient
    convolutions or by one batched product per chunk, whole batch and in chunks of 3 examples
    then 1, are autograd's."""
    from dpecnn.privacy import grad_sample

    monkeypatch.setattr(grad_sample, "BMM_ROUTE", ((10**6, 0),) if route == "batched-product" else ())
    monkeypatch.setattr(grad_sample, "BMM_MOST_INPUT_COLUMNS", 0)
    a, delta = torch.randn(4, 5, 9, 9, dtype=torch.float64), torch.randn(4, 6, 9, 9, dtype=torch.float64)
    weight = torch.randn(6, 5, 3, 3, dtype=torch.float64, requires_grad=True)
    losses = [(F.conv2d(a[i : i + 1], weight, padding=1) * delta[i : i + 1]).sum() for i in range(4)]
    expected = torch.stack([torch.autograd.grad(loss, weight)[0] for loss in losses])
    whole_batch = grad_sample.per_sample_filter_grads(a, delta, 3, 1)
    monkeypatch.setattr(grad_sample, "GROUPED_CHUNK_BYTES", 3 * 6 * 5 * 9 * 8)
    in_chunks = grad_sample.per_sample_filter_grads(a, delta, 3, 1)
    for grads in (whole_batch, in_chunks):
        assert float((grads - expected).norm() / expected.norm()) < 1e-12


@pytest.mark.parametrize("size, padding", [(28, 1), (7, 1), (3, 1), (6, 0)])
def test_columns_are_unfolds_patches(size, padding):
    from dpecnn.privacy.grad_sample import columns

    a = torch.randn(2, 5, size, size + 1, dtype=torch.float64)
    assert torch.equal(columns(a, 3, padding), F.unfold(a, 3, padding=padding))


@pytest.mark.parametrize("epsilon, q, steps", [(7.42, 1024 / 11959, 12 * 11), (1.0, 0.0586, 51), (4.0, 0.02, 500)])
def test_prv_calibrated_epsilon_upper_bounds_the_pld_epsilon(epsilon, q, steps):
    """A PRV-calibrated run (the paper recipe's accountant) reports ε ≥ dp-accounting's PLD ε."""
    sigma = calibrate_noise(epsilon, 1e-5, q, steps, accountant="prv")
    reported = epsilon_for_history([(sigma, q, steps)], 1e-5, "prv")
    assert reported <= epsilon * (1 + 1e-3)
    assert reported >= epsilon_pld([(sigma, q, steps)], 1e-5, discretization=1e-4)
