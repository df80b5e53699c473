"""Unit tests for hpo_analysis.jsonio, with expectations computed by hand."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpo_analysis.jsonio import JsonReadError, dumps_strict, load_json_bytes


def _refuse(token: str) -> Any:
    raise ValueError(f"non-standard JSON constant {token}")


def strict_loads(text: str) -> Any:
    return json.loads(text, parse_constant=_refuse)


def read_error(data: bytes) -> str:
    with pytest.raises(JsonReadError) as info:
        load_json_bytes(data)
    return str(info.value)


# --- load_json_bytes: accepted input ---------------------------------------------------------


def test_plain_json() -> None:
    doc = load_json_bytes(b'{"a": 1, "b": [true, null, "x"]}')
    assert doc.value == {"a": 1, "b": [True, None, "x"]}
    assert doc.non_finite == 0
    assert doc.duplicate_keys == []


def test_non_finite_tokens_accepted_and_counted() -> None:
    doc = load_json_bytes(b'{"a": NaN, "b": [Infinity, -Infinity], "c": 1.5}')
    assert doc.non_finite == 3
    assert math.isnan(doc.value["a"])
    assert doc.value["b"] == [math.inf, -math.inf]
    assert doc.value["c"] == 1.5


def test_bom_tolerated() -> None:
    doc = load_json_bytes(b'\xef\xbb\xbf{"a": 1}')
    assert doc.value == {"a": 1}


def test_duplicate_keys_listed() -> None:
    doc = load_json_bytes(b'{"a": 1, "a": 2, "b": {"c": 1, "c": 2, "d": 3}, "e": 0}')
    assert sorted(doc.duplicate_keys) == ["a", "c"]


def test_duplicate_key_listed_once() -> None:
    doc = load_json_bytes(b'[{"k": 1, "k": 2, "k": 3}, {"k": 1, "k": 2}]')
    assert doc.duplicate_keys == ["k"]


# --- load_json_bytes: errors -----------------------------------------------------------------


def test_empty_file() -> None:
    assert "empty" in read_error(b"").lower()


def test_whitespace_only_file() -> None:
    read_error(b"  \n\t ")


def test_truncated_file() -> None:
    message = read_error(b'{"a": [1, 2')
    assert "line 1" in message
    assert "column" in message
    assert "was it still being written" in message


def test_truncated_multiline_file_names_the_line() -> None:
    message = read_error(b'{\n  "a": 1,\n  "b": [1,')
    assert "line 3" in message
    assert "was it still being written" in message


def test_invalid_utf8() -> None:
    assert "UTF-8" in read_error(b'{"a": "\xff\xfe"}')


def test_syntax_error_is_read_error() -> None:
    assert "line 1" in read_error(b'{"a" 1}')


def test_extra_data_is_read_error() -> None:
    read_error(b'{"a": 1} {"b": 2}')


@pytest.mark.parametrize(
    "data",
    [b"[" * 100_000, b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000],
    ids=["open-arrays", "closed-arrays", "open-objects"],
)
def test_deep_nesting_is_read_error_not_recursion_error(data: bytes) -> None:
    read_error(data)


def test_huge_integer_is_read_error() -> None:
    # more digits than Python's int max_str_digits (4300): int() raises a plain ValueError
    read_error(b"[" + b"1" * 5000 + b"]")


# --- dumps_strict ----------------------------------------------------------------------------


def test_dumps_strict_non_finite_become_null() -> None:
    value = {"a": math.nan, "b": [math.inf, -math.inf, 1.5], "c": {"d": math.nan}, "e": "x"}
    text = dumps_strict(value)
    assert text == '{"a": null, "b": [null, null, 1.5], "c": {"d": null}, "e": "x"}'
    assert strict_loads(text) == {"a": None, "b": [None, None, 1.5], "c": {"d": None}, "e": "x"}


def test_dumps_strict_tuples_and_key_order() -> None:
    text = dumps_strict({"z": (1, math.nan), "a": True, "m": None})
    assert text == '{"z": [1, null], "a": true, "m": null}'
    strict_loads(text)


def test_dumps_strict_round_trips_loaded_non_finite() -> None:
    doc = load_json_bytes(b'{"curve": [{"val_loss": NaN}, {"val_loss": 0.25}]}')
    assert strict_loads(dumps_strict(doc.value)) == {
        "curve": [{"val_loss": None}, {"val_loss": 0.25}]
    }


# --- properties ------------------------------------------------------------------------------

json_ish = st.lists(
    st.sampled_from(
        [
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            '"',
            '"a"',
            "1",
            "-",
            "0.5e",
            "NaN",
            "Infinity",
            "-Infinity",
            "true",
            "null",
            " ",
            "\n",
            "\\",
            "\ufeff",
            "\x00",
            "é",
            "9" * 4400,
        ]
    ),
    max_size=30,
).map(lambda parts: "".join(parts).encode("utf-8"))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | json_ish)
def test_load_json_bytes_returns_or_raises_read_error(data: bytes) -> None:
    try:
        load_json_bytes(data)
    except JsonReadError as err:
        assert str(err)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=5)
    | st.floats(allow_nan=True, allow_infinity=True),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_dumps_strict_output_is_strict_json(value: Any) -> None:
    strict_loads(dumps_strict(value))


# --- the orjson fast path gives exactly the standard library's result ------------------------

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(alphabet=st.sampled_from('ab":\\ \t{}[],é\u2028'), max_size=6)
)
_KEYS = st.text(alphabet=st.sampled_from('ab":\\ é'), max_size=3)


def _render(value: Any, draw: Any) -> str:
    """JSON text of ``value`` with random spacing; dict-like lists of pairs may repeat keys."""
    space = draw(st.sampled_from(["", " ", "\n  "]))
    if isinstance(value, tuple):  # ("obj", [(key, value), ...])
        items = [
            json.dumps(k) + draw(st.sampled_from([":", ": ", " : "])) + _render(v, draw)
            for k, v in value[1]
        ]
        return "{" + space + ("," + space).join(items) + "}"
    if isinstance(value, list):
        return "[" + ("," + space).join(_render(v, draw) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=draw(st.booleans()))
    return json.dumps(value)


_DOCS = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(st.just("obj"), st.lists(st.tuples(_KEYS, inner), max_size=4))
    ),
    max_leaves=12,
)


def _same_json(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or repr(a) == repr(b)
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_fast_path_equals_standard_library(data: st.DataObject) -> None:
    from hpo_analysis.jsonio import _stdlib_load

    text = _render(data.draw(_DOCS), data.draw).encode("utf-8")
    try:
        reference = _stdlib_load(text)
    except JsonReadError as err:
        assert read_error(text) == str(err)
        return
    got = load_json_bytes(text)
    assert _same_json(got.value, reference.value)
    assert got.non_finite == reference.non_finite
    assert got.duplicate_keys == reference.duplicate_keys


def test_fast_path_falls_back_for_what_orjson_reads_differently() -> None:
    assert load_json_bytes(b'{"a": 1, "a": 2}').duplicate_keys == ["a"]
    assert load_json_bytes(b'{"a" : 1, "a" :2}').duplicate_keys == ["a"]
    assert load_json_bytes(b"[18446744073709551616]").value == [2**64]
    assert load_json_bytes(b"[1e400]").value == [math.inf]
    assert load_json_bytes(b'{"k\\u0022": 1, "k\\u0022": 2}').duplicate_keys == ['k"']


def test_dumps_bytes_is_strict_and_compact() -> None:
    from hpo_analysis.jsonio import dumps_bytes

    value = {"a": math.nan, "b": [math.inf, 1.5, 2**70], "s": "é\ud800"}
    text = dumps_bytes(value)
    assert strict_loads(text.decode("utf-8")) == {
        "a": None,
        "b": [None, 1.5, 2**70],
        "s": "é\ud800",
    }
    assert dumps_bytes({"x": [1, None]}) == b'{"x":[1,null]}'


@given(_DOCS)
def test_lossless_round_trip(value: Any) -> None:
    from hpo_analysis.jsonio import dumps_lossless, loads_lossless

    def plain(v: Any) -> Any:
        if isinstance(v, tuple):
            return {k: plain(x) for k, x in v[1]}
        if isinstance(v, list):
            return [plain(x) for x in v]
        return v

    value = plain(value)
    assert _same_json(loads_lossless(dumps_lossless(value)), value)


_TRICKY_TEXT = st.text(alphabet='[]{}"\\:,ab\u00e9\u2028', max_size=8)
_NESTED = st.recursive(
    st.one_of(st.none(), st.integers(), st.floats(allow_nan=False), _TRICKY_TEXT),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(_TRICKY_TEXT, inner, max_size=3)
    ),
    max_leaves=40,
)


@settings(max_examples=500, deadline=None)
@given(_NESTED, st.sampled_from([None, 0, 2]), st.booleans())
def test_quick_nesting_depth_equals_the_regex_scan(value: Any, indent: Any, ascii: bool) -> None:
    """The array scan used for texts orjson accepted gives the regular expression's depth:
    brackets, quotes and backslashes inside strings (and keys) do not count."""
    from hpo_analysis.jsonio import nesting_depth, valid_nesting_depth

    data = json.dumps(value, indent=indent, ensure_ascii=ascii).encode("utf-8")
    assert valid_nesting_depth(data) == nesting_depth(data)


@settings(max_examples=1000, deadline=None)
@given(st.floats(min_value=2.0**63, allow_infinity=False), st.booleans())
def test_floats_of_long_integers_are_written_with_an_exponent(value: float, negative: bool) -> None:
    """What lets the fast loader skip the digit scan: every float orjson reads an integer
    beyond 64 bits as (at least 2**63 in magnitude) is written with ``e+``, hence a ``+``."""
    import orjson

    from hpo_analysis.jsonio import _EXPONENT, _PLUS

    encoded = orjson.dumps(-value if negative else value)
    assert _EXPONENT in encoded and _PLUS in encoded


_DIGIT_RUNS = st.sampled_from(
    [
        "9223372036854775807",  # 64-bit integers: read exactly by both
        "-9223372036854775808",
        "18446744073709551615",
        "18446744073709551616",  # beyond: a float for orjson, an integer for the reference
        "-9223372036854775809",
        "9999999999999999999",  # the largest 19 digits: below 2**64, read exactly by orjson
        "10000000000000000000",
        "-999999999999999999",
        "-1000000000000000000",
        "1764000000123456789",  # a time in nanoseconds
        "123456789012345678901234567890",
        "1e0000000000000000005",  # a long exponent
        "1.5e+0000000000000000003",
        "0.12345678901234567890123",  # a long fraction
        "1234567890123456789.5",
        '"12345678901234567890123"',  # digits in a string
        '"e+"',
        "1e16",
        "12345678901234567890e-5",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_DIGIT_RUNS, min_size=1, max_size=4), st.booleans())
def test_long_digit_runs_read_as_the_standard_library_reads_them(
    runs: list[str], in_object: bool
) -> None:
    from hpo_analysis.jsonio import _stdlib_load

    body = ", ".join(runs)
    text = (
        "{" + ", ".join(f'"k{i}": {r}' for i, r in enumerate(runs)) + "}"
        if in_object
        else f"[{body}]"
    ).encode()
    reference = _stdlib_load(text)
    got = load_json_bytes(text)
    assert _same_json(got.value, reference.value)


@settings(max_examples=400, deadline=None)
@given(st.data(), st.sampled_from([(), ("a",), ("a", "b"), ("b",)]))
def test_an_array_encoded_apart_changes_nothing_of_the_load(
    data: st.DataObject, apart: tuple[str, ...]
) -> None:
    """Loading with an array encoded apart gives the same value, problems and errors; the
    array handed back is the one in the value, with orjson's own encoding of it."""
    import orjson

    inner = _render(data.draw(st.lists(_DOCS, max_size=4)), data.draw)
    shape = data.draw(st.sampled_from(['{"a": {"b": %s}}', '{"a": %s, "c": 1}', "[%s]", "%s"]))
    text = (shape % inner).encode("utf-8")
    try:
        reference = load_json_bytes(text)
    except JsonReadError as err:
        with pytest.raises(JsonReadError) as raised:
            load_json_bytes(text, apart)
        assert str(raised.value) == str(err)
        return
    got = load_json_bytes(text, apart)
    assert _same_json(got.value, reference.value)
    assert (got.non_finite, got.duplicate_keys, got.surrogates, got.too_deep) == (
        reference.non_finite,
        reference.duplicate_keys,
        reference.surrogates,
        reference.too_deep,
    )
    if got.apart is not None:
        array, encoded = got.apart
        at = got.value
        for key in apart:
            at = at[key]
        assert array is at and encoded == orjson.dumps(array)


@settings(max_examples=300, deadline=None)
@given(_DOCS, st.data())
def test_encoding_apart_gives_the_bytes_of_the_whole(doc: Any, data: st.DataObject) -> None:
    import orjson

    from hpo_analysis.jsonio import encoded_apart

    try:
        value = json.loads(_render(doc, data.draw))
    except ValueError:
        return
    wrapped = {"x": 1, "a": {"b": [value, value], "c": "d"}, "e": [value]}
    try:
        whole = orjson.dumps(wrapped)
    except TypeError:
        return
    encoded, part = encoded_apart(wrapped, ("a", "b"))
    assert encoded == whole and part is not None and part[0] is wrapped["a"]["b"]


class _Text(str):
    pass


class _Number(float):
    pass


_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.sampled_from([1e-05, 1e16, -0.0, "\u2028", '"\\', "é\x00"]),
)
_ODD = st.one_of(  # values the indented writer leaves to the standard library
    st.builds(_Text, st.text(max_size=3)),
    st.builds(_Number, st.floats(allow_nan=False)),
    st.dictionaries(st.integers(0, 3), _SCALAR, min_size=1, max_size=2),
)
_VALUE = st.recursive(
    _SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.text(max_size=4), inner, max_size=4),
    ),
    max_leaves=25,
)


# a findings table: rows of scalars (NaN among them), some tuples
_TABLE = st.lists(
    st.one_of(st.lists(_SCALAR, min_size=1, max_size=3), st.tuples(_SCALAR, _SCALAR)), max_size=6
)


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        _VALUE,
        st.lists(st.one_of(_VALUE, _ODD), max_size=3),
        _TABLE,
        st.dictionaries(st.text(max_size=2), _TABLE, max_size=2),
    ),
    st.integers(0, 3),
    st.integers(1, 3),
)
def test_indented_text_is_the_standard_librarys(value: Any, indent: int, chunk: int) -> None:
    """dumps_strict and dump_strict with an indent write json.dumps's text exactly, for every
    value (those it cannot write itself go to the standard library), whatever the number of
    a table's rows encoded at a time."""
    import io

    from hpo_analysis import jsonio
    from hpo_analysis.jsonio import dump_strict, finite_or_none

    expected = json.dumps(finite_or_none(value), allow_nan=False, ensure_ascii=False, indent=indent)
    patch = pytest.MonkeyPatch()
    patch.setattr(jsonio, "_TABLE_ROWS", chunk)
    try:
        assert dumps_strict(value, indent=indent) == expected
        handle = io.StringIO()
        dump_strict(value, handle, indent=indent)
        assert handle.getvalue() == expected
    finally:
        patch.undo()
