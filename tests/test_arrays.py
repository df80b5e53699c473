"""The Arrow arrays built from buffers (hpo_analysis.arrays) are pyarrow.array's, value for
value and type for type, errors included; and extract, with or without the report, imports no
pandas."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hpo_analysis import arrays
from hpo_analysis.example import generate_example

_INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_ANY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1),
)
_BY_KIND = {
    "string": st.one_of(st.none(), st.text()),
    "int64": st.one_of(st.none(), _INT64),
    "double": st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    "bool": st.one_of(st.none(), st.booleans()),
}


def _outcome(build: Any) -> tuple[str, Any]:
    try:
        result = build()
    except Exception as err:  # the error pyarrow raises is part of the behaviour
        return ("error", type(err))
    return ("array", result)


def _same(ours: tuple[str, Any], theirs: tuple[str, Any]) -> None:
    assert ours[0] == theirs[0], (ours, theirs)
    if ours[0] == "error":
        assert ours[1] is theirs[1]
        return
    mine, reference = ours[1], theirs[1]
    mine.validate(full=True)
    assert mine.type == reference.type
    assert mine.null_count == reference.null_count
    # what each holds (equals() takes NaN for unequal to itself; the repr tells -0.0 from 0.0)
    assert repr(mine.to_pylist()) == repr(reference.to_pylist())


@pytest.mark.parametrize("kind", sorted(_BY_KIND))
@given(data=st.data())
def test_quick_forms_equal_pyarrow_array(kind: str, data: st.DataObject) -> None:
    items = data.draw(st.lists(_BY_KIND[kind], max_size=40))
    _same(
        _outcome(lambda: arrays.values(items, kind)),
        _outcome(lambda: pa.array(items, type=pa.type_for_alias(kind), from_pandas=False)),
    )


@pytest.mark.parametrize("kind", sorted(_BY_KIND))
@given(items=st.lists(_ANY, max_size=12))
def test_other_values_get_pyarrow_arrays_answer(kind: str, items: list[Any]) -> None:
    """Mixed types, integers beyond 64 bits, lone surrogates: pyarrow.array decides, values
    or error."""
    _same(
        _outcome(lambda: arrays.values(items, kind)),
        _outcome(lambda: pa.array(items, type=pa.type_for_alias(kind), from_pandas=False)),
    )


@given(
    data=st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=40),
    valid=st.lists(st.booleans(), max_size=40),
    dtype=st.sampled_from(["<f8", "<i8", "<i4"]),
)
def test_from_numpy_equals_pyarrow_array(data: list[float], valid: list[bool], dtype: str) -> None:
    n = min(len(data), len(valid))
    values = np.array(data[:n], dtype=np.float64)
    if dtype != "<f8":
        values = np.clip(np.nan_to_num(values), -1e9, 1e9)
    values = values.astype(dtype)
    flags = np.array(valid[:n], dtype=bool)
    for given_valid in (None, flags):
        mask = None if given_valid is None else ~given_valid
        _same(
            _outcome(lambda v=given_valid: arrays.from_numpy(values, v)),  # type: ignore[misc]
            _outcome(lambda m=mask: pa.array(values, mask=m)),  # type: ignore[misc]
        )


def test_scalar_equals_pyarrow_scalar() -> None:
    for value, kind in [("minimize", "string"), (0, "int64"), (False, "bool"), (1.5, "double")]:
        ours = arrays.scalar(value, kind)
        assert ours.equals(pa.scalar(value, pa.type_for_alias(kind)))
    for kind in ("bool", "double", "string"):
        assert arrays.scalar(None, kind).equals(pa.scalar(None, pa.type_for_alias(kind)))
    assert arrays.scalar(None, pa.int32()).type == pa.int32()


def imports_pandas(tree: Path, out: Path, report: bool = False) -> tuple[int, bool, str]:
    """``extract`` in a fresh interpreter: its exit code, whether pandas got imported, and
    its stderr."""
    flags = "'-q'" if report else "'--no-report', '-q'"
    script = (
        "import sys\n"
        "from hpo_analysis.cli import main\n"
        f"code = main(['extract', {str(tree)!r}, '--out', {str(out)!r}, {flags}])\n"
        "print(code, 'pandas' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    code, imported = done.stdout.splitlines()[-1].split() if done.stdout else ("-1", "?")
    return int(code), imported == "True", done.stderr


@pytest.mark.parametrize("report", [False, True])
def test_extract_imports_no_pandas(tmp_path: Path, report: bool) -> None:
    """extract builds every Arrow array and scalar without pyarrow's pandas check, and the
    report's figures work on the findings' columns: pandas is never imported (its import
    costs about 0.3 CPU s a run)."""
    if report:
        pytest.importorskip("matplotlib")
    tree = tmp_path / "hpo"
    generate_example(tree, budgets=("2M", "2B"), horizons=("h1",), trials_per_study=30)
    code, imported, stderr = imports_pandas(tree, tmp_path / "out", report)
    assert (code, imported) == (0, False), stderr
    assert (tmp_path / "out" / "report.html").exists() is report


@pytest.mark.parametrize(
    "items",
    [
        [2**53, 0.5],
        [2**53 + 1, 0.5],
        [-(2**53), None],
        [-(2**53) - 1],
        [1, 2, 3],
        [2**63, 1.0],
        [True, 1.0],
    ],
)
def test_integers_in_a_float_array_as_pyarrow_converts_them(items: list[Any]) -> None:
    """pyarrow.array converts an integer to float64 when the float holds it exactly (|i| ≤
    2^53) and refuses the others; booleans are not numbers there."""
    _same(
        _outcome(lambda: arrays.values(items, "double")),
        _outcome(lambda: pa.array(items, type=pa.float64(), from_pandas=False)),
    )
