"""Consistency checks of an output directory, run by ``validate`` and at the end of ``extract``.

Each check reads the files as a user would (CSV with typed columns, strict JSON, Parquet) and
returns plain messages; an empty list means the dataset is consistent. ``hpo_full.json`` is
read a few trials at a time (see :mod:`hpo_analysis.fulljson`) and checked against
``hpo_full.schema.json``, so memory stays flat however large the dataset is. The trials of
such a batch are checked at once (their summary values compared as one list, their schema
with one call) and, where that finds something, trial by trial for the messages.

Example::

    >>> validate_dir("outputs/analysis", expect_trials=600)  # doctest: +SKIP
    []
"""

from __future__ import annotations

import csv
import json
import math
import operator
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .arrays import scalar
from .arrays import values as arrow_values
from .errors import HpoAnalysisError, install_hint
from .fulljson import FullJsonError, read_full_json_batches
from .jsonio import _may_hold_long_integer, orjson
from .layout import (
    CURVES_PARQUET,
    DIVERGED_CSV,
    DIVERGED_JSON,
    DIVERGED_PARQUET,
    FINDINGS_JSON,
    FULL_JSON,
    FULL_JSON_INDEX,
    FULL_JSON_SCHEMA,
    MANIFEST,
    OUTPUT_FILES,
    SUMMARY_CSV,
    TRIALS_PARQUET,
)
from .memory import collector_paused, release_memory
from .schema import BY_NAME, COLUMNS, SEED_COLUMNS, SUMMARY_COLUMNS
from .write.cells import allow_large_csv_fields

REQUIRED = tuple(c.name for c in COLUMNS if not c.nullable)
MAX_REPORTED = 20
SCHEMA_HINT = install_hint("validate")


class SchemaCheckUnavailable(HpoAnalysisError, RuntimeError):
    """No JSON Schema validator is installed; the message says what to install."""


def _strict_constant(token: str) -> float:
    raise ValueError(f"non-standard JSON token {token}")


def _load_strict(path: Path) -> Any:
    """The strict JSON value of ``path``: orjson's when it reads the text and no integer
    beyond 64 bits may be in it (then the values are the standard library's, and findings.json
    of a thousand studies parses in a tenth of the time); else the standard library's, which
    also says what is wrong with a text orjson refuses."""
    with open(path, "rb") as binary:
        data = binary.read()
    if orjson is not None and not _may_hold_long_integer(data):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    del data
    with open(path, encoding="utf-8") as handle:
        return json.load(handle, parse_constant=_strict_constant)


_SUMMARY_NAMES = [c.name for c in SUMMARY_COLUMNS]
_JSON_PLACES = [(c.group, c.name) for c in SUMMARY_COLUMNS]


def _json_values() -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """A function giving a trial object's summary values in the CSV's column order, as
    ``tuple(trial[g][n] if g else trial[n] for g, n in _JSON_PLACES)`` does (KeyError or
    TypeError alike for a missing field or group), a group at a time in C."""
    by_group: dict[str, list[int]] = {}
    for position, (group, _) in enumerate(_JSON_PLACES):
        by_group.setdefault(group, []).append(position)
    getters = []
    for place, positions in by_group.items():
        names = [_JSON_PLACES[p][1] for p in positions]
        # itemgetter of one key returns the value, of several a tuple: always ask for two
        get = operator.itemgetter(*names) if len(names) > 1 else operator.itemgetter(*names * 2)
        getters.append((place, get, len(names)))
    found_order = [p for positions in by_group.values() for p in positions]
    back = operator.itemgetter(*(found_order.index(p) for p in range(len(_JSON_PLACES))))

    def json_values(trial: dict[str, Any]) -> tuple[Any, ...]:
        found: tuple[Any, ...] = ()
        for group, get, n in getters:
            found += get(trial[group] if group else trial)[:n]
        return tuple(back(found))

    return json_values


_JSON_VALUES = _json_values()


def _same(a: Any, b: Any) -> bool:
    if a == b:  # the usual case: values read back exactly
        return True
    if isinstance(a, float) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return math.isclose(a, float(b), rel_tol=1e-12)
    return bool(a == b)


def schema_validator(
    schema: dict[str, Any], *, fast_only: bool = False
) -> Callable[[Any], Iterator[str]] | None:
    """A function listing the JSON Schema errors of an instance.

    jsonschema-rs (``hpo-analysis[validate]``, microseconds per trial) when installed, else
    the reference ``jsonschema`` package (milliseconds per trial); None when neither is
    installed (or, with ``fast_only``, when jsonschema-rs is not).
    """
    found = _validators(schema, fast_only=fast_only)
    return found[0] if found is not None else None


_Validators = tuple[Callable[[Any], Iterator[str]], Callable[[list[Any]], bool]]


def _validators(schema: dict[str, Any], *, fast_only: bool = False) -> _Validators | None:
    """:func:`schema_validator`'s function and, from the same validator, one telling whether
    every instance of a list is valid (True exactly when the first lists no error for any)."""
    try:
        import jsonschema_rs

        fast = jsonschema_rs.validator_for(schema)

        def errors(instance: Any) -> Iterator[str]:
            # the yes/no check is quicker; the errors are listed only for an invalid instance
            if not fast.is_valid(instance):
                yield from (error.message for error in fast.iter_errors(instance))

        return errors, lambda instances: all(map(fast.is_valid, instances))
    except ImportError:
        if fast_only:
            return None
    try:
        import jsonschema
    except ImportError:
        return None
    reference = jsonschema.Draft202012Validator(schema)
    return (
        lambda instance: (error.message for error in reference.iter_errors(instance)),
        lambda instances: all(map(reference.is_valid, instances)),
    )


def _sub_schema(schema: dict[str, Any], name: str) -> dict[str, Any]:
    sub = dict(schema["$defs"][name])
    sub["$schema"] = schema.get("$schema")
    return sub


def validate_dir(
    directory: str | os.PathLike[str],
    *,
    expect_trials: int | None = None,
    expect_studies: int | None = None,
    expect_diverged: int | None = None,
    schema: bool | None = True,
) -> list[str]:
    """All consistency failures of the dataset in ``directory`` (empty list = valid).

    ``schema``: check hpo_full.json against hpo_full.schema.json (True: always, raising
    :class:`SchemaCheckUnavailable` when no validator is installed; None: only when the fast
    validator is installed, as ``extract`` does; False: never).
    """
    # parsed JSON and rows hold no reference cycles: the collector, which would walk the
    # parsed values again and again as they are made (half the time of the check at 1,200
    # studies), is paused
    with collector_paused():
        return _validate_dir(directory, expect_trials, expect_studies, expect_diverged, schema)


def _validate_dir(
    directory: str | os.PathLike[str],
    expect_trials: int | None,
    expect_studies: int | None,
    expect_diverged: int | None,
    schema: bool | None,
) -> list[str]:
    allow_large_csv_fields()  # a long note must not make a valid dataset unreadable
    root = Path(directory)
    missing = [name for name in OUTPUT_FILES if not (root / name).is_file()]
    if missing:
        return [f"{root}: missing output file(s): {', '.join(missing)}"]
    failures: list[str] = []
    try:
        schema_doc = _load_strict(root / FULL_JSON_SCHEMA)
    except (ValueError, OSError) as err:
        return [f"{FULL_JSON_SCHEMA}: not strict JSON: {err}"]
    trial_validators = check_meta = None
    if schema is not False:
        trial_validators = _validators(_sub_schema(schema_doc, "trial"), fast_only=schema is None)
        check_meta = schema_validator(_sub_schema(schema_doc, "metadata"), fast_only=True)
        if trial_validators is None and schema:
            raise SchemaCheckUnavailable(
                f"checking {FULL_JSON} against its JSON Schema needs jsonschema-rs or "
                f"jsonschema: {SCHEMA_HINT}"
            )

    try:
        # checked and let go at once: for 1,000 studies it is hundreds of MB as objects
        failures.extend(_findings_well_formed(_load_strict(root / FINDINGS_JSON)))
    except (ValueError, OSError) as err:
        return [f"{root / FINDINGS_JSON}: not strict JSON: {err}"]

    with open(root / DIVERGED_CSV, encoding="utf-8", newline="") as handle:
        diverged_rows = list(csv.DictReader(handle))
    manifest_trials = _manifest_trials(root / MANIFEST)
    try:
        meta, batches = read_full_json_batches(root / FULL_JSON)
    except (FullJsonError, OSError) as err:
        return [f"{FULL_JSON}: {err}"]
    if check_meta is not None:
        failures.extend(f"{FULL_JSON} metadata: {m}" for m in list(check_meta(meta))[:3])
    rules = divergence_rules(meta)

    import pyarrow.parquet as pq

    try:
        n_stored = pq.read_metadata(root / TRIALS_PARQUET).num_rows
        diverged_stored = pq.read_metadata(root / DIVERGED_PARQUET).num_rows
        curves_stored = pq.read_metadata(root / CURVES_PARQUET).num_rows
        # the file itself, not pq.read_table: that loads pyarrow's dataset layer, and with it
        # pandas, for one file
        with pq.ParquetFile(root / FULL_JSON_INDEX) as stored:
            index = stored.read(columns=["offset", "length"])
    except Exception as err:  # pyarrow raises several types for unreadable files
        return failures + [f"a Parquet output cannot be read: {err}"]
    index_offsets = index.column("offset").to_pylist()
    index_lengths = index.column("length").to_pylist()
    try:
        summary = _read_summary(root / SUMMARY_CSV)
    except ValueError as err:
        return failures + [f"{SUMMARY_CSV}: {err}"]
    counts = _Counts()
    failures.extend(counts.add_table(summary, rules))
    try:
        failures.extend(_csv_matches_parquet(summary, root / TRIALS_PARQUET))
    except Exception as err:  # a column that cannot be decoded
        return failures + [f"a Parquet output cannot be read: {err}"]
    release_memory()
    rows = _SummaryRows(summary)
    position = 0  # of the batch's first trial among the trials
    try:
        for batch in batches:
            trials = batch.trials
            n = len(trials)
            counts.json_batch(trials)
            end = position + n
            # the summary's rows beside them, while it has any
            values = rows.columns(position, end)
            if len(failures) < MAX_REPORTED and not _batch_consistent(
                values, trials, trial_validators
            ):  # what is wrong, trial by trial
                for at, trial in enumerate(trials[: len(values[_SUMMARY_NAMES[0]])]):
                    if len(failures) < MAX_REPORTED:
                        row = tuple(values[name][at] for name in _SUMMARY_NAMES)
                        failures.extend(_csv_matches_json(row, trial))
                        if trial_validators is not None:
                            failures.extend(_schema_failures(trial_validators[0], trial))
            if batch.offsets != index_offsets[position:end]:
                counts.index_ok = False
            if batch.lengths != index_lengths[position:end]:
                counts.index_ok = False
            position = end
    except FullJsonError as err:
        failures.append(f"{FULL_JSON}: {err}")

    trial_counts = {
        f"{SUMMARY_CSV} rows": counts.rows,
        f"{FULL_JSON} trials": counts.json_trials,
        "metadata.n_trials": meta.get("n_trials"),
        f"{MANIFEST} trials (n_trials of ok + warning rows)": manifest_trials,
        f"{TRIALS_PARQUET} rows": n_stored,
    }
    if len(set(trial_counts.values())) != 1:
        failures.append(
            "trial counts disagree: " + ", ".join(f"{k} = {v}" for k, v in trial_counts.items())
        )
    if not counts.index_ok or index.num_rows != counts.json_trials:
        failures.append(f"{FULL_JSON_INDEX} does not locate the trials of {FULL_JSON}")
    if curves_stored != counts.curve_points:
        failures.append(
            f"{CURVES_PARQUET} has {curves_stored} rows but {FULL_JSON} holds "
            f"{counts.curve_points} learning-curve points"
        )

    try:
        diverged_json = _load_strict(root / DIVERGED_JSON)
    except (ValueError, OSError) as err:
        failures.append(f"{DIVERGED_JSON}: not strict JSON: {err}")
        diverged_json = {}
    flagged = counts.diverged
    n_diverged_json = len(diverged_json.get("trials", []))
    if len({flagged, len(diverged_rows), n_diverged_json, diverged_stored}) != 1:
        failures.append(
            f"diverged counts disagree: {flagged} flagged in {SUMMARY_CSV}, "
            f"{len(diverged_rows)} rows in {DIVERGED_CSV}, {n_diverged_json} in "
            f"{DIVERGED_JSON}, {diverged_stored} in {DIVERGED_PARQUET}"
        )
    for line, diverged_row in enumerate(diverged_rows, start=2):
        if not diverged_row.get("diverge_kind"):
            failures.append(f"{DIVERGED_CSV} line {line}: no diverge_kind")

    for label, expected, actual in (
        ("trials", expect_trials, counts.rows),
        ("studies", expect_studies, len(counts.studies)),
        ("diverged trials", expect_diverged, flagged),
    ):
        if expected is not None and expected != actual:
            failures.append(f"expected {expected} {label}, found {actual}")
    if len(failures) > MAX_REPORTED:
        failures = failures[:MAX_REPORTED] + [f"... and {len(failures) - MAX_REPORTED} more"]
    return failures


def _manifest_trials(path: Path) -> int:
    """The n_trials of the manifest's ok and warning rows, summed: what
    ``sum(int(m["n_trials"] or 0) for m in csv.DictReader(handle) if m["status"] in ("ok",
    "warning"))`` gives, read with csv.reader and the two columns' positions."""
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        if "status" not in header or "n_trials" not in header:  # DictReader says which
            handle.seek(0)
            return sum(
                int(m["n_trials"] or 0)
                for m in csv.DictReader(handle)
                if m["status"] in ("ok", "warning")
            )
        # DictReader keeps the last of repeated names, and None past the end of a short row
        status = len(header) - 1 - header[::-1].index("status")
        trials = len(header) - 1 - header[::-1].index("n_trials")
        total = 0
        for row in reader:
            if status < len(row) and row[status] in ("ok", "warning"):
                total += int((row[trials] if trials < len(row) else None) or 0)
        return total


def _findings_well_formed(doc: Any) -> list[str]:
    """findings.json: a list of findings, each with its fields and rows as wide as its columns."""
    items = doc.get("findings") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        return [f"{FINDINGS_JSON}: no list of findings"]
    failures = []
    for position, item in enumerate(items):
        keys = ("id", "title", "columns", "rows", "sentence", "n")
        if not isinstance(item, dict) or any(k not in item for k in keys):
            failures.append(f"{FINDINGS_JSON}: finding {position} lacks one of {', '.join(keys)}")
            continue
        width = len(item["columns"])
        if any(not isinstance(r, list) or len(r) != width for r in item["rows"]):
            failures.append(f"{FINDINGS_JSON}: finding {item['id']}: a row is not {width} wide")
    return failures


class _Counts:
    """What validate keeps while streaming: counts and the keys seen (no rows)."""

    def __init__(self) -> None:
        self.rows = 0
        self.diverged = 0
        self.json_trials = 0
        self.curve_points = 0
        self.index_ok = True
        self.keys: set[tuple[Any, Any]] = set()
        self.studies: set[Any] = set()

    def add_table(self, summary: Any, rules: dict[str, tuple[float, float]]) -> list[str]:
        """Required fields, duplicate trials and diverged flags of the summary's rows (in
        Arrow; rows are only looked at one by one where something is wrong)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        failures = []
        for name in REQUIRED:
            column = summary.column(name)
            if column.null_count:
                failures += [
                    f"{SUMMARY_CSV} line {i + 2}: required field {name} is empty"
                    for i, value in enumerate(column.to_pylist())
                    if value is None
                ][:MAX_REPORTED]
        studies = summary.column("study").to_pylist()
        numbers = summary.column("trial_num").to_pylist()
        for line, key in enumerate(zip(studies, numbers, strict=True), start=2):
            if key in self.keys:
                failures.append(f"{SUMMARY_CSV} line {line}: duplicate trial {key}")
            self.keys.add(key)
        self.studies.update(studies)
        self.rows = summary.num_rows
        diverged = summary.column("diverged")
        # Arrow scalars, not Python values: compute functions would convert those with
        # pyarrow.scalar, which imports pandas (see hpo_analysis.arrays)
        yes = scalar(True, "bool")
        self.diverged = pc.sum(_false_if_null(diverged).cast(pa.int64())).as_py() or 0
        # diverged as the objective implies: null when missing, true when non-finite, equal
        # to the study's sentinel or (minimize studies) at least its threshold; a trial whose
        # curve holds a NaN/inf loss may be diverged with a finite objective
        kind = summary.column("objective_kind")
        objective = summary.column("objective")
        limits = [rules.get(study, (math.inf, math.nan)) for study in studies]
        threshold = arrow_values([limit[0] for limit in limits], "double")
        sentinel = arrow_values([limit[1] for limit in limits], "double")
        finite = pc.or_(
            pc.and_(
                pc.equal(summary.column("direction"), scalar("minimize", "string")),
                pc.greater_equal(objective, threshold),
            ),
            pc.equal(objective, sentinel),
        )
        finite = _false_if_null(finite)
        is_finite = pc.equal(kind, scalar("finite", "string"))
        expected = pc.if_else(
            pc.equal(kind, scalar("missing", "string")),
            scalar(None, "bool"),
            pc.if_else(is_finite, finite, yes),
        )
        by_curve = _false_if_null(
            pc.and_(
                pc.greater(summary.column("curve_non_finite"), scalar(0, "int64")),
                pc.equal(diverged, yes),
            )
        )
        same = pc.or_(
            pc.or_(
                pc.and_(pc.is_null(expected), pc.is_null(diverged)),
                _false_if_null(pc.equal(expected, diverged)),
            ),
            pc.and_(by_curve, _false_if_null(is_finite)),
        )
        if not pc.all(same).as_py():
            names = ("objective_kind", "objective", "diverged", "direction", "study")
            columns = [summary.column(n).to_pylist() for n in names]
            for line, (ok, values) in enumerate(
                zip(same.to_pylist(), zip(*columns, strict=True), strict=True), start=2
            ):
                if not ok and len(failures) < MAX_REPORTED:
                    failures += _diverged_consistent(
                        dict(zip(names, values, strict=True)),
                        rules.get(values[-1], (math.inf, math.nan)),
                        f"{SUMMARY_CSV} line {line}",
                    )
        return failures

    def json_batch(self, trials: list[dict[str, Any]]) -> None:
        """Count the trials of hpo_full.json and the points of their learning curves."""
        self.json_trials += len(trials)
        self.curve_points += sum(
            len(curve) if isinstance(curve, list) else 0 for curve in map(_CURVE, trials)
        )


def _false_if_null(column: Any) -> Any:
    """``pyarrow.compute.fill_null(column, False)``, with False as an Arrow scalar of the
    column's type (see :func:`~hpo_analysis.arrays.scalar`)."""
    import pyarrow.compute as pc

    return pc.fill_null(column, scalar(False, column.type))


_CURVE = operator.methodcaller("get", "learning_curve")


def _batch_consistent(
    values: dict[str, list[Any]], trials: list[dict[str, Any]], validators: _Validators | None
) -> bool:
    """True when each of the first trials, one per summary row in ``values`` (each summary
    column's values), holds the summary values of its row and is valid against the schema:
    then :func:`_csv_matches_json` and :func:`_schema_failures` have nothing to say about
    any of them. False says only that they are to be asked trial by trial.

    The values are compared a group of the trial object at a time, for all the trials at
    once: equal in every group is equal as a whole (``row == _JSON_VALUES(trial)``)."""
    checked = trials[: len(values[_SUMMARY_NAMES[0]])]
    try:
        for group, get, names in _GROUP_GETTERS:
            found = list(map(get, map(operator.itemgetter(group), checked) if group else checked))
            if len(names) == 1:
                expected = values[names[0]]
            else:
                expected = list(zip(*(values[name] for name in names), strict=True))
            if found != expected:
                return False
    except (KeyError, TypeError):  # a missing field or group
        return False
    return validators is None or validators[1](checked)


def _group_getters() -> list[tuple[str, Callable[[Any], Any], list[str]]]:
    """Per group of the trial object ("" for the top level), a function giving the values
    of its summary columns (a tuple, or the value of a group's only column) and their names."""
    by_group: dict[str, list[str]] = {}
    for group, name in _JSON_PLACES:
        by_group.setdefault(group, []).append(name)
    return [(group, operator.itemgetter(*names), names) for group, names in by_group.items()]


_GROUP_GETTERS = _group_getters()


def _schema_failures(check: Callable[[Any], Iterator[str]], trial: dict[str, Any]) -> list[str]:
    messages = list(check(trial))[:3]
    if not messages:
        return []
    where = f"{FULL_JSON} trial {trial.get('study')}/{trial.get('trial_num')}"
    return [f"{where}: schema: {message}" for message in messages]


def _read_summary(path: Path) -> Any:
    """hpo_summary.csv as an Arrow table typed from the schema (text columns un-neutralised);
    ValueError with the reason when it cannot be read so."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    from .write.parquet import arrow_type

    with open(path, encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle), [])
    if tuple(header[: len(SEED_COLUMNS)]) != SEED_COLUMNS:
        raise ValueError("header does not start with the standard columns")
    absent = [name for name in _SUMMARY_NAMES if name not in header]
    if absent:
        raise ValueError(f"missing column(s) {', '.join(absent)}")
    types = {n: arrow_type(BY_NAME[n].type) if n in BY_NAME else pa.string() for n in header}
    try:
        table = pacsv.read_csv(
            path,
            # one thread: on two cores the threads' hand-offs cost more CPU than they save
            read_options=pacsv.ReadOptions(use_threads=False),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                true_values=["true"],
                false_values=["false"],
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise ValueError(str(err).splitlines()[0]) from None
    for position, field in enumerate(table.schema):
        # the inverse of the formula neutralisation, in the columns where a cell starts with '
        if (
            field.type == pa.string()
            and pc.any(pc.starts_with(table.column(position), "'")).as_py()
        ):
            original = pc.replace_substring_regex(
                table.column(position), pattern="^'([=+\\-@\t\r\n])", replacement="\\1"
            )
            table = table.set_column(position, field.name, original)
    return table


class _SummaryRows:
    """The summary's values as Python values, a window of rows at a time."""

    WINDOW = 4096

    def __init__(self, table: Any) -> None:
        self.table = table
        self.start = self.end = 0
        self.window: dict[str, list[Any]] = {}

    def columns(self, start: int, stop: int) -> dict[str, list[Any]]:
        """Each summary column's values of the rows from ``start`` to ``stop`` (fewer, or
        none, past the last row)."""
        stop = min(stop, self.table.num_rows)
        if start < self.start or stop > self.end:
            part = self.table.slice(start, max(self.WINDOW, stop - start))
            self.window = {name: part.column(name).to_pylist() for name in _SUMMARY_NAMES}
            self.start, self.end = start, start + part.num_rows
        a, b = start - self.start, max(stop - self.start, start - self.start)
        return {name: values[a:b] for name, values in self.window.items()}


def _csv_matches_parquet(summary: Any, path: Path) -> list[str]:
    """Column by column (in Arrow): trials.parquet holds what hpo_summary.csv holds. Its
    columns are read one at a time: the whole table is the largest a run builds."""
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as stored:
        return _columns_match(summary, stored)


def _columns_match(summary: Any, stored: Any) -> list[str]:
    """The first difference, column by column and then row by row, read a row group of a
    column at a time (when a row group of all the columns read at once shows one)."""
    if stored.metadata.num_rows != summary.num_rows:
        return []  # the counts check reports it
    if _all_columns_equal(summary, stored):
        return []
    return _first_difference(summary, stored)


def _comparable(found: Any) -> Any:
    """A column of trials.parquet as the CSV holds it: NaN and ±inf, and an empty text, as
    empty cells (read back as null)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_floating(found.type):
        return pc.if_else(pc.is_finite(found), found, scalar(None, found.type))
    if pa.types.is_string(found.type):
        return pc.if_else(pc.equal(found, scalar("", "string")), scalar(None, found.type), found)
    return found


def _all_columns_equal(summary: Any, stored: Any) -> bool:
    """True when every summary column is in trials.parquet with its type and its values, a
    row group of all the columns read at a time: then :func:`_first_difference` finds none."""
    import pyarrow as pa

    schema = stored.schema_arrow
    for name in _SUMMARY_NAMES:
        if schema.get_field_index(name) < 0 or schema.field(name).type != summary.column(name).type:
            return False
    pool = pa.default_memory_pool()
    offset = 0
    for group in range(stored.num_row_groups):
        try:
            found = stored.read_row_group(group, columns=_SUMMARY_NAMES)
        except Exception:  # a column that cannot be decoded: said in its place, as it comes
            return False
        n = found.num_rows
        for name in _SUMMARY_NAMES:
            if not _comparable(found.column(name)).equals(summary.column(name).slice(offset, n)):
                return False
        offset += n
        del found
        pool.release_unused()  # this group's arrays
    return True


def _first_difference(summary: Any, stored: Any) -> list[str]:
    """The first difference, column by column and then row by row, read a row group of a
    column at a time."""
    import pyarrow as pa

    schema = stored.schema_arrow
    groups = [stored.metadata.row_group(g).num_rows for g in range(stored.num_row_groups)]
    pool = pa.default_memory_pool()
    for name in _SUMMARY_NAMES:
        if schema.get_field_index(name) < 0:
            return [f"{TRIALS_PARQUET}: no column {name}"]
        column = summary.column(name)
        if schema.field(name).type != column.type:
            return [
                f"{TRIALS_PARQUET}: column {name} is {schema.field(name).type}, not {column.type}"
            ]
        offset = 0
        for group, n in enumerate(groups):
            found = _comparable(stored.read_row_group(group, columns=[name]).column(0))
            expected = column.slice(offset, n)
            if not found.equals(expected):
                pairs = zip(expected.to_pylist(), found.to_pylist(), strict=True)
                for i, (a, b) in enumerate(pairs, start=offset):
                    if not _same(a, b):
                        studies, numbers = summary.column("study"), summary.column("trial_num")
                        return [
                            f"trial {studies[i].as_py()}/{numbers[i].as_py()}: {name} is {a!r} "
                            f"in {SUMMARY_CSV} but {b!r} in {TRIALS_PARQUET}"
                        ]
            offset += n
            del found, expected
            pool.release_unused()  # this group's arrays
    return []


def divergence_rules(meta: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Per study, (objective threshold, sentinel) of its divergence rule as the metadata
    records it; inf / NaN where the rule has none."""
    rules = {}
    for entry in meta.get("studies", []):
        if isinstance(entry, dict) and isinstance(entry.get("study"), str):
            threshold = entry.get("diverge_objective_threshold")
            sentinel = entry.get("diverge_sentinel")
            rules[entry["study"]] = (
                float(threshold) if isinstance(threshold, (int, float)) else math.inf,
                float(sentinel) if isinstance(sentinel, (int, float)) else math.nan,
            )
    return rules


def _diverged_consistent(
    values: dict[str, Any], rule: tuple[float, float], where: str
) -> list[str]:
    kind, objective, flag = values["objective_kind"], values["objective"], values["diverged"]
    threshold, sentinel = rule
    if kind == "missing":
        expected = None
    elif kind != "finite":
        expected = True
    else:
        expected = objective == sentinel or (
            values["direction"] == "minimize" and objective >= threshold
        )
    if flag != expected:
        return [f"{where}: diverged={flag} but objective {objective} ({kind}) implies {expected}"]
    return []


def _csv_matches_json(row: tuple[Any, ...], trial: dict[str, Any]) -> list[str]:
    try:
        if row == _JSON_VALUES(trial):
            return []  # the usual case, compared at once
    except (KeyError, TypeError):
        pass  # a missing field or group: the column-by-column check below says which
    values = dict(zip(_SUMMARY_NAMES, row, strict=True))
    if (trial.get("study"), trial.get("trial_num")) != (values["study"], values["trial_num"]):
        return [
            f"trial {values['study']}/{values['trial_num']} of {SUMMARY_CSV} is not at the "
            f"same position in {FULL_JSON} (found {trial.get('study')}/{trial.get('trial_num')})"
        ]
    for column in SUMMARY_COLUMNS:
        node = trial.get(column.group, {}) if column.group else trial
        if not isinstance(node, dict) or not _same(values[column.name], node.get(column.name)):
            found = node.get(column.name) if isinstance(node, dict) else node
            return [
                f"trial {values['study']}/{values['trial_num']}: {column.name} is "
                f"{values[column.name]!r} in {SUMMARY_CSV} but {found!r} in {FULL_JSON}"
            ]
    return []


__all__ = ["BY_NAME", "SchemaCheckUnavailable", "schema_validator", "validate_dir"]
