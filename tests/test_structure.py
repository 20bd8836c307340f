"""The shape of the code base: no import cycle, one home for shared texts and settings."""

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Every cycle, as the shortest chain back to the importer of one direct import (imports
    inside functions count: grimp reads every import statement)."""
    cycles = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back:
                cycles.append([importer, *back])
    return cycles


def test_dpecnn_has_no_import_cycle():
    cycles = import_cycles(grimp.build_graph("dpecnn"))
    assert not cycles, "import cycles:\n" + "\n".join(" → ".join(c) for c in cycles)


def test_the_cycle_check_finds_a_cycle_through_a_function_level_import(tmp_path, monkeypatch):
    package = tmp_path / "cyclic"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from cyclic import b\n")
    (package / "b.py").write_text("def f():\n    from cyclic.a import g\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert import_cycles(grimp.build_graph("cyclic", cache_dir=None)) == [
        ["cyclic.a", "cyclic.b", "cyclic.a"],
        ["cyclic.b", "cyclic.a", "cyclic.b"],
    ]


@pytest.mark.parametrize("module", ["dpecnn.privacy.mechanism", "dpecnn.analysis.pages.report_base"])
def test_leaf_modules_import_nothing_from_the_layers_above(module):
    """The mechanism a reviewer audits and the report type every analysis returns depend on no
    analysis, plotting, notebook or CLI code."""
    graph = grimp.build_graph("dpecnn")
    above = {"dpecnn.analysis", "dpecnn.plotting", "dpecnn.cli", "dpecnn.suite", "dpecnn.explore"}
    reached = graph.find_upstream_modules(module)
    assert not {m for m in reached if any(m == a or m.startswith(a + ".") for a in above) and m != module}


REPO = Path(__file__).resolve().parents[1]


def _pins(*files: str) -> dict[str, str]:
    lines = [line.split("#")[0].strip() for f in files for line in (REPO / f).read_text().splitlines()]
    return dict(line.lower().split("==") for line in lines if "==" in line)


def test_the_gpu_wheels_take_their_versions_from_the_requirements(tmp_path):
    printed = subprocess.run(["bash", "scripts/gpu_wheels.sh", "--print"], cwd=REPO, capture_output=True, text=True)
    assert printed.returncode == 0, printed.stderr
    pins = _pins("requirements.txt", "requirements-nodeps.txt")
    wheels = dict(line.lower().split("==") for line in printed.stdout.split())
    assert wheels and all(pins[name] == version for name, version in wheels.items())
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts/gpu_wheels.sh", tmp_path / "scripts")
    (tmp_path / "requirements.txt").write_text("opacus\n")  # unpinned: the script must refuse, not guess
    (tmp_path / "requirements-nodeps.txt").write_text("escnn==1.0.11\n")
    refused = subprocess.run(["bash", "scripts/gpu_wheels.sh", "--print"], cwd=tmp_path, capture_output=True, text=True)
    assert refused.returncode == 2 and refused.stderr.startswith("error: pymanopt is not pinned")


def test_the_makefile_installs_escnn_from_its_pin_file():
    makefile = (REPO / "Makefile").read_text()
    assert "--no-deps -r requirements-nodeps.txt" in makefile and "escnn==" not in makefile


HEAVY = ("torch", "opacus", "escnn", "medmnist", "numpy", "sklearn")


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["train", "--help"], ["sweep", "--help"], ["train", "--arch", "c7"], ["sweep", "--archs", "e,x"]],
)
def test_help_and_usage_errors_load_no_heavy_library(argv):
    """``--help`` and a bad flag answer without importing torch, Opacus, escnn or medmnist (their
    imports take seconds; `python -m dpecnn.bench startup` times the answer)."""
    code = (
        "import sys\nfrom dpecnn.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit as exc:\n"
        f"    code = exc.code\nprint(code, [m for m in {HEAVY!r} if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code, *argv], cwd=REPO, capture_output=True, text=True)
    assert done.stdout.splitlines()[-1] == f"{2 if argv[-1] != '--help' else 0} []", done.stderr
