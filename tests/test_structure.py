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
    assert refused.returncode == 2 and refused.stderr.startswith("error: opacus is not pinned")


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


def _canonical(name: str) -> str:
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> dict[str, list]:
    """pyproject's requirements by extra ("" for the runtime dependencies), extras of dpecnn itself
    expanded."""
    tomllib = pytest.importorskip("tomllib")  # Python ≥ 3.11
    from packaging.requirements import Requirement

    project = tomllib.loads(Path("pyproject.toml").read_text())["project"]
    groups = {"": project["dependencies"], **project["optional-dependencies"]}

    def expand(extra: str) -> list:
        out = []
        for text in groups[extra]:
            req = Requirement(text)
            out += [r for e in sorted(req.extras) for r in expand(e)] if req.name == "dpecnn" else [req]
        return out

    return {extra: expand(extra) for extra in groups}


def _third_party_imports(folder: str) -> set[str]:
    import ast

    names = set()
    for path in Path(folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    local = {p.stem for p in Path(folder).glob("*.py")} | {"dpecnn"}
    return names - set(sys.stdlib_module_names) - local


@pytest.mark.parametrize(
    ("folder", "extras"), [("dpecnn", ("", "notebooks", "ray")), ("tests", ("", "notebooks", "ray", "docs", "test"))]
)
def test_every_import_is_declared_in_pyproject(folder, extras):
    """`pip install -e '.[test]'` must install what the tests import, and the package's runtime
    dependencies with its [notebooks] and [ray] extras what the package imports: every imported
    top-level module belongs to a declared distribution (`dpecnn` imports outside these three,
    such as pytest's, would fail here)."""
    from importlib.metadata import packages_distributions

    declared = {_canonical(r.name) for extra in extras for r in _declared()[extra]}
    owners = packages_distributions()
    missing = {
        module: owners.get(module)
        for module in _third_party_imports(folder)
        if not {_canonical(d) for d in owners.get(module, [module])} & declared
    }
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_the_pinned_sets_lie_inside_pyproject_ranges_and_keep_test_tools_out_of_the_runtime():
    """What `make test` installs (requirements*.txt, installed in this venv; or `pip install -e '.[test]'`)
    satisfies every range pyproject declares, and the runtime pins hold no test-only tool."""
    from importlib.metadata import version

    for extra, reqs in _declared().items():
        for req in reqs if extra != "dev" else ():  # the pre-commit tools: `make test` needs none of them
            assert req.specifier.contains(version(req.name), prereleases=True), (extra, str(req), version(req.name))
    runtime_pins = {
        _canonical(line.split("==")[0].split("<")[0].split(">")[0].strip())
        for line in Path("requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    test_only = {_canonical(r.name) for r in _declared()["test"]} - {
        _canonical(r.name) for extra in ("", "notebooks", "ray", "docs") for r in _declared()[extra]
    }
    assert not runtime_pins & test_only, runtime_pins & test_only
