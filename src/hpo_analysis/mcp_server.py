"""Serve an extracted dataset to MCP clients (``hpo-analysis mcp DIR``).

Researchers explore HPO results in a chat session; pasting a 50 MB JSON file into a context
window is slow, costly and imprecise. This module exposes one extracted output directory over
the Model Context Protocol (stdio transport, the official ``mcp`` SDK) as a handful of small,
precise tools, so an MCP-capable client asks for exactly the rows it needs:

- ``overview``: studies, factors (budget, horizon, ...), counts, diverged trials, the findings'
  one-line answers, the queryable tables and their columns (a few KB).
- ``query``: one read-only SQL ``SELECT`` / ``WITH`` statement over the tables ``trials``,
  ``curves`` and ``diverged`` (DuckDB), with row and byte caps.
- ``get_trial``, ``get_curve`` (optionally downsampled), ``compare_trials``, ``findings``.
- ``annotate``: only when the server is started with ``--allow-annotate``; writes
  ``annotations.csv`` through :func:`hpo_analysis.annotations.add_annotation`.
- Resources: the generated README (data dictionary) and the JSON Schema of ``hpo_full.json``.

This module is the protocol adapter only (tool definitions, argument checks, the shape of the
answers): every read goes through :class:`hpo_analysis.api.Dataset`, the one read side, and
every error is its :class:`~hpo_analysis.api.DatasetError`. Nothing is loaded up front: the
overview comes from what ``extract`` computed once (hpo_full.json's metadata, findings.json,
the Parquet footers), a trial or a curve is a filtered read, so the first answer is as quick
on 100,000 trials as on 600. The directory is re-opened when a new ``extract`` has replaced
it, so a long-running server never serves a stale dataset. Errors (unknown trial, refused SQL,
a missing dataset) come back as tool errors that say what to do; they never stop the server.

SQL safety is enforced by DuckDB itself, not by pattern matching: the tables are views over
the Parquet files in a private in-memory database (views cannot be written, so even a
``WITH x AS (UPDATE ...)`` or ``DELETE`` hidden in a CTE fails), then access to any other file,
extension loading, Python variable lookups and configuration changes are switched off
(:meth:`hpo_analysis.api.Dataset.locked_connection`), and DuckDB's parser must see exactly one
statement of type ``SELECT`` (:func:`hpo_analysis.api.check_sql`). A query running longer than
:data:`QUERY_TIMEOUT_SEC` is interrupted and one needing more than :data:`QUERY_MEMORY_LIMIT`
of working memory is stopped by DuckDB (the memory is released). Queries run one at a time on
a worker thread and hold no lock the other tools need, so a slow query delays only the next
query. The byte cap counts the whole response: column names and types as well as the rows.

Numbers that are not finite (a diverged curve's ``NaN`` / ``Infinity``) are returned by
``query`` and ``get_curve`` as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``, so
they stay distinguishable from SQL ``NULL`` (``null``) in strict JSON.

Example::

    >>> check_sql("SELECT study, count(*) FROM trials GROUP BY study")
    'SELECT study, count(*) FROM trials GROUP BY study'
    >>> check_sql("COPY trials TO 'out.csv'")
    Traceback (most recent call last):
    ...
    hpo_analysis.api.QueryRefused: only one read-only SELECT ... got COPY
    >>> downsample(list(range(100)), 5, keep=[42])
    [0, 25, 42, 74, 99]
"""

from __future__ import annotations

import json
import math
import re
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from .annotations import MAX_NOTE_CHARS, MAX_TAG_CHARS
from .api import TABLES as _TABLE_FILES
from .api import Dataset, DatasetError
from .api import QueryRefused as QueryRefused  # re-exported: the read side's SQL refusal
from .api import check_sql as check_sql  # re-exported: one read-only SELECT, or refused
from .api import first_line as _first_line
from .errors import install_hint
from .schema import BY_NAME, COLUMNS, PARAM_PREFIX

if TYPE_CHECKING:
    import duckdb


SERVER_NAME = "hpo-analysis"
INSTALL_HINT = install_hint("mcp")

QUERY_DEFAULT_ROWS = 100
QUERY_MAX_ROWS = 1000
QUERY_MAX_BYTES = 60_000
QUERY_TIMEOUT_SEC = 30.0
QUERY_MEMORY_LIMIT = "512MB"  # DuckDB's working memory for one query; more is an error
CURVE_MAX_BYTES = 200_000
FINDING_MAX_ROWS = 200  # rows of a finding's table (and estimates) in one answer
OVERVIEW_MAX_BYTES = 8_000  # the overview must fit a context window comfortably
SENTENCE_LIMIT = 120  # characters of each finding's answer in the overview
COMPARE_MAX_TRIALS = 10
TABLES = tuple(_TABLE_FILES)  # trials, curves, diverged

README_URI = "hpo-analysis://dataset/README.md"
SCHEMA_URI = "hpo-analysis://dataset/hpo_full.schema.json"
SCHEMA_FILE = "hpo_full.schema.json"
FINDINGS_FILE = "findings.json"

# --- pure helpers (no MCP, no I/O) ------------------------------------------------------------


def downsample(epochs: Sequence[int], max_points: int, keep: Iterable[int] = ()) -> list[int]:
    """At most ``max_points`` of ``epochs`` (more only if ``keep`` needs it), evenly spread.

    The first and last epochs and every epoch in ``keep`` (best epoch, divergence, non-finite
    values) are always kept, so the shape that matters survives; the remaining budget is spread
    evenly over the rest. Returns the kept epochs in order.

    Example::

        >>> downsample([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 4, keep=[6])
        [0, 4, 6, 9]
        >>> downsample([0, 1, 2], 10)
        [0, 1, 2]
    """
    epochs = list(epochs)
    if len(epochs) <= max_points:
        return epochs
    present = set(epochs)
    required = {epochs[0], epochs[-1]} | {e for e in keep if e in present}
    rest = [e for e in epochs if e not in required]
    budget = min(max(0, max_points - len(required)), len(rest))
    # the centre of each of `budget` equal slices of the remaining epochs
    chosen = {rest[int((i + 0.5) * len(rest) / budget)] for i in range(budget)} if budget else set()
    return sorted(required | chosen)


def plain(value: Any) -> Any:
    """``value`` as strict-JSON data; non-finite floats become ``"NaN"`` / ``"±Infinity"``.

    Example::

        >>> plain([1.5, float("nan"), float("-inf"), None])
        [1.5, 'NaN', '-Infinity', None]
    """
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, Decimal):
        return plain(float(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    try:  # numpy / pandas scalars and arrays, pandas NA / NaT
        import numpy as np
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return None
        if isinstance(value, np.ndarray):
            return [plain(v) for v in value.tolist()]
        if isinstance(value, np.generic):
            return plain(value.item())
        if isinstance(value, pd.Timestamp):
            return value.isoformat()
    except ImportError:  # pragma: no cover - pandas is a core dependency
        pass
    return str(value)


def cell(name: str, value: Any) -> Any:
    """One value of a trial-table column: missing (None, NaN, NA) as None, integers as ints.

    pandas widens an integer column with gaps to float; the schema knows it is an integer.

    Example::

        >>> cell("diverge_epoch", 14.0), cell("diverge_epoch", float("nan")), cell("lr", 0.5)
        (14, None, 0.5)
    """
    result = plain(value)
    if result == "NaN":
        return None
    column = BY_NAME.get(name)
    if column is not None and column.type == "int" and isinstance(result, float):
        return int(result) if result.is_integer() else result
    return result


def shorten(text: str, limit: int = SENTENCE_LIMIT) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters, marked with "…".

    Example::

        >>> shorten("one two three four", 12)
        'one two …'
    """
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0] + " …"


def dumps(data: Any) -> str:
    """Compact strict JSON (what every tool returns)."""
    return json.dumps(plain(data), ensure_ascii=False, separators=(",", ":"), allow_nan=False)


_MAGNITUDE = {"k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}


def factor_sort_key(value: Any) -> tuple[Any, ...]:
    """Order factor levels as a reader expects: 2M < 20M < 200M < 2B, h1 < h3 < h10.

    Example::

        >>> sorted(["2B", "20M", "2M", "200M"], key=factor_sort_key)
        ['2M', '20M', '200M', '2B']
        >>> sorted(["h10", "h3", "h1"], key=factor_sort_key)
        ['h1', 'h3', 'h10']
    """
    text = "" if value is None else str(value)
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KkMmBbTt])", text)
    if match:
        return (0, float(match.group(1)) * _MAGNITUDE[match.group(2).lower()], text)
    parts = re.split(r"(\d+)", text)
    return (1, *[(0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts])


def parse_trial_ref(ref: str) -> tuple[str, int]:
    """``"study/trial_num"`` (the form of ``similar_successful_trial``) as a pair.

    Example::

        >>> parse_trial_ref("phase6a_2B_h3_threshold_1pct/12")
        ('phase6a_2B_h3_threshold_1pct', 12)
    """
    study, _, number = str(ref).strip().rpartition("/")
    try:
        trial_num = int(number)
    except ValueError:
        trial_num = -1
    if not study or trial_num < 0:
        raise DatasetError(
            f"{ref!r} is not a trial reference; write STUDY/TRIAL_NUM, e.g. "
            "phase6a_2B_h3_threshold_1pct/12"
        )
    return study, trial_num


# --- the dataset behind the tools -------------------------------------------------------------


@dataclass
class _Loaded:
    key: tuple[int, int, int]
    dataset: Dataset
    connection: duckdb.DuckDBPyConnection | None = None  # for query, opened on first use
    overview: dict[str, Any] | None = None  # what only a new extract changes


class DatasetService:
    """The answers behind every tool, over one extracted output directory.

    Loads lazily, reloads when ``extract`` has swapped in a new output set (the manifest is the
    commit marker), and turns every foreseeable failure into a :class:`DatasetError` whose
    message tells the client what to do next. Usable without MCP, which is how it is tested at
    the unit level.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._loaded: _Loaded | None = None
        self._lock = threading.RLock()
        # queries share one connection, so they run one at a time; nothing else takes this
        self._query_lock = threading.Lock()

    # - loading -

    def _key(self) -> tuple[int, int, int]:
        from .write.atomic import is_our_output

        directory = self.directory
        if not directory.is_dir():
            raise DatasetError(
                f"{directory}: no such dataset directory; create it with "
                f"`hpo-analysis extract SOURCE --out {directory}` and call the tool again"
            )
        manifest = directory / "manifest.csv"
        if not manifest.is_file() or not is_our_output(directory):
            raise DatasetError(
                f"{directory}: not an hpo-analysis output directory (no manifest.csv); run "
                f"`hpo-analysis extract SOURCE --out {directory}`"
            )
        stat = manifest.stat()
        return (directory.stat().st_ino, stat.st_ino, stat.st_mtime_ns)

    def loaded(self) -> _Loaded:
        with self._lock:
            key = self._key()
            if self._loaded is None or self._loaded.key != key:
                if self._loaded is not None:
                    # a query still running on the old connection keeps it (freed after)
                    if self._query_lock.acquire(blocking=False):
                        try:
                            if self._loaded.connection is not None:
                                self._loaded.connection.close()
                        finally:
                            self._query_lock.release()
                    self._loaded.dataset.close()
                    self._loaded = None
                try:
                    dataset = Dataset(self.directory)
                except DatasetError as err:  # says what is missing and what to run
                    raise DatasetError(str(err)) from None
                self._loaded = _Loaded(key, dataset)
            return self._loaded

    @property
    def dataset(self) -> Dataset:
        return self.loaded().dataset

    def _connection(self) -> duckdb.DuckDBPyConnection:
        """The query connection (held with _query_lock), opened on the first query."""
        loaded = self.loaded()
        if loaded.connection is None:
            loaded.connection = self._read(
                lambda: loaded.dataset.locked_connection(QUERY_MEMORY_LIMIT)
            )
        return loaded.connection

    def _read(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` over the dataset; a file that cannot be read becomes one clear message."""
        try:
            return fn()
        except DatasetError:
            raise
        except Exception as err:  # noqa: BLE001 - any load failure becomes one clear message
            raise DatasetError(
                f"{self.directory}: cannot load the dataset ({_first_line(err)}); re-run "
                f"`hpo-analysis extract SOURCE --out {self.directory}` with this version"
            ) from None

    # - tools -

    def overview(self) -> dict[str, Any]:
        """Everything here was computed by extract (hpo_full.json's metadata) or is in the
        Parquet footers: no pass over the trials, however many there are. Made once per
        extract; only the number of annotations is counted again each time."""
        loaded = self.loaded()
        if loaded.overview is None:
            loaded.overview = self._overview(loaded.dataset)
        result = dict(loaded.overview)
        result["annotations"] = len(self._annotations())
        result["how"] = (
            "query(sql) runs read-only DuckDB SQL over the tables; get_trial and get_curve take "
            "study and trial_num, compare_trials STUDY/TRIAL_NUM; column meanings are in the "
            f"README resource {README_URI}"
        )
        return _fit_studies(result, OVERVIEW_MAX_BYTES)

    def _overview(self, dataset: Dataset) -> dict[str, Any]:
        metadata = self._read(lambda: dataset.metadata)
        summary = self._read(dataset.study_summaries)
        names = summary["factors"]
        studies = []
        for entry in summary["studies"]:
            factors = entry.get("factors") or {}
            row: dict[str, Any] = {"study": entry["study"]}
            row.update({name: cell(name, factors.get(name)) for name in names})
            row["n_trials"] = int(entry.get("n_trials", 0))
            row["n_diverged"] = int(entry.get("n_diverged", 0))
            row["direction"] = cell("direction", entry.get("direction"))
            if entry.get("best_trial") is not None:
                row["best_trial"] = cell("trial_num", entry["best_trial"])
                row["best_objective"] = cell("objective", entry.get("best_objective"))
            studies.append(row)
        levels = {
            name: sorted({r[name] for r in studies if r[name] is not None}, key=factor_sort_key)
            for name in names
        }
        # budgets by size (2M < 20M < 200M < 2B), then horizon, then name
        studies.sort(
            key=lambda r: (
                *(factor_sort_key(r.get(name)) for name in ("budget", "horizon") if name in r),
                r["study"],
            )
        )
        result: dict[str, Any] = {
            "dataset": str(self.directory.resolve()),
            "n_trials": int(metadata.get("n_trials", 0)),
            "n_studies": len(studies),
            "n_diverged": int(metadata.get("n_diverged", 0)),
            "factors": levels,
            "states": {str(k): int(v) for k, v in summary["states"].items()},
            "studies": studies,
            "tables": self.tables(),
        }
        findings = self._read(dataset.finding_answers)
        if findings is None:
            result["findings"] = f"{FINDINGS_FILE} not in the dataset (re-run extract)"
        else:
            result["findings"] = [
                {"id": f.get("id"), "answer": shorten(str(f.get("sentence") or f.get("title")))}
                for f in findings
            ]
        return plain(result)

    def tables(self) -> dict[str, Any]:
        """Rows and column names of each table; the diverged table names only what it adds
        to the trials columns."""
        out = self._read(self.dataset.table_info)
        shared = set(out["trials"]["columns"])
        added = [c for c in out["diverged"]["columns"] if c not in shared]
        if len(added) < len(out["diverged"]["columns"]):
            out["diverged"]["columns"] = ["<every trials column>", *added]
        return out

    def query(
        self,
        sql: str,
        max_rows: int = QUERY_DEFAULT_ROWS,
        max_bytes: int = QUERY_MAX_BYTES,
        timeout: float = QUERY_TIMEOUT_SEC,
    ) -> dict[str, Any]:
        import duckdb

        max_rows = max(1, min(int(max_rows), QUERY_MAX_ROWS))
        with self._query_lock:
            con = self._connection()
            statement = check_sql(sql, con)
            timer = threading.Timer(timeout, con.interrupt)
            timer.start()
            try:
                cursor = con.execute(statement)
                columns = [d[0] for d in cursor.description or []]
                types = [str(d[1]) for d in cursor.description or []]
                fetched = cursor.fetchmany(max_rows + 1)
            except duckdb.PermissionException as err:
                raise QueryRefused(
                    "refused: this server reads no files, URLs or extensions; query the tables "
                    f"{', '.join(TABLES)} ({_first_line(err)})"
                ) from None
            except duckdb.InterruptException:
                raise DatasetError(
                    f"query stopped after {timeout:g} s; narrow it (filter, aggregate, LIMIT)"
                ) from None
            except duckdb.OutOfMemoryException:
                raise DatasetError(
                    f"query stopped: it needs more than {QUERY_MEMORY_LIMIT} of working memory; "
                    "narrow it (filter, aggregate, LIMIT, shorter strings)"
                ) from None
            except duckdb.Error as err:
                raise DatasetError(f"{type(err).__name__}: {err}") from None
            finally:
                timer.cancel()
        rows: list[list[Any]] = []
        # the whole response counts: names and types, the keys around them, the reason text
        size = _size({"columns": columns, "types": types}) + _QUERY_ENVELOPE_BYTES
        if size > max_bytes:
            raise DatasetError(
                f"the result's column names and types alone take {size} bytes, over the "
                f"{max_bytes}-byte cap; select fewer columns or give them shorter aliases"
            )
        reason = ""
        for row in fetched[:max_rows]:
            cells = plain(list(row))
            size += _size(cells) + 1
            if size > max_bytes:
                reason = (
                    f"TRUNCATED at {len(rows)} rows: the rows exceed {max_bytes} bytes; select "
                    "fewer columns, aggregate or filter"
                )
                break
            rows.append(cells)
        if not reason and len(fetched) > max_rows:
            reason = (
                f"TRUNCATED at max_rows={max_rows}: the query returns more rows; aggregate, "
                f"filter, page with LIMIT/OFFSET or raise max_rows (up to {QUERY_MAX_ROWS})"
            )
        result: dict[str, Any] = {
            "columns": columns,
            "types": types,
            "rows": rows,
            "row_count": len(rows),
            "truncated": bool(reason),
        }
        if reason:
            result["truncated_reason"] = reason
        return result

    def trial(self, study: str, trial_num: int, include_curve: bool = False) -> dict[str, Any]:
        self._require_trial(study, trial_num)
        try:
            record = dict(self.dataset.trial(study, trial_num))
        except (KeyError, LookupError, ValueError) as err:
            raise DatasetError(f"{study}/{trial_num}: {_first_line(err)}") from None
        if not include_curve and "learning_curve" in record:
            curve = record.pop("learning_curve")
            record["learning_curve_omitted"] = (
                f"{len(curve or [])} epochs; call get_curve (optionally with max_points) or "
                "get_trial with include_curve=true"
            )
        current = [
            {"tag": a.tag, "note": a.note, "updated": a.updated}
            for a in self._annotations()
            if a.key == (study, trial_num)
        ]
        if current != record.get("annotations", current):
            record["annotations_now"] = current  # annotated since the last extract
        return record

    def curve(
        self,
        study: str,
        trial_num: int,
        max_points: int | None = None,
        metrics: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        row = self._require_trial(study, trial_num)
        # As Arrow rather than a DataFrame: a recorded NaN and a missing value stay apart
        # (NaN vs None).
        table = self._read(lambda: self.dataset.curve_table(study, trial_num))
        names = table.column_names
        records = list(zip(*(table.column(n).to_pylist() for n in names), strict=True))
        position = {name: i for i, name in enumerate(names)}
        present = [
            n for n in names if n != "epoch" and any(r[position[n]] is not None for r in records)
        ]
        if metrics:
            unknown = [m for m in metrics if m not in position or m == "epoch"]
            if unknown:
                raise DatasetError(
                    f"unknown metric(s) {', '.join(unknown)}; this curve has "
                    f"{', '.join(present) or 'no metrics'}"
                )
            present = list(dict.fromkeys(metrics))
        epochs = [int(r[position["epoch"]]) for r in records]
        values = [[plain(r[position[m]]) for m in present] for r in records]
        non_finite = [
            (epoch, metric, value)
            for epoch, row_values in zip(epochs, values, strict=True)
            for metric, value in zip(present, row_values, strict=True)
            if isinstance(value, str)
        ]
        bad = sorted({epoch for epoch, _, _ in non_finite})
        best_epoch = cell("best_epoch", row.get("best_epoch"))
        diverge_epoch = self._diverge_epoch(study, trial_num)
        keep = [e for e in (best_epoch, diverge_epoch) if isinstance(e, int)]
        summary = {
            "n_epochs": len(epochs),
            "first_epoch": epochs[0] if epochs else None,
            "last_epoch": epochs[-1] if epochs else None,
            "best_epoch": best_epoch,
            "best_val_loss": cell("best_val_loss", row.get("best_val_loss")),
            "diverged": cell("diverged", row.get("diverged")),
            "diverge_epoch": diverge_epoch,
            "first_non_finite_epoch": bad[0] if bad else None,
            "n_non_finite": len(non_finite),
        }
        kept = epochs
        note = None
        if max_points is not None and len(epochs) > max_points:
            kept = downsample(epochs, max_points, keep=[*keep, *bad])
            if len(kept) > max_points:  # too many non-finite epochs: keep where runs start/end
                kept = downsample(epochs, max_points, keep=[*keep, *_run_edges(epochs, bad)])
            note = (
                f"downsampled from {len(epochs)} to {len(kept)} epochs; first, last, best, "
                "diverge and non-finite epochs kept"
            )
        wanted = set(kept)
        rows = [
            [epoch, *row_values]
            for epoch, row_values in zip(epochs, values, strict=True)
            if epoch in wanted
        ]
        result = {
            "study": study,
            "trial_num": trial_num,
            "summary": summary,
            "columns": ["epoch", *present],
            "rows": rows,
        }
        if note:
            result["downsampled"] = note
        if len(dumps(result)) > CURVE_MAX_BYTES:
            raise DatasetError(
                f"{study}/{trial_num}: the curve has {len(epochs)} epochs, too many to return "
                "whole; pass max_points (e.g. 200) or select metrics"
            )
        return result

    def compare(self, refs: Sequence[str]) -> dict[str, Any]:
        if not refs:
            raise DatasetError("give at least one trial as STUDY/TRIAL_NUM")
        pairs = [parse_trial_ref(r) for r in refs]
        added = None
        if len(pairs) == 1:
            similar = self._similar(*pairs[0])
            if similar is None:
                raise DatasetError(
                    f"{refs[0]} is not a diverged trial with a similar successful trial; give "
                    "two or more trials to compare"
                )
            pairs.append(similar)
            added = f"{similar[0]}/{similar[1]} is the similar successful trial of {refs[0]}"
        if len(pairs) > COMPARE_MAX_TRIALS:
            raise DatasetError(f"at most {COMPARE_MAX_TRIALS} trials at a time; got {len(pairs)}")
        rows = [self._require_trial(s, n) for s, n in pairs]
        diagnosis_rows = [self._diverged_row(s, n) or {} for s, n in pairs]
        trials_columns = self.tables()["trials"]["columns"]
        groups: dict[str, list[str]] = {
            "architecture": [],
            "hyperparameters": [],
            "outcome": [],
            "curve": [],
        }
        for column in COLUMNS:
            if column.name in _COMPARE_SECTIONS:
                section = _COMPARE_SECTIONS[column.name]
            else:
                section = _SECTION_OF_GROUP.get(column.group, "")
            if section:
                groups[section].append(column.name)
        groups["hyperparameters"] += sorted(
            c for c in trials_columns if c.startswith(PARAM_PREFIX) and c not in BY_NAME
        )
        result: dict[str, Any] = {"trials": [f"{s}/{n}" for s, n in pairs]}
        if added:
            result["added"] = added
        differs = []
        for section, names in groups.items():
            table: dict[str, list[Any]] = {}
            for name in names:
                values = [
                    cell(name, row[name] if name in row else diagnosis.get(name))
                    for row, diagnosis in zip(rows, diagnosis_rows, strict=True)
                ]
                if all(v is None for v in values):
                    continue
                table[name] = values
                if len({json.dumps(v) for v in values}) > 1:
                    differs.append(name)
            result[section] = table
        result["differs"] = differs
        return result

    def findings(self, finding_id: str | None = None) -> Any:
        """Without an id, every finding's answer (id, title, section, sentence, n, size of its
        table) and the thresholds; with one, that finding with at most
        :data:`FINDING_MAX_ROWS` rows of its table and of its estimates. findings.json holds
        tens of MB at a thousand studies, too much for one answer."""
        document = self._findings_document()
        if document is None:
            raise DatasetError(
                f"{self.directory / FINDINGS_FILE} does not exist: this dataset was extracted "
                "before findings were written; re-run `hpo-analysis extract` to create it"
            )
        findings = self._read_findings() or []
        if finding_id is None:
            head = {k: v for k, v in document.items() if k != "findings"}
            head["findings"] = [
                {
                    **{k: f.get(k) for k in ("id", "title", "section", "sentence", "n")},
                    "table_rows": len(f.get("rows") or []),
                }
                for f in findings
            ]
            head["more"] = "call findings with an id for its table, notes and estimates"
            return head
        for finding in findings:
            if str(finding.get("id")) == finding_id:
                return self._finding_capped(finding)
        ids = ", ".join(str(f.get("id")) for f in findings)
        raise DatasetError(f"no finding {finding_id!r}; the findings are: {ids}")

    def _finding_capped(self, finding: dict[str, Any]) -> dict[str, Any]:
        result = dict(finding)
        for key in ("rows", "estimates"):
            items = finding.get(key)
            if isinstance(items, list) and len(items) > FINDING_MAX_ROWS:
                result[key] = items[:FINDING_MAX_ROWS]
                result[f"{key}_total"] = len(items)
                result[f"{key}_cut"] = (
                    f"the first {FINDING_MAX_ROWS} of {len(items)}; all are in "
                    f"{self.directory / FINDINGS_FILE}"
                )
        return result

    def annotate(
        self, study: str, trial_num: int, tag: str, note: str, remove: bool
    ) -> dict[str, Any]:
        from .annotations import AnnotationError, add_annotation

        self._key()  # a dataset directory must exist
        if not tag and not note:
            raise DatasetError("give a tag and/or a note")
        try:
            add_annotation(self.directory, study, trial_num, tag=tag, note=note, remove=remove)
        except AnnotationError as err:
            raise DatasetError(str(err)) from None
        try:
            known = self.dataset.has_trial(study, trial_num)
        except Exception:  # noqa: BLE001 - a dataset that cannot be read holds no trial
            known = False
        return {
            "saved": not remove,
            "removed": remove,
            "file": str(self.directory / "annotations.csv"),
            "trial_in_dataset": known,
            "annotations": [
                {"tag": a.tag, "note": a.note, "updated": a.updated}
                for a in self._annotations()
                if a.key == (study, trial_num)
            ],
        }

    def readme(self) -> str:
        return self._read_text("README.md", "the data dictionary")

    def json_schema(self) -> str:
        return self._read_text(SCHEMA_FILE, "the JSON Schema of hpo_full.json")

    # - internals -

    def _read_text(self, name: str, what: str) -> str:
        self._key()
        path = self.directory / name
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise DatasetError(
                f"{path} does not exist ({what}); re-run `hpo-analysis extract` with this version"
            ) from None
        except (OSError, UnicodeDecodeError) as err:
            raise DatasetError(f"{path}: cannot read: {err}") from None

    def _findings_document(self) -> Any:
        """findings.json as written (None when absent): the findings and their thresholds."""
        return self._read(self.dataset.findings_document)

    def _read_findings(self) -> list[dict[str, Any]] | None:
        data = self._findings_document()
        if data is None:
            return None
        return [f for f in data["findings"] if isinstance(f, dict)]

    def _annotations(self) -> list[Any]:
        """The current annotations; none when annotations.csv cannot be read (annotate says
        why when it is called)."""
        from .annotations import AnnotationError

        try:
            return self.dataset.annotations()
        except AnnotationError:
            return []

    def _require_trial(self, study: str, trial_num: int) -> dict[str, Any]:
        """The trial's row of the trials table, or an error that says which trials exist."""
        dataset = self.dataset
        row = self._read(lambda: dataset.trial_row(study, trial_num))
        if row is not None:
            return row
        studies = sorted(e["study"] for e in self._read(dataset.study_summaries)["studies"])
        if study not in studies:
            import difflib

            close = difflib.get_close_matches(study, studies, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise DatasetError(
                f"no study {study!r} in the dataset ({len(studies)} studies; list them with "
                f"overview){hint}"
            )
        numbers = self._read(lambda: dataset.trial_numbers(study))
        raise DatasetError(
            f"no trial {trial_num} in study {study!r} (its trials are numbered "
            f"{min(numbers)} to {max(numbers)}, {len(numbers)} trials)"
        )

    def _diverged_row(self, study: str, trial_num: int) -> dict[str, Any] | None:
        return self._read(lambda: self.dataset.diverged_row(study, trial_num))

    def _diverge_epoch(self, study: str, trial_num: int) -> int | None:
        row = self._diverged_row(study, trial_num)
        value = cell("diverge_epoch", row.get("diverge_epoch")) if row else None
        return value if isinstance(value, int) else None

    def _similar(self, study: str, trial_num: int) -> tuple[str, int] | None:
        self._require_trial(study, trial_num)
        row = self._diverged_row(study, trial_num)
        ref = cell("similar_successful_trial", row.get("similar_successful_trial")) if row else None
        return parse_trial_ref(ref) if ref else None


_SECTION_OF_GROUP = {
    "architecture": "architecture",
    "training_params": "hyperparameters",
    "results": "outcome",
    "flags": "outcome",
    "dynamics": "curve",
    "diagnosis": "curve",
}
_COMPARE_SECTIONS = {
    "state": "outcome",
    "best_epoch": "curve",
    "best_val_loss": "curve",
    "train_loss": "curve",
    "final_val_auc": "curve",
    "curve_non_finite": "curve",
    "datetime_start": "",
    "datetime_complete": "",
    "direction_source": "",
    "objective_name": "",
    "similar_val_loss": "",
    "similar_distance": "",
}


def _fit_studies(overview: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """``overview`` with as many studies as fit in ``max_bytes``, saying how many were left out.

    Example::

        >>> big = {"n_studies": 3, "studies": [{"study": "s" * 100}] * 3}
        >>> small = _fit_studies(big, 320)
        >>> len(small["studies"]), small["studies_truncated"][:25]
        (1, 'TRUNCATED: 1 of 3 studies')
    """
    overview = plain(overview)  # once: the encodings below need no conversion
    studies = overview["studies"]

    def size(data: Any) -> int:  # len(dumps(data)) of plain data
        return len(json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False))

    if size(overview) <= max_bytes:
        return overview
    note = (
        "TRUNCATED: {} of {} studies listed to keep the overview small; the rest with "
        "query('SELECT study, budget, horizon, count(*) FROM trials GROUP BY ALL')"
    )

    def cut(kept: int) -> dict[str, Any]:
        return {
            **overview,
            "studies": studies[:kept],
            "studies_truncated": note.format(kept, len(studies)),
        }

    # the largest number of studies that fits, by bisection: a few encodings of the overview
    # instead of one per study dropped (thousands of studies made that quadratic)
    low, high = 0, len(studies) - 1
    while low < high:
        middle = (low + high + 1) // 2
        if size(cut(middle)) <= max_bytes:
            low = middle
        else:
            high = middle - 1
    return cut(low)


def _run_edges(epochs: Sequence[int], marked: Sequence[int]) -> list[int]:
    """First and last epoch of each run of consecutive ``marked`` epochs (in curve order)."""
    flags = [e in set(marked) for e in epochs]
    edges = []
    for i, flag in enumerate(flags):
        if flag and (i == 0 or not flags[i - 1]):
            edges.append(epochs[i])
        if flag and (i == len(flags) - 1 or not flags[i + 1]):
            edges.append(epochs[i])
    return edges


# Room for the keys of a query response besides columns, types and rows (row_count,
# truncated, truncated_reason with its text).
_QUERY_ENVELOPE_BYTES = 400


def _size(data: Any) -> int:
    """Bytes of ``data`` as sent (compact JSON, UTF-8)."""
    return len(dumps(data).encode("utf-8"))


# --- the MCP server ---------------------------------------------------------------------------

_INSTRUCTIONS = """\
HPO study results (one row per trial) extracted by hpo-analysis. Start with `overview` \
(studies, factors, counts, findings, table columns). Use `query` for anything tabular: \
read-only DuckDB SQL over `trials` (one row per trial), `curves` (one row per trial and epoch) \
and `diverged` (diverged trials with diverge_epoch and similar_successful_trial). Use \
`get_trial`, `get_curve` and `compare_trials` for single trials. Column meanings: the README \
resource."""


# Argument types of the tools, with the descriptions and bounds that become their JSON Schema.
# Module level because the SDK resolves the (string) annotations in the module's namespace.
try:
    from pydantic import Field
except ImportError:  # pragma: no cover - pydantic comes with the mcp extra
    pass
else:
    StudyArg = Annotated[str, Field(description="Study name exactly as in the `study` column.")]
    TrialNumArg = Annotated[int, Field(ge=0, description="Trial number within the study.")]
    SqlArg = Annotated[str, Field(description="One SELECT / WITH statement.")]
    MaxRowsArg = Annotated[
        int,
        Field(ge=1, le=QUERY_MAX_ROWS, description="Most rows to return."),
    ]
    IncludeCurveArg = Annotated[bool, Field(description="Also return the full learning curve.")]
    MaxPointsArg = Annotated[
        int | None,
        Field(ge=2, le=10_000, description="Downsample to about this many epochs."),
    ]
    MetricsArg = Annotated[
        list[str] | None,
        Field(description='Only these metrics, e.g. ["val_loss"] (default: all).'),
    ]
    TrialRefsArg = Annotated[
        list[str],
        Field(
            min_length=1,
            max_length=COMPARE_MAX_TRIALS,
            description="Trials as STUDY/TRIAL_NUM, e.g. "
            '["phase6a_2B_h3_threshold_1pct/12", "phase6a_2B_h3_threshold_1pct/30"].',
        ),
    ]
    FindingIdArg = Annotated[
        str | None, Field(description="A finding id from overview or a previous call.")
    ]
    TagArg = Annotated[
        str,
        Field(
            max_length=MAX_TAG_CHARS,
            description=f"A short label, e.g. lr-too-high (at most {MAX_TAG_CHARS} characters).",
        ),
    ]
    NoteArg = Annotated[
        str,
        Field(
            max_length=MAX_NOTE_CHARS,
            description=f"Free text (at most {MAX_NOTE_CHARS} characters).",
        ),
    ]
    RemoveArg = Annotated[bool, Field(description="Remove the annotation with this tag.")]


def _mcp_api() -> tuple[Any, type[Exception], type[Exception], Any]:
    """The server class, ToolError, ResourceError and ToolAnnotations of the installed SDK.

    mcp 2 renamed ``FastMCP`` to ``MCPServer``; both are supported.
    """
    from mcp.types import ToolAnnotations

    try:
        from mcp.server.mcpserver import MCPServer as Server
        from mcp.server.mcpserver.exceptions import ResourceError, ToolError
    except ImportError:  # mcp 1.x
        from mcp.server.fastmcp import (  # type: ignore[no-redef, attr-defined, unused-ignore]
            FastMCP as Server,
        )
        from mcp.server.fastmcp.exceptions import (  # type: ignore[no-redef, import-not-found, unused-ignore]
            ResourceError,
            ToolError,
        )
    return Server, ToolError, ResourceError, ToolAnnotations


def build_server(directory: Path, *, allow_annotate: bool = False) -> Any:
    """The MCP server for ``directory`` (not started); ``run_server`` starts it on stdio.

    Example::

        >>> server = build_server(Path("outputs/analysis"))  # doctest: +SKIP
        >>> server.run("stdio")  # doctest: +SKIP
    """
    import anyio.to_thread

    from .version import __version__

    Server, ToolError, ResourceError, ToolAnnotations = _mcp_api()
    service = DatasetService(directory)
    try:
        server = Server(
            SERVER_NAME, instructions=_INSTRUCTIONS, log_level="WARNING", version=__version__
        )
    except TypeError:  # mcp 1.x takes no version
        server = Server(SERVER_NAME, instructions=_INSTRUCTIONS, log_level="WARNING")
    read_only = ToolAnnotations.model_validate(
        {"readOnlyHint": True, "destructiveHint": False, "idempotentHint": True}
    )

    async def call(fn: Callable[..., Any], *args: Any) -> str:
        try:
            return dumps(await anyio.to_thread.run_sync(fn, *args))
        except DatasetError as err:
            raise ToolError(str(err)) from None
        except Exception as err:  # a bug: say what happened rather than only "error"
            raise ToolError(f"internal error: {type(err).__name__}: {_first_line(err)}") from err

    def tool(name: str, description: str, annotations: Any = read_only) -> Callable[[Any], Any]:
        return server.tool(name=name, description=description, annotations=annotations)

    @tool(
        "overview",
        "The dataset at a glance, in a few KB: number of trials, studies and diverged trials; "
        "the factors parsed from study names (budget, horizon, ...) and their levels; per study "
        "its factors, trial count, diverged count, direction and best trial; the tables "
        "available to `query` with their columns; the one-line answers of the findings; the "
        "number of annotations. Call this first.",
    )
    async def overview() -> str:
        return await call(service.overview)

    @tool(
        "query",
        "Run ONE read-only DuckDB SQL statement (SELECT or WITH ... SELECT; also DESCRIBE, "
        "SUMMARIZE, SHOW) over the tables `trials` (one row per trial: the hpo_summary.csv "
        "columns), `curves` (one row per trial and epoch: study, trial_num, epoch, train_loss, "
        "val_loss, val_auc, ...) and `diverged` (diverged trials: diverge_epoch, "
        "last_good_loss, loss_at_diverge, diverge_kind, similar_successful_trial, ...). Join "
        "on (study, trial_num). Returns {columns, types, rows, row_count, truncated}. At most "
        f"max_rows rows (default {QUERY_DEFAULT_ROWS}, up to {QUERY_MAX_ROWS}) and "
        f"{QUERY_MAX_BYTES} bytes of rows are returned; when cut, truncated is true and "
        "truncated_reason says so: aggregate or filter instead. NaN/Infinity values come back "
        'as the strings "NaN"/"Infinity"/"-Infinity", SQL NULL as null. Statements that '
        "write, read files or URLs (read_csv, read_parquet, glob, ...), COPY, ATTACH, "
        f"INSTALL/LOAD, PRAGMA and SET are refused. Queries stop after {QUERY_TIMEOUT_SEC:g} s. "
        "Example: SELECT t.study, t.trial_num, d.diverge_epoch FROM trials t JOIN diverged d "
        "USING (study, trial_num) WHERE t.budget = '2B' AND d.diverge_epoch < 5",
    )
    async def query(
        sql: SqlArg,
        max_rows: MaxRowsArg = QUERY_DEFAULT_ROWS,
    ) -> str:
        return await call(service.query, sql, max_rows)

    @tool(
        "get_trial",
        "One trial's full record as in hpo_full.json: study factors, architecture, "
        "training_params, results, dynamics, flags, annotations, provenance and, for diverged "
        "trials, the diagnosis. The learning curve is left out unless include_curve is true "
        "(use get_curve for a compact, optionally downsampled curve). If the trial was "
        "annotated since the last extract, annotations_now has the current annotations.",
    )
    async def get_trial(
        study: StudyArg,
        trial_num: TrialNumArg,
        include_curve: IncludeCurveArg = False,
    ) -> str:
        return await call(service.trial, study, trial_num, include_curve)

    @tool(
        "get_curve",
        "A trial's learning curve: {summary, columns, rows} with one row per epoch (epoch, "
        "train_loss, val_loss, val_auc, ...). summary gives n_epochs, best_epoch, "
        "best_val_loss, diverged, diverge_epoch and the first non-finite epoch. With "
        "max_points the curve is downsampled to about that many epochs, always keeping the "
        "first, last, best and diverge epochs and the non-finite values (where a run of "
        "non-finite values is too long, its first and last epochs). NaN/Infinity are the "
        'strings "NaN"/"Infinity"/"-Infinity".',
    )
    async def get_curve(
        study: StudyArg,
        trial_num: TrialNumArg,
        max_points: MaxPointsArg = None,
        metrics: MetricsArg = None,
    ) -> str:
        return await call(service.curve, study, trial_num, max_points, metrics)

    @tool(
        "compare_trials",
        "Two or more trials side by side, as {trials, architecture, hyperparameters, outcome, "
        "curve, differs}: each section maps a field to its values in the order of `trials`; "
        "`differs` lists the fields whose values differ. The curve section holds epochs "
        "trained, best epoch and loss, and for diverged trials diverge_epoch, last_good_loss "
        'and diverge_kind. Give trials as "STUDY/TRIAL_NUM" (the form of '
        "similar_successful_trial). Give ONE diverged trial to compare it with its similar "
        f"successful trial. At most {COMPARE_MAX_TRIALS} trials.",
    )
    async def compare_trials(
        trials: TrialRefsArg,
    ) -> str:
        return await call(service.compare, trials)

    @tool(
        "findings",
        "The findings computed by extract (the README's 'Known patterns and findings'). "
        "Without id: each finding's id, title, one-sentence answer, n and table size, and the "
        f"thresholds; with id: that finding with its table (columns, rows; at most "
        f"{FINDING_MAX_ROWS} rows), notes and estimates.",
    )
    async def findings(
        id: FindingIdArg = None,
    ) -> str:
        return await call(service.findings, id)

    if allow_annotate:
        writes = ToolAnnotations.model_validate(
            {"readOnlyHint": False, "destructiveHint": False, "idempotentHint": True}
        )

        @tool(
            "annotate",
            "Tag and/or note a trial in annotations.csv of the dataset directory (kept across "
            "re-extraction; merged into hpo_summary.csv and hpo_full.json by the next "
            "extract). One annotation per study, trial and tag: the same tag again replaces "
            "its note; remove=true deletes the annotation with that tag. A trial that is not "
            "in the dataset is refused. Returns the trial's current annotations.",
            annotations=writes,
        )
        async def annotate(
            study: StudyArg,
            trial_num: TrialNumArg,
            tag: TagArg = "",
            note: NoteArg = "",
            remove: RemoveArg = False,
        ) -> str:
            return await call(service.annotate, study, trial_num, tag, note, remove)

    def resource_text(fn: Callable[[], str]) -> str:
        try:
            return fn()
        except DatasetError as err:
            raise ResourceError(str(err)) from None

    @server.resource(
        README_URI,
        name="README",
        description="The dataset's generated README: data dictionary (every column, its type, "
        "unit and meaning), definitions, lineage and findings.",
        mime_type="text/markdown",
    )
    def readme() -> str:
        return resource_text(service.readme)

    @server.resource(
        SCHEMA_URI,
        name="JSON Schema",
        description="JSON Schema of hpo_full.json: every field of a trial record.",
        mime_type="application/schema+json",
    )
    def json_schema() -> str:
        return resource_text(service.json_schema)

    return server


def run_server(directory: Path, *, allow_annotate: bool = False) -> None:
    """Serve ``directory`` over stdio until the client closes the connection."""
    if not Path(directory).is_dir():
        print(
            f"hpo-analysis mcp: warning: {directory} does not exist yet; tools will say so "
            "until a dataset is extracted there",
            file=sys.stderr,
        )
    build_server(Path(directory), allow_annotate=allow_annotate).run("stdio")
