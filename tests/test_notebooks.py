"""Every notebook runs top to bottom in a fresh kernel (quick settings), and the documentation site
built from the executed notebooks builds with warnings as errors and shows their figures in a browser.

The notebooks are executed once: each test below saves its executed copy into a session folder, and
the site is built from those copies (the last test of this file; a notebook not yet run is run then).
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
from notebook_runs import NOTEBOOKS, ROOT, SOLUTIONS, check_runs_and_ends_with_exercises, execute

QUICK_SWITCH = re.compile(r"^QUICK = (True|False)\b", re.MULTILINE)


@pytest.fixture(scope="session")
def executed_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("executed-notebooks")


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no notebook"


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=[p.stem for p in NOTEBOOKS + SOLUTIONS])
def test_notebook_opens_with_the_install_line_and_a_visible_quick_switch(path):
    """A student sees how to install and how to switch to the full settings before anything runs."""
    notebook = nbformat.read(path, as_version=4)
    first_code = next(c for c in notebook.cells if c.cell_type == "code").source
    assert 'pip install "toyrlhf[notebooks]"' in first_code, f"{path.name}: first code cell lacks the install line"
    switch = QUICK_SWITCH.search(first_code)
    assert switch, f"{path.name}: first code cell lacks a visible `QUICK = True/False` line"
    assert switch.group(1) == "True", f"{path.name} is committed with QUICK = False (the tests run what is committed)"
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    assert "TOYRLHF_QUICK" not in code, f"{path.name} reads TOYRLHF_QUICK instead of its QUICK switch"
    private = re.search(r"\b\w+\._(?!replace\b|asdict\b|make\b)[a-z]\w*\(", code)  # NamedTuple's are public
    assert not private, f"{path.name} calls a private helper: {private.group(0)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_carries_its_figures(path):
    """A reader browsing the repository sees the figures (docs/execute_notebooks.py runs them in place)."""
    notebook = nbformat.read(path, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), f"{path.name}: run docs/execute_notebooks.py {path.stem}"
    outputs = [o for c in code for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"], f"{path.name} was committed with an error"
    assert any("image/png" in o.get("data", {}) for o in outputs), f"{path.name} is committed without its figures"


def test_every_notebook_with_exercises_has_worked_solutions():
    stems = {p.stem for p in SOLUTIONS}
    missing = [p.name for p in NOTEBOOKS if f"{p.stem}_solutions" not in stems]
    assert not missing, f"notebooks/solutions/ lacks worked solutions for {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom_and_ends_with_exercises(path, executed_dir, tmp_path):
    check_runs_and_ends_with_exercises(path, executed_dir, tmp_path)


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def _browser(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chromium-profile'}"]
    return subprocess.run([_chromium(), *flags, *args], capture_output=True, text=True, timeout=120)


def test_docs_site_builds_strictly_and_shows_the_figures(executed_dir, tmp_path):
    for path in NOTEBOOKS:
        if not (executed_dir / path.name).exists():
            execute(path, executed_dir, tmp_path)
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import build as docs_build
    finally:
        sys.path.pop(0)
    site = tmp_path / "site"
    index = docs_build.build(site, executed_dir)  # raises on any Sphinx warning
    tour = site / "notebooks" / "00_tour.html"
    assert index.exists() and tour.exists()
    html = tour.read_text()
    images = [site / "notebooks" / src for src in re.findall(r'<img[^>]*\ssrc="([^"]+)"', html)]
    assert images, "the executed tour shows no figure"
    assert all(p.exists() and p.stat().st_size > 5_000 for p in images), images
    assert (site / "_autosummary" / "toyrlhf.tabular.html").exists()  # the API reference is built
    if _chromium() is None:
        pytest.skip("no Chromium here: the browser check needs Debian's chromium package (.ci/run installs it)")
    dom = _browser(["--dump-dom", index.as_uri()], tmp_path)
    assert dom.returncode == 0 and "toyrlhf" in dom.stdout and "00_tour.html" in dom.stdout, dom.stderr[-2000:]
    shot = tmp_path / "tour.png"
    result = _browser([f"--screenshot={shot}", "--window-size=1280,4000", "--hide-scrollbars", tour.as_uri()],
                      tmp_path)
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    coloured = np.mean(pixels.max(-1) - pixels.min(-1) > 0.2)  # saturated pixels: figures, not text
    assert coloured > 0.005, f"the rendered tour page looks like text only ({coloured:.4f} coloured pixels)"
