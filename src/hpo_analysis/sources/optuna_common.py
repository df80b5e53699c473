"""One mapping from an Optuna-shaped trial to the canonical Trial, shared by every reader of
Optuna output (storages, journals, study dumps, logs).

Optuna trials carry ``number``, ``state``, ``value`` or ``values``, ``params``, ``user_attrs``,
``intermediate_values`` and datetimes; the study carries the direction of each objective and,
optionally, metric names. Keeping that mapping in one place is what makes a SQLite storage, a
journal, a dump and a log of the same study give the same rows.

- **Curve**: without a ``learning_curve`` user attribute, the intermediate values
  (``trial.report(value, step)``) become the curve: ``epoch`` = step, metric
  :data:`INTERMEDIATE_METRIC` = the reported value.
- **Multi-objective**: every value gets an ``objective_<label>`` column (label = the study's
  metric name, else the index); the one chosen by ``--rank-by`` (default the first) is the
  ``objective`` and sets the direction.

Example::

    >>> spec = objective_spec(2, ["acc", "latency"], ["maximize", "minimize"], "latency")
    >>> spec.index, spec.labels, spec.name, spec.direction
    (1, ('acc', 'latency'), 'latency', 'minimize')
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..model import Problem, Trial
from ..normalize import FieldAliases, careful_trial, clean_trial
from ..schema import BY_NAME, OBJECTIVE_PREFIX

INTERMEDIATE_METRIC = "intermediate_value"
# Optuna's enum values, as journals store them
STATE_NAMES = {0: "RUNNING", 1: "COMPLETE", 2: "PRUNED", 3: "FAIL", 4: "WAITING"}
DIRECTION_NAMES = {0: None, 1: "minimize", 2: "maximize"}
FROM_STUDY = "optuna study"


@dataclass(frozen=True)
class ObjectiveSpec:
    """Which objective ranks a study, what it is called and which way it points."""

    index: int = 0
    labels: tuple[str, ...] = ()  # one per objective when there are several, else empty
    name: str | None = None  # objective_name; None = unnamed
    direction: str | None = None  # minimize / maximize / None (not given by the source)
    direction_source: str = FROM_STUDY
    problem: Problem | None = None  # e.g. --rank-by names no objective of this study


def direction_name(raw: Any) -> str | None:
    """``minimize``/``maximize`` from Optuna's enum value, its name or ``StudyDirection.X``."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return DIRECTION_NAMES.get(raw)
    if isinstance(raw, str):
        text = raw.strip().lower().rpartition(".")[2]
        return text if text in ("minimize", "maximize") else None
    return None


def objective_spec(
    n_objectives: int,
    metric_names: Sequence[str] | None,
    directions: Sequence[str | None],
    rank_by: str | None,
    direction_source: str = FROM_STUDY,
) -> ObjectiveSpec:
    """Resolve ``--rank-by`` (an index or a metric name) against one study's objectives."""
    names = list(metric_names) if metric_names and len(metric_names) == n_objectives else None
    index, problem = 0, None
    if n_objectives > 1 and rank_by is not None:
        if rank_by.isdigit() and int(rank_by) < n_objectives:
            index = int(rank_by)
        elif names and rank_by in names:
            index = names.index(rank_by)
        else:
            known = ", ".join(names) if names else f"0-{n_objectives - 1}"
            problem = Problem(
                "rank_by_unknown",
                f"--rank-by {rank_by!r} is not an objective of this study ({known}); "
                "ranked by the first",
            )
    labels: tuple[str, ...] = ()
    if n_objectives > 1:
        labels = tuple(_label(names, i) for i in range(n_objectives))
    name = names[index] if names else (f"{OBJECTIVE_PREFIX}{index}" if n_objectives > 1 else None)
    direction = directions[index] if index < len(directions) else None
    return ObjectiveSpec(index, labels, name, direction, direction_source, problem)


def _label(names: list[str] | None, index: int) -> str:
    """``objective_<label>`` must not collide with a schema column such as objective_kind."""
    if names and names.count(names[index]) == 1:
        label = str(names[index])
        if f"{OBJECTIVE_PREFIX}{label}" not in BY_NAME and not label.isdigit():
            return label
    return str(index)


def iso(moment: datetime | None) -> str | None:
    """A datetime as ISO 8601 with microseconds (as Optuna's journal writes them)."""
    return None if moment is None else moment.isoformat(timespec="microseconds")


def build_trial(
    raw: dict[str, Any],
    *,
    study: str,
    source_file: str,
    factors: dict[str, str | None],
    spec: ObjectiveSpec,
    intermediate_values: Mapping[int, Any] | None = None,
    aliases: FieldAliases = (),
) -> Trial | Problem:
    """Normalize one Optuna-shaped trial dict (``raw`` is not modified).

    >>> t = build_trial({"number": 4, "state": "PRUNED", "value": 0.3, "params": {"lr": 0.1}},
    ...                 study="s", source_file="f", factors={}, spec=ObjectiveSpec(),
    ...                 intermediate_values={0: 0.5, 1: 0.3})
    >>> t.state, t.training["lr"], [(p.epoch, p.metrics) for p in t.curve]
    ('PRUNED', 0.1, [(0, {'intermediate_value': 0.5}), (1, {'intermediate_value': 0.3})])
    """
    raw = dict(raw)
    values = raw.get("values")
    objective_values: dict[str, float | None] = {}
    if isinstance(values, list) and len(values) > 1:
        labels = spec.labels or tuple(str(i) for i in range(len(values)))
        for label, value in zip(labels, values, strict=False):
            objective_values[label] = _float_or_none(value)
        raw["value"] = values[spec.index] if spec.index < len(values) else None
    elif isinstance(values, list) and len(values) == 1 and raw.get("value") is None:
        raw["value"] = values[0]
    attrs = raw.get("user_attrs")
    has_curve = isinstance(attrs, dict) and attrs.get("learning_curve") is not None
    if intermediate_values and not has_curve and raw.get("learning_curve") is None:
        raw["learning_curve"] = [
            {"epoch": step, INTERMEDIATE_METRIC: intermediate_values[step]}
            for step in sorted(intermediate_values)
        ]
    elif intermediate_values:
        raw["intermediate_values"] = {str(k): v for k, v in sorted(intermediate_values.items())}
    from_spec = spec_fields(spec, objective_values)
    clean = clean_trial(
        raw, study=study, source_file=source_file, factors=factors, aliases=aliases, **from_spec
    )
    if clean is not None:
        return clean
    trial = careful_trial(
        raw, study=study, source_file=source_file, factors=factors, aliases=aliases
    )
    if isinstance(trial, Problem):
        return trial
    return dataclasses.replace(trial, **from_spec)


def spec_fields(spec: ObjectiveSpec, objective_values: dict[str, float | None]) -> dict[str, Any]:
    """The Trial fields that come from the study's objectives rather than the trial."""
    return {
        "objective_name": spec.name,
        "direction": spec.direction,
        "direction_source": spec.direction_source if spec.direction else None,
        "objective_values": objective_values,
    }


def is_plain(raw: dict[str, Any]) -> bool:
    """True when :func:`build_trial` (without intermediate values) takes ``raw`` as it is: a
    dict, without several objective values to resolve.

    >>> is_plain({"number": 1, "values": [0.5]}), is_plain({"number": 1, "values": [0.5, 2]})
    (True, False)
    """
    values = raw.get("values")
    return type(raw) is dict and not (isinstance(values, list) and len(values) > 1)


def not_selected(names: Sequence[str]) -> Problem:
    """The note for studies of a multi-study source that ``--study`` leaves out."""
    shown = ", ".join(sorted(names)[:5]) + (", …" if len(names) > 5 else "")
    return Problem(
        "study_not_selected", f"{len(names)} study(ies) not selected by --study: {shown}", "note"
    )


def _float_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def finite(value: Any) -> bool:
    return _float_or_none(value) is not None and math.isfinite(value)
