"""Build the documentation site: ``python docs/build.py OUT [--notebooks DIR]``.

Copies ``docs/`` into a temporary source folder with the notebooks (from
``notebooks/``, or already executed copies from ``--notebooks``), then runs
``sphinx-build -W -b html`` into ``OUT``: every warning is an error, so a broken
link, a bad docstring reference or a notebook that fails to render fails the build.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build(out, notebooks=None) -> Path:
    out = Path(out)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "docs"
        shutil.copytree(ROOT / "docs", src, ignore=shutil.ignore_patterns("_build", "_autosummary"))
        (src / "notebooks").mkdir()
        for path in sorted(Path(notebooks or ROOT / "notebooks").glob("*.ipynb")):
            shutil.copy(path, src / "notebooks" / path.name)
        # The included files resolve against the copy's parent: put the repository's beside it.
        shutil.copy(ROOT / "DESIGN.md", Path(tmp) / "DESIGN.md")
        shutil.copytree(ROOT / "toyrlhf" / "results", Path(tmp) / "toyrlhf" / "results")
        (src / "conf.py").write_text((src / "conf.py").read_text().replace(
            'os.path.abspath("..")', repr(str(ROOT))))
        cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(src), str(out)]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"sphinx-build failed:\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}")
    return out / "index.html"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--notebooks", default=None, help="folder of (executed) notebooks to use")
    args = parser.parse_args()
    print(build(args.out, args.notebooks))


if __name__ == "__main__":
    main()
