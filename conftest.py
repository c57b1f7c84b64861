"""Doctests of sk_adareg.distributed need the ``distributed`` extra: skipped without it."""

import importlib.util

import pytest

_MISSING = [name for name in ("accelerate", "distributed")
            if importlib.util.find_spec(name) is None]


def pytest_collection_modifyitems(config, items):
    if not _MISSING:
        return
    skip = pytest.mark.skip(reason=f"needs {', '.join(_MISSING)} (pip install '.[distributed]')")
    for item in items:
        if item.nodeid.startswith("sk_adareg/distributed.py::"):
            item.add_marker(skip)
