"""Running a notebook as a reader would, for tests/test_notebooks.py and tests/test_notebook_solutions.py.

The two files are apart so that pytest-xdist (``--dist loadfile``) runs the notebooks and their
worked solutions in its two processes side by side; every kernel loads the programs another one
compiled from the suite's shared compilation cache (tests/conftest.py).
"""

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))


def execute(path: Path, executed_dir: Path, work: Path) -> nbformat.NotebookNode:
    """Run ``path`` in a fresh kernel (as committed: QUICK = True), save the executed copy; returns it."""
    notebook = nbformat.read(path, as_version=4)
    # Jupyter's inline backend, as a reader's kernel has it, so figures become image outputs
    # (the suite's own MPLBACKEND=Agg would leave the executed notebooks without figures).
    env = {"MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        resources = {"metadata": {"path": str(work)}}
        NotebookClient(notebook, timeout=600, kernel_name="python3", resources=resources).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    folder = executed_dir / "solutions" if path.parent.name == "solutions" else executed_dir
    folder.mkdir(exist_ok=True)
    nbformat.write(notebook, folder / path.name)
    return notebook


def check_runs_and_ends_with_exercises(path: Path, executed_dir: Path, work: Path) -> None:
    """``path`` ends with exercises, runs top to bottom without an error, and (not a solution) shows a figure."""
    notebook = nbformat.read(path, as_version=4)
    last_markdown = [c for c in notebook.cells if c.cell_type == "markdown"][-1].source.lower()
    assert "exercise" in last_markdown or "question" in last_markdown, f"{path.name} must end with exercises"
    notebook = execute(path, executed_dir, work)
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors
    if path.parent.name != "solutions":
        assert any("image/png" in o.get("data", {}) for o in outputs), f"{path.name} shows no figure"
