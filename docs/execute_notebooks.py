"""Execute the notebooks in place, so the committed copies carry their figures.

    python docs/execute_notebooks.py                 # every notebook and solution
    python docs/execute_notebooks.py 00_tour ...     # only these (file stems)

Each notebook runs in a fresh kernel from its own folder with the settings it is committed
with (``QUICK = True``) and Jupyter's inline backend, and is written back atomically with
its outputs, so a reader browsing the repository sees the figures. Run it before committing
a changed notebook; ``tests/test_notebooks.py`` checks that the committed copies have outputs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from toyrlhf.files import atomic_write  # noqa: E402


def notebooks() -> list[Path]:
    folder = ROOT / "notebooks"
    return sorted(folder.glob("*.ipynb")) + sorted((folder / "solutions").glob("*.ipynb"))


def execute_in_place(path: Path) -> float:
    """Run ``path`` top to bottom and write it back with its outputs; returns the seconds it took."""
    notebook = nbformat.read(path, as_version=4)
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    start = time.perf_counter()
    NotebookClient(notebook, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - start
    for cell in notebook.cells:  # keep diffs small: no per-run timestamps
        cell.metadata.pop("execution", None)
    atomic_write(path, lambda tmp: nbformat.write(notebook, tmp))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stems", nargs="*", help="notebook file stems (default: all)")
    args = parser.parse_args()
    paths = notebooks()
    if args.stems:
        unknown = set(args.stems) - {p.stem for p in paths}
        if unknown:
            parser.error(f"no such notebook: {', '.join(sorted(unknown))}")
        paths = [p for p in paths if p.stem in args.stems]
    for path in paths:
        print(f"{path.relative_to(ROOT)}: {execute_in_place(path):.0f} s", flush=True)


if __name__ == "__main__":
    main()
