"""Every docstring example in the package runs."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import warnings

import pytest

import crface

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(crface.__path__, "crface.")
    if not m.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the untrained-weights notice
        result = doctest.testmod(
            module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
        )
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
