"""Edge cases of the Arrow arrays built from buffers (hpo_analysis.arrays) against
pyarrow.array, and inputs on which extract could import pandas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from hpo_analysis import arrays
from hpo_analysis.example import generate_example

from .test_arrays import imports_pandas


def _outcome(build: Any) -> tuple[str, Any]:
    try:
        result = build()
    except Exception as err:  # the error pyarrow raises is part of the behaviour
        return ("error", type(err))
    return ("array", type(result), result.type, result.to_pylist())


# --- from_numpy -------------------------------------------------------------------------------

_DATA = np.arange(5, dtype=np.float64)


@pytest.mark.parametrize(
    "valid",
    [
        np.array([True, False]),  # shorter than the data
        np.array([True] * 5 + [False] * 3),  # longer, the extra values missing
        np.array([False, True, True, True, True, True]),  # longer, as many present as data
        np.array(False),  # no dimension at all
    ],
    ids=["shorter", "longer", "longer-same-count", "0-d"],
)
def test_from_numpy_refuses_validity_of_another_shape(valid: np.ndarray) -> None:
    """pyarrow.array(data, mask=~valid) refuses a mask that is not one flag per value;
    from_numpy must not make up the missing flags or drop the extra ones."""
    ours = _outcome(lambda: arrays.from_numpy(_DATA, valid))
    theirs = _outcome(lambda: pa.array(_DATA, mask=~valid))
    assert theirs[0] == "error"
    assert ours == theirs


def test_from_numpy_refuses_a_zero_dimensional_array() -> None:
    """pyarrow.array takes one-dimensional arrays only; a 0-d array is not one value long."""
    data = np.array(5.0)
    assert _outcome(lambda: arrays.from_numpy(data)) == _outcome(lambda: pa.array(data))


def test_from_numpy_keeps_the_mask_of_a_masked_array() -> None:
    """pyarrow.array takes the masked values of a numpy masked array as nulls."""
    data = np.ma.masked_array([1.0, 2.0, 3.0], mask=[True, False, False])
    assert pa.array(data).to_pylist() == [None, 2.0, 3.0]
    assert _outcome(lambda: arrays.from_numpy(data)) == _outcome(lambda: pa.array(data))


# --- extract without pandas -------------------------------------------------------------------


def _tree_with_param(root: Path, values: list[Any]) -> Path:
    """An example study plus one trial file per value, each with the parameter ``odd``."""
    tree = root / "hpo"
    generate_example(tree, budgets=("2M",), horizons=("h1",), trials_per_study=4, n_diverged=1)
    first = sorted(tree.rglob("trial_*.json"))[1]
    base = json.loads(first.read_text("utf-8"))
    for i, value in enumerate(values):
        trial = dict(base, trial_number=9000 + i)
        trial["params"] = dict(trial["params"], odd=value)
        (first.parent / f"trial_{9000 + i}.json").write_text(json.dumps(trial), "utf-8")
    return tree


@pytest.mark.parametrize(
    "values",
    [[1, 2.5, None, 3], [2**70, 5]],
    ids=["integers-and-floats", "integer-beyond-64-bits"],
)
def test_extract_imports_no_pandas_for_unusual_parameter_columns(
    tmp_path: Path, values: list[Any]
) -> None:
    """A parameter whose values mix integers and floats (a float column), or hold an integer
    beyond 64 bits (a text column), is built without pyarrow's pandas check too."""
    tree = _tree_with_param(tmp_path, values)
    code, imported, stderr = imports_pandas(tree, tmp_path / "out")
    assert code == 0, stderr
    assert not imported
