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
    if info.name not in ("hpo_analysis.__main__",)
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
