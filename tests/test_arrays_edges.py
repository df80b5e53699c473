"""Edge cases of the Arrow arrays built from buffers (hpo_analysis.arrays) against
pyarrow.array, and inputs on which extract could import pandas or fail to write its outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from hpo_analysis import arrays, extract
from hpo_analysis.example import generate_example
from hpo_analysis.model import Settings


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


def _imports_pandas(tree: Path, out: Path) -> tuple[int, bool, str]:
    script = (
        "import sys\n"
        "from hpo_analysis.cli import main\n"
        f"code = main(['extract', {str(tree)!r}, '--out', {str(out)!r}, '--no-report', '-q'])\n"
        "print(code, 'pandas' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    code, imported = done.stdout.splitlines()[-1].split()
    return int(code), imported == "True", done.stderr


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
    code, imported, stderr = _imports_pandas(tree, tmp_path / "out")
    assert code == 0, stderr
    assert not imported


# --- file names -------------------------------------------------------------------------------


@pytest.mark.skipif(sys.platform != "linux", reason="needs file names of arbitrary bytes")
def test_extract_writes_its_outputs_for_a_file_name_that_is_not_utf8(tmp_path: Path) -> None:
    """A trial file whose name is not UTF-8 (POSIX allows any bytes) is read or rejected like
    any other file; it must not stop extract from writing manifest.csv."""
    tree = tmp_path / "hpo"
    generate_example(tree, budgets=("2M",), horizons=("h1",), trials_per_study=2, n_diverged=1)
    first = sorted(tree.rglob("trial_*.json"))[0]
    odd = os.fsencode(first.parent) + b"/trial_\xff0009.json"
    with open(odd, "wb") as handle:
        handle.write(first.read_bytes().replace(b'"trial_number": 0', b'"trial_number": 9'))
    result = extract([tree], tmp_path / "out", Settings(), jobs=1)
    assert (tmp_path / "out" / "manifest.csv").is_file()
    assert result.n_files == sum(1 for p in tree.rglob("*") if p.is_file())
    assert result.validation_failures == []
    manifest = (tmp_path / "out" / "manifest.csv").read_text("utf-8")
    assert "trial_\\xff0009.json" in manifest  # the name's bytes written as \xNN


@pytest.mark.skipif(sys.platform != "linux", reason="needs file names of arbitrary bytes")
def test_a_study_folder_whose_name_is_not_utf8_names_its_study_in_text(tmp_path: Path) -> None:
    """The study named after a folder whose name is not UTF-8 is written with the bytes as
    \\xNN in every output, which validate then accepts."""
    tree = tmp_path / "hpo"
    generate_example(tree, budgets=("2M",), horizons=("h1",), trials_per_study=3, n_diverged=1)
    (folder,) = [p for p in tree.iterdir() if p.is_dir()]
    for dump in folder.glob("*.json"):
        dump.unlink()  # trial files only: their study is the folder's name
    os.rename(os.fsencode(folder), os.fsencode(tree) + b"/study_\xfe")
    result = extract([tree], tmp_path / "out", Settings(), jobs=1)
    assert result.validation_failures == []
    assert result.n_trials == 3
    summary = (tmp_path / "out" / "hpo_summary.csv").read_text("utf-8").splitlines()
    assert all(line.startswith("study_\\xfe,") for line in summary[1:])
