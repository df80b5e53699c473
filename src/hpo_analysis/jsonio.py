"""One strict JSON loader for every input, and one strict JSON writer for every output.

Inputs: runners write Python's ``NaN``/``Infinity`` tokens, files get truncated while a study
is still running, editors add a BOM. :func:`load_json_bytes` accepts the tokens (counting
them), tolerates a BOM, flags duplicate keys and turns every failure into a
:class:`JsonReadError` whose message names the line, column and likely cause — never a
traceback.

Outputs: :func:`dumps_strict` writes RFC 8259 JSON (non-finite numbers become ``null``) so that
``JSON.parse``, ``jq``, orjson and DuckDB all read it.

Example::

    >>> doc = load_json_bytes(b'{"a": NaN}')
    >>> doc.non_finite, doc.value["a"] != doc.value["a"]
    (1, True)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

_CONSTANTS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class JsonReadError(ValueError):
    """A file that is not usable JSON; ``str(err)`` is a one-line human explanation."""


@dataclass
class LoadedJson:
    value: Any
    non_finite: int = 0
    duplicate_keys: list[str] = field(default_factory=list)


def load_json_bytes(data: bytes) -> LoadedJson:
    """Decode and parse ``data``; raise :class:`JsonReadError` with a precise message."""
    if not data.strip():
        raise JsonReadError("empty file (0 bytes)" if not data else "file holds only whitespace")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise JsonReadError(
            f"not valid UTF-8: byte 0x{data[err.start]:02x} at offset {err.start}"
        ) from None
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
        raise JsonReadError(_explain_decode_error(err)) from None
    except RecursionError:
        raise JsonReadError("JSON nested too deeply to read safely") from None
    except ValueError as err:  # e.g. an integer literal longer than Python's digit limit
        raise JsonReadError(f"unreadable JSON value ({err})") from None
    return result


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
    return json.dumps(finite_or_none(value), allow_nan=False, ensure_ascii=False, indent=indent)
