import textwrap

import pytest
import torch
from conftest import input_far_from_ties

from dpecnn.models import ARCHS, build_model, count_parameters, field_counts, parameter_table

x = torch.randn(4, 3, 28, 28, generator=torch.Generator().manual_seed(0))


def rel_change(model, transform) -> float:
    with torch.no_grad():
        ref = model(x)
        return float((model(transform(x)) - ref).norm() / ref.norm())


def rot(k):
    return lambda t: torch.rot90(t, k, dims=(-2, -1))


def hflip(t):
    return t.flip(-1)


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {arch: build_model(arch, 3, 8).eval() for arch in ARCHS}


@pytest.mark.parametrize("arch", ["C8", "C16"])
def test_restricted_cn_logits_invariant_to_90_degree_rotations(models, arch):
    for k in (1, 2, 3):
        err = rel_change(models[arch], rot(k))
        assert err < 1e-4, f"{arch}: relative change {err:.2e} under rotation by {90 * k}°"


def test_c4_restricted_to_c2_is_invariant_to_180_degrees_only(models):
    err180, err90 = rel_change(models["C4"], rot(2)), rel_change(models["C4"], rot(1))
    assert err180 < 1e-4, f"C4→C2: relative change {err180:.2e} under 180°"
    assert err90 > 1e-3, f"C4→C2 is not meant to be 90°-invariant, change only {err90:.2e}"


def test_unrestricted_c4_is_invariant_to_90_degree_rotations():
    model = build_model("C4", 3, 8, restrict=False).eval()
    for k in (1, 2, 3):
        err = rel_change(model, rot(k))
        assert err < 1e-4, f"C4 (unrestricted): relative change {err:.2e} under {90 * k}°"


def test_o2_invariant_to_flips_and_rotations():
    """In float64 and away from norm-pooling ties (conftest), flips leave the logits unchanged up to
    rounding; 90° rotations only approximately (O(2)'s filters are sampled on the grid)."""
    torch.manual_seed(0)
    o2 = build_model("O2", 3, 8).double().eval()
    transforms = {"hflip": hflip, "vflip": lambda t: t.flip(-2), "rot90": rot(1)}
    x64 = input_far_from_ties(o2, (2, 3, 28, 28), transforms.values())
    with torch.no_grad():
        ref = o2(x64)
        errs = {name: float((o2(t(x64)) - ref).norm() / ref.norm()) for name, t in transforms.items()}
    assert errs["hflip"] < 1e-5 and errs["vflip"] < 1e-5, f"O2 flip errors {errs}"
    assert errs["rot90"] < 1e-3, f"O2 rotation error {errs}"


@pytest.mark.parametrize("arch", ["e", "C1"])
def test_non_equivariant_models_fail_the_invariance_check(models, arch):
    err = rel_change(models[arch], rot(1))
    assert err > 1e-2, f"{arch} should not be rotation invariant, change {err:.2e}"


def test_every_model_maps_plain_tensors_to_logits(models):
    for arch, model in models.items():
        out = model(x)
        assert type(out) is torch.Tensor and out.shape == (4, 8), arch


def test_grey_input_and_other_class_counts():
    model = build_model("O2", 1, 2, layout=(2, 2, 4))
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 2)


def test_bad_arch_and_layout_name_the_choices():
    with pytest.raises(ValueError, match="C16"):
        build_model("C5", 3, 8)
    with pytest.raises(ValueError, match="8,16,32"):
        build_model("e", 3, 8, layout=(8, 16))
    with pytest.raises(ValueError, match="8,16,32"):
        build_model("e", 3, 8, layout="8,0,32")


def test_parameter_table_matches_models():
    rows = {r["arch"]: r for r in parameter_table(layout=(4, 8, 8))}
    assert set(rows) == set(ARCHS)
    assert rows["e"]["params"] == count_parameters(build_model("e", 3, 8, (4, 8, 8)))
    assert rows["C4"]["paper"] == 35_000
    assert rows["C1"]["params"] < rows["C4"]["params"] < rows["C8"]["params"] < rows["C16"]["params"]


def test_weights_swapped_in_eval_mode_take_effect_at_once():
    a, b = build_model("C4", 3, 8, layout=(2, 2, 4)).eval(), build_model("C4", 3, 8, layout=(2, 2, 4)).eval()
    with torch.no_grad():
        before, target = a(x), b(x)
        a.load_state_dict(b.state_dict())  # what EMA evaluation and checkpoint loading do
        assert not torch.allclose(before, target) and torch.allclose(a(x), target)


def test_planar_models_build_where_lie_learn_cannot_be_imported():
    """GPU nodes with numpy 2 cannot import lie_learn's numpy-1 extensions; escnn imports it."""
    import subprocess
    import sys

    code = textwrap.dedent("""
        import importlib.abc, sys
        class Hide(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] == "lie_learn":
                    raise ImportError("hidden by the test")
        sys.meta_path.insert(0, Hide())
        import torch
        from dpecnn.models import build_model
        print(tuple(build_model("O2", 3, 4, layout=(2, 2, 4))(torch.randn(2, 3, 28, 28)).shape))
        from escnn.group.groups import so3_utils
        try:
            so3_utils.wigner_D_matrix(1, 0.0, 0.0, 0.0)
        except RuntimeError as exc:
            print("SO(3):", exc)
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[0] == "(2, 4)" and "need lie_learn" in res.stdout


def test_fixed_params_field_rule_keeps_the_parameter_count_near_e():
    assert field_counts("C4", (8, 16, 32), "fixed-params") == (4, 9, 27)  # ⌊w·√6/4⌋, last stage ⌊32·√3/2⌋
    assert field_counts("C4", (8, 16, 32), "fixed-params", restrict=False) == (4, 9, 19)
    assert field_counts("O2", (8, 16, 32), "fixed-params") == (6, 12, 24)  # ⌊w/√1.75⌋
    assert field_counts("e", (8, 16, 32), "fixed-params") == field_counts("C4", (8, 16, 32)) == (8, 16, 32)
    rows = {r["arch"]: r for r in parameter_table(fields="fixed-params")}
    assert rows["C4"]["params"] == count_parameters(build_model("C4", 3, 8, fields="fixed-params"))
    assert all(0.8 < rows[a]["params"] / rows["e"]["params"] < 1.1 for a in ("C1", "C4", "C8", "C16"))
    with pytest.raises(ValueError, match="unknown field rule"):
        field_counts("C4", (8, 16, 32), "per-channel")


def test_models_command_prints_both_field_rules(capsys):
    from dpecnn.cli import main

    assert main(["models", "--layout", "8,16,32"]) == 0
    out = capsys.readouterr().out
    assert "fields = layout" in out and "fields = fixed-params" in out
    assert all(f"\n{arch} " in out for arch in ARCHS)


@pytest.mark.parametrize("size", [64, 128, 50])
def test_exact_invariances_hold_at_larger_and_odd_sizes(size):
    """Pooling stays centred at every stage (64 → 32 → 16 → 8, 50 → 25 → 12 → 6), so the invariances hold
    (float64, inputs away from norm-pooling ties: see conftest)."""
    torch.manual_seed(0)
    o2 = build_model("O2", 3, 8, layout=(4, 4, 8)).double().eval()
    big = input_far_from_ties(o2, (1, 3, size, size), (hflip, lambda t: t.flip(-2)))

    def change(model, transform):
        with torch.no_grad():
            ref = model(big)
            return float((model(transform(big)) - ref).norm() / ref.norm())

    c4 = build_model("C4", 3, 8, layout=(4, 4, 8), restrict=False).double().eval()
    assert max(change(c4, rot(k)) for k in (1, 2, 3)) < 1e-5
    assert max(change(o2, hflip), change(o2, lambda t: t.flip(-2))) < 1e-5
    assert change(build_model("e", 3, 8, layout=(4, 4, 8)).double().eval(), rot(1)) > 1e-3


@pytest.mark.parametrize("readout", ["invariant", "orientation"])
@pytest.mark.parametrize("fields", ["layout", "fixed-params"])
def test_every_group_takes_64_pixel_inputs(readout, fields):
    images = torch.randn(2, 1, 64, 64)
    for arch in ARCHS:
        model = build_model(arch, 1, 5, layout=(4, 4, 8), fields=fields, readout=readout).eval()
        assert model(images).shape == (2, 5), arch


def test_the_hand_written_pooling_layers_equal_escnns_modules():
    """Group pooling of regular fields (C4) and the two halves of O(2)'s invariant pooling, each
    against the escnn module it replaces (written by hand to run on plain tensors under torch.func)."""
    from escnn import nn as enn

    from dpecnn.models.equivariant import InducedNormPool, InducedO2Family, RegularFamily
    from dpecnn.models.layers import GroupMaxPool

    n, generator = 3, torch.Generator().manual_seed(0)
    c4 = RegularFamily(4)
    regular = enn.FieldType(c4.gspace, [c4.gspace.regular_repr] * n)
    x = torch.randn(2, 4 * n, 5, 5, generator=generator)
    assert torch.equal(GroupMaxPool(4)(x), enn.GroupPooling(regular)(enn.GeometricTensor(x, regular)).tensor)
    o2 = InducedO2Family()
    scalars, vectors = (enn.FieldType(o2.gspace, [rep] * n) for rep in (o2.ind0, o2.ind1))
    s, v = torch.randn(2, 2 * n, 5, 5, generator=generator), torch.randn(2, 4 * n, 5, 5, generator=generator)
    ours = InducedNormPool(n)(torch.cat([s, v], 1))
    assert torch.equal(ours[:, :n], enn.GroupPooling(scalars)(enn.GeometricTensor(s, scalars)).tensor)
    theirs = enn.InducedNormPool(vectors)(enn.GeometricTensor(v, vectors)).tensor
    assert torch.allclose(ours[:, n:], theirs, rtol=1e-6, atol=0)  # a norm: summation order may differ


def test_basis_entries_are_structural_or_rounding_so_the_sign_choice_is_stable():
    """canonicalise_basis_signs_ picks each element's first entry above 1e-3 of its largest:
    that is stable only if no entry lies near the threshold, in every group's basis."""
    for arch in ARCHS[1:]:
        for name, basis in build_model(arch, 3, 8).named_buffers():
            if name.endswith("sampled_basis"):
                flat = basis.reshape(basis.shape[0], -1).abs()
                rel = flat / flat.amax(1, keepdim=True)
                assert not ((rel > 1e-6) & (rel < 1e-2)).any(), (arch, name)


def test_o2_is_one_function_in_every_installation(tmp_path):
    """escnn finds O(2)'s Clebsch–Gordan coefficients from random group elements (global numpy
    RNG) and caches them in its installation, so two fresh installations draw different signs
    for some basis elements. Two processes with empty escnn caches and different numpy seeds
    stand for two installations: the same torch seed must give the same function."""
    import subprocess
    import sys

    code = textwrap.dedent("""
        import sys, joblib, numpy as np
        cache_dir, numpy_seed = sys.argv[1], int(sys.argv[2])
        Memory = joblib.Memory
        joblib.Memory = lambda location, **kw: Memory(cache_dir, **kw)  # escnn's caches, emptied
        np.random.seed(numpy_seed)
        import torch
        from dpecnn.models import build_model
        torch.manual_seed(0)
        model = build_model("O2", 3, 5, layout=(2, 2, 4)).double().eval()
        x = torch.randn(2, 3, 28, 28, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            print("logits", *model(x).flatten().tolist())
    """)
    logits = []
    for numpy_seed in (1, 2):
        cache = tmp_path / f"cache{numpy_seed}"
        res = subprocess.run([sys.executable, "-c", code, str(cache), str(numpy_seed)], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        assert any(cache.iterdir()), "escnn did not compute into the emptied cache; the test would not test"
        logits.append(torch.tensor([float(v) for v in res.stdout.splitlines()[-1].split()[1:]], dtype=torch.float64))
    assert torch.allclose(logits[0], logits[1], rtol=1e-9, atol=1e-12), (logits[0] - logits[1]).abs().max()
