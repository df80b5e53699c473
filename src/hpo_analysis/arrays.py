"""Arrow arrays from Python values and numpy arrays, built from their buffers.

``pyarrow.array`` asks pandas whether its argument is a pandas object, for a list and a numpy
array alike, so the first call imports pandas: about 0.2 CPU s, an eighth of a whole run at
600 trials, for a library the writers do not use. The arrays the writers and the checks build
(text, 64-bit integers, floats and flags from Python lists; numbers from numpy arrays) are
built here from their buffers instead (``pyarrow.Array.from_buffers``), which needs no pandas.
Values these quick forms do not take as they are (another Python type, text that is not
UTF-8, more than 2 GB of text, an integer a float cannot hold exactly) go to ``pyarrow.array``
itself, and an integer beyond 64 bits meant for an int64 array raises the ``OverflowError``
``pyarrow.array`` raises, so every result, and every error, is ``pyarrow.array``'s:
tests/test_arrays.py holds each form to it.

>>> text([None, "h1", "h3"]).to_pylist()
[None, 'h1', 'h3']
>>> values([1, None, 3], "int64").type
DataType(int64)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

_NONE = type(None)
# Python types each quick form takes (None is a missing value), by Arrow type name
_TAKES = {
    "string": frozenset({str, _NONE}),
    "int64": frozenset({int, _NONE}),
    "double": frozenset({float, int, _NONE}),
    "bool": frozenset({bool, _NONE}),
}
# pyarrow.array starts a second chunk beyond this much text (its builders' limit, one byte
# below what 32-bit offsets reach)
_MAX_TEXT_BYTES = 2**31 - 2
# integers that pyarrow.array converts to float64 (it refuses the others: not exactly held)
_EXACT_IN_DOUBLE = 2**53


def values(items: Sequence[Any], kind: str | pa.DataType) -> pa.Array:
    """``pyarrow.array(list(items), type=kind, from_pandas=False)``; ``kind`` an Arrow type
    or its name (the quick forms: ``string``, ``int64``, ``double``, ``bool``)."""
    import pyarrow as pa

    items = items if isinstance(items, list) else list(items)
    name = str(kind)
    takes = _TAKES.get(name)
    if takes is not None and set(map(type, items)) <= takes:
        try:
            return _QUICK[name](items)
        except OverflowError:
            if name == "int64":
                raise  # pyarrow.array's error: "Python int too large to convert to C long"
        except (ValueError, UnicodeEncodeError):
            pass  # pyarrow.array's own answer (an error, or what it makes of the values)
    return pa.array(items, type=_arrow_type(kind), from_pandas=False)


def scalar(value: Any, kind: str | pa.DataType) -> pa.Scalar:
    """``pyarrow.scalar(value, type=kind)``: what to hand a compute function instead of a
    Python value, which it would convert with :func:`pyarrow.scalar` (and so import pandas).

    >>> scalar("minimize", "string"), scalar(None, "bool").is_valid
    (<pyarrow.StringScalar: 'minimize'>, False)
    """
    import pyarrow as pa

    if value is None:
        return pa.nulls(1, _arrow_type(kind))[0]
    return values([value], kind)[0]


def _arrow_type(kind: str | pa.DataType) -> pa.DataType:
    import pyarrow as pa

    return pa.type_for_alias(kind) if isinstance(kind, str) else kind


def text(items: Sequence[str | None]) -> pa.Array:
    """``pyarrow.array(items, type=pyarrow.string())``."""
    return values(items, "string")


def from_numpy(data: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """``pyarrow.array(data, mask=~valid)`` of a one-dimensional numpy array of numbers
    (``valid``: which values are present; None: all)."""
    import pyarrow as pa

    flags = None if valid is None else np.asarray(valid)
    if (
        isinstance(data, np.ma.MaskedArray)
        or np.ndim(data) != 1
        or data.dtype.kind not in "iuf"
        or data.dtype.byteorder == ">"
        or (flags is not None and (flags.dtype != np.bool_ or flags.shape != data.shape))
    ):
        return pa.array(data, mask=None if flags is None else ~flags)
    data = np.ascontiguousarray(data)
    kind = pa.from_numpy_dtype(data.dtype)
    bitmap, nulls = _validity(flags, len(data))
    return pa.Array.from_buffers(kind, len(data), [bitmap, pa.py_buffer(data)], null_count=nulls)


def _validity(valid: np.ndarray | Sequence[bool] | None, n: int) -> tuple[pa.Buffer | None, int]:
    """The validity bitmap of ``n`` values and their number of nulls (no bitmap: none)."""
    import pyarrow as pa

    if valid is None:
        return None, 0
    flags = np.asarray(valid, dtype=bool)
    nulls = n - int(np.count_nonzero(flags))
    if not nulls:
        return None, 0
    return pa.py_buffer(np.packbits(flags, bitorder="little")), nulls


def _present(items: list[Any]) -> list[bool] | None:
    """Which items are not None; None when all are."""
    if None not in items:
        return None
    return [item is not None for item in items]


def _text(items: list[str | None]) -> pa.Array:
    import pyarrow as pa

    encoded = [b"" if item is None else item.encode("utf-8") for item in items]
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    if int(lengths.sum()) > _MAX_TEXT_BYTES:
        raise ValueError("more text than one array holds")
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:], dtype=np.int32)
    bitmap, nulls = _validity(_present(items), len(items))
    buffers = [bitmap, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    return pa.Array.from_buffers(pa.string(), len(items), buffers, null_count=nulls)


def _floats(items: list[Any]) -> pa.Array:
    if int in set(map(type, items)) and any(
        type(item) is int and abs(item) > _EXACT_IN_DOUBLE for item in items
    ):
        raise ValueError("an integer float64 cannot hold exactly")  # pyarrow.array decides
    return _numbers(items, np.float64, 0.0)


def _numbers(items: list[Any], dtype: type[np.generic], fill: Any) -> pa.Array:
    present = _present(items)
    if present is not None:
        items = [fill if item is None else item for item in items]
    data = np.fromiter(items, dtype=dtype, count=len(items))  # OverflowError beyond int64
    return from_numpy(data, None if present is None else np.array(present, dtype=bool))


def _flags(items: list[bool | None]) -> pa.Array:
    import pyarrow as pa

    present = _present(items)
    flags = np.fromiter((bool(item) for item in items), dtype=bool, count=len(items))
    bitmap, nulls = _validity(present, len(items))
    data = pa.py_buffer(np.packbits(flags, bitorder="little"))
    return pa.Array.from_buffers(pa.bool_(), len(items), [bitmap, data], null_count=nulls)


_QUICK = {
    "string": _text,
    "int64": lambda items: _numbers(items, np.int64, 0),
    "double": _floats,
    "bool": _flags,
}
