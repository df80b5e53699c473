"""Reader for flat runs tables (CSV, TSV, Parquet): one row per run, one column per field.

Three layouts are recognised by their header, each with its column mapping:

- **scikit-learn ``cv_results_``** (``pd.DataFrame(search.cv_results_).to_csv(...)``):
  ``param_<name>`` columns are the params (the ``params`` column holds Python reprs and is not
  needed), ``mean_test_score`` is the objective, maximized (scikit-learn's scores are "greater
  is better"); a row whose score is missing or NaN (a failed fit) is FAIL; each row's
  ``rank_test_score`` is cross-checked against the rank computed here;
- **Weights & Biases runs export** (the runs table exported as CSV: ``Name``, ``State``,
  ``Notes``, ``User``, ``Tags``, ``Created``, ``Runtime``, ``Sweep``, then config and summary
  columns): the export does not mark config and summary columns apart, so the summary
  (metric) columns are those named like metrics (``loss``, ``acc``, ``auc``, ``f1``,
  ``score``, ``_step``, ``val_…``, …) and the rest are params; the manifest says which is
  which, and ``[table] params`` overrides it. The objective is ``--objective``, else a metric
  named ``val_loss``/``loss``…, else the only metric. ``finished`` → COMPLETE,
  ``failed``/``crashed``/``killed`` → FAIL, ``running`` → RUNNING;
- **any table mapped in ``hpo-analysis.toml``**: ``[table] objective = "COLUMN"`` (the
  objective), ``params = ["COL", …]`` (default: every other column), ``study = "COLUMN"``.

The study is the ``[table] study`` column, else W&B's ``Sweep`` column when set, else the
directory holding the file. Trials are numbered by a ``trial_number``/``trial_num``/
``number``/``trial`` column of whole numbers, else (W&B) by ``Created`` time, oldest first,
else by row (0, 1, …). A table in none of these
layouts is not claimed (listed as ignored).

Example::

    >>> layout_of(["mean_fit_time", "param_C", "params", "mean_test_score"], None)
    'scikit-learn cv_results_'
    >>> layout_of(["Name", "State", "Runtime", "lr", "val_loss"], None)
    'W&B runs export'
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..model import Problem, Settings
from ..normalize import parse_study_factors
from . import study_dump
from .base import ReadResult, read_bytes_checked
from .foreign import ForeignRun, build_run, number_or_none, pick_objective, scalar

NAME = "runs_table"
FORMAT = "runs table"
SUFFIXES = {".csv", ".tsv", ".parquet"}
SNIFF_BYTES = 65536
SKLEARN = "scikit-learn cv_results_"
WANDB = "W&B runs export"
MAPPED = "mapped table"
WANDB_META = (
    "Name",
    "State",
    "Notes",
    "User",
    "Tags",
    "Created",
    "Runtime",
    "Sweep",
    "ID",
    "Group",
    "Job Type",
    "Hostname",
    "Commit",
    "GitHub",
    "Updated",
    "End Time",
)
WANDB_STATES = {
    "finished": "COMPLETE",
    "failed": "FAIL",
    "crashed": "FAIL",
    "killed": "FAIL",
    "running": "RUNNING",
    "pending": "WAITING",
    "preempted": "FAIL",
}
_METRIC_NAME = re.compile(
    r"(^_|loss|acc|auc|f1|score|error|precision|recall|perplexity|mse|mae|rmse|reward|"
    r"^(val|valid|validation|train|test|eval|best)[_/.]|(^|[_/.])(epoch|step|runtime)$)",
    re.IGNORECASE,
)
# a column numbering the trials (else they are numbered by row)
NUMBER_COLUMNS = ("trial_number", "trial_num", "number", "trial")
PREFERRED_OBJECTIVES = ("val_loss", "valid_loss", "validation_loss", "eval_loss", "loss")
# set by configure() from [table]: the objective column a mapped table must have
_MAPPED_OBJECTIVE: list[str] = []


def configure(settings: Settings) -> None:
    """Remember the ``[table]`` objective column so that sniffing (which sees no settings)
    can claim tables in the user's own layout."""
    _MAPPED_OBJECTIVE.clear()
    if settings.table_objective:
        _MAPPED_OBJECTIVE.append(settings.table_objective)


def layout_of(columns: Sequence[str], mapped_objective: str | None) -> str | None:
    names = set(columns)
    if "mean_test_score" in names and any(c.startswith("param_") for c in names):
        return SKLEARN
    if {"Name", "State"} <= names:
        return WANDB
    if mapped_objective and mapped_objective in names:
        return MAPPED
    return None


def _header(path: Path) -> list[str]:
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    text = head.decode("utf-8-sig", errors="replace").splitlines()
    if not text:
        return []
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    return next(csv.reader([text[0]], delimiter=delimiter), [])


def sniff(path: Path) -> bool:
    """A ``.csv``/``.tsv``/``.parquet`` whose header is one of the known layouts."""
    if path.suffix.lower() not in SUFFIXES:
        return False
    if path.name == "progress.csv" and (path.parent / "result.json").is_file():
        return False  # a Ray Tune trial's own table
    if study_dump.ignore_reason(path):
        return False  # a runner's flat copy of the dump beside it
    try:
        columns = _header(path)
    except Exception:  # noqa: BLE001 - any unreadable header: not a runs table
        return False
    mapped = _MAPPED_OBJECTIVE[0] if _MAPPED_OBJECTIVE else None
    return layout_of(columns, mapped) is not None


def _rows(path: Path, data: bytes) -> list[dict[str, Any]]:
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(data))
        return [dict(row) for row in table.to_pylist()]
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    text = data.decode("utf-8-sig")
    return [dict(row) for row in csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)]


def read(path: Path, display: str, settings: Settings) -> ReadResult:
    result = ReadResult()
    data = read_bytes_checked(path, settings.max_file_bytes, result)
    if data is None:
        return result
    try:
        rows = _rows(path, data)
    except Exception as err:  # noqa: BLE001 - a damaged table is a problem, not a crash
        result.problems.append(
            Problem("unreadable", f"cannot read the table: {type(err).__name__}: {err}", "rejected")
        )
        return result
    columns = list(rows[0]) if rows else _header(path)
    layout = layout_of(columns, settings.table_objective)
    if layout is None:
        result.problems.append(Problem("not_a_runs_table", "header matches no layout", "rejected"))
        return result
    default_study = path.parent.name or path.stem
    name: str | None
    direction: str | None
    source: str | None
    if layout == SKLEARN:
        runs, name, direction, source = _sklearn(rows, result.problems)
    else:
        runs, name, direction, source = _generic(rows, columns, layout, settings, result.problems)
    study_column = settings.table_study if layout != SKLEARN else None
    factors_cache: dict[str, dict[str, str | None]] = {}
    skipped: set[str] = set()
    for row, run in runs:
        study = default_study
        if study_column and row.get(study_column) not in (None, ""):
            study = str(row[study_column])
        elif layout == WANDB and row.get("Sweep") not in (None, ""):
            study = str(row["Sweep"])
        if not settings.study_selected(study):
            skipped.add(study)
            continue
        if study not in factors_cache:
            factors_cache[study] = parse_study_factors(study, settings.compiled_pattern())
        result.add(
            build_run(
                run,
                study=study,
                source_file=display,
                factors=factors_cache[study],
                objective_name=name,
                direction=direction,
                direction_source=source,
                aliases=settings.field_aliases,
            )
        )
    if skipped:
        result.problems.append(
            Problem(
                "study_not_selected",
                f"{len(skipped)} study(ies) not selected by --study: {', '.join(sorted(skipped))}",
                "note",
            )
        )
    result.problems.insert(0, Problem("layout", f"read as a {layout}", "note"))
    if not rows:
        result.problems.append(Problem("no_trials", "the table has no rows"))
    return result


def _sklearn(
    rows: list[dict[str, Any]], problems: list[Problem]
) -> tuple[list[tuple[dict[str, Any], ForeignRun]], str, str, str]:
    runs = []
    scores: list[tuple[int, float]] = []
    for index, row in enumerate(rows):
        params = {
            key[len("param_") :]: scalar(value)
            for key, value in row.items()
            if key.startswith("param_") and scalar(value) is not None
        }
        score = number_or_none(row.get("mean_test_score"))
        failed = score is None or math.isnan(score)
        if not failed:
            scores.append((index, score))  # type: ignore[arg-type]
        extra = {
            key: scalar(value)
            for key, value in row.items()
            if key.startswith(("split", "std_", "mean_fit", "mean_score", "rank_"))
        }
        fit = number_or_none(row.get("mean_fit_time"))
        runs.append(
            (
                row,
                ForeignRun(
                    number=index,
                    state="FAIL" if failed else "COMPLETE",
                    objective=None if failed else score,
                    params=params,
                    duration_sec=fit,
                    extra={"cv_results": extra},
                ),
            )
        )
    mismatched = []
    for index, score in scores:
        expected = 1 + sum(1 for _, other in scores if other > score)
        given = number_or_none(rows[index].get("rank_test_score"))
        if given is not None and int(given) != expected:
            mismatched.append(f"row {index + 2}: rank_test_score {int(given)}, computed {expected}")
    if mismatched:
        problems.append(
            Problem(
                "rank_mismatch",
                "rank_test_score disagrees with mean_test_score: " + "; ".join(mismatched[:5]),
            )
        )
    return runs, "mean_test_score", "maximize", "scikit-learn (scores: greater is better)"


def _generic(
    rows: list[dict[str, Any]],
    columns: list[str],
    layout: str,
    settings: Settings,
    problems: list[Problem],
) -> tuple[list[tuple[dict[str, Any], ForeignRun]], str | None, str | None, str | None]:
    meta = set(WANDB_META) if layout == WANDB else set()
    if settings.table_study:
        meta.add(settings.table_study)
    wanted = settings.objective or (settings.table_objective if layout == MAPPED else None)
    number_column = next((c for c in NUMBER_COLUMNS if c in columns), None)
    if number_column is not None and not all(
        isinstance(scalar(row.get(number_column)), int) for row in rows
    ):
        number_column = None  # not a whole number in every row: numbered by row instead
    if number_column is not None:
        meta.add(number_column)
    candidates = [c for c in columns if c not in meta]
    if settings.table_params:
        params = [c for c in settings.table_params if c in columns]
        missing = [c for c in settings.table_params if c not in columns]
        if missing:
            problems.append(
                Problem("column_missing", f"[table] params not in the table: {', '.join(missing)}")
            )
        metrics = [c for c in candidates if c not in params]
    elif layout == WANDB:
        metrics = [c for c in candidates if _METRIC_NAME.search(c) or c == wanted]
        params = [c for c in candidates if c not in metrics]
        problems.append(
            Problem(
                "columns_guessed",
                "W&B exports do not mark config and summary columns apart: params "
                f"{', '.join(params) or '(none)'}; metrics {', '.join(metrics) or '(none)'} "
                "(set [table] params to choose)",
                "note",
            )
        )
    else:
        metrics = [wanted] if wanted else []
        params = [c for c in candidates if c not in metrics]
    objective, problem = pick_objective(wanted, metrics, PREFERRED_OBJECTIVES)
    if problem is not None:
        problems.append(problem)
    order = list(range(len(rows)))
    if layout == WANDB and number_column is None and all(r.get("Created") for r in rows):
        # the export lists the newest run first: number them oldest first, as they ran
        order.sort(key=lambda i: (str(rows[i]["Created"]), i))
    position = {row_index: number for number, row_index in enumerate(order)}
    runs = []
    for index, row in enumerate(rows):
        state = "COMPLETE"
        if layout == WANDB:
            raw_state = str(row.get("State") or "").strip().lower()
            state = WANDB_STATES.get(raw_state, raw_state.upper() or "COMPLETE")
        value = number_or_none(row.get(objective)) if objective else None
        summary = {
            c: number_or_none(row.get(c))
            for c in metrics
            if c != objective and number_or_none(row.get(c)) is not None
        }
        extra: dict[str, Any] = {"summary": summary} if summary else {}
        if layout == WANDB:
            extra["wandb"] = {k: row[k] for k in WANDB_META if row.get(k) not in (None, "")}
        runs.append(
            (
                row,
                ForeignRun(
                    number=scalar(row[number_column]) if number_column else position[index],
                    state=state,
                    objective=value,
                    params={c: scalar(row[c]) for c in params if scalar(row.get(c)) is not None},
                    duration_sec=number_or_none(row.get("Runtime")) if layout == WANDB else None,
                    datetime_start=str(row["Created"]) if row.get("Created") else None,
                    extra=extra,
                ),
            )
        )
    return runs, objective, None, None
