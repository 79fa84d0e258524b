"""Sphinx configuration of the toyrlhf documentation (built the way JAX and optax build theirs: Sphinx + myst-nb).

Build: ``sphinx-build -W -b html docs docs/_build/html`` (warnings are errors).
The notebooks are not executed here: ``tests/test_docs.py`` executes them once
(quick settings) and builds the site from the executed copies, so a failing
notebook, a broken link or a bad docstring reference fails the test suite.
"""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

project = "toyrlhf"
author = "the toyrlhf developers"
copyright = "2026, the toyrlhf developers"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]
autosummary_generate = True
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
autodoc_typehints = "none"  # signatures stay short; types are in the docstrings
autodoc_member_order = "bysource"
# Functions and classes stay out of the tables of contents (each module page lists them in its summary
# table): with them, every one of the ~110 pages copied a navigation tree of every object of every
# module, and the build took 45 s instead of 23 s.
toc_object_entries = False
napoleon_google_docstring = True
napoleon_numpy_docstring = False
nb_execution_mode = os.environ.get("TOYRLHF_DOCS_EXECUTE", "off")
nb_execution_timeout = 600
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints", "notebooks/solutions"]
html_theme = "furo"
html_title = "toyrlhf"
# "ref.python": napoleon reads a field docstring such as "Expert (observation, action) labels: ..." as
# "type: description" and the words then match several attributes; ambiguity, not a broken link.
suppress_warnings = ["mystnb.unknown_mime_type", "ref.python"]
autodoc_inherit_docstrings = False  # Gymnasium's own docstrings are not ours to fix
