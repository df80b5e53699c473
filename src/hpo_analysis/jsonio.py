"""One strict JSON loader for every input, and one strict JSON writer for every output.

Inputs: runners write Python's ``NaN``/``Infinity`` tokens, files get truncated while a study
is still running, editors add a BOM. :func:`load_json_bytes` accepts the tokens (counting
them), tolerates a BOM, flags duplicate keys and turns every failure into a
:class:`JsonReadError` whose message names the line, column and likely cause — never a
traceback.

Outputs: :func:`dumps_strict` writes RFC 8259 JSON (non-finite numbers become ``null``) so that
``JSON.parse``, ``jq``, orjson and DuckDB all read it; :func:`dumps_bytes` is the same contract,
compact and as UTF-8 bytes, for the bulk outputs.

Speed: orjson parses a typical trial file 3-5x faster than the standard library, but it rejects
the ``NaN``/``Infinity`` tokens, turns integers beyond 64 bits into floats and silently keeps
the last of duplicate keys. :func:`load_json_bytes` therefore uses orjson only when the result
is provably what the standard library would return (no such integer literal, and no key was
dropped), and otherwise parses again with the
standard library, which also produces every error message. Results and messages are the same
either way (``tests/test_jsonio.py`` checks this property on generated documents). The nesting
depth of a text orjson accepted is found by an array scan (:func:`valid_nesting_depth`), exact
for valid JSON, instead of a regular expression that costs more than the parse.

Example::

    >>> doc = load_json_bytes(b'{"a": NaN}')
    >>> doc.non_finite, doc.value["a"] != doc.value["a"]
    (1, True)
"""

from __future__ import annotations

import codecs
import functools
import itertools
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from .errors import HpoAnalysisError

try:  # the fast path; every result is checked against the standard library's semantics
    import orjson
except ImportError:  # pragma: no cover - orjson is a core dependency
    orjson = None  # type: ignore[assignment]

_CONSTANTS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class JsonReadError(HpoAnalysisError, ValueError):
    """A file that is not usable JSON; ``str(err)`` is a one-line human explanation."""


@dataclass
class LoadedJson:
    value: Any
    non_finite: int = 0
    duplicate_keys: list[str] = field(default_factory=list)
    # where a lone surrogate (\udc80, as Python writes for bytes of a non-UTF-8 file name) was
    # replaced by U+FFFD: no UTF-8 output can hold one, so every output gets the same character
    surrogates: list[str] = field(default_factory=list)
    # where a value nested deeper than MAX_DEPTH was kept as its JSON text (see limit_depth)
    too_deep: list[str] = field(default_factory=list)
    # the array asked for apart (``load_json_bytes(..., apart=...)``) and its compact JSON,
    # when the fast path read the text: for a caller that writes that array again
    apart: tuple[list[Any], bytes] | None = None


# Values nested deeper than this are kept as their compact JSON text (a string) at this depth:
# every output can then hold them (the JSON encoders stop at a depth of a few hundred, and a
# trial's own record adds levels around its user attributes). Texts nested so deep that the
# parser itself would overflow its stack are rejected (``nested too deeply``).
MAX_DEPTH = 100
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)


# An integer literal beyond 64 bits, which orjson returns as a float, has 20+ digits, or 19+
# after a minus sign: 19 digits are below 10**19 < 2**64, 18 below 10**18 < 2**63. Digits are
# mapped to "0" (and "." and "-" kept) so that three substring searches find such runs; a run
# after "." is a fraction. (The 19-digit integers of nanosecond times are read by orjson.)
_RUNS = bytes(
    0x30 if 0x30 <= byte <= 0x39 else byte if byte in (0x2E, 0x2D) else 0x78 for byte in range(256)
)
_LONG_RUN = b"0" * 20
_X_LONG_RUN = b"x" + _LONG_RUN
_MINUS_LONG_RUN = b"-" + b"0" * 19
# A \u escape of a UTF-16 surrogate; only such texts can decode to a lone surrogate.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"
# A colon written as a \u escape comes back literal from orjson's encoder.
_ESCAPED_COLON = re.compile(rb"\\u003[aA]")


# how orjson writes a float of 1e16 or more in magnitude (every float it reads an integer
# beyond 64 bits as): with a positive exponent, whose "+" is looked for
_EXPONENT = b"e+"
_PLUS = b"+"
# every byte but a colon and an opening bracket, deleted by bytes.translate
_NOT_COLON_NOR_OPENING = bytes(c for c in range(256) if c not in b":[{")


def _may_hold_long_integer(data: bytes) -> bool:
    """True when a run of 20+ digits, or of 19+ digits after a minus sign, is not the fraction
    of a decimal number: one translation (digits to "0", "." and "-" kept, any other byte to
    "x") and three searches for such runs.

    >>> _may_hold_long_integer(b"[0.00015163868795127592, 1764000000000000000]")
    False
    >>> _may_hold_long_integer(b"[2e0, 18446744073709551616]")
    True
    >>> _may_hold_long_integer(b"[-9223372036854775809]")
    True
    """
    runs = data.translate(_RUNS)
    return runs.startswith(_LONG_RUN) or _X_LONG_RUN in runs or _MINUS_LONG_RUN in runs


def _fast_load(data: bytes, apart: tuple[str, ...] = ()) -> tuple[LoadedJson, int] | None:
    """orjson's result when it is certainly the standard library's, with the number of
    arrays and objects of the value (the brackets of its compact encoding, strings aside
    from which they may also come: a bound of its nesting depth); else None.

    Duplicate keys: each key of the text is followed by one structural colon, and orjson
    keeps only the last of duplicate keys. Re-encoding the result writes every kept key with
    its colon and every string as it was (a colon inside a string is written literally unless
    the text spelled it ``\\u003a``, which goes to the standard library). So the re-encoded
    text has as many colons as the input exactly when nothing was dropped.

    Integers beyond 64 bits: orjson reads them as floats of at least 2**63 in magnitude,
    which it writes with an exponent (``e+``). A re-encoded text without a ``+`` therefore
    holds no such float, and the text need not be scanned for long runs of digits.

    ``apart``: see :func:`encoded_apart`.
    """
    if orjson is None:
        return None
    if b"\\" in data and _ESCAPED_COLON.search(data):  # a byte search first: no escape
        return None
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None  # NaN tokens, a BOM, invalid JSON, ...: the standard library decides
    try:
        encoded, part = encoded_apart(value, apart)
    except TypeError:  # nested deeper than orjson writes: the standard library decides
        return None
    if _PLUS in encoded and _may_hold_long_integer(data):  # a byte search (memchr) first
        return None  # an integer beyond 64 bits may have become a float
    # the colons and opening brackets of the encoding, counted in one pass
    marks = encoded.translate(None, _NOT_COLON_NOR_OPENING)
    colons = marks.count(b":")
    if colons != data.count(b":"):
        return None  # a duplicate key was dropped: re-parse to report it
    return LoadedJson(value, apart=part), len(marks) - colons


def encoded_apart(
    value: Any, apart: tuple[str, ...]
) -> tuple[bytes, tuple[list[Any], bytes] | None]:
    """``orjson.dumps(value)``, and when ``apart`` (a path of object keys) leads to an array,
    that array with its own compact JSON: the array is encoded first, on its own, and written
    into the whole as it is (an ``orjson.Fragment``), which gives the whole the same bytes.
    A caller that writes the array again (a trial's learning curve) then encodes it once.

    >>> encoded_apart({"a": {"b": [1, 2]}, "c": 3}, ("a", "b"))
    (b'{"a":{"b":[1,2]},"c":3}', ([1, 2], b'[1,2]'))
    """
    inner = value
    for key in apart:
        inner = inner.get(key) if type(inner) is dict else None
    if not apart or type(inner) is not list:
        return orjson.dumps(value), None
    part = orjson.dumps(inner)
    return orjson.dumps(_replaced(value, apart, orjson.Fragment(part))), (inner, part)


def _replaced(obj: dict[str, Any], path: tuple[str, ...], new: Any) -> Any:
    """A copy of the objects along ``path`` with the value at its end replaced by ``new``."""
    if not path:
        return new
    return {**obj, path[0]: _replaced(obj[path[0]], path[1:], new)}


def load_json_bytes(data: bytes, apart: tuple[str, ...] = ()) -> LoadedJson:
    """Decode and parse ``data``; raise :class:`JsonReadError` with a precise message.

    ``apart``: a path of object keys to an array the caller writes again; when the fast path
    reads the text, :attr:`LoadedJson.apart` holds that array and its compact JSON (see
    :func:`encoded_apart`). The value, its problems and errors are the same either way."""
    if not data or data.isspace():  # not data.strip(), without copying the text
        raise JsonReadError("empty file (0 bytes)" if not data else "file holds only whitespace")
    fast = _fast_load(data, apart)
    if fast is not None:
        # the nesting depth is at most the number of arrays and objects: those of the value
        # are those of the text, and its compact encoding (a shorter text) holds a bracket
        # for each of them, besides those in strings
        loaded, brackets = fast
    else:
        loaded = _stdlib_load(data)
        brackets = data.count(b"[") + data.count(b"{")
    if brackets > MAX_DEPTH:
        # orjson accepted the text, so it is valid UTF-8 JSON: the quick scan is exact for it
        depth = valid_nesting_depth(data) if fast is not None else nesting_depth(data)
        if depth > MAX_DEPTH:
            loaded.value = limit_depth(loaded.value, MAX_DEPTH, "", loaded.too_deep)
    return loaded


_NOT_QUOTE_OR_BRACKET = bytes(c for c in range(256) if c not in b'"[]{}')
# each quote or bracket as its step in nesting depth (a byte read as a signed 8-bit integer)
_STEPS = bytes.maketrans(b'"[]{}', b"\x00\x01\xff\x01\xff")


def valid_nesting_depth(data: bytes) -> int:
    """:func:`nesting_depth` of a text known to be valid UTF-8 JSON, in a few array passes.

    In valid JSON a backslash occurs only inside strings, and escapes one character: with the
    escaped backslashes and then the escaped quotes removed, every remaining quote opens or
    closes a string, so a bracket is structural exactly when an even number of quotes precede
    it. (:func:`nesting_depth` finds the strings with a regular expression, which costs
    milliseconds on a file of a hundred epochs.)

    Example::

        >>> valid_nesting_depth(b'{"a": [[1, "]]\\\\\\"]"], {"b": {}}]}')
        4
    """
    import numpy as np

    if b"\\" in data:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Only quotes and brackets matter: dropping every other byte, then adjacent pairs of
    # quotes, leaves the brackets in order, each with the parity of the quotes before it.
    data = data.translate(None, _NOT_QUOTE_OR_BRACKET).replace(b'""', b"")
    steps = np.frombuffer(data.translate(_STEPS), dtype=np.int8).astype(np.int32)
    if b'"' in data:  # a bracket inside a string: count only those outside
        steps *= (np.cumsum(np.frombuffer(data, dtype=np.uint8) == 0x22) & 1) == 0
    return int(np.cumsum(steps).max()) if len(steps) else 0


def nesting_depth(data: bytes) -> int:
    """How deep arrays and objects nest in the JSON text ``data`` (brackets in strings aside).

    Example::

        >>> nesting_depth(b'{"a": [[1, "]]]"], {"b": {}}]}')
        4
    """
    import numpy as np

    code = np.frombuffer(_STRING.sub(b'""', data), dtype=np.uint8)
    steps = (code == 0x5B).astype(np.int32) + (code == 0x7B)
    steps -= (code == 0x5D).astype(np.int32) + (code == 0x7D)
    return int(np.cumsum(steps).max()) if len(steps) else 0


def limit_depth(value: Any, limit: int, where: str, found: list[str]) -> Any:
    """``value`` with each array or object at depth ``limit`` replaced by its JSON text.

    ``found`` receives the dotted path of each replaced value.

    Example::

        >>> found = []
        >>> limit_depth({"a": {"b": [[1]]}, "c": 2}, 2, "", found), found
        ({'a': {'b': '[[1]]'}, 'c': 2}, ['a.b'])
    """
    if not isinstance(value, dict | list):
        return value
    if limit <= 0:
        found.append(where if len(where) <= 80 else where[:80] + "…")
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if isinstance(value, list):
        return [limit_depth(v, limit - 1, f"{where}[{i}]", found) for i, v in enumerate(value)]
    return {
        k: limit_depth(v, limit - 1, f"{where}.{k}".lstrip("."), found) for k, v in value.items()
    }


def _stdlib_load(data: bytes) -> LoadedJson:
    """The reference loader: the standard library, with the hooks that count and flag."""
    text = _decode(data)
    # a file read as UTF-16/32 says so in every message: its line and column are of that text
    read_as = next(
        (f"read as {name} (byte order mark): " for bom, _, name in _BOMS if data.startswith(bom)),
        "",
    )
    result = LoadedJson(None)

    def parse_constant(token: str) -> float:
        result.non_finite += 1
        return _CONSTANTS[token]

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen and key not in result.duplicate_keys:
                    result.duplicate_keys.append(key)
                seen.add(key)
        return obj

    try:
        result.value = json.loads(text, parse_constant=parse_constant, object_pairs_hook=pairs_hook)
    except json.JSONDecodeError as err:
        raise JsonReadError(read_as + _explain_decode_error(err)) from None
    except RecursionError:
        raise JsonReadError(read_as + "JSON nested too deeply to read safely") from None
    except ValueError as err:  # e.g. an integer literal longer than Python's digit limit
        raise JsonReadError(f"{read_as}unreadable JSON value ({err})") from None
    if _SURROGATE_ESCAPE.search(data):
        result.value = replace_surrogates(result.value, "", result.surrogates)
    return result


def replace_surrogates(value: Any, where: str, found: list[str]) -> Any:
    """``value`` with every lone surrogate in its strings and keys replaced by U+FFFD.

    ``found`` receives the dotted path of each changed field (``params.optimizer``).

    Example::

        >>> found = []
        >>> clean = replace_surrogates({"params": {"opt": "ad\\udc80am"}}, "", found)
        >>> clean["params"]["opt"] == "ad\\ufffdam", found
        (True, ['params.opt'])
    """
    if isinstance(value, str):
        if _LONE_SURROGATE.search(value):
            found.append(where or "(value)")
            return _LONE_SURROGATE.sub(REPLACEMENT, value)
        return value
    if isinstance(value, list):
        return [replace_surrogates(v, f"{where}[{i}]", found) for i, v in enumerate(value)]
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            clean = key
            if _LONE_SURROGATE.search(key):
                clean = _LONE_SURROGATE.sub(REPLACEMENT, key)
                found.append(f"{where}.{clean}".lstrip(".") + " (key)")
            result[clean] = replace_surrogates(item, f"{where}.{clean}".lstrip("."), found)
        return result
    return value


# Byte order marks, UTF-32 first: the UTF-32-LE mark begins with the UTF-16-LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32-LE"),
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32-BE"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16-LE"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16-BE"),
)


def _decode(data: bytes) -> str:
    """The text of ``data``: UTF-8 (BOM tolerated), or UTF-16/32 when a BOM says so.

    A UTF-16/32 file without a BOM is refused with its encoding named (what the zero bytes
    of its first characters show, as RFC 4627 describes), since nothing else says how to read
    it and a guess could misread it.

    Example::

        >>> _decode('{"a": 1}'.encode("utf-16"))
        '{"a": 1}'
        >>> _decode('{"a": 1}'.encode("utf-16-le"))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        hpo_analysis.jsonio.JsonReadError: the file is UTF-16-LE without a byte order mark; ...
    """
    for bom, codec, name in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError as err:
                raise JsonReadError(
                    f"the byte order mark says {name}, but byte {err.start} is not valid {name}"
                ) from None
    guess = json.detect_encoding(data)  # from the zero bytes of the first characters
    if guess.startswith(("utf-16", "utf-32")):
        raise JsonReadError(
            f"the file is {guess.upper()} without a byte order mark; save it as UTF-8 "
            f"(or UTF-{guess[4:6]} with a BOM)"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise JsonReadError(
            f"not valid UTF-8: byte 0x{data[err.start]:02x} at offset {err.start}"
        ) from None


def _explain_decode_error(err: json.JSONDecodeError) -> str:
    where = f"invalid JSON at line {err.lineno}, column {err.colno}"
    doc = err.doc
    if doc[err.pos :].strip() == "" or err.msg.startswith("Unterminated string"):
        opener = _innermost_open(doc)
        inside = {"{": "inside an object", "[": "inside an array"}.get(opener or "", "early")
        return f"{where} (file ends {inside} — was it still being written?)"
    if err.msg == "Extra data":
        return f"{where} (extra data after the end of the JSON value)"
    return f"{where} ({err.msg[0].lower()}{err.msg[1:]})"


def _innermost_open(doc: str) -> str | None:
    """The innermost unclosed bracket of a truncated document (strings skipped)."""
    stack: list[str] = []
    in_string = escaped = False
    for ch in doc:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append(ch)
        elif ch in "}]" and stack:
            stack.pop()
    return stack[-1] if stack else None


def finite_or_none(value: Any) -> Any:
    """Replace non-finite floats by ``None``, recursively, for strict JSON output."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


def dumps_strict(value: Any, *, indent: int | None = None) -> str:
    """RFC 8259 JSON: non-finite numbers become ``null``; keys keep their order."""
    if indent is not None:
        pieces: list[str] = []
        if _indented(value, " " * indent, pieces.append):
            return "".join(pieces)
    return json.dumps(finite_or_none(value), allow_nan=False, ensure_ascii=False, indent=indent)


def dump_strict(value: Any, handle: TextIO, *, indent: int | None = None) -> None:
    """:func:`dumps_strict` written to ``handle`` as it is encoded, a few thousand pieces at a
    time: the same text without holding all of it (tens of MB for a thousand studies) and its
    pieces in memory at once."""
    if indent is not None:
        pieces: list[str] = []
        held = 0  # characters in pieces: a table's rows come a few hundred kB a piece

        def put(piece: str) -> None:
            nonlocal held
            pieces.append(piece)
            held += len(piece)
            if held >= _HELD_CHARS or len(pieces) >= 8192:
                handle.write("".join(pieces))
                pieces.clear()
                held = 0

        # a value that is not plain is found before anything is written (see _indented)
        if _indented(value, " " * indent, put):
            handle.write("".join(pieces))
            return
    encoder = json.JSONEncoder(allow_nan=False, ensure_ascii=False, indent=indent)
    encoded = encoder.iterencode(finite_or_none(value))
    while block := list(itertools.islice(encoded, 8192)):
        handle.write("".join(block))


# dump_strict writes what it holds once it holds this many characters
_HELD_CHARS = 1 << 20
# The indented text of json.dumps(..., indent=n) is written by the standard library's encoder
# in Python, value by value (its C encoder writes compact text only): for the findings of a
# thousand studies, seconds. The same text is written here with the C encoder doing every
# container that holds only scalars (a table's row, a small dict), with the item separator
# that json.dumps would write between its values at that depth.
_SCALARS = frozenset({str, int, float, bool, type(None)})
_STR = frozenset({str})
_encode_text = json.encoder.encode_basestring  # (the C function where there is one)


def _indented(value: Any, indent: str, put: Callable[[str], None]) -> bool:
    """Give ``put`` the pieces of ``json.dumps(finite_or_none(value), allow_nan=False,
    ensure_ascii=False, indent=len(indent))``, when ``value`` is plain: dicts with string keys,
    lists, tuples and scalars of exactly the types str, int, float, bool and None. Returns
    False, having given nothing, for any other value.

    >>> out = []
    >>> _indented({"a": [1, float("nan"), "x"], "b": {}, "c": [[True]]}, " ", out.append)
    True
    >>> "".join(out) == json.dumps({"a": [1, None, "x"], "b": {}, "c": [[True]]}, indent=1)
    True
    """
    if not _plain(value, 0):
        return False
    _put(value, indent, 0, put, {})
    return True


def _plain(value: Any, depth: int) -> bool:
    """Whether ``value`` is plain (see :func:`_indented`), nested less deep than the standard
    library's encoder goes."""
    kind = type(value)
    if kind is dict:
        if not _STR.issuperset(map(type, value)):
            return False
        items = value.values()
    elif kind is list or kind is tuple:
        items = value
    else:
        return kind in _SCALARS
    if depth > 500:
        return False  # the standard library decides (and raises RecursionError) as before
    if _SCALARS.issuperset(map(type, items)):
        return True
    if _rows_of_scalars(items):
        return True  # a table, checked in C
    return all(_plain(item, depth + 1) for item in items)


def _put(
    value: Any,
    indent: str,
    level: int,
    put: Callable[[str], None],
    leaf_encoders: dict[int, Callable[[Any], str]],
) -> None:
    kind = type(value)
    if kind is dict or kind is list or kind is tuple:
        opening, closing = ("{", "}") if kind is dict else ("[", "]")
        if not value:
            put(opening + closing)
            return
        items = value.values() if kind is dict else value
        inner = "\n" + indent * (level + 1)
        if _SCALARS.issuperset(map(type, items)):
            encode = leaf_encoders.get(level)
            if encode is None:
                encode = leaf_encoders[level] = _leaf_encoder("," + inner)
            text = _finite_text(encode, value)
            put(opening + inner + text[1:-1] + "\n" + indent * level + closing)
            return
        put(opening)
        separator = inner
        if kind is dict:
            for key, item in value.items():
                put(separator + _encode_text(key) + ": ")
                _put(item, indent, level + 1, put, leaf_encoders)
                separator = "," + inner
        else:  # a table's rows, most often: each row of scalars written here in one piece
            row_inner = "\n" + indent * (level + 2)
            row_closing = "\n" + indent * (level + 1) + "]"
            encode = leaf_encoders.get(level + 1)
            if encode is None:
                encode = leaf_encoders[level + 1] = _leaf_encoder("," + row_inner)
            if _table(value, encode, indent, level, put):
                put("\n" + indent * level + closing)
                return
            for item in value:
                row = type(item)
                if (row is list or row is tuple) and item and _SCALARS.issuperset(map(type, item)):
                    text = _finite_text(encode, item)
                    put(separator + "[" + row_inner + text[1:-1] + row_closing)
                else:
                    put(separator)
                    _put(item, indent, level + 1, put, leaf_encoders)
                separator = "," + inner
        put("\n" + indent * level + closing)
    elif kind is str:
        put(_encode_text(value))
    elif kind is float:
        put(float.__repr__(value) if math.isfinite(value) else "null")
    elif value is None:
        put("null")
    elif value is True:
        put("true")
    elif value is False:
        put("false")
    else:
        put(int.__repr__(value))


_SEQUENCES = frozenset({list, tuple})
# the types of a container's values, as an iterator (for checks in C: see _rows_of_scalars)
value_types = functools.partial(map, type)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def within_int64(values: Sequence[int]) -> bool:
    """True when every integer of ``values`` (none included) is a signed 64-bit integer, as
    a machine array, orjson and Parquet hold them.

    >>> within_int64([0, -(2**63), 2**63 - 1]), within_int64([2**63]), within_int64([])
    (True, False, True)
    """
    return INT64_MIN <= min(values, default=0) and max(values, default=0) <= INT64_MAX


def _rows_of_scalars(items: Any) -> bool:
    """Whether every one of ``items`` is a list or tuple of scalars (a table's rows)."""
    return _SEQUENCES.issuperset(map(type, items)) and all(
        map(_SCALARS.issuperset, map(value_types, items))
    )


def _finite_text(encode: Callable[[Any], str], value: Any) -> str:
    """``encode(value)``, non-finite numbers written as null (as :func:`finite_or_none` makes
    them) when the encoder refuses them."""
    try:
        return encode(value)
    except ValueError:  # a NaN or an infinity
        return encode(finite_or_none(value))


_TABLE_ROWS = 4096  # rows encoded in one call (a few hundred kB of text at a time)


def _table(
    rows: list[Any] | tuple[Any, ...],
    encode: Callable[[Any], str],
    indent: str,
    level: int,
    put: Callable[[str], None],
) -> bool:
    """The rows of a table (a list at ``level`` of non-empty rows of scalars) given to
    ``put`` after its opening bracket, a few thousand rows a call to the C encoder; False,
    having given nothing, for any other list.

    ``encode`` writes S = ``"," + "\\n" + indent * (level + 2)`` between values, so it writes
    a chunk of rows as ``"[[a" S "b]" S "[c]]"``, with S between the rows too. S holds a line
    break, which no encoded value does, and no scalar starts with "[" or ends with "]": "]" S
    "[" is found only between two rows, and one replacement gives the indented text.
    """
    if not (_rows_of_scalars(rows) and all(map(len, rows))):
        return False
    inner = "\n" + indent * (level + 1)
    row_inner = "\n" + indent * (level + 2)
    row_closing = "\n" + indent * (level + 1) + "]"
    between = "]," + row_inner + "["
    instead = row_closing + "," + inner + "[" + row_inner
    separator = inner
    for start in range(0, len(rows), _TABLE_ROWS):
        text = _finite_text(encode, rows[start : start + _TABLE_ROWS])
        put(separator + "[" + row_inner + text[2:-2].replace(between, instead) + row_closing)
        separator = "," + inner
    return True


def _leaf_encoder(item_separator: str) -> Callable[[Any], str]:
    """The compact text of a container of scalars, with ``item_separator`` between values
    (ValueError for a non-finite number)."""
    encoder = json.JSONEncoder(
        allow_nan=False, ensure_ascii=False, separators=(item_separator, ": ")
    )
    return encoder.encode


def dumps_bytes(value: Any) -> bytes:
    """Compact RFC 8259 JSON as UTF-8, non-finite numbers as ``null`` (like :func:`dumps_strict`).

    orjson when it can encode the value; integers beyond 64 bits and strings that are not
    valid Unicode (lone surrogates, which the standard library's reader accepts) take the
    standard library, the latter as ``\\u`` escapes.

    >>> dumps_bytes({"a": float("nan"), "b": [1, 2.5]})
    b'{"a":null,"b":[1,2.5]}'
    """
    if orjson is not None:
        try:
            return orjson.dumps(value)
        except (TypeError, orjson.JSONEncodeError):
            pass
    cleaned = finite_or_none(value)
    try:
        text = json.dumps(cleaned, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(cleaned, allow_nan=False, separators=(",", ":")).encode("ascii")


def dumps_lossless(value: Any) -> bytes:
    """JSON that reads back to exactly ``value``: NaN and infinities as the Python tokens.

    For internal files (the incremental cache), never for outputs; read back with
    :func:`loads_lossless`.

    >>> loads_lossless(dumps_lossless({"x": float("inf"), "n": 2**70}))
    {'x': inf, 'n': 1180591620717411303424}
    """
    if orjson is not None:
        try:
            encoded = orjson.dumps(value)
        except (TypeError, orjson.JSONEncodeError):
            encoded = b""
        # orjson writes a non-finite number as null: with no more nulls in the text than None
        # values at the top of a dict (a row), there is none, and no walk through the values
        if encoded and (
            (type(value) is dict and encoded.count(b"null") == list(value.values()).count(None))
            or not _has_non_finite(value)
        ):
            return encoded
    return json.dumps(value, separators=(",", ":")).encode("ascii")


def loads_lossless(data: bytes) -> Any:
    """The inverse of :func:`dumps_lossless`."""
    if orjson is not None and not _may_hold_long_integer(data):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


def _has_non_finite(value: Any) -> bool:
    """True when a NaN or an infinity is anywhere inside ``value`` (x - x is 0 otherwise)."""
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, (list, tuple)):
        return type(value) is float and value - value != 0.0
    for item in value:
        kind = type(item)
        if kind is float:
            if item - item != 0.0:
                return True
        elif (kind is dict or kind is list or kind is tuple) and _has_non_finite(item):
            return True
    return False
