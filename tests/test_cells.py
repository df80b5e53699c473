"""Unit tests for hpo_analysis.write.cells, with expectations computed by hand."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hpo_analysis.write.cells import csv_cell, csv_column, csv_lines

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        (float("nan"), ""),
        (float("inf"), ""),
        (float("-inf"), ""),
        (True, "true"),
        (False, "false"),
        (0.1, "0.1"),
        (1e-05, "1e-05"),
        (2.0, "2.0"),
        (-1.5, "-1.5"),
        (3, "3"),
        (0, "0"),
        (-3, "-3"),
        ("plain", "plain"),
        ("", ""),
    ],
)
def test_csv_cell_values(value: Any, expected: str) -> None:
    assert csv_cell(value) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('=HYPERLINK("x")', '\'=HYPERLINK("x")'),
        ("=1+1", "'=1+1"),
        ("+a", "'+a"),
        ("-a", "'-a"),
        ("@a", "'@a"),
        ("\tX", "'\tX"),
        ("\rX", "'\rX"),
        ("-1+2", "'-1+2"),
    ],
)
def test_csv_cell_formula_text_prefixed(text: str, expected: str) -> None:
    assert csv_cell(text) == expected


@pytest.mark.parametrize("text", ["-1.5", "+2", "-3", "1e-05", "a=b", "x-1", "ok@x"])
def test_csv_cell_harmless_text_left_alone(text: str) -> None:
    assert csv_cell(text) == text


def _parses_as_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@given(st.text())
def test_csv_cell_text_never_starts_with_trigger_unless_number(text: str) -> None:
    cell = csv_cell(text)
    if cell.startswith(TRIGGERS):
        assert _parses_as_float(text)


@given(st.sampled_from(TRIGGERS), st.text())
def test_csv_cell_prefix_keeps_text(trigger: str, rest: str) -> None:
    text = trigger + rest
    expected = text if _parses_as_float(text) else "'" + text
    assert csv_cell(text) == expected


_column_values = st.one_of(
    st.lists(st.one_of(st.none(), st.floats()), max_size=30),
    st.lists(st.one_of(st.none(), st.integers()), max_size=30),
    st.lists(
        st.one_of(st.none(), st.text(), st.sampled_from(["=1", "-1.5", "+x", "@a", ""])),
        max_size=30,
    ),
    st.lists(st.one_of(st.none(), st.booleans()), max_size=30),
    st.lists(
        st.one_of(
            st.none(),
            st.floats(),
            st.integers(),
            st.text(),
            st.booleans(),
            st.lists(st.integers(), max_size=2),
            st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
        ),
        max_size=30,
    ),
)


@given(_column_values)
def test_csv_column_is_csv_cell_of_each_value(values: list[Any]) -> None:
    assert csv_column(values) == [csv_cell(v) for v in values]


def test_csv_column_numpy_scalars_go_value_by_value() -> None:
    import numpy as np

    values = [np.float64(0.5), np.int64(3), None]
    assert csv_column(values) == [csv_cell(v) for v in values]


_cell_text = st.one_of(
    st.text(),
    st.text(alphabet=',"\r\n ab\x00'),
    st.sampled_from(["", '""', ",", "\r\n", "a\nb", "a\rb", 'x"y']),
)


@given(st.lists(st.lists(_cell_text, min_size=1, max_size=4), min_size=1, max_size=6))
def test_csv_lines_are_what_csv_writer_writes(rows: list[list[str]]) -> None:
    import csv
    import io

    width = len(rows[0])
    rows = [(row * width)[:width] for row in rows]  # every row as wide as the first
    expected = io.StringIO()
    csv.writer(expected, lineterminator="\r\n").writerows(rows)
    columns = [list(column) for column in zip(*rows, strict=True)]
    assert csv_lines(columns) == expected.getvalue()


def _tricky_floats() -> list[float]:
    """Floats around the magnitudes where repr changes notation, and random bit patterns."""
    import math
    import random
    import struct

    draw = random.Random(13)
    values = [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308]
    for edge in (1e-4, 1e16, 1e-3, 1e15, 1.0, 0.1):
        below, above = math.nextafter(edge, 0.0), math.nextafter(edge, math.inf)
        values += [edge, below, above, -edge, -below, -above]
    values += [10.0**e for e in range(-20, 22)] + [1 / 3 * 10.0**e for e in range(-20, 22)]
    values += [
        struct.unpack("<d", draw.getrandbits(64).to_bytes(8, "little"))[0] for _ in range(20_000)
    ]
    values += [draw.uniform(1.0, 10.0) * 10.0 ** draw.randint(-8, 18) for _ in range(20_000)]
    values += [round(draw.random(), draw.randint(0, 17)) for _ in range(5_000)]
    return values


def test_csv_column_floats_are_repr_at_every_magnitude() -> None:
    values = _tricky_floats()
    assert csv_column(values) == [csv_cell(v) for v in values]
    with_missing = [None if i % 7 == 0 else v for i, v in enumerate(values)]
    assert csv_column(with_missing) == [csv_cell(v) for v in with_missing]


def test_csv_column_floats_without_orjson_digits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The careful way (repr of every value), taken when orjson would not write floats as
    repr does, gives the same cells."""
    from hpo_analysis.write import cells

    monkeypatch.setattr(cells, "_orjson_floats_as_repr", lambda: False)
    values = [*_tricky_floats()[:2_000], None, float("nan"), float("-inf")]
    assert csv_column(values) == [csv_cell(v) for v in values]


def test_orjson_writes_floats_as_repr_here() -> None:
    from hpo_analysis.write import cells

    assert cells._orjson_floats_as_repr()


@given(st.lists(st.floats(min_value=1e-4, max_value=1e16), max_size=30))
def test_csv_column_floats_in_the_orjson_range(values: list[float]) -> None:
    assert csv_column(values) == [csv_cell(v) for v in values]


@pytest.mark.parametrize(
    "values",
    [
        [2**63 - 1, -(2**63), 2**64 - 1, 0, -1],
        [2**64, 1, None],
        [-(2**63) - 1, None, 5],
        [10**30],
        [True, None, False],
        [None, None],
        [],
    ],
)
def test_csv_column_integers_and_booleans(values: list[Any]) -> None:
    assert csv_column(values) == [csv_cell(v) for v in values]


@pytest.mark.parametrize("trigger", ["=", "+", "-", "@", "\t", "\r", "\n"])
def test_csv_column_text_with_one_formula_cell(trigger: str) -> None:
    values = ["a", "", None, "b" + trigger, trigger + "x", "x"]
    assert csv_column(values) == [csv_cell(v) for v in values]
    assert csv_column(values)[4] == "'" + trigger + "x"


@pytest.mark.parametrize("special", [",", '"', "\r", "\n"])
def test_csv_lines_quote_a_cell_with_one_special_character(special: str) -> None:
    import csv
    import io

    rows = [["a", "1"], ["b" + special + "c", "2"], ["", "3"]]
    expected = io.StringIO()
    csv.writer(expected, lineterminator="\r\n").writerows(rows)
    columns = [list(column) for column in zip(*rows, strict=True)]
    assert csv_lines(columns) == expected.getvalue()


_row_values = st.one_of(
    st.none(),
    st.floats(),
    st.integers(),
    st.booleans(),
    st.text(max_size=5),
    st.sampled_from(["=1", "a,b", 'q"q', "x\ny", ""]),
)


@given(
    st.lists(
        st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), _row_values, max_size=4),
        max_size=12,
    )
)
def test_write_csv_is_csv_writer_of_each_cell(rows: list[dict[str, Any]]) -> None:
    """The column-wise writer (rows visited once per block, columns formatted whole) writes
    what csv.writer writes for the cells of each row, missing keys as empty cells."""
    import csv
    import io
    import tempfile
    from pathlib import Path

    from hpo_analysis.write import outputs

    header = ["a", "b", "c", "d"]
    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([[csv_cell(row.get(name)) for name in header] for row in rows])
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "rows.csv"
        original = outputs._CSV_BLOCK_ROWS
        outputs._CSV_BLOCK_ROWS = 5  # several blocks
        try:
            outputs.write_csv(path, header, rows)
        finally:
            outputs._CSV_BLOCK_ROWS = original
        assert path.read_bytes() == expected.getvalue().encode("utf-8")
