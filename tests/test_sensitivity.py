"""The sensitivity harness: on every training path, removing one example changes the pre-noise
sum of clipped per-example gradients by at most C (every other example's randomness held
fixed), and each example's gradient is the mean over its views before clipping."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from dpecnn.data import AugmentConfig, apply_augmentations, draw_augmentations
from dpecnn.models import build_model
from dpecnn.privacy import DPSGD, MechanismRandomness, make_accountant
from dpecnn.privacy import grad_sample as grad_sample_module

N, CLASSES = 70, 4
# (examples, physical batch) per K: two physical batches
SIZES = {1: (70, 66), 4: (20, 17)}
# Grouped weight-gradient convolutions in chunks of 1-28 examples (at layout 2-2-4, float64): every
# physical batch runs several chunks, one of them partial
GROUPED_CHUNK_BYTES = 2**13
PATHS = (
    [("e", "invariant", k, "filter") for k in (1, 4)]
    + [
        (arch, readout, k, route)
        for arch in ("C4", "C16", "O2")
        for readout in ("invariant", "orientation")
        for k in (1, 4)
        for route in ("filter", "basis")
    ]
    # field blocks serve layers of one field type in and out (C_N's regular layers), not O(2)'s
    + [(arch, "invariant", k, "blocks") for arch in ("C4", "C16") for k in (1, 4)]
)


def make_mechanism(model, k=1, clip=1e-3, physical=32, sigma=0.0, randomness=None, lr=0.0, **kw) -> DPSGD:
    return DPSGD(
        model,
        torch.optim.SGD(model.parameters(), lr=lr),
        make_accountant("rdp"),
        n_train=N,
        expected_batch_size=16,
        noise_multiplier=sigma,
        max_grad_norm=clip,
        physical_batch_size=physical,
        augment=AugmentConfig(k, rot90=True),
        device=torch.device("cpu"),
        randomness=randomness or MechanismRandomness.create(torch.device("cpu"), 0, reproducible=True),
        **kw,
    )


def flat(tensors) -> torch.Tensor:
    return torch.cat([t.flatten() for t in tensors])


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    return (torch.randn(N, 3, 28, 28, generator=g, dtype=torch.float64), torch.randint(0, CLASSES, (N,), generator=g))


@pytest.mark.parametrize("arch,readout,k,route", PATHS, ids=["-".join(map(str, p)) for p in PATHS])
def test_removing_one_example_moves_the_clipped_sum_by_at_most_c(arch, readout, k, route, batch, monkeypatch):
    monkeypatch.setattr(grad_sample_module, "basis_first_is_cheaper", lambda *a, **kw: route == "basis")
    monkeypatch.setattr(grad_sample_module, "FIELD_BLOCKS_MIN_BYTES", 0 if route == "blocks" else float("inf"))
    monkeypatch.setattr(grad_sample_module, "GROUPED_CHUNK_BYTES", GROUPED_CHUNK_BYTES)
    n, physical = SIZES[k]
    x, y = batch[0][:n], batch[1][:n]
    model = build_model(arch, 3, CLASSES, layout=(2, 2, 4), readout=readout).double().train()
    clip = 1e-3  # below every per-example gradient norm: every example is clipped
    mech = make_mechanism(model, k=k, clip=clip, physical=physical)
    draws = draw_augmentations(n, mech.augment, torch.Generator().manual_seed(1)).view(n, k, 4)
    i = physical // 2  # inside the first physical batch: every later example keeps its views
    keep = torch.arange(n) != i
    with mech.attached():
        full = flat(mech.clipped_sum(x, y, draws.reshape(-1, 4)))
        without = flat(mech.clipped_sum(x[keep], y[keep], draws[keep].reshape(-1, 4)))
        alone = flat(mech.clipped_sum(x[i : i + 1], y[i : i + 1], draws[i].reshape(-1, 4)))
    change = float((full - without).norm())
    assert change <= clip * (1 + 1e-5), f"removing example {i} moved the sum by {change / clip:.6f} C"
    assert change >= clip * (1 - 1e-4), "every example is clipped: its contribution has norm C"
    assert torch.allclose(full - without, alone, rtol=1e-5, atol=1e-12), "the change is that example's ḡ_i"


def naive_example_gradient(model, x, y, cfg, draws):
    """``(1/K) Σ_k ∇ℓ(aug_k(x), y)`` by plain autograd, one view at a time."""
    params = [p for p in model.parameters() if p.requires_grad]
    views = apply_augmentations(x[None], cfg, draws)
    grads = [flat(torch.autograd.grad(F.cross_entropy(model(v[None]), y[None]), params)) for v in views]
    return torch.stack(grads)


def test_each_example_is_the_mean_over_its_views_clipped_after_averaging(batch):
    x, y = batch
    model = build_model("C4", 3, CLASSES, layout=(4, 4, 8)).double().train()
    k = 4
    mech = make_mechanism(model, k=k)
    draws = draw_augmentations(1, mech.augment, torch.Generator().manual_seed(2))
    per_view = naive_example_gradient(model, x[0], y[0], mech.augment, draws)
    mean = per_view.mean(0)
    clip = 0.5 * float(mean.norm())  # clipping is active on the mean and on every view
    assert (per_view.norm(dim=1) > clip).all()
    mech.max_grad_norm = clip
    with mech.attached():
        ours = flat(mech.clipped_sum(x[:1], y[:1], draws))
    mean_then_clip = mean * clip / (mean.norm() + 1e-6)
    clip_then_mean = (per_view * (clip / (per_view.norm(dim=1, keepdim=True) + 1e-6))).mean(0)
    assert torch.allclose(ours, mean_then_clip, rtol=1e-6)
    assert not torch.allclose(ours, clip_then_mean, rtol=1e-3), "views would be clipped before averaging"


def test_clipping_matches_opacus_dpoptimizer(batch):
    """The mechanism's clip-and-sum is Opacus' DPOptimizer rule (an independent implementation)."""
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer

    x, y = batch
    model = build_model("e", 3, CLASSES, layout=(4, 4, 8)).double().train()
    mech = make_mechanism(model, clip=0.05, physical=N)
    with mech.attached():
        ours = flat(mech.clipped_sum(x, y))
    gsm = GradSampleModule(model, loss_reduction="sum")
    opt = DPOptimizer(
        torch.optim.SGD(model.parameters(), lr=0.0), noise_multiplier=0.0, max_grad_norm=0.05, expected_batch_size=N
    )
    F.cross_entropy(gsm(x), y, reduction="sum").backward()
    opt.clip_and_accumulate()
    theirs = flat([p.summed_grad for p in opt.params])
    gsm._close()
    assert torch.allclose(ours, theirs, rtol=1e-8, atol=1e-14)


def test_physical_batch_split_does_not_change_the_sum(batch):
    x, y = batch
    model = build_model("O2", 3, CLASSES, layout=(4, 4, 8)).double().train()
    sums = []
    for physical in (7, N):
        mech = make_mechanism(model, k=2, clip=0.1, physical=physical)
        draws = draw_augmentations(N, mech.augment, torch.Generator().manual_seed(3))
        with mech.attached():
            sums.append(flat(mech.clipped_sum(x, y, draws)))
    assert torch.allclose(*sums, rtol=1e-9, atol=1e-14)


def test_noise_comes_from_the_mechanism_generator_not_the_global_rng():
    """Reproducible mechanism randomness fixes the noise whatever the global RNG does; secret
    randomness gives new noise under the same global seed. Noise drawn from torch's global
    generator fails the first half; noise seeded from the run's seed fails the second."""
    model = nn.Sequential(nn.Linear(10, 3, bias=False))
    released = []
    for global_seed, reproducible in ((1, True), (2, True), (1, False), (1, False)):
        torch.manual_seed(global_seed)
        nn.init.zeros_(model[0].weight)
        mech = make_mechanism(
            model,
            sigma=1.0,
            clip=1.0,
            lr=1.0,
            randomness=MechanismRandomness.create(torch.device("cpu"), 0, reproducible),
        )
        mech.expected_batch_size = 1
        torch.manual_seed(global_seed)
        mech.release([torch.zeros_like(model[0].weight)])
        released.append(model[0].weight.detach().clone())
    assert torch.equal(released[0], released[1]), "noise depends on the global RNG"
    assert not torch.equal(released[2], released[3]), "secret noise repeated under the same seeds"
    assert float(released[0].abs().sum()) > 0


def test_secret_augmentation_differs_between_runs_with_the_same_seed_and_reproducible_repeats():
    cfg = AugmentConfig(4, rot90=True)
    secret = [
        draw_augmentations(64, cfg, MechanismRandomness.create(torch.device("cpu"), 0, False).augmentation)
        for _ in range(2)
    ]
    repro = [
        draw_augmentations(64, cfg, MechanismRandomness.create(torch.device("cpu"), 0, True).augmentation)
        for _ in range(2)
    ]
    assert not torch.equal(*secret) and torch.equal(*repro)


def test_a_model_with_data_buffers_is_refused():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(2))
    model(torch.randn(2, 3, 8, 8))
    mech = make_mechanism(model)
    with pytest.raises(ValueError, match="buffers"), mech.attached():
        pass


def test_a_stale_or_missing_per_example_gradient_is_refused(batch):
    """Opacus accumulates into ``grad_sample`` when one is left over; the mechanism must never
    clip a mixture of two backward passes (nor a parameter that got no per-example gradient)."""
    x, y = batch
    model = build_model("e", 3, CLASSES, layout=(4, 4, 8)).double().train()
    mech = make_mechanism(model)
    first = mech.params[0]
    with mech.attached():
        first.grad_sample = torch.zeros(4, *first.shape, dtype=first.dtype)  # left over from elsewhere
        with pytest.raises(RuntimeError, match="per-example gradient"):
            mech.clipped_sum(x[:4], y[:4])


def test_poisson_sampling_draws_what_opacus_sampler_draws_from_the_same_generator():
    """The mechanism's Poisson batches against Opacus' ``UniformWithReplacementSampler``, step for step."""
    from opacus.utils.uniform_sampler import UniformWithReplacementSampler

    randomness = MechanismRandomness.create(torch.device("cpu"), 0, reproducible=True)
    twin = torch.Generator().set_state(randomness.sampling.get_state())
    mech = make_mechanism(build_model("e", 3, 2, layout=(2, 2, 4)), randomness=randomness)
    opacus = iter(UniformWithReplacementSampler(num_samples=N, sample_rate=mech.sample_rate, generator=twin, steps=50))
    drawn = [mech.sample().tolist() for _ in range(50)]
    assert drawn == [next(opacus) for _ in range(50)] and len({len(d) for d in drawn}) > 1  # sizes vary: Poisson


def test_augmentation_equals_torchvision_v2_given_the_same_draws():
    """Reflect-pad and crop, horizontal flip, quarter turns: torchvision's functional transforms per view."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as TF

    cfg = AugmentConfig(4, rot90=True)
    x = torch.rand(5, 3, 28, 28)
    draws = draw_augmentations(len(x), cfg, torch.Generator().manual_seed(0))
    ours = apply_augmentations(x, cfg, draws)
    p = cfg.crop_padding
    for view, image, (top, left, flip, quarter) in zip(ours, x.repeat_interleave(4, 0), draws.tolist()):
        theirs = TF.crop(TF.pad(image, [p, p, p, p], padding_mode="reflect"), top, left, 28, 28)
        theirs = TF.horizontal_flip(theirs) if flip else theirs
        theirs = TF.rotate(theirs, 90 * quarter, interpolation=InterpolationMode.NEAREST)
        assert torch.equal(view, theirs)
