"""One budget's answer of a finding, reused from the last run when nothing it reads changed.

While studies run, a periodic ``extract`` sees new trials in one or two studies: the other
budgets' trials are the ones the last run analysed. :func:`~.frame.per_budget` asks the
:class:`BudgetMemo` in effect (:func:`kept_budgets`) for each budget: the rows, parts,
estimates and count that the finding's ``compute`` added for it last time are reused when the
digest of everything ``compute`` reads is the same:

- the code of the package and the versions of numpy and Optuna (:func:`.code_and_libraries`);
- ``compute`` and the ``select`` that picked the budget's trials: their qualified names, the
  values their closures hold (a frame by its rows, a function by the same rule, atoms and
  arrays by value) and their defaults; a closure holding anything else gives no digest;
- the budget's label, whether the finding is directed, and the budget's rows: every column of
  the trial frame, each value exactly (a number by its float64 bits, a text or flag by its type
  and value), and every column a finding added to the selection.

A pooled ``all budgets`` group holds every row, so it is reused only when nothing changed.

``compute`` only appends to the tally (checked by tests/test_budget_memo.py, which compares
every finding computed with and without reuse); its additions are kept as a pickle of
built-in values only (an answer holding anything else is not kept; a table of atoms as its
columns, which read back many times faster than its rows) and read back by an unpickler that
loads no class, so a damaged or planted cache file cannot run code.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import pickletools
import sys
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from hashlib import blake2b
from types import CodeType, FunctionType
from typing import Any

import numpy as np

from ..jsonio import value_types, within_int64
from ..memory import collector_paused
from .frame import _MEMO, Budget, Frame, Tally


@contextmanager
def kept_budgets(memo: BudgetMemo | None) -> Iterator[None]:
    """Within this block, :func:`~.frame.per_budget` reuses and records answers in ``memo``."""
    token = _MEMO.set(memo)
    try:
        yield
    finally:
        _MEMO.reset(token)


class _Unhashable(Exception):
    """A value with no exact digest: the answer is computed, not reused."""


class BudgetMemo:
    """The answers of the last run (``previous``: digest → pickled additions) and of this one
    (``current``, what the next run may reuse), for the trial frame given to :meth:`bind`
    (a selection of another frame has no digest)."""

    def __init__(self, previous: dict[str, bytes | memoryview] | None = None) -> None:
        self.previous = previous or {}
        self.current: dict[str, bytes | memoryview] = {}
        self.reused = 0
        self.computed = 0
        self._base: dict[str, np.ndarray] | None = None
        self._prefix = b""
        self._codes: np.ndarray | None = None

    def bind(self, frame: Frame, prefix: bytes) -> None:
        """Answer for the budgets of ``frame`` (the whole trial frame), with ``prefix`` (the
        digest of the code, the libraries and the settings) in every key."""
        self._base = frame._base
        layout = [(name, frame[name].dtype.str) for name in frame.columns]
        self._prefix = prefix + _exact(layout)
        self._codes = _row_codes(frame)

    def unbind(self) -> None:
        """Let go of the trial frame (the answers stay)."""
        self._base = None
        self._codes = None

    def answer(
        self,
        compute: Callable[[Budget, Tally], None],
        budget: Budget,
        tally: Tally,
        select: Callable[[Frame], Frame] | None,
    ) -> None:
        """``compute(budget, tally)``, or its additions of the last run."""
        key = self._key(compute, select, budget)
        kept = self.previous.get(key) if key is not None else None
        if key is not None and kept is not None:
            try:
                with collector_paused():  # (an answer holds no cycle: _load refuses one)
                    added = _load(kept)
            except Exception:  # noqa: BLE001 - a damaged entry: computed below like any other
                pass
            else:
                _append(tally, added)
                self.current[key] = kept
                self.reused += 1
                return
        marks = (len(tally.table), len(tally.parts), len(tally.estimates), len(tally.quiet))
        total = tally.total
        tally.keep = True
        compute(budget, tally)
        self.computed += 1
        keep, tally.keep = tally.keep, True
        if key is None or not keep:  # (not keep: a failure that may not recur)
            return
        with collector_paused():  # (the rows of atoms and the tuples of columns, no cycle)
            table = _packed(tally.table[marks[0] :])
        additions = (
            table,
            tally.parts[marks[1] :],
            tally.estimates[marks[2] :],
            tally.quiet[marks[3] :],
            tally.total - total,
        )
        try:
            self.current[key] = _dump(additions)
        except (pickle.PicklingError, TypeError, ValueError, RecursionError):
            pass  # not built-in values only: not kept

    def _key(
        self, compute: Callable[..., Any], select: Callable[..., Any] | None, budget: Budget
    ) -> str | None:
        if self._codes is None or self._base is None:
            return None
        digest = hashlib.sha256(self._prefix)
        try:
            digest.update(_exact((budget.label, budget.directed)))
            self._function(digest, compute)
            if select is not None:
                self._function(digest, select)
            self._frame(digest, budget.whole)
        except _Unhashable:
            return None
        return digest.hexdigest()

    def _function(self, digest: Any, function: Any, depth: int = 0) -> None:
        if not isinstance(function, FunctionType) or depth > 8:
            raise _Unhashable
        digest.update(_exact((function.__module__, function.__qualname__)))
        _code(digest, function.__code__)
        digest.update(_exact((function.__defaults__, function.__kwdefaults__)))
        for cell in function.__closure__ or ():
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                digest.update(b"empty")
                continue
            self._value(digest, value, depth)

    def _value(self, digest: Any, value: Any, depth: int) -> None:
        if isinstance(value, Frame):
            self._frame(digest, value)
        elif isinstance(value, FunctionType):
            self._function(digest, value, depth + 1)
        elif isinstance(value, np.ndarray):
            digest.update(_array(value))
        else:
            digest.update(_exact(value))

    def _frame(self, digest: Any, frame: Frame) -> None:
        if frame._base is not self._base:
            raise _Unhashable
        assert self._codes is not None
        positions = frame._positions
        codes = self._codes if positions is None else self._codes[positions]
        digest.update(b"frame %d " % len(frame))  # the rows' digests, in order
        digest.update(np.ascontiguousarray(codes).data)
        for name in sorted(frame._extra):
            digest.update(_exact(name))
            digest.update(_array(frame._extra[name]))


def _code(digest: Any, code: CodeType, depth: int = 0) -> None:
    """A function's code: its bytecode, the names it reads, its line and its constants (the
    code of nested functions alike; a set of constants in sorted order, since the order of a
    set of text changes from one process to the next)."""
    if depth > 8:
        raise _Unhashable
    digest.update(b"code %d " % code.co_firstlineno + code.co_code)
    digest.update(_exact(code.co_names))
    for const in code.co_consts:
        if isinstance(const, CodeType):
            _code(digest, const, depth + 1)
        elif isinstance(const, frozenset):
            digest.update(repr(sorted(map(repr, const))).encode())
        else:
            digest.update(f"{type(const).__name__} {const!r}".encode())


def _row_codes(frame: Frame) -> np.ndarray | None:
    """Per row of the trial frame, the first 16 bytes of the BLAKE2b digest of its values (as
    two 64-bit codes): a number column's value by its float64 bits (an integer or flag
    column's as a 64-bit integer), a text or flag column's by the sha256 of its type and
    value. None when a text or flag column holds a value that is not an atom, or a NaN (whose
    groups no value records; see ``findings_key``).

    The rows' values are laid side by side ``_CHUNK`` rows at a time: the whole table of
    codes would add tens of MB to the findings' peak at 120,000 trials."""
    columns: list[tuple[np.ndarray, np.ndarray | None]] = []  # codes, or a table and its index
    for name in frame.columns:
        values = frame[name]
        kind = values.dtype.kind
        if kind == "f" and values.dtype.itemsize <= 8:
            bits = np.ascontiguousarray(values, dtype=np.float64).view(np.uint64)
            columns.append((bits, None))
        elif kind in "biu" and values.dtype.itemsize <= 8:
            columns.append((values.astype(np.int64).view(np.uint64), None))
        elif kind == "O":
            coded = _object_codes(values.tolist())
            if coded is None:
                return None
            columns.append(coded)
        else:
            return None
    if not columns:
        return np.zeros((len(frame), 2), dtype=np.uint64)
    digests: list[bytes] = []
    for start in range(0, len(frame), _CHUNK):
        rows = slice(start, start + _CHUNK)
        block = np.hstack(
            [codes[rows, None] if index is None else codes[index[rows]] for codes, index in columns]
        )
        width = block.shape[1] * 8
        raw = memoryview(np.ascontiguousarray(block).tobytes())
        digests.extend(
            blake2b(raw[at : at + width], digest_size=16).digest()
            for at in range(0, len(raw), width)
        )
    return np.frombuffer(b"".join(digests), dtype=np.uint64).reshape(len(frame), 2)


_CHUNK = 4096


def _object_codes(values: list[Any]) -> tuple[np.ndarray, np.ndarray] | None:
    """Two 64-bit codes per distinct value (the first 16 bytes of the sha256 of its exact
    pickle), and the index of each value's codes."""
    if not _distinct_by_value(values):
        return None
    kinds = set(map(type, values))
    # 1, 1.0 and True are one dict key, as are 0.0 and -0.0: told apart by type, and a float
    # by its bits, when the column holds such values
    keys: list[Any] = values
    if float in kinds:
        keys = [(float, v.hex()) if type(v) is float else (type(v), v) for v in values]
    elif len(kinds & _NUMBERS) > 1:
        keys = [(type(v), v) for v in values]
    first: dict[Any, Any] = {}
    for key, value in zip(keys, values, strict=True):
        first.setdefault(key, value)
    code_of = {key: at for at, key in enumerate(first)}
    index = np.fromiter(map(code_of.__getitem__, keys), dtype=np.int64, count=len(keys))
    distinct = list(first.values())
    table = b"".join(hashlib.sha256(_exact(v)).digest()[:16] for v in distinct)
    return np.frombuffer(table, dtype=np.uint64).reshape(-1, 2), index


_NUMBERS = frozenset({bool, int, float})
# what a text or flag column holds that the findings group by value alone
_ATOMS = frozenset({str, bool, type(None), int, float, bytes})


def _distinct_by_value(values: list[Any]) -> bool:
    """True when the findings tell these values (of a text or flag column, which they group
    and compare as dict keys and set members) apart by value alone: atoms, none of them NaN.
    A NaN equals only itself as one object, so the groups of NaN values depend on how many
    NaN objects there are, which no encoding of the values records.

    >>> nan = float("nan")
    >>> _distinct_by_value(["a", None, True, 1.5]), _distinct_by_value(["a", nan])
    (True, False)
    """
    kinds = set(map(type, values))
    if not kinds <= _ATOMS:
        return False
    return float not in kinds or all(v == v for v in values if type(v) is float)


def _array(values: np.ndarray) -> bytes:
    if values.dtype == object:
        return b"object " + _exact(values.tolist())
    if values.dtype.hasobject:
        raise _Unhashable
    return f"{values.dtype.str} {values.shape} ".encode() + np.ascontiguousarray(values).tobytes()


class _ExactPickler(pickle.Pickler):
    """Pickles only what the readers put in rows and the findings put in answers: None,
    bools, ints, floats, text, bytes and their lists, tuples and dicts. Anything else (an
    object whose pickle may not hold all that an equality test of the findings sees) has no
    exact form: no key, no kept answer."""

    def reducer_override(self, obj: Any) -> Any:
        raise pickle.PicklingError(f"no exact form for {type(obj).__name__}")


def _exact(value: Any) -> bytes:
    """``value``'s exact form (1, 1.0 and True differ); _Unhashable when it has none."""
    try:
        return _dump(value)
    except (pickle.PicklingError, TypeError, ValueError, RecursionError):
        raise _Unhashable from None


def _dump(value: Any) -> bytes:
    buffer = io.BytesIO()
    pickler = _ExactPickler(buffer, protocol=5)
    pickler.fast = True  # no memo: equal values encode alike whatever objects hold them
    pickler.dump(value)
    return buffer.getvalue()


class _BuiltinsOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"{module}.{name} is not loaded from the cache")


def _load(data: bytes | memoryview) -> tuple[list[Any], list[str], list[Any], list[str], int]:
    """An answer as :meth:`BudgetMemo.answer` keeps it, read back; ValueError for anything
    else (the file holds a sha256 against damage, not against a planted answer): rows that
    are lists (or a table packed by :func:`_packed`), parts and quiet budgets that are text,
    estimates that are dicts, a count of trials, built-in values nested at most ``_DEPTH``
    deep, and no value reached twice (a kept answer is pickled without a memo, so each value
    is written once: a pickle that refers to one list many times could stand for more values
    than memory holds)."""
    _check_opcodes(data)
    added = _BuiltinsOnly(io.BytesIO(data)).load()
    if not (isinstance(added, tuple) and len(added) == 5):
        raise ValueError("not an answer")
    packed, parts, estimates, quiet, total = added
    if not all(type(x) is list for x in (parts, estimates, quiet)):
        raise ValueError("not an answer")
    if type(total) is not int or total < 0:
        raise ValueError("not an answer")
    if not all(type(text) is str for text in (*parts, *quiet)):
        raise ValueError("not an answer")
    if not all(type(estimate) is dict for estimate in estimates):
        raise ValueError("not an answer")
    if type(packed) is list:
        if not all(type(row) is list for row in packed):
            raise ValueError("not an answer")
        _check_values(added, len(data))
        return packed, parts, estimates, quiet, total
    _check_values((parts, estimates, quiet), len(data))
    return _unpacked(packed, len(data)), parts, estimates, quiet, total


# What _dump writes (protocol 5, no memo): frames, containers, atoms. Anything else in a kept
# answer was planted: the memo's opcodes (a 9-byte pickle that stores at memo index 2^26 made
# the unpickler zero 1 GB; at 2^30, 16 GB), sets and frozensets, and every opcode that loads
# or calls. A dict's keys are text (integers of one hash took quadratic time to insert).
_TEXTS = frozenset({"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8"})
_VALUES = frozenset(
    (
        "EMPTY_LIST EMPTY_DICT EMPTY_TUPLE NONE NEWTRUE NEWFALSE BININT BININT1 BININT2 LONG1 "
        "LONG4 BINFLOAT SHORT_BINBYTES BINBYTES BINBYTES8"
    ).split()
)
_TUPLES = {"TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3}


def _check_opcodes(data: bytes | memoryview) -> None:
    """ValueError unless ``data`` is a pickle of the opcodes :func:`_dump` writes, with text
    keys in every dict: its opcodes read one by one with :mod:`pickletools` before anything is
    made, on a stack of what each value is (text or not). About 70,000 opcodes, 0.1 CPU s,
    for the answers of 12,000 trials in 1,200 studies."""
    stack: list[bool] = []  # per value: is it text
    marks: list[int] = []
    try:
        for opcode, _, _ in pickletools.genops(io.BytesIO(data)):
            name = opcode.name
            if name in _TEXTS or name in _VALUES:
                stack.append(name in _TEXTS)
            elif name == "MARK":
                marks.append(len(stack))
            elif name in ("APPENDS", "SETITEMS", "TUPLE"):
                at = marks.pop()
                if name == "SETITEMS" and not all(stack[at::2]):
                    raise ValueError("a dict key that is not text")
                del stack[at:]
                if name == "TUPLE":
                    stack.append(False)
            elif name in ("APPEND", "SETITEM"):
                if name == "SETITEM" and not stack[-2]:
                    raise ValueError("a dict key that is not text")
                del stack[-1 if name == "APPEND" else -2 :]
            elif name in _TUPLES:
                del stack[len(stack) - _TUPLES[name] :]
                stack.append(False)
            elif name not in ("PROTO", "FRAME", "STOP"):
                raise ValueError(f"{name} is not in a kept answer")
    except (ValueError, EOFError, IndexError) as error:
        raise ValueError(str(error) or "not an answer") from None


# A table's column as _packed keeps it: floats, or 64-bit integers, with None in some rows
# (machine numbers, 8 bytes each, and the rows that hold None); other atoms with few distinct
# values (text, None, flags, integers) as the distinct values and each row's index among them;
# any other atoms as they are.
_NUMBERS_KEPT = {float: "d", int: "q"}
_CODED, _PLAIN = "k", "v"
_CODED_ATOMS = frozenset({str, type(None), bool, int})
_NONE = type(None)


def _packed(table: list[Any]) -> list[Any] | tuple[Any, ...]:
    """A table (a list of rows) in the form an answer keeps it: a table of atoms whose rows are
    lists of one length as ``("columns", rows, [column, ...])``, anything else as it is.

    Unpickling a table row by row made every value again, a text once per row: the pairwise
    table of the horizon-transfer finding (89,700 rows a budget at 300 horizons) took longer
    to read back than to compute. Columns read back as a few machine arrays and short lists
    of distinct values, and :func:`_unpacked` makes the rows from them in C. Every value
    keeps its type, and a float its bits.
    """
    if not table or type(table[0]) is not list or not table[0]:
        return table
    if not _LIST.issuperset(map(type, table)) or len(set(map(len, table))) != 1:
        return table
    columns = [_column(values) for values in zip(*table, strict=True)]
    if any(column is None for column in columns):
        return table
    return ("columns", len(table), columns)


def _column(values: tuple[Any, ...]) -> tuple[Any, ...] | None:
    kinds = set(map(type, values))
    numbers = kinds - {_NONE}
    if len(numbers) == 1 and (kind := next(iter(numbers))) in _NUMBERS_KEPT:
        nones = [at for at, v in enumerate(values) if v is None] if _NONE in kinds else []
        present = [0 if v is None else v for v in values] if nones else values
        if kind is float or within_int64(present):
            code = _NUMBERS_KEPT[kind]
            return (code, _bytes(array(code, present)), _bytes(array("q", nones)))
    if kinds <= _CODED_ATOMS:
        # (1 and True are one dict key: told apart by type when a column holds both)
        keys: Any = [(type(v), v) for v in values] if {bool, int} <= kinds else values
        distinct = list(dict.fromkeys(keys))
        code_of = {key: at for at, key in enumerate(distinct)}
        codes = array("q", map(code_of.__getitem__, keys))
        return (_CODED, [k[1] for k in distinct] if keys is not values else distinct, _bytes(codes))
    if kinds <= _ATOMS:
        return (_PLAIN, list(values))
    return None


def _unpacked(packed: Any, budget: int) -> list[list[Any]]:
    """The rows of a :func:`_packed` table; ValueError unless it is one (each of its values
    costs at least a byte of the pickle, so it holds fewer than ``budget``)."""
    if not (type(packed) is tuple and len(packed) == 3 and packed[0] == "columns"):
        raise ValueError("not an answer")
    _, rows, columns = packed
    if type(rows) is not int or type(columns) is not list or not columns or rows <= 0:
        raise ValueError("not an answer")
    if rows * len(columns) > budget:
        raise ValueError("more values than the pickle can hold")
    return list(map(list, zip(*(_values(column, rows) for column in columns), strict=True)))


def _values(column: Any, rows: int) -> list[Any]:
    if type(column) is not tuple or not column:
        raise ValueError("not an answer")
    kind = column[0]
    if kind in ("d", "q") and len(column) == 3:
        values = _numbers(kind, column[1]).tolist()
        for at in _numbers("q", column[2]):
            if not 0 <= at < len(values):
                raise ValueError("a row beyond the column")
            values[at] = None
    elif kind == _CODED and len(column) == 3 and type(column[1]) is list:
        distinct, codes = column[1], _numbers("q", column[2])
        if not _CODED_ATOMS.issuperset(map(type, distinct)):
            raise ValueError("not an answer")
        if len(codes) and not (0 <= min(codes) and max(codes) < len(distinct)):
            raise ValueError("a code beyond the column's values")
        values = list(map(distinct.__getitem__, codes))
    elif kind == _PLAIN and len(column) == 2 and type(column[1]) is list:
        values = column[1]
        if not _ATOMS.issuperset(map(type, values)):
            raise ValueError("not an answer")
    else:
        raise ValueError("not an answer")
    if len(values) != rows:
        raise ValueError("columns of different lengths")
    return values


def _bytes(numbers: array[Any]) -> bytes:
    """The machine numbers as little-endian bytes, whatever this machine's byte order."""
    if sys.byteorder != "little":
        numbers.byteswap()
    return numbers.tobytes()


def _numbers(kind: str, data: Any) -> array[Any]:
    """The machine numbers of little-endian bytes written by :func:`_bytes`."""
    if type(data) is not bytes:
        raise ValueError("not an answer")
    numbers = array(kind)
    if len(data) % numbers.itemsize:
        raise ValueError("not an answer")
    numbers.frombytes(data)
    if sys.byteorder != "little":
        numbers.byteswap()
    return numbers


_DEPTH = 32
_LIST = frozenset({list})


def _check_values(value: Any, budget: int) -> None:
    """ValueError unless ``value`` holds only atoms, lists, tuples and dicts with text keys,
    at most ``_DEPTH`` deep, with no container reached twice and at most ``budget`` values
    in all (each value of a pickle without a memo takes at least a byte of it)."""
    seen: set[int] = set()
    stack: list[tuple[Any, int]] = [(value, 0)]
    count = 0
    while stack:
        item, depth = stack.pop()
        count += 1
        if count > budget:
            raise ValueError("more values than the pickle can hold")
        kind = type(item)
        if kind in _ATOMS or (kind is tuple and not item):  # (one empty tuple is every one)
            continue
        if kind not in (list, tuple, dict) or depth >= _DEPTH:
            raise ValueError("not an answer")
        if id(item) in seen:
            raise ValueError("a value reached twice")
        seen.add(id(item))
        if kind is dict:
            if not all(type(k) is str for k in item):
                raise ValueError("not an answer")
        values = item.values() if kind is dict else item
        # the usual shapes, checked in C: a container of atoms (a table's row), each atom only
        # counted; a table, a list of such rows, each counted and marked as seen (a table of
        # 358,800 rows took seconds value by value)
        if _ATOMS.issuperset(map(type, values)):
            count += len(item)
        elif (
            depth + 1 < _DEPTH
            and _LIST.issuperset(map(type, values))
            and all(map(_ATOMS.issuperset, map(value_types, values)))
            and len(ids := set(map(id, values))) == len(item)
            and seen.isdisjoint(ids)
        ):
            count += len(item) + sum(map(len, values))
            seen |= ids
        else:
            stack.extend((v, depth + 1) for v in values)
            continue
        if count > budget:
            raise ValueError("more values than the pickle can hold")


def _append(tally: Tally, added: tuple[list[Any], list[str], list[Any], list[str], int]) -> None:
    table, parts, estimates, quiet, total = added
    tally.table.extend(table)
    tally.parts.extend(parts)
    tally.estimates.extend(estimates)
    tally.quiet.extend(quiet)
    tally.total += total
