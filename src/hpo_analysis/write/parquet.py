"""The columnar outputs: ``trials.parquet``, ``diverged.parquet`` and ``curves.parquet``.

Column types come from :mod:`hpo_analysis.schema` (``str`` → string, ``int`` → int64, ``float``
→ float64, ``bool`` → bool, all nullable); dynamic columns (``param_*``, extra study factors)
get the narrowest type that holds every value, or text (JSON for objects and arrays) when the
values are mixed, as in the CSV.

The trial tables are sorted by study and trial number, in one row group up to
:data:`TRIAL_ROW_GROUP` rows and in row groups of that many rows above (so writing them never
holds every row's text as Arrow strings at once; an engine reads the groups in parallel).

Non-finite numbers: the trial tables hold exactly the values of the summary rows, so columns
the data dictionary defines as "empty when non-finite" are null there too (``objective_kind``
says what the objective was), while a non-finite value the rows keep as is (e.g. an optimizer
parameter recorded as ``NaN``) stays NaN. ``curves.parquet`` holds the learning curves as
recorded: ``NaN`` and ``±Infinity`` stay NaN and ±inf, and a metric missing from an epoch is
null. So SQL aggregates over the trial tables are never poisoned by NaN, and a divergence can
still be read off the curve.

``curves.parquet`` is long: one row per (study, trial_num, epoch), sorted like the trial tables,
with the columns ``study, trial_num, epoch`` and then one float64 column per metric
(``train_loss, val_loss, val_auc`` always, then any other metric found, sorted). It is written
in row groups of :data:`CURVE_ROW_GROUP` rows from per-trial *curve blocks* (below), so memory
does not grow with the number of trials.

A curve block is the compact, lossless binary form of one trial's curve that the pipeline
spools (and caches) between reading a file and writing this table: little-endian ``uint32``
epochs, ``uint16`` metrics, then per metric ``uint16`` name length, the UTF-8 name and a
``uint8`` null flag; then the epochs as int64, each metric's values as float64, and for metrics
with a missing value a ``uint8`` validity byte per epoch.

Example::

    >>> from hpo_analysis.model import CurvePoint
    >>> block = encode_curve([CurvePoint(0, {"val_loss": 0.5}), CurvePoint(1, {"val_loss": None})])
    >>> epochs, metrics = decode_curve(block)
    >>> epochs.tolist(), metrics["val_loss"][0][:1].tolist(), metrics["val_loss"][1].tolist()
    ([0, 1], [0.5], [True, False])
"""

from __future__ import annotations

import operator
import struct
import sys
from array import array
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..arrays import from_numpy, text
from ..arrays import values as typed_values
from ..errors import HpoAnalysisError
from ..layout import CURVES_PARQUET, DIVERGED_PARQUET, TRIALS_PARQUET  # noqa: F401
from ..memory import release_memory
from ..schema import BY_NAME, CURVE_METRICS, ColumnType

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from ..model import CurvePoint

CURVE_KEY_COLUMNS = ("study", "trial_num", "epoch")
CURVE_ROW_GROUP = 262_144
TRIAL_ROW_GROUP = 16_384  # rows of trials.parquet / diverged.parquet a row group
COMPRESSION = "zstd"

_METRICS = operator.attrgetter("metrics")
_EPOCH = operator.attrgetter("epoch")
_HEADER = struct.Struct("<IH")
_NAME = struct.Struct("<HB")
_BIG_ENDIAN = sys.byteorder == "big"


class CurveEncodeError(HpoAnalysisError, ValueError):
    """A curve that cannot be stored in the columnar form (an epoch beyond 64-bit)."""


# --- curve blocks ----------------------------------------------------------------------------


def _packed(code: str, values: Sequence[Any]) -> bytes:
    packed = array(code, values)
    if _BIG_ENDIAN:  # pragma: no cover - the format is little-endian everywhere
        packed.byteswap()
    return packed.tobytes()


def encode_curve(curve: Sequence[CurvePoint]) -> bytes:
    """The curve block of ``curve`` (see the module docstring); empty bytes for no curve."""
    if not curve:
        return b""
    metrics = list(map(_METRICS, curve))
    first = metrics[0].keys()
    if all(map(first.__eq__, map(dict.keys, metrics))):  # the usual case: same metrics
        names = list(first)
        columns = [list(map(operator.itemgetter(name), metrics)) for name in names]
    else:
        names = list(dict.fromkeys(name for m in metrics for name in m))
        columns = [[m.get(name) for m in metrics] for name in names]
    try:
        parts = [_packed("q", list(map(_EPOCH, curve)))]
    except OverflowError:
        raise CurveEncodeError("learning curve epoch numbers beyond 64-bit integers") from None
    head = [_HEADER.pack(len(curve), len(names))]
    nulls = []
    for name, values in zip(names, columns, strict=True):
        try:
            parts.append(_packed("d", values))
            valid = None
        except TypeError:  # a missing value (None)
            parts.append(_packed("d", [0.0 if v is None else v for v in values]))
            valid = bytes(v is not None for v in values)
        encoded = name.encode("utf-8", "surrogatepass")
        head.append(_NAME.pack(len(encoded), valid is not None) + encoded)
        if valid is not None:
            nulls.append(valid)
    return b"".join(head + parts + nulls)


def decode_curve(
    block: bytes,
) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray | None]]]:
    """Epochs and, per metric, (values, validity or None) of a curve block."""
    import numpy as np

    if not block:
        return np.empty(0, dtype="<i8"), {}
    n, n_metrics = _HEADER.unpack_from(block, 0)
    position = _HEADER.size
    names: list[tuple[str, bool]] = []
    for _ in range(n_metrics):
        length, has_nulls = _NAME.unpack_from(block, position)
        position += _NAME.size
        names.append(
            (block[position : position + length].decode("utf-8", "surrogatepass"), bool(has_nulls))
        )
        position += length
    epochs = np.frombuffer(block, dtype="<i8", count=n, offset=position)
    position += 8 * n
    values = []
    for _ in names:
        values.append(np.frombuffer(block, dtype="<f8", count=n, offset=position))
        position += 8 * n
    metrics: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    for (name, has_nulls), column in zip(names, values, strict=True):
        valid = None
        if has_nulls:
            valid = np.frombuffer(block, dtype=np.uint8, count=n, offset=position).astype(bool)
            position += n
        metrics[name] = (column, valid)
    return epochs, metrics


def curve_metric_names(block: bytes) -> list[str]:
    """The metric names of a curve block, in the order stored."""
    if not block:
        return []
    _, n_metrics = _HEADER.unpack_from(block, 0)
    position = _HEADER.size
    names = []
    for _ in range(n_metrics):
        length, _flag = _NAME.unpack_from(block, position)
        position += _NAME.size
        names.append(block[position : position + length].decode("utf-8", "surrogatepass"))
        position += length
    return names


def curve_columns(metric_names: Iterable[str]) -> list[str]:
    """Metric columns of curves.parquet: the standard three, then the others sorted.

    A metric whose name clashes with a key column is stored as ``metric_<name>``.

    >>> curve_columns(["val_loss", "lr", "epoch_time", "study"])
    ['train_loss', 'val_loss', 'val_auc', 'epoch_time', 'lr', 'metric_study']
    """
    others = sorted(set(metric_names) - set(CURVE_METRICS))
    return list(CURVE_METRICS) + [column_for_metric(name) for name in others]


def column_for_metric(name: str) -> str:
    return f"metric_{name}" if name in CURVE_KEY_COLUMNS else name


# --- arrow types from the schema --------------------------------------------------------------


def arrow_type(column_type: ColumnType) -> pa.DataType:
    """The Arrow type of a schema column type.

    >>> str(arrow_type("int")), str(arrow_type("float")), str(arrow_type("bool"))
    ('int64', 'double', 'bool')
    """
    import pyarrow as pa

    return {
        "str": pa.string(),
        "int": pa.int64(),
        "float": pa.float64(),
        "bool": pa.bool_(),
    }[column_type]


_PLAIN_TYPES = frozenset({bool, int, float, str, dict, list})


def _infer_type(values: Sequence[Any]) -> ColumnType:
    kinds = set(map(type, values))
    kinds.discard(type(None))
    if kinds <= _PLAIN_TYPES:  # the usual case: decided from the set of types
        if not kinds or kinds & {str, dict, list}:
            return "str"
        if kinds == {bool}:
            return "bool"
        if bool in kinds:
            return "str"  # bool mixed with numbers: as text, as below
        return "int" if kinds == {int} else "float"
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "bool"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "int"
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return "float"
    return "str"


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        from ..jsonio import dumps_strict

        return dumps_strict(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def _column(values: list[Any], column_type: ColumnType) -> pa.Array:
    import pyarrow as pa

    if column_type == "str":
        if set(map(type, values)) <= {str, type(None)}:  # already text: taken as it is
            return text(values)
        return text([_as_text(v) for v in values])
    try:
        return typed_values(values, arrow_type(column_type))
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
        # e.g. an integer beyond 64 bits: keep every value, as text
        return text([_as_text(v) for v in values])


def trials_table(header: Sequence[str], rows: Sequence[dict[str, Any]]) -> pa.Table:
    """The rows as an Arrow table with the schema's types (dynamic columns inferred)."""
    import pyarrow as pa

    whole = _non_text_columns(header, rows)
    texts = _text_columns([name for name in header if name not in whole], rows)
    arrays = [whole[name] if name in whole else texts[name] for name in header]
    return pa.Table.from_arrays(arrays, names=list(header))


def _non_text_columns(header: Sequence[str], rows: Sequence[dict[str, Any]]) -> dict[str, pa.Array]:
    """The columns of ``header`` whose type is not text, each converted over all rows: the
    schema's numbers and flags (a value their type cannot hold turns the column to text, which
    is then here too), and the dynamic columns whose values are not text. A few MB a column."""
    whole = _typed_columns([n for n in header if n in BY_NAME and BY_NAME[n].type != "str"], rows)
    for name in header:
        if name not in BY_NAME:  # a dynamic column: its type from every value
            values = [row.get(name) for row in rows]
            kind = _infer_type(values)
            if kind != "str":
                whole[name] = _column(values, kind)
    return whole


def _text_columns(names: Sequence[str], rows: Sequence[dict[str, Any]]) -> dict[str, pa.Array]:
    """Each of ``names`` as a text column of ``rows``, each row visited once."""
    from .columns import block_columns

    columns = next(block_columns(rows, names, len(rows)), None) if rows else None
    if columns is None:
        columns = tuple(() for _ in names)
    return {name: _column(list(values), "str") for name, values in zip(names, columns, strict=True)}


def _typed_columns(names: Sequence[str], rows: Sequence[dict[str, Any]]) -> dict[str, pa.Array]:
    """``_column([row.get(name) for row in rows], type)`` of each schema column ``name``,
    built from blocks of rows (:func:`.columns.block_columns`: each row visited once) and
    joined. :func:`_column` converts value by value, so the joined blocks are the column,
    unless a block had to fall back to text (an integer beyond 64 bits): such a column is
    built again from all its values, the fallback deciding for the whole column."""
    import pyarrow as pa

    from .columns import block_columns

    types = [BY_NAME[name].type for name in names]
    chunks: list[list[pa.Array]] = [[] for _ in names]
    for columns in block_columns(rows, names):
        for pieces, values, column_type in zip(chunks, columns, types, strict=True):
            pieces.append(_column(list(values), column_type))
    arrays = {}
    for name, pieces, column_type in zip(names, chunks, types, strict=True):
        expected = arrow_type(column_type)
        if not pieces:
            arrays[name] = _column([], column_type)
        elif all(piece.type == expected for piece in pieces):
            arrays[name] = pa.concat_arrays(pieces)
        else:
            arrays[name] = _column([row.get(name) for row in rows], column_type)
        pieces.clear()
    return arrays


def write_table(path: Path, header: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    """Write the rows as :func:`trials_table`: in one row group up to :data:`TRIAL_ROW_GROUP`
    rows, else in row groups of that many rows, so that the text of all rows is never held
    as Arrow strings at once (the bulk of the table: about 100 MB at 120,000 trials)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if len(rows) <= TRIAL_ROW_GROUP:
        pq.write_table(trials_table(header, rows), path, compression=COMPRESSION)
        release_memory()
        return
    # a column's type is decided over all rows, as in trials_table; the text columns, the
    # bulk of the table, are built a row group at a time
    whole = _non_text_columns(header, rows)
    text = [name for name in header if name not in whole]
    schema = pa.schema([(n, whole[n].type if n in whole else pa.string()) for n in header])
    pool = pa.default_memory_pool()
    with pq.ParquetWriter(path, schema, compression=COMPRESSION) as writer:
        for start in range(0, len(rows), TRIAL_ROW_GROUP):
            part = rows[start : start + TRIAL_ROW_GROUP]
            texts = _text_columns(text, part)
            arrays = [
                whole[name].slice(start, len(part)) if name in whole else texts.pop(name)
                for name in header
            ]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            del arrays, texts
            pool.release_unused()  # else each group's text stays with Arrow's allocator
    release_memory()


# --- curves.parquet -------------------------------------------------------------------------


def curves_schema(metric_columns: Sequence[str]) -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [("study", pa.string()), ("trial_num", pa.int64()), ("epoch", pa.int64())]
        + [(name, pa.float64()) for name in metric_columns]
    )


_FILLERS: dict[tuple[str, int], bytes] = {}


def _filler(kind: str, pattern: bytes, n: int) -> bytes:
    key = (kind, n)
    found = _FILLERS.get(key)
    if found is None:
        found = _FILLERS[key] = pattern * n
    return found


def _ones(n: int) -> bytes:
    return _filler("ones", b"\x01", n)


def _zeros(n: int) -> bytes:
    return _filler("zeros", b"\x00", n)


def _nans(n: int) -> bytes:
    return _filler("nans", struct.pack("<d", float("nan")), n)


# A block header's layout: its bytes after the row count, where the epochs start, the number of
# metrics and, per metric column, (the metric stored in it or -1, its place among the metrics
# with a validity section or -1).
_Layout = tuple[bytes, int, int, tuple[tuple[int, int], ...]]


class CurvesWriter:
    """Streams per-trial curve blocks into curves.parquet, one row group at a time."""

    def __init__(self, path: Path, metric_names: Iterable[str]) -> None:
        import pyarrow.parquet as pq

        self.columns = curve_columns(metric_names)
        self._index = {
            name: i for i, name in enumerate(self.columns)
        }  # column name -> position among the metric columns
        self.schema = curves_schema(self.columns)
        self._writer = pq.ParquetWriter(path, self.schema, compression=COMPRESSION)
        self._pending: list[tuple[str, int, bytes]] = []
        self._pending_rows = 0
        self.n_rows = 0

    def add(self, study: str, trial_num: int, block: bytes) -> None:
        if not block:
            return
        n = _HEADER.unpack_from(block, 0)[0]
        self._pending.append((study, trial_num, block))
        self._pending_rows += n
        if self._pending_rows >= CURVE_ROW_GROUP:
            self._flush()

    def _layout(self, block: bytes) -> _Layout:
        """Where each metric column's values and validity sit in a block with this header."""
        n_metrics = _HEADER.unpack_from(block, 0)[1]
        position = _HEADER.size
        filled: dict[int, tuple[int, int]] = {}
        n_nullable = 0
        for metric in range(n_metrics):
            length, has_nulls = _NAME.unpack_from(block, position)
            position += _NAME.size
            name = block[position : position + length].decode("utf-8", "surrogatepass")
            position += length
            column = self._index[column_for_metric(name)]
            # a name clashing into an already filled column is left out
            filled.setdefault(column, (metric, n_nullable if has_nulls else -1))
            n_nullable += bool(has_nulls)
        plan = tuple(filled.get(column, (-1, -1)) for column in range(len(self.columns)))
        return block[4:position], position, n_metrics, plan

    def _flush(self) -> None:
        """One row group from the pending blocks: their byte slices are joined per column and
        viewed as arrays once, instead of decoding every trial into arrays of its own. The
        header of a block is parsed when it differs from the previous block's (the trials of
        a study share their metrics)."""
        import numpy as np
        import pyarrow as pa

        if not self._pending:
            return
        n_columns = len(self.columns)
        studies: dict[str, int] = {}
        study_ids: list[int] = []
        trial_nums: list[int] = []
        counts: list[int] = []
        epochs: list[bytes | memoryview] = []
        values: list[list[bytes | memoryview]] = [[] for _ in range(n_columns)]
        # per column: validity bytes, or the number of rows that are all valid
        valid: list[list[bytes | memoryview | int]] = [[] for _ in range(n_columns)]
        has_nulls = [False] * n_columns
        layout: _Layout | None = None
        for study, trial_num, block in self._pending:
            n = _HEADER.unpack_from(block, 0)[0]
            if layout is None or not block.startswith(layout[0], 4):
                layout = self._layout(block)
            _, start, n_metrics, plan = layout
            view = memoryview(block)
            epochs.append(view[start : start + 8 * n])
            nulls_at = start + 8 * n * (1 + n_metrics)
            for column, (metric, nullable) in enumerate(plan):
                if metric < 0:
                    values[column].append(_nans(n))
                    valid[column].append(_zeros(n))
                    has_nulls[column] = True
                    continue
                at = start + 8 * n * (1 + metric)
                values[column].append(view[at : at + 8 * n])
                if nullable < 0:
                    valid[column].append(n)
                else:
                    at = nulls_at + n * nullable
                    valid[column].append(view[at : at + n])
                    has_nulls[column] = True
            study_ids.append(studies.setdefault(study, len(studies)))
            trial_nums.append(trial_num)
            counts.append(n)
        repeat = np.array(counts, dtype=np.int64)
        n_rows = int(repeat.sum())
        arrays = [
            text(list(studies)).take(
                from_numpy(np.repeat(np.array(study_ids, dtype=np.int32), repeat))
            ),
            from_numpy(np.repeat(np.array(trial_nums, dtype=np.int64), repeat)),
            from_numpy(np.frombuffer(b"".join(epochs), dtype="<i8").astype(np.int64)),
        ]
        for column in range(n_columns):
            data = np.frombuffer(b"".join(values[column]), dtype="<f8").astype(np.float64)
            is_valid = None
            if has_nulls[column]:
                pieces = (_ones(p) if isinstance(p, int) else p for p in valid[column])
                is_valid = np.frombuffer(b"".join(pieces), dtype=np.uint8).astype(bool)
            arrays.append(from_numpy(data, is_valid))
        self._writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=self.schema))
        self.n_rows += n_rows
        self._pending = []
        self._pending_rows = 0
        del arrays
        pa.default_memory_pool().release_unused()  # each group's arrays, not all of them

    def close(self) -> None:
        self._flush()
        self._writer.close()


def write_curves(
    path: Path,
    keys: Iterable[tuple[str, int]],
    block_of: Callable[[tuple[str, int]], bytes],
    metric_names: Iterable[str],
) -> int:
    """Write curves.parquet from the curve blocks of ``keys``, in that order; return rows."""
    writer = CurvesWriter(path, metric_names)
    try:
        for key in keys:
            writer.add(key[0], key[1], block_of(key))
    finally:
        writer.close()
        release_memory()
    return writer.n_rows
