"""Interactive access to an extracted dataset: pandas tables, one trial, one curve, SQL.

A notebook or a chat session goes from the summary to one trial's learning curve without
loading ``hpo_full.json``: the tables come from the Parquet files, a single trial is read from
its own line of ``hpo_full.json`` (located by ``hpo_full.index.parquet``), a single curve with
a filtered Parquet read, and :meth:`Dataset.sql` runs DuckDB over the Parquet files.

Examples (they run as tests against the bundled example, extracted to ``outputs/analysis``)::

    >>> import hpo_analysis
    >>> ds = hpo_analysis.load("outputs/analysis")
    >>> ds
    <Dataset outputs/analysis: 600 trials in 12 studies, 14 diverged>
    >>> best = ds.trials[ds.trials.is_best_in_study]
    >>> print(best[["study", "trial_num", "objective"]].head(2).to_string(index=False))
                             study  trial_num  objective
    phase6a_200M_h1_threshold_1pct         46   0.600498
    phase6a_200M_h3_threshold_1pct         21   0.640948
    >>> trial = ds.trial("phase6a_2B_h1_threshold_1pct", 2)
    >>> trial["flags"], trial["dynamics"]["stop_reason"], len(trial["learning_curve"])
    ({'diverged': True, 'curve_non_finite': 9}, 'diverged', 17)
    >>> curve = ds.curve("phase6a_2B_h1_threshold_1pct", 2)
    >>> print(curve[["epoch", "val_loss"]].iloc[12:15].to_string(index=False))
     epoch  val_loss
        12  0.681183
        13  0.680465
        14       NaN
    >>> print(ds.sql(
    ...     "SELECT budget, count(*) AS trials, count(*) FILTER (WHERE diverged) AS diverged "
    ...     "FROM trials GROUP BY budget, budget_params ORDER BY budget_params"
    ... ).to_string(index=False))
    budget  trials  diverged
        2M     150         0
       20M     150         0
      200M     150         0
        2B     150        14

Column types: integers are pandas ``Int64`` and booleans ``boolean`` (both nullable, so a
missing value stays missing); floats are ``float64`` with NaN for a missing value. In
``curves`` a NaN may also be a NaN the run recorded; use DuckDB (``isnan(val_loss)`` versus
``val_loss IS NULL``) or pyarrow when the difference matters.

This is the one read side of a dataset: ``hpo-analysis query``, the MCP server
(:mod:`hpo_analysis.mcp_server`) and ``hpo-analysis report`` all read through :class:`Dataset`,
so a file's layout is known in one place and every reader gives the same answer.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import HpoAnalysisError, MissingExtra, install_hint
from .finding import Finding
from .fulljson import FullJsonError, loads_strict, read_full_json, read_trial_at
from .layout import (
    CURVES_PARQUET,
    DIVERGED_JSON,
    DIVERGED_PARQUET,
    FINDINGS_JSON,
    FULL_JSON,
    FULL_JSON_INDEX,
    SUMMARY_CSV,
    TRIALS_PARQUET,
)
from .schema import BY_NAME
from .write.cells import allow_large_csv_fields, csv_cell, unneutralize

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    import pyarrow as pa

    from .annotations import Annotation

TABLES = {"trials": TRIALS_PARQUET, "curves": CURVES_PARQUET, "diverged": DIVERGED_PARQUET}
QUERY_HINT = install_hint("query")


class DatasetError(HpoAnalysisError):
    """The directory is not a usable hpo-analysis output, or it cannot answer a request (an
    unknown trial, a refused query); the message says why and what to do next.

    The one error of the read side: the command line, the MCP server (which shows the
    message to its client as is) and the report all raise and catch this class.
    """

    exit_code = 2  # the directory given is not a dataset: a usage error


class QueryRefused(DatasetError):
    """SQL that is not a single read-only query (see :func:`check_sql`)."""

    exit_code = 1
    label = "query refused"


class QueryError(HpoAnalysisError):
    """A SQL query failed; ``str(err)`` is DuckDB's message on one line."""

    label = "query error"


# An optional dependency is not installed; the message says how to install it.
MissingDependency = MissingExtra


def load(directory: str | os.PathLike[str] = "outputs/analysis") -> Dataset:
    """Open the dataset that ``hpo-analysis extract`` wrote into ``directory``.

    Nothing is read until a table is asked for. Raises :class:`DatasetError` when the
    directory holds no such dataset.
    """
    return Dataset(directory)


def _pandas_types() -> Any:
    import pandas as pd
    import pyarrow as pa

    return {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}.get


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    return table.to_pandas(types_mapper=_pandas_types())


class Dataset:
    """An extracted dataset: ``trials``, ``curves``, ``diverged``, ``trial()``, ``curve()``,
    ``sql()``. Tables are read on first use and kept."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise DatasetError(f"{self.directory}: no such directory")
        missing = [name for name in TABLES.values() if not (self.directory / name).is_file()]
        if missing:
            raise DatasetError(
                f"{self.directory}: not an hpo-analysis dataset with Parquet tables (missing "
                f"{', '.join(missing)}); run: hpo-analysis extract SOURCE --out {self.directory}"
            )
        self._connection: duckdb.DuckDBPyConnection | None = None
        self._findings_document: tuple[dict[str, Any] | None] | None = None

    def __repr__(self) -> str:
        import pyarrow.parquet as pq

        trials = pq.read_table(self._path("trials"), columns=["study"]).column("study")
        diverged = pq.read_metadata(self._path("diverged")).num_rows
        return (
            f"<Dataset {self.directory.as_posix()}: {len(trials)} trials in "
            f"{len(trials.unique())} studies, {diverged} diverged>"
        )

    def _path(self, table: str) -> Path:
        return self.directory / TABLES[table]

    @cached_property
    def trials(self) -> pd.DataFrame:
        """One row per trial: the columns of hpo_summary.csv, typed (see the data dictionary)."""
        import pyarrow.parquet as pq

        return _to_pandas(pq.read_table(self._path("trials")))

    @cached_property
    def diverged(self) -> pd.DataFrame:
        """The diverged trials with their divergence diagnosis (diverged_analysis.csv)."""
        import pyarrow.parquet as pq

        return _to_pandas(pq.read_table(self._path("diverged")))

    @cached_property
    def curves(self) -> pd.DataFrame:
        """Every learning curve, one row per (study, trial_num, epoch). Large datasets: prefer
        :meth:`curve` or :meth:`sql`, which read only what they need."""
        import pyarrow.parquet as pq

        return _to_pandas(pq.read_table(self._path("curves")))

    @cached_property
    def metadata(self) -> dict[str, Any]:
        """The run's metadata (command, settings, studies), from hpo_full.json's head.

        ``studies`` has one entry per study: its factors, direction, trial and diverged
        counts and its best trial, computed once by extract (see :func:`study_summaries`)."""
        path = self.directory / FULL_JSON
        try:
            metadata, trials = read_full_json(path)
        except FileNotFoundError:
            raise DatasetError(f"{path}: missing; {self._rerun}") from None
        except (OSError, FullJsonError) as err:
            raise DatasetError(f"{path}: cannot be read ({err}); {self._rerun}") from None
        trials.close()  # type: ignore[attr-defined]
        return metadata

    @property
    def _rerun(self) -> str:
        return f"run: hpo-analysis extract SOURCE --out {self.directory}"

    @cached_property
    def _index(self) -> dict[tuple[str, int], tuple[int, int, int]]:
        """(study, trial_num) -> (offset, length) of the trial's line in hpo_full.json, and
        its position in the trials table (extract writes both in the same order).

        Read once (a few MB at 100,000 trials): every later lookup is a dictionary access and
        one small read instead of a filtered Parquet read."""
        import pyarrow.parquet as pq

        index = pq.read_table(self.directory / FULL_JSON_INDEX).to_pydict()
        keys = zip(index["study"], index["trial_num"], strict=True)
        where = zip(index["offset"], index["length"], range(len(index["study"])), strict=True)
        return dict(zip(keys, where, strict=True))

    @cached_property
    def _trials_arrow(self) -> pa.Table:
        """The trials table as Arrow, read once for row lookups (a tenth of the pandas
        table's memory, and no conversion)."""
        import pyarrow.parquet as pq

        return pq.read_table(self._path("trials"))

    def has_trial(self, study: str, trial_num: int) -> bool:
        """Whether the dataset holds this trial (from hpo_full.index.parquet)."""
        return (study, int(trial_num)) in self._index

    def trial_numbers(self, study: str) -> list[int]:
        """The trial numbers of ``study``, in order (empty for an unknown study)."""
        return sorted(n for s, n in self._index if s == study)

    def trial(self, study: str, trial_num: int) -> dict[str, Any]:
        """The full record of one trial, exactly as in hpo_full.json (one line is read)."""
        where = self._index.get((study, int(trial_num)))
        if where is None:
            raise KeyError(f"no trial {trial_num} in study {study!r}")
        return read_trial_at(self.directory / FULL_JSON, where[0], where[1])

    def trial_row(self, study: str, trial_num: int) -> dict[str, Any] | None:
        """One trial's row of the ``trials`` table as plain Python values (None when absent).

        The table is read once (as Arrow) and the row found by its position in the index;
        a missing value is None and a non-finite float stays a float."""
        where = self._index.get((study, int(trial_num)))
        if where is None:
            return None
        table = self._trials_arrow
        if where[2] < table.num_rows:
            row = table.slice(where[2], 1).to_pylist()[0]
            if row.get("study") == study and row.get("trial_num") == int(trial_num):
                return row
        rows = self._filtered("trials", study, trial_num).to_pylist()  # not extract's order
        return rows[0] if rows else None

    def diverged_row(self, study: str, trial_num: int) -> dict[str, Any] | None:
        """One diverged trial's row of the ``diverged`` table (None when it did not diverge)."""
        rows = self._filtered("diverged", study, trial_num).to_pylist()
        return rows[0] if rows else None

    def curve_table(self, study: str, trial_num: int) -> pa.Table:
        """One trial's learning curve as Arrow, ordered by epoch: unlike pandas, a recorded
        NaN stays NaN and a missing value stays null. Raises KeyError for an unknown trial."""
        table = self._filtered("curves", study, trial_num)
        if table.num_rows == 0 and not self.has_trial(study, trial_num):
            raise KeyError(f"no trial {trial_num} in study {study!r}")
        table = table.drop_columns(["study", "trial_num"])
        return table.sort_by("epoch") if table.num_rows > 1 else table

    def curve(self, study: str, trial_num: int) -> pd.DataFrame:
        """One trial's learning curve (epoch and metrics), read from curves.parquet alone."""
        return _to_pandas(self.curve_table(study, trial_num))

    def _filtered(self, table: str, study: str, trial_num: int) -> pa.Table:
        """The rows of ``table`` for one trial; the files are sorted by (study, trial_num), so
        the row groups' statistics let the reader skip the others."""
        import pyarrow.parquet as pq

        return pq.read_table(
            self._path(table),
            filters=[("study", "==", study), ("trial_num", "==", int(trial_num))],
        )

    def study_summaries(self) -> dict[str, Any]:
        """``factors`` (names), ``states`` (trials by state) and ``studies``: per study its
        factors, direction, trial and diverged counts and best trial (see
        :func:`study_summaries`). Taken from the metadata extract wrote; for a dataset
        extracted before extract kept them, computed from the trials table."""
        metadata = self.metadata
        studies = [e for e in metadata.get("studies", []) if isinstance(e, dict)]
        if "factors" in metadata and "states" in metadata:
            return {
                "factors": metadata["factors"],
                "states": metadata["states"],
                "studies": studies,
            }
        import pyarrow.parquet as pq

        computed = study_summaries(pq.read_table(self._path("trials")).to_pylist())
        return {
            "factors": computed["factors"],
            "states": computed["states"],
            "studies": [{**e, **computed["studies"].get(e.get("study"), {})} for e in studies],
        }

    def table_info(self) -> dict[str, dict[str, Any]]:
        """Rows and column names of each table, from the Parquet footers (no data is read)."""
        import pyarrow.parquet as pq

        info: dict[str, dict[str, Any]] = {}
        for name in TABLES:
            meta = pq.read_metadata(self._path(name))
            info[name] = {
                "rows": meta.num_rows,
                "columns": list(meta.schema.to_arrow_schema().names),
            }
        return info

    def finding_answers(self) -> list[dict[str, Any]] | None:
        """Each finding's ``id``, ``title`` and one-sentence answer, without its table: kept
        by extract in the metadata (findings.json is read for a dataset extracted before);
        None when the dataset has no findings."""
        answers = self.metadata.get("finding_answers")
        if isinstance(answers, list):
            return [a for a in answers if isinstance(a, dict)]
        document = self.findings_document()
        if document is None:
            return None
        return [
            {"id": f.get("id"), "title": f.get("title"), "sentence": f.get("sentence")}
            for f in document["findings"]
            if isinstance(f, dict)
        ]

    def findings_document(self) -> dict[str, Any] | None:
        """findings.json as extract wrote it (None when the dataset has none: an older
        extract); strict JSON, so a number that was not finite is null. Parsed once."""
        if self._findings_document is None:
            self._findings_document = (self._read_findings_document(),)
        return self._findings_document[0]

    def _read_findings_document(self) -> dict[str, Any] | None:
        path = self.directory / FINDINGS_JSON
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise DatasetError(f"{path}: cannot be read: {err.strerror}") from None
        document = _strict_document(path, data)
        if not isinstance(document.get("findings"), list):
            raise DatasetError(f"{path}: no list of findings; {self._rerun}")
        return document

    def findings(self) -> list[Finding]:
        """The findings extract computed, as :class:`~hpo_analysis.finding.Finding` objects."""
        document = self.findings_document()
        path = self.directory / FINDINGS_JSON
        if document is None:
            raise DatasetError(f"{path}: missing; {self._rerun}")
        try:
            return [Finding.from_dict(item) for item in document["findings"]]
        except (KeyError, TypeError, ValueError) as err:
            raise DatasetError(f"{path}: unexpected layout ({err!r})") from None

    def diverged_document(self) -> dict[str, Any]:
        """diverged_analysis.json: ``metadata`` and ``trials`` (each diverged trial with its
        learning curve and its similar successful trial's)."""
        path = self.directory / DIVERGED_JSON
        try:
            data = path.read_bytes()
        except OSError as err:
            raise DatasetError(f"{path}: cannot be read: {err.strerror}; {self._rerun}") from None
        return _strict_document(path, data)

    def annotations(self) -> list[Annotation]:
        """The annotations as annotations.csv holds them now (tags and notes added since the
        last extract included; the next extract merges them into the tables). Raises
        :class:`~hpo_analysis.annotations.AnnotationError` when the file cannot be read."""
        from .annotations import ANNOTATIONS_CSV, read_annotations

        return read_annotations(self.directory / ANNOTATIONS_CSV)

    def summary_rows(self) -> list[dict[str, Any]]:
        """hpo_summary.csv as typed row dicts (what extract wrote, with an annotation edited
        into the CSV by hand included): integers, floats, booleans by the data dictionary, a
        column beyond it as text, an empty cell as None."""
        return read_summary(self.directory / SUMMARY_CSV)

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with the views ``trials``, ``curves`` and ``diverged``."""
        if self._connection is None:
            try:
                import duckdb
            except ImportError:
                raise MissingExtra("query", "SQL queries (DuckDB)") from None
            connection = duckdb.connect()
            for name in TABLES:
                path = self._path(name).absolute().as_posix().replace("'", "''")
                connection.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path}')")
            self._connection = connection
        return self._connection

    def locked_connection(self, memory_limit: str = "512MB") -> duckdb.DuckDBPyConnection:
        """A private DuckDB connection whose tables ``trials``, ``curves`` and ``diverged``
        reach the Parquet files and nothing else: for SQL from someone else (an MCP client).

        The tables are Arrow datasets over the files, registered as views: nothing is loaded
        up front (a query reads the columns and row groups it needs, however large the
        dataset), and a view cannot be written (even a ``DELETE`` hidden in a CTE fails). The
        files are opened by Arrow, not by DuckDB, so DuckDB's own file access can be switched
        off entirely (``read_csv``, ``read_parquet``, ``glob``, ``COPY`` ... fail). Extensions
        cannot be installed or loaded, Python variables are not tables, nothing spills to temp
        space, ``memory_limit`` caps a query's working memory, and the configuration is
        locked. Raises :class:`MissingDependency` without DuckDB.
        """
        try:
            import duckdb
        except ImportError:
            raise MissingExtra("query", "SQL queries (DuckDB)") from None
        import pyarrow.dataset as pads

        connection = duckdb.connect(":memory:")
        for name in TABLES:
            connection.register(name, pads.dataset(self._path(name), format="parquet"))
        for setting in (
            "SET enable_external_access = false",
            "SET autoinstall_known_extensions = false",
            "SET autoload_known_extensions = false",
            "SET allow_community_extensions = false",
            "SET python_enable_replacements = false",
            "SET max_temp_directory_size = '0B'",
            f"SET memory_limit = '{memory_limit}'",
            "SET lock_configuration = true",
        ):
            connection.execute(setting)
        return connection

    def sql(self, query: str) -> pd.DataFrame:
        """Run ``query`` with DuckDB over the tables ``trials``, ``curves`` and ``diverged``.

        The tables are views over the Parquet files, so no statement can change them (an
        ``UPDATE`` or ``DELETE``, even inside a CTE, is an error). Raises :class:`QueryError`
        (one line) for an invalid query and :class:`MissingDependency` when DuckDB is not
        installed.
        """
        connection = self.connection  # raises MissingDependency without DuckDB
        import duckdb

        try:
            relation = connection.sql(query)
            if relation is None:  # a statement without a result, e.g. SET
                import pandas as pd

                return pd.DataFrame()
            return relation.df()
        except duckdb.Error as err:
            raise QueryError(one_line(str(err))) from None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def study_summaries(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What a reader wants first about the studies, computed once by ``extract`` and kept in
    hpo_full.json's metadata, so answering it costs no pass over the trials.

    Returns ``factors`` (the columns parsed from study names that are constant within each
    study: budget, horizon, extra named groups of ``--study-pattern``), ``states`` (trials by
    state, in order of first appearance) and per study its ``factors`` and ``best_trial`` /
    ``best_objective`` (the first trial ranked 1, absent when none is ranked). ``rows`` are
    the trials ordered by (study, trial_num), as extract writes them.

    >>> rows = [
    ...     {"study": "a", "trial_num": 0, "budget": "2M", "horizon": None, "tier": "x",
    ...      "state": "COMPLETE", "rank_in_study": 2, "objective": 0.5},
    ...     {"study": "a", "trial_num": 1, "budget": "2M", "horizon": None, "tier": "x",
    ...      "state": "FAIL", "rank_in_study": 1, "objective": 0.25},
    ... ]
    >>> summary = study_summaries(rows)
    >>> summary["factors"], summary["states"]
    (['budget', 'tier'], {'COMPLETE': 1, 'FAIL': 1})
    >>> summary["studies"]["a"]
    {'factors': {'budget': '2M', 'tier': 'x'}, 'best_trial': 1, 'best_objective': 0.25}
    """
    from .schema import PARAM_PREFIX, dynamic_columns

    candidates = ["budget", "horizon"] + [
        c for c in dynamic_columns(rows) if not c.startswith(PARAM_PREFIX)
    ]
    values: dict[str, dict[str, set[Any]]] = {name: {} for name in candidates}
    present: set[str] = set()
    states: dict[str, int] = {}
    studies: dict[str, dict[str, Any]] = {}
    for row in rows:
        study = row["study"]
        entry = studies.get(study)
        if entry is None:
            entry = studies[study] = {"first": row}
        for name in candidates:
            value = row.get(name)
            if value is None or value != value:  # missing or NaN: one "missing" value
                value = None
            else:
                present.add(name)
            values[name].setdefault(study, set()).add(value)
        state = row.get("state")
        if state is not None:
            states[state] = states.get(state, 0) + 1
        if "best" not in entry and row.get("rank_in_study") == 1:
            entry["best"] = row
    factors = [  # budget and horizon come from every study name: constant by construction
        name
        for name in candidates
        if name in present
        and (name in ("budget", "horizon") or all(len(v) <= 1 for v in values[name].values()))
    ]
    summaries: dict[str, dict[str, Any]] = {}
    for study, entry in studies.items():
        summary: dict[str, Any] = {
            "factors": {name: _missing_as_none(entry["first"].get(name)) for name in factors}
        }
        best = entry.get("best")
        if best is not None:
            summary["best_trial"] = best["trial_num"]
            summary["best_objective"] = _missing_as_none(best.get("objective"))
        summaries[study] = summary
    return {"factors": factors, "states": states, "studies": summaries}


def _missing_as_none(value: Any) -> Any:
    return None if value is None or value != value else value


def check_sql(sql: str, connection: duckdb.DuckDBPyConnection | None = None) -> str:
    """The one statement of ``sql`` when DuckDB parses it as a single SELECT, else refuse.

    ``WITH ... SELECT``, ``FROM t``, ``VALUES``, ``DESCRIBE``, ``SUMMARIZE`` and ``SHOW`` are
    SELECT statements to DuckDB and are allowed; ``COPY``, ``ATTACH``, ``INSTALL``, ``LOAD``,
    ``PRAGMA``, ``SET``, ``CREATE``, ``INSERT``, ``EXPLAIN``, ``PIVOT`` statements and several
    statements at once are refused with :class:`QueryRefused`. (Reading files from inside a
    SELECT, e.g. ``read_csv('/etc/passwd')``, is stopped by :meth:`Dataset.locked_connection`,
    not here.)

    Example::

        >>> check_sql("WITH d AS (SELECT * FROM diverged) SELECT count(*) FROM d;")
        'WITH d AS (SELECT * FROM diverged) SELECT count(*) FROM d'
        >>> check_sql("SELECT 1; DROP TABLE trials")
        Traceback (most recent call last):
        ...
        hpo_analysis.api.QueryRefused: only one statement is allowed; got 2 (SELECT, DROP)
    """
    try:
        import duckdb
    except ImportError:
        raise MissingExtra("query", "SQL queries (DuckDB)") from None

    if not sql.strip():
        raise QueryRefused(
            "empty SQL; give one SELECT statement, e.g. SELECT * FROM trials LIMIT 5"
        )
    con = connection or duckdb.connect(":memory:")
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as err:
        raise QueryRefused(f"SQL does not parse: {first_line(err)}") from None
    finally:
        if connection is None:
            con.close()
    kinds = [statement.type.name for statement in statements]
    if len(statements) != 1:
        raise QueryRefused(
            f"only one statement is allowed; got {len(statements)} ({', '.join(kinds) or 'none'})"
        )
    if statements[0].type == duckdb.StatementType.MULTI:  # PIVOT without IN (...)
        raise QueryRefused(
            "this statement expands to several statements (a PIVOT without an IN list?); "
            "name the pivot values, e.g. PIVOT trials ON budget IN ('2M', '2B') USING count(*)"
        )
    if statements[0].type != duckdb.StatementType.SELECT:
        raise QueryRefused(
            f"only one read-only SELECT (or WITH ... SELECT) statement is allowed; got {kinds[0]}"
        )
    return statements[0].query.strip().rstrip(";").strip()


def first_line(err: BaseException) -> str:
    """The first line of an error's message (its type name when it has none)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _strict_document(path: Path, data: bytes) -> dict[str, Any]:
    """A JSON object file extract wrote, parsed strictly; DatasetError names the file."""
    try:
        document = loads_strict(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise DatasetError(f"{path}: not strict JSON: {first_line(err)}") from None
    if not isinstance(document, dict):
        raise DatasetError(f"{path}: not a JSON object")
    return document


def _cell(text: str, type_: str) -> Any:
    if text == "":
        return None
    if type_ == "int":
        return int(text)
    if type_ == "float":
        return float(text)
    if type_ == "bool":
        if text not in ("true", "false"):
            raise ValueError(f"not a boolean: {text!r}")
        return text == "true"
    return unneutralize(text)


def summary_value(value: Any, type_: str) -> Any:
    """``value`` of a row as hpo_summary.csv holds it and :func:`read_summary` reads it back
    (``type_``: the column's type in the data dictionary, "str" beyond it), without writing
    the CSV: a float that is not finite, an empty text and None are None, an integer in a
    float column is a float, a column beyond the dictionary holds text.

    >>> summary_value(float("nan"), "float"), summary_value(3, "float"), summary_value("", "str")
    (None, 3.0, None)
    >>> summary_value(0.5, "str"), summary_value(True, "bool"), summary_value("'=x", "str")
    ('0.5', True, '=x')
    """
    if value is None:
        return None
    kind = type(value)
    if type_ == "float" and kind is float:  # the usual cases, without the text round trip
        return value if value - value == 0.0 else None
    if (type_ == "int" and kind is int) or (type_ == "bool" and kind is bool):
        return value
    if type_ == "str" and kind is str and not value.startswith("'"):
        return value or None
    return _cell(csv_cell(value), type_)


def read_summary(path: Path) -> list[dict[str, Any]]:
    """``hpo_summary.csv`` back into typed rows (the pipeline's row dicts): each column typed
    by the data dictionary, a column beyond it kept as text, an empty cell as None."""
    rows: list[dict[str, Any]] = []
    allow_large_csv_fields()
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            for line, raw in enumerate(csv.DictReader(handle), start=2):
                row: dict[str, Any] = {}
                for name, text in raw.items():
                    column = BY_NAME.get(name or "")
                    try:
                        row[name] = _cell(text or "", column.type if column else "str")
                    except ValueError as err:
                        raise DatasetError(f"{path}: line {line}, column {name}: {err}") from None
                rows.append(row)
    except OSError as err:
        raise DatasetError(f"{path}: cannot be read: {err.strerror}") from None
    return rows


def one_line(message: str) -> str:
    """DuckDB's message without its multi-line context (LINE 1: ..., the caret)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    kept = [line for line in lines if not line.startswith(("LINE ", "^"))]
    return " ".join(kept or lines)
