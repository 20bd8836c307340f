"""Readout contracts (dpecnn.models.resnet9): ``invariant`` logits ignore the group,
``orientation`` logits do not, while the features its head reads stay equivariant; and on data
whose class is the orientation only the orientation-aware model learns."""

import numpy as np
import pytest
import torch
from conftest import input_far_from_ties

from dpecnn.models import build_model, family
from dpecnn.models.escnn_import import import_escnn

enn = import_escnn().nn  # with lie_learn's stand-in where it cannot be imported, as dpecnn does

x = torch.randn(3, 3, 28, 28, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
# (arch, quarter turns, flip): grid transformations in the group the last fields carry
# (C4 → C2 and C16 → C8 after restriction, O(2) unrestricted)
CASES = [("C4", 2, False), ("C16", 1, False), ("O2", 1, False), ("O2", 0, True), ("O2", 3, True)]


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def elements(arch: str, quarter_turns: int, flip: bool):
    """The group element acting on the input and the same element in the last fields' group."""
    fam = family(arch)
    if arch == "O2":
        g = fam.gspace.fibergroup.element((int(flip), quarter_turns * np.pi / 2))
        return fam, g, g
    k = quarter_turns * fam.n // 4
    return fam, fam.gspace.fibergroup.element(k), fam.sub_gspace.fibergroup.element(k // 2)


def input_and_moved(model, arch: str, fam, g) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` and ``g·x``; for O(2), the first seeded input whose norm poolings are far from ties on
    both, so that no CPU's rounding can switch a pooled vector (docs/models.md, "ties")."""

    def move(t: torch.Tensor) -> torch.Tensor:
        return enn.GeometricTensor(t, fam.input_type(3)).transform(g).tensor

    start = input_far_from_ties(model, x.shape, [move]) if arch == "O2" else x
    return start, move(start)


@pytest.mark.parametrize("arch,quarter_turns,flip", CASES)
def test_orientation_readout_features_are_equivariant_and_logits_see_orientation(arch, quarter_turns, flip):
    fam, g, g_last = elements(arch, quarter_turns, flip)
    model = build_model(arch, 3, 5, layout=(4, 4, 8), readout="orientation").double().eval()
    x, gx = input_and_moved(model, arch, fam, g)
    rho = torch.as_tensor(fam.hidden_type(8, True).representation(g_last), dtype=torch.float64)
    with torch.no_grad():
        features, moved = model.pooled_features(x), model.pooled_features(gx)
        assert rel(moved, features @ rho.T) < 1e-5, f"{arch}: features not equivariant under {g}"
        assert not torch.allclose(rho, torch.eye(len(rho), dtype=rho.dtype)), "a test element must act"
        assert rel(model(gx), model(x)) > 1e-3, f"{arch}: orientation logits did not change under {g}"


@pytest.mark.parametrize("arch,quarter_turns,flip", CASES)
def test_invariant_readout_logits_ignore_the_group(arch, quarter_turns, flip):
    fam, g, _ = elements(arch, quarter_turns, flip)
    model = build_model(arch, 3, 5, layout=(4, 4, 8), readout="invariant").double().eval()
    x, gx = input_and_moved(model, arch, fam, g)
    with torch.no_grad():
        assert rel(model(gx), model(x)) < 1e-5


@pytest.mark.parametrize("arch", ["e", "C1"])
def test_without_a_group_both_readouts_are_the_same_model(arch):
    torch.manual_seed(0)
    a = build_model(arch, 3, 5, layout=(4, 4, 8), readout="invariant")
    torch.manual_seed(0)
    b = build_model(arch, 3, 5, layout=(4, 4, 8), readout="orientation")
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    with torch.no_grad():
        assert torch.equal(a(x.float()), b(x.float()))


def test_unknown_readout_names_the_choices():
    with pytest.raises(ValueError, match="invariant, orientation"):
        build_model("C4", 3, 5, readout="oriented")


@pytest.fixture(scope="module")
def oriented_root(tmp_path_factory):
    """Generated two-class data whose class is the direction a shape points (up vs down)."""
    from dpecnn.data import write_synthetic_npz

    root = tmp_path_factory.mktemp("oriented")
    write_synthetic_npz("breastmnist", root, sizes=(256, 128, 64), seed=3, orientation=True)
    return root


@pytest.mark.parametrize("readout", ["invariant", "orientation"])
def test_only_the_orientation_readout_learns_a_class_that_is_the_orientation(oriented_root, tmp_path, readout):
    """C4 restricted to C2 is exactly invariant to 180°, which maps "up" onto "down": its best is
    chance (0.5). The same network with the orientation readout separates the classes."""
    from dpecnn.train import TrainConfig
    from dpecnn.train.trainer import Trainer

    cfg = TrainConfig(
        dataset="breastmnist",
        arch="C4",
        readout=readout,
        layout=(4, 4, 8),
        dp=False,
        epochs=6,
        batch_size=32,
        lr=1e-2,
        data_root=str(oriented_root),
        sparsity_every=1000,
    )
    val_acc = Trainer(cfg, tmp_path / readout, report=lambda line: None).run()["val_acc"]
    if readout == "invariant":
        assert val_acc < 0.65, f"an invariant model beat chance on orientation labels: {val_acc:.3f}"
    else:
        assert val_acc > 0.9, f"the orientation readout did not learn the orientation: {val_acc:.3f}"


def test_dp_training_with_the_orientation_readout(synthetic_root, tmp_path):
    from dpecnn.train import TrainConfig
    from dpecnn.train.sweep import run_name
    from dpecnn.train.trainer import Trainer

    cfg = TrainConfig(
        dataset="bloodmnist",
        arch="O2",
        readout="orientation",
        layout=(2, 2, 4),
        epochs=1,
        batch_size=32,
        train_subset=96,
        eval_subset=32,
        data_root=str(synthetic_root),
    )
    summary = Trainer(cfg, tmp_path / "run", report=lambda line: None).run()
    assert 0 < summary["epsilon_spent"] <= 7.42 and summary["settings"]["readout"] == "orientation"
    assert "-orientation-" in run_name(cfg)
