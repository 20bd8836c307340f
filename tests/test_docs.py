"""The documentation: the site builds without a warning, README stays short and links to it."""

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_docs_site_builds_strictly(tmp_path):
    """`mkdocs build --strict`: no broken link, no page missing from the navigation, no API warning."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    res = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "site" / "results" / "privacy_utility" / "privacy_utility.png").is_file()
    assert "Poisson" in (tmp_path / "site" / "api" / "index.html").read_text()


def test_readme_is_short_gives_the_two_commands_and_links_every_docs_page():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    assert "make run" in readme and "make test" in readme
    linked = set(re.findall(r"\(docs/([\w-]+\.md)\)", readme))
    pages = {p.name for p in (REPO / "docs").glob("*.md")}
    assert pages - {"index.md"} <= linked, f"README does not link {sorted(pages - linked - {'index.md'})}"
