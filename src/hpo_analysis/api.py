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
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import HpoAnalysisError, MissingExtra, install_hint
from .fulljson import read_full_json, read_trial_at
from .write.outputs import (
    CURVES_PARQUET,
    DIVERGED_PARQUET,
    FULL_JSON,
    FULL_JSON_INDEX,
    TRIALS_PARQUET,
)

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    import pyarrow as pa

TABLES = {"trials": TRIALS_PARQUET, "curves": CURVES_PARQUET, "diverged": DIVERGED_PARQUET}
QUERY_HINT = install_hint("query")


class DatasetError(HpoAnalysisError):
    """The directory is not a usable hpo-analysis output; the message says why."""

    exit_code = 2  # the directory given is not a dataset: a usage error


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
        """The run's metadata (command, settings, studies), from hpo_full.json's head."""
        metadata, trials = read_full_json(self.directory / FULL_JSON)
        trials.close()  # type: ignore[attr-defined]
        return metadata

    def trial(self, study: str, trial_num: int) -> dict[str, Any]:
        """The full record of one trial, exactly as in hpo_full.json (one line is read)."""
        import pyarrow.parquet as pq

        index = pq.read_table(
            self.directory / FULL_JSON_INDEX,
            filters=[("study", "==", study), ("trial_num", "==", int(trial_num))],
        )
        if index.num_rows == 0:
            raise KeyError(f"no trial {trial_num} in study {study!r}")
        offset = index.column("offset")[0].as_py()
        length = index.column("length")[0].as_py()
        return read_trial_at(self.directory / FULL_JSON, offset, length)

    def curve(self, study: str, trial_num: int) -> pd.DataFrame:
        """One trial's learning curve (epoch and metrics), read from curves.parquet alone."""
        import pyarrow.parquet as pq

        table = pq.read_table(
            self._path("curves"),
            filters=[("study", "==", study), ("trial_num", "==", int(trial_num))],
        )
        if table.num_rows == 0:
            index = pq.read_table(
                self.directory / FULL_JSON_INDEX,
                filters=[("study", "==", study), ("trial_num", "==", int(trial_num))],
            )
            if index.num_rows == 0:
                raise KeyError(f"no trial {trial_num} in study {study!r}")
        return _to_pandas(table.drop_columns(["study", "trial_num"]))

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


def one_line(message: str) -> str:
    """DuckDB's message without its multi-line context (LINE 1: ..., the caret)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    kept = [line for line in lines if not line.startswith(("LINE ", "^"))]
    return " ".join(kept or lines)
