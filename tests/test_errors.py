"""The error family's helpers: optional imports."""

from __future__ import annotations

import gc
import importlib
import sys
import weakref
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from hpo_analysis.errors import MissingExtra, import_detached, require


class _Table:
    """Stands for a large local of the importing stack (e.g. a trial frame)."""


def _module_keeping_its_import_error(tmp_path: Path, name: str) -> str:
    """A module that keeps the ImportError of an optional import, as Optuna does."""
    (tmp_path / f"{name}.py").write_text(
        "try:\n    import hpo_analysis_no_such_module\nexcept ImportError as err:\n"
        "    KEPT = err\n",
        encoding="utf-8",
    )
    return name


def _imported_from_a_frame_with_a_table(
    importer: Callable[[str], ModuleType], name: str
) -> weakref.ref[_Table]:
    table = _Table()
    importer(name)
    return weakref.ref(table)


@pytest.mark.parametrize("detached", [True, False])
def test_an_import_from_a_deep_stack_keeps_none_of_its_locals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, detached: bool
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    name = _module_keeping_its_import_error(tmp_path, f"keeps_error_{int(detached)}")
    try:
        importer = import_detached if detached else importlib.import_module
        ref = _imported_from_a_frame_with_a_table(importer, name)
        gc.collect()
        # the plain import is the control: the kept traceback pins the importing frame
        assert (ref() is None) is detached
    finally:
        sys.modules.pop(name, None)


def test_import_detached_raises_the_import_error_and_require_names_the_extra() -> None:
    with pytest.raises(ImportError):
        import_detached("hpo_analysis_no_such_module")
    with pytest.raises(MissingExtra, match=r"pip install 'hpo-analysis\[x\]'"):
        require("hpo_analysis_no_such_module", "x")
    assert import_detached("json") is sys.modules["json"]
