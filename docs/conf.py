"""Sphinx configuration: autodoc with numpydoc, and a sphinx-gallery of examples/plot_*.py."""

import importlib.util

import sk_adareg

project = "sk-adareg"
copyright = "the sk-adareg developers"
release = version = sk_adareg.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]
autosummary_generate = True
numpydoc_show_class_members = False
# Inherited scikit-learn docstrings (score) refer to labels of scikit-learn's own docs.
suppress_warnings = ["ref.ref"]
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py"]

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"demo_",
    "download_all_examples": False,
}

_PYDATA = importlib.util.find_spec("pydata_sphinx_theme") is not None
html_theme = "pydata_sphinx_theme" if _PYDATA else "alabaster"
