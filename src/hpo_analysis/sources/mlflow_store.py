"""Reader for MLflow tracking stores, read directly (MLflow is not needed).

Two stores, both read as files: the SQLite store (``mlflow.db``, MLflow's default backend
since the file store went into maintenance) through the standard library's ``sqlite3`` in
read-only mode, and the ``mlruns/`` file store (``<experiment_id>/meta.yaml``, one directory
per run with ``meta.yaml``, ``params/<key>``, ``metrics/<key>`` holding ``timestamp value
step`` lines and ``tags/<key>``). Reading them directly keeps the core install light (the
``mlflow-skinny`` client pulls in some thirty packages and needs a tracking URI per store) and
cannot write to the store; the tests pin the layout on stores written by MLflow itself.

- **study**: a sweep's parent run (the run named in the children's ``mlflow.parentRunId``
  tag) names the study of its children and is not a trial itself; a run without parent or
  children belongs to the study named after its experiment;
- **trial**: one run; numbered 0, 1, … in each study by start time (the run id is kept in
  ``hpo_full.json``); deleted runs are left out;
- **params**: the run's params (MLflow stores text: numbers and booleans are parsed);
- **curve**: every metric's history, one point per step;
- **objective**: ``--objective NAME``, else a metric named ``val_loss``/``valid_loss``/
  ``validation_loss``/``loss``, else the only metric; the value at the last step;
- **state**: ``FINISHED`` → COMPLETE, ``FAILED``/``KILLED`` → FAIL, ``RUNNING`` → RUNNING,
  ``SCHEDULED`` → WAITING; **direction**: ``--direction``, else the objective's name.

Example::

    >>> parse_flat_yaml("name: mlp_sweep\\nexperiment_id: '12'\\nstatus: 3\\n")
    {'name': 'mlp_sweep', 'experiment_id': '12', 'status': '3'}
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..model import Problem, Settings
from ..normalize import parse_study_factors
from .base import ReadResult, head_bytes, read_bytes_checked
from .foreign import ForeignRun, build_run, pick_objective, scalar
from .optuna_storage import SQLITE_MAGIC, SQLITE_SUFFIXES, readonly_connector

NAME = "mlflow_store"
FORMAT = "MLflow tracking store"
CACHEABLE = False  # a file-store experiment is a directory of run files
MLFLOW_TABLES = {"experiments", "runs", "metrics", "params", "tags"}
PARENT_TAG = "mlflow.parentRunId"
STATES = {
    "FINISHED": "COMPLETE",
    "FAILED": "FAIL",
    "KILLED": "FAIL",
    "RUNNING": "RUNNING",
    "SCHEDULED": "WAITING",
}
# the file store writes the RunStatus enum's number
STATUS_NUMBERS = {"1": "RUNNING", "2": "SCHEDULED", "3": "FINISHED", "4": "FAILED", "5": "KILLED"}
PREFERRED_OBJECTIVES = ("val_loss", "valid_loss", "validation_loss", "loss")


@dataclass
class _Run:
    run_id: str
    name: str
    status: str
    start_ms: int | None
    end_ms: int | None
    experiment: str
    deleted: bool = False
    parent: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, list[tuple[int, int, float]]] = field(default_factory=dict)


def parse_flat_yaml(text: str) -> dict[str, str]:
    """The top-level ``key: value`` lines of MLflow's ``meta.yaml`` (quotes removed)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line[0] in " \t-#" or ":" not in line:
            continue
        key, _, value = line.partition(":")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        found[key.strip()] = value
    return found


def _is_sqlite_store(path: Path) -> bool:
    if path.suffix.lower() not in SQLITE_SUFFIXES:
        return False
    try:
        with open(path, "rb") as handle:
            if handle.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
                return False
        with readonly_connector(path)() as connection:
            names = {
                row[0]
                for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
    except (OSError, sqlite3.Error):
        return False
    return MLFLOW_TABLES <= names and "trials" not in names


def _is_experiment_meta(path: Path) -> bool:
    if path.name != "meta.yaml":
        return False
    head = head_bytes(path, 4096)
    return head is not None and b"artifact_location:" in head and b"run_id:" not in head


def sniff(path: Path) -> bool:
    """An MLflow SQLite store (its tables), or an experiment's ``meta.yaml`` in a file store."""
    return _is_experiment_meta(path) or _is_sqlite_store(path)


def ignore_reason(path: Path) -> str | None:
    """A run's files in a file store are read through their experiment's ``meta.yaml``."""
    for parent in list(path.parents)[1:5]:
        if _is_experiment_meta(parent / "meta.yaml"):
            return f"part of an MLflow run: read through {parent.name}/meta.yaml"
    return None


def read(path: Path, display: str, settings: Settings) -> ReadResult:
    result = ReadResult()
    if path.name == "meta.yaml":
        data = read_bytes_checked(path, settings.max_file_bytes, result)
        if data is None:
            return result
        meta = parse_flat_yaml(data.decode("utf-8", "replace"))
        runs, experiments = _file_store(path.parent, meta)
    else:
        data = read_bytes_checked(path, settings.max_file_bytes, result)
        if data is None:
            return result
        try:
            runs, experiments = _sqlite_store(path)
        except sqlite3.Error as err:
            result.problems.append(
                Problem("unreadable", f"cannot read the MLflow store: {err}", "rejected")
            )
            return result
    _add_trials(runs, experiments, display, settings, result)
    return result


def _sqlite_store(path: Path) -> tuple[list[_Run], dict[str, str]]:
    with readonly_connector(path)() as connection:
        experiments = {
            str(eid): str(name)
            for eid, name in connection.execute("SELECT experiment_id, name FROM experiments")
        }
        runs = {
            str(row[0]): _Run(
                run_id=str(row[0]),
                name=str(row[1] or row[0]),
                status=str(row[2] or ""),
                start_ms=row[3],
                end_ms=row[4],
                experiment=str(row[5]),
                deleted=row[6] == "deleted",
            )
            for row in connection.execute(
                "SELECT run_uuid, name, status, start_time, end_time, experiment_id, "
                "lifecycle_stage FROM runs ORDER BY run_uuid"
            )
        }
        for key, value, run_id in connection.execute(
            "SELECT key, value, run_uuid FROM params ORDER BY run_uuid, key"
        ):
            if run_id in runs:
                runs[run_id].params[str(key)] = scalar(value)
        for value, run_id in connection.execute(
            "SELECT value, run_uuid FROM tags WHERE key = ?", (PARENT_TAG,)
        ):
            if run_id in runs:
                runs[run_id].parent = str(value)
        for key, value, timestamp, run_id, step in connection.execute(
            "SELECT key, value, timestamp, run_uuid, step FROM metrics "
            "ORDER BY run_uuid, key, step, timestamp"
        ):
            if run_id in runs:
                runs[run_id].metrics.setdefault(str(key), []).append(
                    (int(step or 0), int(timestamp or 0), float(value))
                )
    return list(runs.values()), experiments


def _file_store(experiment_dir: Path, meta: dict[str, str]) -> tuple[list[_Run], dict[str, str]]:
    experiment_id = meta.get("experiment_id", experiment_dir.name)
    experiments = {experiment_id: meta.get("name") or experiment_dir.name}
    runs: list[_Run] = []
    for run_dir in sorted(p for p in experiment_dir.iterdir() if p.is_dir()):
        run_meta_file = run_dir / "meta.yaml"
        if not run_meta_file.is_file():
            continue
        run_meta = parse_flat_yaml(run_meta_file.read_text(encoding="utf-8", errors="replace"))
        status = run_meta.get("status", "")
        run = _Run(
            run_id=run_meta.get("run_id") or run_dir.name,
            name=run_meta.get("run_name") or run_dir.name,
            status=STATUS_NUMBERS.get(status, status),
            start_ms=_int(run_meta.get("start_time")),
            end_ms=_int(run_meta.get("end_time")),
            experiment=experiment_id,
            deleted=run_meta.get("lifecycle_stage") == "deleted",
        )
        for file in sorted((run_dir / "params").rglob("*")):
            if file.is_file():
                key = file.relative_to(run_dir / "params").as_posix()
                run.params[key] = scalar(file.read_text(encoding="utf-8", errors="replace"))
        parent_tag = run_dir / "tags" / PARENT_TAG
        if parent_tag.is_file():
            run.parent = parent_tag.read_text(encoding="utf-8", errors="replace").strip()
        for file in sorted((run_dir / "metrics").rglob("*")):
            if not file.is_file():
                continue
            key = file.relative_to(run_dir / "metrics").as_posix()
            points = []
            for line in file.read_text(encoding="utf-8", errors="replace").splitlines():
                parts = line.split()
                if len(parts) >= 2:
                    try:
                        step = int(parts[2]) if len(parts) > 2 else 0
                        points.append((step, int(parts[0]), float(parts[1])))
                    except ValueError:
                        continue
            run.metrics[key] = sorted(points)
        runs.append(run)
    return runs, experiments


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text and text != "null" else None
    except ValueError:
        return None


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def _add_trials(
    runs: list[_Run],
    experiments: dict[str, str],
    display: str,
    settings: Settings,
    result: ReadResult,
) -> None:
    by_id = {run.run_id: run for run in runs}
    parents = {run.parent for run in runs if run.parent and run.parent in by_id}
    deleted = [run for run in runs if run.deleted]
    if deleted:
        result.problems.append(
            Problem("deleted_runs", f"{len(deleted)} deleted run(s) left out", "note")
        )
    studies: dict[str, list[_Run]] = {}
    for run in runs:
        if run.deleted or run.run_id in parents:
            continue
        if run.parent and run.parent in by_id:
            study = by_id[run.parent].name
        else:
            study = experiments.get(run.experiment, run.experiment)
        studies.setdefault(study, []).append(run)
    skipped = sorted(s for s in studies if not settings.study_selected(s))
    if skipped:
        result.problems.append(
            Problem(
                "study_not_selected",
                f"{len(skipped)} study(ies) not selected by --study: {', '.join(skipped[:5])}",
                "note",
            )
        )
    for study in sorted(studies):
        if not settings.study_selected(study):
            continue
        members = sorted(studies[study], key=lambda r: (r.start_ms or 0, r.run_id))
        metric_names = {name for run in members for name in run.metrics}
        objective, problem = pick_objective(settings.objective, metric_names, PREFERRED_OBJECTIVES)
        if problem is not None:
            result.problems.append(Problem(problem.code, f"study {study!r}: {problem.message}"))
        factors = parse_study_factors(study, settings.compiled_pattern())
        for number, run in enumerate(members):
            steps: dict[int, dict[str, Any]] = {}
            for name, points in sorted(run.metrics.items()):
                for step, _, value in points:  # the last value logged at a step wins
                    steps.setdefault(step, {"epoch": step})[name] = value
            curve = [steps[s] for s in sorted(steps)]
            history = run.metrics.get(objective or "", [])
            objective_value = history[-1][2] if history else None
            duration = None
            if run.start_ms is not None and run.end_ms is not None:
                duration = (run.end_ms - run.start_ms) / 1000
            extra: dict[str, Any] = {"mlflow_run_id": run.run_id, "mlflow_run_name": run.name}
            if run.parent:
                extra["mlflow_parent_run_id"] = run.parent
            foreign = ForeignRun(
                number=number,
                state=STATES.get(run.status.upper(), run.status),
                objective=objective_value,
                params=run.params,
                curve=curve,
                duration_sec=duration,
                datetime_start=_iso(run.start_ms),
                datetime_complete=_iso(run.end_ms),
                extra=extra,
            )
            result.add(
                build_run(
                    foreign,
                    study=study,
                    source_file=display,
                    factors=factors,
                    objective_name=objective,
                    direction=None,
                    direction_source=None,
                    aliases=settings.field_aliases,
                )
            )
    if not any(studies.values()):
        result.problems.append(
            Problem("no_trials", "no runs (an empty experiment or store)", "note")
        )
