"""Sphinx configuration for the skgmmfill documentation.

The build needs no network: MathJax is copied into the build from the
``sphinx-mathjax-offline`` package, and references to scikit-learn, NumPy,
SciPy and Dask objects become links to their API pages by the URL patterns
of those sites (``_external_api_link`` below), without their inventories.
"""

import importlib

import skgmmfill

project = "skgmmfill"
author = "The skgmmfill developers"
copyright = "2026, The skgmmfill developers"
release = version = skgmmfill.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",
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
    "image_srcset": ["2x"],
}

html_theme = "pydata_sphinx_theme"
html_title = f"skgmmfill {release}"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
html_sidebars = {"**": []}  # the top bar lists the pages; the article gets the width
html_static_path = ["_static"]
html_css_files = ["skgmmfill.css"]

# Where the API pages of other projects are, by the kind of name.
EXTERNAL_API = {
    "sklearn": "https://scikit-learn.org/stable/modules/generated/{name}.html",
    "numpy": "https://numpy.org/doc/stable/reference/generated/{name}.html",
    "scipy": "https://docs.scipy.org/doc/scipy/reference/generated/{name}.html",
    "dask": "https://docs.dask.org/en/stable/generated/{name}.html",
}


def _external_api_link(app, env, node, contnode):
    """Resolve ``:class:`sklearn.model_selection.GridSearchCV``` and the like to
    the project's page of that object, when the name imports."""
    target = node.get("reftarget", "")
    pattern = EXTERNAL_API.get(target.split(".")[0])
    if pattern is None or node.get("refdomain") != "py" or not _importable(target):
        return None
    from docutils import nodes

    reference = nodes.reference("", "", internal=False, refuri=pattern.format(name=target),
                                reftitle=target)
    reference.append(contnode)
    return reference


def _importable(name):
    module, _, attribute = name.rpartition(".")
    while module:
        try:
            target = importlib.import_module(module)
        except ImportError:
            module, _, parent = module.rpartition(".")
            attribute = f"{parent}.{attribute}"
            continue
        for part in attribute.split("."):
            try:
                target = getattr(target, part)
            except AttributeError:
                return False
            except ImportError:  # guarded experimental names (IterativeImputer)
                return True
        return True
    return False


def setup(app):
    app.connect("missing-reference", _external_api_link)
