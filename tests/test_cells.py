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
