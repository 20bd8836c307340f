"""Committed notebooks are clean and readable: no outputs, no execution counts, stable unique
cell ids (nbformat ≥ 4.5); 01–08 open with what they show and end with a computed verdict."""

import re
from pathlib import Path

import nbformat
import pytest

from dpecnn.suite import NOTEBOOKS

ALL = sorted(NOTEBOOKS.glob("*.ipynb"))
SUITE = [p for p in ALL if re.match(r"0[1-8]_", p.name)]


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_committed_notebook_has_no_outputs_and_stable_unique_cell_ids(path: Path):
    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    nbformat.validate(nb)
    assert (nb.nbformat, nb.nbformat_minor) >= (4, 5), "cell ids need nbformat 4.5"
    ids = [c.get("id") for c in nb.cells]
    assert all(isinstance(i, str) and re.fullmatch(r"[a-zA-Z0-9-_]{1,64}", i) for i in ids), ids
    assert len(set(ids)) == len(ids), f"repeated cell ids in {path.name}"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name} cell {cell.id} was run"
        assert "attachments" not in cell or not cell.attachments


@pytest.mark.parametrize("path", SUITE, ids=lambda p: p.name)
def test_suite_notebook_says_what_it_shows_and_ends_with_a_verdict(path: Path):
    cells = nbformat.read(path, as_version=4).cells
    intro = cells[0]
    assert intro.cell_type == "markdown" and intro.source.startswith("# ")
    for part in ("**What it shows.**", "**How to read it.**", "**Paper claim it tests.**"):
        assert part in intro.source, f"{path.name}: {part} missing"
    assert "parameters" in cells[1].metadata.get("tags", []), f"{path.name}: cell 2 is not the parameters cell"
    assert cells[-1].cell_type == "code" and cells[-1].source == "print(report.verdict)"


@pytest.mark.parametrize(
    "notebook, key",
    [("04_sparsity", "diagnostics"), ("07_symmetry_probe", "symmetry probe"), ("08_privacy_audit", "audit")],
)
def test_what_epsilon_does_not_cover_is_said_in_the_words_of_its_one_home(notebook, key):
    from dpecnn.privacy.coverage import NOT_COVERED

    markdown = "\n".join(
        c.source for c in nbformat.read(NOTEBOOKS / f"{notebook}.ipynb", 4).cells if c.cell_type == "markdown"
    )
    assert NOT_COVERED[key] in markdown, f"{notebook}: say dpecnn.privacy.coverage.NOT_COVERED[{key!r}] verbatim"
