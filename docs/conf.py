"""Sphinx configuration of gradchain's documentation site.

Build: ``python -m sphinx -W -b html docs docs/_build/html`` (warnings are errors). The API
reference (``docs/api/``) is generated at build time from the package by ``_ext/gradchain_api``;
the guides (``docs/guides/``) are MyST Markdown, several of them reading their text from the
README's sections so that there is one copy of it.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))

import gradchain  # noqa: E402

project = "gradchain"
author = "gradchain contributors"
copyright = "gradchain contributors"
release = gradchain.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_parser",
    "gradchain_api",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "_ext"]
root_doc = "index"

# autodoc: signatures as written, type hints out of the signature (the Args say what is taken).
autodoc_typehints = "none"
autodoc_member_order = "bysource"
autodoc_preserve_defaults = True
autosummary_generate = False
add_module_names = True
python_use_unqualified_type_names = False

# Google-style docstrings: Args, Returns, Raises, Example.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True
napoleon_custom_sections = [("State", "params_style")]

myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3
# The guides include README sections whose subsections start at level 3.
suppress_warnings = ["myst.header"]

html_theme = "furo"
html_title = f"gradchain {release}"
html_static_path = ["_static"]
html_theme_options = {"navigation_with_keys": True}

