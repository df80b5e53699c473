"""The examples in the modules' docstrings run and give what they say."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import hpo_analysis

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(hpo_analysis.__path__, "hpo_analysis.")
    # api's examples need an extracted dataset: tests/test_api.py runs them against one
    if info.name not in ("hpo_analysis.__main__", "hpo_analysis.api")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
