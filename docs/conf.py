"""Sphinx configuration of the API reference (``make docs``).

Only ``api.rst`` is a Sphinx source: the guides are the Markdown pages beside it, read as
they are. The reference is generated from the docstrings (autodoc, Google style through
napoleon) and built with warnings as errors, so a docstring Sphinx cannot read fails
``make docs`` and ``make test``.
"""

from __future__ import annotations

from kstream import __version__  # installed in .venv by make docs

project = "kstream"
author = "the kstream authors"
copyright = "the kstream authors"
release = version = __version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon"]
root_doc = "api"
source_suffix = {".rst": "restructuredtext"}
exclude_patterns = ["_build", "benchmarks", "**/*.md"]

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True

html_theme = "alabaster"
html_title = f"kstream {release} API reference"
html_show_sourcelink = False
