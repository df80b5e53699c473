"""Reader for KerasTuner projects (``<directory>/<project_name>/``), read as plain JSON.

Layout written by ``tuner.search()`` (KerasTuner 1.x)::

    <project>/oracle.json            # the oracle's state (order, seeds, hashes)
    <project>/tuner0.json            # the tuner's state (empty for one worker)
    <project>/trial_<id>/trial.json  # one trial: id, hyperparameters, metrics, score, status
    <project>/trial_<id>/build_config.json, checkpoint.weights.h5

Each ``trial.json`` is one trial, claimed by its content (``trial_id`` and
``hyperparameters`` in a ``trial_*`` directory) before the per-trial reader, whose
``trial*.json`` name rule would otherwise claim it and reject it for having no
``trial_number``. The study is the project directory's name.

- **trial number**: ``trial_id`` (``"03"`` → 3);
- **params**: ``hyperparameters.values`` (Hyperband's ``tuner/epochs``, ``tuner/round``, …
  included); a boolean named like a standard column (``dropout``) stays ``param_dropout``;
- **curve**: ``metrics.metrics.<name>.observations`` (``{"value": [v], "step": s}``), one
  point per step. KerasTuner 1.4 keeps only the best epoch's observation of each metric, so
  the curve usually has one point;
- **objective**: ``score`` (the value KerasTuner ranks by). Its name is ``--objective`` when
  given, else the oracle's ``objective`` when ``oracle.json`` has one (older versions), else
  the metric whose observation at ``best_step`` equals the score (``val_`` metrics first);
- **direction**: that metric's own ``direction`` (``max``/``min``) as KerasTuner recorded it;
- **state**: ``COMPLETED`` → COMPLETE, ``STOPPED`` → PRUNED, ``FAILED``/``INVALID`` → FAIL,
  ``RUNNING`` → RUNNING, ``IDLE`` → WAITING.

Example::

    >>> sniff(Path("tuner/p/trial_03/trial.json")), sniff(Path("s/trials/trial_3.json"))
    (False, False)
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..model import Problem, Settings
from ..normalize import parse_study_factors
from .base import ReadResult, head_bytes, json_kind, read_json_checked
from .foreign import ForeignRun, build_run, number_or_none

NAME = "keras_tuner"
FORMAT = "KerasTuner project"
CACHEABLE = False  # each trial's objective is named by its project's oracle.json
SNIFF_BYTES = 4096
STATES = {
    "COMPLETED": "COMPLETE",
    "STOPPED": "PRUNED",
    "FAILED": "FAIL",
    "INVALID": "FAIL",
    "RUNNING": "RUNNING",
    "IDLE": "WAITING",
}
DIRECTIONS = {"max": "maximize", "min": "minimize"}
SOURCE = "KerasTuner metric direction"


def sniff(path: Path) -> bool:
    """``trial.json`` in a ``trial_*`` directory whose first bytes hold ``"trial_id"`` and
    ``"hyperparameters"`` (KerasTuner's keys; no other reader's trial files have both)."""
    if path.name != "trial.json" or not path.parent.name.startswith("trial_"):
        return False
    head = head_bytes(path, SNIFF_BYTES)
    return head is not None and b'"trial_id"' in head and b'"hyperparameters"' in head


def ignore_reason(path: Path) -> str | None:
    """The project's other files: state and model files, not trials."""
    for project in (path.parent, path.parent.parent):
        if (project / "oracle.json").is_file() and any(project.glob("trial_*/trial.json")):
            if path.parent == project:
                return "KerasTuner project state (not trials); the trials are read from trial_*/"
            if path.parent.name.startswith("trial_"):
                return "KerasTuner trial's model file (not needed); its trial.json is read"
    return None


def _oracle_objective(project: Path, max_bytes: int) -> tuple[str | None, str | None]:
    """The objective's name and direction from ``oracle.json`` when it records them."""
    holder = ReadResult()
    oracle = project / "oracle.json"
    if not oracle.is_file():
        return None, None
    loaded = read_json_checked(oracle, max_bytes, holder)
    value = loaded.value if loaded is not None else None
    objective = value.get("objective") if isinstance(value, dict) else None
    if isinstance(objective, dict):
        name = objective.get("name")
        direction = DIRECTIONS.get(str(objective.get("direction")))
        return (name if isinstance(name, str) else None), direction
    if isinstance(objective, str):
        return objective, None
    return None, None


def _observations(metrics: Any) -> dict[str, tuple[str | None, list[tuple[int, Any]]]]:
    """Per metric: its direction and its (step, value) observations."""
    table = metrics.get("metrics") if isinstance(metrics, dict) else None
    found: dict[str, tuple[str | None, list[tuple[int, Any]]]] = {}
    if not isinstance(table, dict):
        return found
    for name, entry in table.items():
        if not isinstance(entry, dict):
            continue
        points: list[tuple[int, Any]] = []
        for obs in entry.get("observations") or []:
            if not isinstance(obs, dict):
                continue
            step = obs.get("step")
            value = obs.get("value")
            if isinstance(value, list):
                value = value[0] if value else None
            if isinstance(step, int) and not isinstance(step, bool):
                points.append((step, value))
        found[str(name)] = (DIRECTIONS.get(str(entry.get("direction"))), points)
    return found


def _matching_metric(
    observed: dict[str, tuple[str | None, list[tuple[int, Any]]]],
    score: float | None,
    best_step: Any,
) -> str | None:
    """The metric whose value at ``best_step`` is the score (a ``val_`` one when several)."""
    if score is None:
        return None
    matches = []
    for name, (_, points) in observed.items():
        for step, value in points:
            number = number_or_none(value)
            if (best_step is None or step == best_step) and number is not None:
                if math.isclose(number, score, rel_tol=1e-12, abs_tol=0.0):
                    matches.append(name)
                    break
    validation = [m for m in matches if m.startswith("val_")]
    chosen = validation or matches
    return sorted(chosen)[0] if len(chosen) == 1 else None


def read(path: Path, display: str, settings: Settings) -> ReadResult:
    result = ReadResult()
    loaded = read_json_checked(path, settings.max_file_bytes, result)
    if loaded is None:
        return result
    raw = loaded.value
    if not isinstance(raw, dict):
        result.problems.append(
            Problem(
                "not_an_object",
                f"expected a KerasTuner trial object, found {json_kind(raw)}",
                "rejected",
            )
        )
        return result
    project = path.parent.parent
    study = project.name or "keras_tuner"
    trial_id = str(raw.get("trial_id", ""))
    digits = trial_id if trial_id.isdigit() else path.parent.name.rpartition("_")[2]
    if not digits.isdigit():
        result.problems.append(
            Problem(
                "no_trial_number",
                f"trial_id {trial_id!r} and directory {path.parent.name!r} hold no number",
                "rejected",
            )
        )
        return result
    hyper = raw.get("hyperparameters")
    values = hyper.get("values") if isinstance(hyper, dict) else None
    params = dict(values) if isinstance(values, dict) else {}
    observed = _observations(raw.get("metrics"))
    score = number_or_none(raw.get("score"))
    name, direction = _oracle_objective(project, settings.max_file_bytes)
    if settings.objective:
        name, direction = settings.objective, None
    name = name or _matching_metric(observed, score, raw.get("best_step"))
    if name is not None and direction is None and name in observed:
        direction = observed[name][0]
    value: Any = score
    if settings.objective and settings.objective in observed:
        steps = observed[settings.objective][1]
        value = number_or_none(max(steps)[1]) if steps else None
    curve_by_step: dict[int, dict[str, Any]] = {}
    for metric, (_, points) in sorted(observed.items()):
        for step, metric_value in points:
            curve_by_step.setdefault(step, {"epoch": step})[metric] = number_or_none(metric_value)
    status = str(raw.get("status", "")).upper()
    state = STATES.get(status, status)  # an unknown status: the normalizer says so
    extra: dict[str, Any] = {"keras_tuner_trial_id": trial_id}
    if raw.get("message"):
        extra["keras_tuner_message"] = str(raw["message"])[:500]
    if raw.get("best_step") is not None:
        extra["keras_tuner_best_step"] = raw.get("best_step")
    run = ForeignRun(
        number=int(digits),
        state=state,
        objective=value,
        params=params,
        curve=[curve_by_step[s] for s in sorted(curve_by_step)],
        extra=extra,
    )
    if not settings.study_selected(study):
        return result
    result.add(
        build_run(
            run,
            study=study,
            source_file=display,
            factors=parse_study_factors(study, settings.compiled_pattern()),
            objective_name=name,
            direction=direction,
            direction_source=SOURCE if direction else None,
            aliases=settings.field_aliases,
        )
    )
    return result
