"""The ``distributed`` extra's modules: skipped without it.

The doctests of sk_adareg.distributed are skipped, and ``tests/_accelerate_fit.py`` (a
script, imported by ``--doctest-modules``) is not collected.
"""

import importlib.util

import pytest

_MISSING = [name for name in ("accelerate", "distributed")
            if importlib.util.find_spec(name) is None]
collect_ignore = ["tests/_accelerate_fit.py"] if "accelerate" in _MISSING else []


def pytest_collection_modifyitems(config, items):
    if not _MISSING:
        return
    skip = pytest.mark.skip(reason=f"needs {', '.join(_MISSING)} (pip install '.[distributed]')")
    for item in items:
        if item.nodeid.startswith("sk_adareg/distributed.py::"):
            item.add_marker(skip)
