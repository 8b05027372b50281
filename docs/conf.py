"""Sphinx configuration for the skgmmfill documentation."""

import skgmmfill

project = "skgmmfill"
author = "The skgmmfill developers"
copyright = "2026, The skgmmfill developers"
release = version = skgmmfill.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
exclude_patterns = ["_build"]

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": "/plot_",
    "download_all_examples": False,
}

html_theme = "alabaster"
html_title = f"skgmmfill {release}"
