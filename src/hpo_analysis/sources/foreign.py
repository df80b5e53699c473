"""What the readers of other tools' output (Ray Tune, KerasTuner, MLflow, runs tables) share:
one way to turn "a run with params, metrics per step, a state and an objective" into the
canonical Trial.

These tools have no trial number, no ``params``/``user_attrs`` split and their own state
names; each reader maps its format to a :class:`ForeignRun` and :func:`build_run` does the
rest through the same normalizer as every other reader, so every output works unchanged.

A parameter named like a standard column (``dropout``, ``lr``, ``batch_size``, …) whose value
is not a number (KerasTuner's boolean ``dropout`` flag, a ``"cosine"`` schedule called ``lr``)
must not land in that numeric column, nor in ``param_<name>`` (``hpo_full.json`` lists the
standard and the other params side by side, by bare name): a boolean is renamed
``use_<name>`` and anything else ``<name>_text``, with a warning.

Example::

    >>> run = ForeignRun(number=0, state="COMPLETE", objective=0.3,
    ...                  params={"dropout": True, "lr": 0.01, "units": 8},
    ...                  curve=[{"epoch": 1, "val_loss": 0.3}])
    >>> t = build_run(run, study="s", source_file="f", factors={}, objective_name="val_loss",
    ...               direction=None, direction_source=None)
    >>> t.training["dropout"], t.training["lr"], t.extra_params
    (None, 0.01, {'units': 8, 'use_dropout': True})
    >>> [p.code for p in t.problems]
    ['param_renamed']
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..derive import MAXIMIZE_HINTS
from ..model import Problem, Trial
from ..normalize import ARCH_ALIASES, TRAINING_ALIASES, FieldAliases, normalize_trial

# every spelling the normalizer reads into a numeric standard column
STANDARD_SPELLINGS = frozenset(
    {a for spellings in TRAINING_ALIASES.values() for a in spellings}
    | {a for spellings in ARCH_ALIASES.values() for a in spellings}
    | {"arch_idx", "d_ff_ratio", "ffn_ratio", "mlp_ratio"}
)


@dataclass
class ForeignRun:
    """One trial as another tool records it, before normalization."""

    number: int
    state: str  # COMPLETE / PRUNED / FAIL / RUNNING / WAITING
    objective: float | None
    params: dict[str, Any]
    curve: list[dict[str, Any]] = field(default_factory=list)  # {"epoch": n, metric: value}
    duration_sec: float | None = None
    datetime_start: str | None = None
    datetime_complete: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # the tool's own ids, kept in JSON
    problems: list[Problem] = field(default_factory=list)


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts flattened with dots (``{"model": {"width": 8}}`` → ``model.width``).

    >>> flatten({"lr": 0.1, "model": {"width": 8, "act": {"name": "relu"}}})
    {'lr': 0.1, 'model.width': 8, 'model.act.name': 'relu'}
    """
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numeric_text(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


def split_colliding(params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Params that may go to standard columns, and those named like one but not numbers.

    >>> split_colliding({"dropout": True, "lr": "0.1", "batch_size": None, "sched": "cos"})
    ({'lr': '0.1', 'batch_size': None, 'sched': 'cos'}, {'dropout': True})
    """
    kept: dict[str, Any] = {}
    moved: dict[str, Any] = {}
    for name, value in params.items():
        numeric = value is None or _is_number(value) or _numeric_text(value)
        if name in STANDARD_SPELLINGS and not numeric:
            moved[name] = value
        else:
            kept[name] = value
    return kept, moved


def build_run(
    run: ForeignRun,
    *,
    study: str,
    source_file: str,
    factors: dict[str, str | None],
    objective_name: str | None,
    direction: str | None,
    direction_source: str | None,
    aliases: FieldAliases = (),
) -> Trial | Problem:
    """The canonical Trial of one foreign run (through :func:`normalize_trial`)."""
    params, moved = split_colliding(run.params)
    raw: dict[str, Any] = {
        "number": run.number,
        "state": run.state,
        "value": run.objective,
        "params": params,
        "learning_curve": run.curve,
    }
    if run.duration_sec is not None:
        raw["duration_seconds"] = run.duration_sec
    if run.datetime_start is not None:
        raw["datetime_start"] = run.datetime_start
    if run.datetime_complete is not None:
        raw["datetime_complete"] = run.datetime_complete
    raw.update(run.extra)
    trial = normalize_trial(
        raw, study=study, source_file=source_file, factors=factors, aliases=aliases
    )
    if isinstance(trial, Problem):
        return trial
    problems = list(run.problems) + list(trial.problems)
    extra_params = dict(trial.extra_params)
    for name, value in sorted(moved.items()):
        new_name = f"use_{name}" if isinstance(value, bool) else f"{name}_text"
        while new_name in extra_params or new_name in run.params:
            new_name += "_"
        extra_params[new_name] = value
        problems.append(
            Problem(
                "param_renamed",
                f"parameter {name!r} is {_kind(value)}, not the numeric standard column "
                f"{name}: kept as param_{new_name}",
            )
        )
    return dataclasses.replace(
        trial,
        extra_params=dict(sorted(extra_params.items())),
        objective_name=objective_name,
        direction=direction,
        direction_source=direction_source if direction else None,
        problems=tuple(problems),
    )


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"text {value!r}"
    return type(value).__name__


def number_or_none(value: Any) -> float | None:
    """A float from a number or numeric text; None for anything else (bools included)."""
    if _is_number(value):
        return float(value)
    if isinstance(value, str) and value.strip():
        try:
            return float(value)
        except ValueError:
            return None
    return None


def scalar(value: Any) -> Any:
    """A parameter value as found in text exports: numbers parsed, ``True``/``False`` as
    booleans, everything else kept as text.

    >>> [scalar(v) for v in ("3", "0.5", "True", "relu", "", "nan")]
    [3, 0.5, True, 'relu', None, nan]
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return None
    if text in ("True", "true", "TRUE"):
        return True
    if text in ("False", "false", "FALSE"):
        return False
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def guessed_direction(name: str | None) -> str | None:
    """``maximize`` for metric names such as accuracy/AUC/score, ``minimize`` for losses and
    errors, None when the name says nothing (then the usual default applies)."""
    if not name:
        return None
    lowered = name.lower()
    if "loss" in lowered or "err" in lowered or "mse" in lowered or "mae" in lowered:
        return "minimize"
    if any(hint in lowered for hint in MAXIMIZE_HINTS):
        return "maximize"
    return None


def pick_objective(
    wanted: str | None, metrics: Iterable[str], preferred: Iterable[str] = ()
) -> tuple[str | None, Problem | None]:
    """The metric that is the objective: ``--objective`` when given (a problem when no run
    has it), else the first of ``preferred`` present, else the only metric, else none."""
    names = sorted(set(metrics))
    if wanted:
        if wanted in names:
            return wanted, None
        return wanted, Problem(
            "objective_unknown",
            f"--objective {wanted!r} is not a metric of this study ({', '.join(names[:8])}"
            f"{', …' if len(names) > 8 else ''}); its trials have no objective value",
        )
    for name in preferred:
        if name in names:
            return name, None
    if len(names) == 1:
        return names[0], None
    return None, Problem(
        "objective_unknown",
        "no objective named by the source; give --objective NAME (one of "
        f"{', '.join(names[:8])}{', …' if len(names) > 8 else ''})",
    )


def finite_last(values: list[tuple[int, float | None]]) -> float | None:
    """The value of the highest step (NaN/inf kept: a diverged run's last value is one)."""
    if not values:
        return None
    return max(values, key=lambda pair: pair[0])[1]


def is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
