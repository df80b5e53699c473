"""Derived quantities: pure functions of one trial, and of the trials of one study or budget.

No I/O here. Every definition written in the README lives in exactly one function below.

Example::

    >>> from hpo_analysis.model import CurvePoint
    >>> curve = (CurvePoint(0, {"val_loss": 0.7}), CurvePoint(1, {"val_loss": 0.6}),
    ...          CurvePoint(2, {"val_loss": 0.65}))
    >>> best_epoch(curve)
    (1, 0.6)
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import chain
from typing import Any

from .model import CurvePoint, Settings, Trial
from .normalize import CurveColumns
from .schema import OBJECTIVE_PREFIX, PARAM_PREFIX


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def finite_or_none(value: Any) -> float | None:
    if type(value) is float:  # the usual case, without the general checks (x - x is 0.0
        return value if value - value == 0.0 else None  # exactly when x is finite)
    if value is None:
        return None
    return float(value) if _finite(value) else None


def number_kind(value: float | None) -> str:
    """`finite`, `nan`, `inf`, `-inf` or `missing`."""
    if value is None:
        return "missing"
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return "finite"


def best_epoch(curve: Sequence[CurvePoint]) -> tuple[int | None, float | None]:
    """Epoch and value of the lowest finite val_loss; the earliest epoch wins ties."""
    losses = list(map(_GET_VAL_LOSS, map(_METRICS, curve)))
    if losses and set(map(type, losses)) == {float} and _finite_sum(losses):
        position = losses.index(min(losses))  # the first of equal minima: earliest epoch
        return curve[position].epoch, losses[position]
    best: tuple[int | None, float | None] = (None, None)
    lowest = math.inf
    for point in curve:
        loss = point.metrics.get("val_loss")
        if type(loss) is float:  # the common case, checked inline for speed
            if lowest > loss > -math.inf:  # false for NaN and for both infinities
                lowest = loss
                best = (point.epoch, loss)
        elif _finite(loss) and loss < lowest:  # type: ignore[operator]
            lowest = float(loss)  # type: ignore[arg-type]
            best = (point.epoch, lowest)
    return best


def last_metric(curve: Sequence[CurvePoint], key: str) -> float | None:
    """The metric of the last recorded epoch, when finite."""
    return finite_or_none(curve[-1].metrics.get(key)) if curve else None


_METRICS = operator.attrgetter("metrics")
_GET_VAL_LOSS = operator.methodcaller("get", "val_loss")


def _finite_sum(values: Iterable[Any]) -> bool:
    """True when the float sum is finite, hence every value finite (NaN and infinities
    propagate; an overflow of huge finite values only sends the caller to its exact path)."""
    total = sum(values, 0.0)
    return bool(total - total == 0.0)


def count_non_finite(curve: Sequence[CurvePoint]) -> int:
    """Number of NaN/±inf metric values in the curve.

    >>> count_non_finite((CurvePoint(0, {"a": 1.0, "b": math.nan}), CurvePoint(1, {"a": None})))
    1
    """
    try:  # one pass of float sums: finite (and no None) means nothing to count
        if _finite_sum(map(sum, map(dict.values, map(_METRICS, curve)))):
            return 0
    except TypeError:  # a None (missing) value
        pass
    return sum(
        1 for p in curve for v in p.metrics.values() if v is not None and not math.isfinite(v)
    )


def is_diverged(
    objective: float | None, threshold: float, direction: str = "minimize"
) -> bool | None:
    """Objective non-finite, or (minimize studies) at least ``threshold``; None if no objective."""
    if objective is None:
        return None
    if not math.isfinite(objective):
        return True
    return direction == "minimize" and objective >= threshold


@dataclass(frozen=True)
class Divergence:
    diverge_epoch: int | None
    last_good_loss: float | None
    loss_at_diverge: float | None
    diverge_kind: str


def divergence_point(curve: Sequence[CurvePoint], threshold: float) -> Divergence:
    """Where the curve blows up: the first epoch whose train or val loss is non-finite or ≥
    ``threshold``; ``value_only`` when no epoch does."""
    previous: CurvePoint | None = None
    for point in curve:
        losses = [point.metrics.get("val_loss"), point.metrics.get("train_loss")]
        bad = [v for v in losses if v is not None and (not math.isfinite(v) or v >= threshold)]
        if bad:
            # nan_loss / inf_loss, not nan / inf: pandas and spreadsheets read "nan" as missing
            if any(math.isnan(v) for v in bad):
                kind = "nan_loss"
            elif any(math.isinf(v) for v in bad):
                kind = "inf_loss"
            else:
                kind = "above_threshold"
            val = point.metrics.get("val_loss")
            crossed = (
                val
                if val is not None and (not math.isfinite(val) or val >= threshold)
                else point.metrics.get("train_loss")
            )
            last_good = previous.metrics.get("val_loss") if previous else None
            return Divergence(point.epoch, finite_or_none(last_good), finite_or_none(crossed), kind)
        previous = point
    return Divergence(None, None, None, "value_only")


def arch_category(
    n_layers: int | None, d_model: int | None, thresholds: tuple[float, float]
) -> str | None:
    """narrow-deep / balanced / wide-shallow from the ratio n_layers/d_model.

    >>> arch_category(48, 64, (0.15, 0.5)), arch_category(12, 64, (0.15, 0.5))
    ('narrow-deep', 'balanced')
    """
    if not n_layers or not d_model:
        return None
    ratio = n_layers / d_model
    low, high = thresholds
    if ratio > high:
        return "narrow-deep"
    if ratio < low:
        return "wide-shallow"
    return "balanced"


_BUDGET_SUFFIX = {"K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}


def budget_params(budget: str | None) -> int | None:
    """The parameter budget as a number, so budgets sort by size and not as text.

    A number with an optional K/M/B/T suffix (case-insensitive); None when it is not one.

    >>> [budget_params(b) for b in ("2M", "20M", "200M", "2B", "1.5k", "7", "big", None)]
    [2000000, 20000000, 200000000, 2000000000, 1500, 7, None, None]
    """
    if budget is None:
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMBT]?)\s*", budget.upper())
    if not match:
        return None
    scale = _BUDGET_SUFFIX.get(match.group(2), 1)
    return int(round(float(match.group(1)) * scale))


def style_ranks(ratios: Iterable[Fraction]) -> dict[Fraction, str]:
    """Budget-relative style of each distinct depth/width ratio (see :func:`assign_arch_style`).

    >>> from fractions import Fraction as F
    >>> styles = style_ranks([F(24, 2048), F(32, 2048), F(48, 2048), F(48, 1536)])
    >>> [styles[r] for r in sorted(styles)]
    ['wide-shallow', 'balanced', 'balanced', 'narrow-deep']
    >>> style_ranks([F(1, 8)]), sorted(style_ranks([F(1, 8), F(1, 4)]).values())
    ({Fraction(1, 8): 'balanced'}, ['narrow-deep', 'wide-shallow'])
    """
    distinct = sorted(set(ratios))
    k = len(distinct)
    styles: dict[Fraction, str] = {}
    for index, ratio in enumerate(distinct):
        third = (3 * (2 * index + 1)) // (2 * k)  # floor(3·(i + 0.5)/k), exactly
        styles[ratio] = ("wide-shallow", "balanced", "narrow-deep")[min(third, 2)]
    return styles


def _ratio(row: dict[str, Any]) -> Fraction | None:
    n_layers, d_model = row.get("n_layers"), row.get("d_model")
    if isinstance(n_layers, int) and isinstance(d_model, int) and n_layers > 0 and d_model > 0:
        return Fraction(n_layers, d_model)
    return None


def assign_arch_style(rows: Sequence[dict[str, Any]]) -> None:
    """Set budget_params and the budget-relative arch_style of every row (in place).

    Fixed ratio thresholds put every architecture of a large budget into one category (a
    48-layer, 1536-wide model has n_layers/d_model = 0.03), so the style is taken relative to
    the architectures the budget actually tried: its distinct n_layers/d_model ratios are
    ranked and split into thirds (:func:`style_ranks`). Distinct ratios, not trials, are
    split, so an architecture sampled often does not move the cut points.

    A budget's number and an architecture's ratio are worked out once per distinct budget
    text and (n_layers, d_model) pair of plain integers, not once per row.
    """
    params: dict[str, int | None] = {}
    ratios: dict[tuple[Any, Any], Fraction | None] = {}
    groups: dict[str, set[Fraction]] = {}
    placed: list[tuple[str, Fraction] | None] = []
    for row in rows:
        budget = row.get("budget")
        if type(budget) is not str:
            row["budget_params"] = budget_params(budget)
        elif budget in params:
            row["budget_params"] = params[budget]
        else:
            row["budget_params"] = params[budget] = budget_params(budget)
        arch = (row.get("n_layers"), row.get("d_model"))
        if type(arch[0]) is not int or type(arch[1]) is not int:
            ratio = _ratio(row)
        elif arch in ratios:
            ratio = ratios[arch]
        else:
            ratio = ratios[arch] = _ratio(row)
        if ratio is None:
            placed.append(None)
        else:
            key = _budget_key(row)
            groups.setdefault(key, set()).add(ratio)
            placed.append((key, ratio))
    styles = {key: style_ranks(distinct) for key, distinct in groups.items()}
    for row, where in zip(rows, placed, strict=True):
        row["arch_style"] = None if where is None else styles[where[0]][where[1]]


def stop_reason(
    state: str,
    diverged: bool | None,
    early_stopped: bool | None,
    epochs_trained: int | None,
    epochs_config: int | None,
) -> str:
    """Why training ended; the first matching reason in the documented order wins."""
    if state in ("RUNNING", "WAITING"):
        return "running"
    if state == "FAIL":
        return "failed"
    if state == "PRUNED":
        return "pruned"
    if diverged:
        return "diverged"
    if early_stopped:
        return "early_stopped"
    if state == "COMPLETE" and epochs_trained is not None and epochs_config is not None:
        return "completed"
    return "unknown"


MAXIMIZE_HINTS = ("auc", "acc", "f1", "precision", "recall", "r2", "score", "reward", "map")
VAL_LOSS_NAMES = ("val_loss", "validation_loss", "valid_loss", "loss")


def objective_matches(objective: float | None, curve: Sequence[CurvePoint]) -> list[str]:
    """The curve metrics whose last, lowest or highest finite value equals the objective.

    A runner that optimizes ``val_auc`` reports the best (or final) ``val_auc`` of the curve
    as the trial's value; when every trial of a study agrees, the metric names the objective.

    >>> c = (CurvePoint(0, {"val_loss": 0.7, "val_auc": 0.61}),
    ...      CurvePoint(1, {"val_loss": 0.6, "val_auc": 0.64}))
    >>> objective_matches(0.64, c), objective_matches(0.6, c), objective_matches(None, c)
    (['val_auc'], ['val_loss'], [])
    """
    if not _finite(objective) or not curve:
        return []
    found: list[str] = []
    metrics = list(map(_METRICS, curve))
    for name in dict.fromkeys(chain.from_iterable(metrics)):
        column = list(map(operator.methodcaller("get", name), metrics))
        # the common case, checked in C: a finite float at every epoch, so the finite values
        # are the whole column and the last value is its last element
        if set(map(type, column)) == {float} and _finite_sum(column):
            if objective == column[-1] or objective == min(column) or objective == max(column):
                found.append(name)
        elif _objective_matches_metric(objective, curve, name):
            found.append(name)
    return found


def _objective_matches_metric(objective: Any, curve: Sequence[CurvePoint], name: str) -> bool:
    """The definition, for any curve: the objective equals the metric's lowest or highest
    finite value, or its value at the last epoch when that is finite."""
    values = [float(v) for p in curve if _finite(v := p.metrics.get(name))]  # type: ignore[arg-type]
    if not values:
        return False
    last = curve[-1].metrics.get(name)
    return objective in (min(values), max(values)) or (_finite(last) and last == objective)


def _loss_non_finite(curve: Sequence[CurvePoint]) -> bool:
    """True when a val_loss or train_loss of the curve is NaN or ±inf."""
    for point in curve:
        for key in LOSS_METRICS:
            value = point.metrics.get(key)
            if value is not None and not math.isfinite(value):
                return True
    return False


LOSS_METRICS = ("val_loss", "train_loss")
# What one record of a trial says before the study is known: the facts the study-level step
# (:func:`finish_rows`) needs, kept in the row under these names (writers skip "_" keys).
FACTS = (
    "_direction",
    "_direction_source",
    "_objective_name",
    "_results_val_loss",
    "_last_val_loss",
    "_curve_len",
    "_loss_non_finite",
    "_objective_matches",
)
# Columns that are functions of one record's learning curve: when records of one trial are
# merged they come together, from the record whose curve is kept.
CURVE_FIELDS = (
    "train_loss",
    "last_val_loss",
    "best_epoch",
    "best_val_loss",
    "final_val_auc",
    "curve_non_finite",
    "_curve_len",
    "_last_val_loss",
    "_loss_non_finite",
    "_objective_matches",
)


def record_row(trial: Trial, settings: Settings) -> dict[str, Any]:
    """The flat row of one record of a trial, before the study-level step.

    Everything that depends only on this record is computed here; direction, val_loss,
    divergence, early stopping, stop reason and style depend on the study (and on the other
    records of the same trial) and are set by :func:`finish_rows`.
    """
    curve = trial.curve
    return _row(vars(trial), curve_facts(curve, trial.objective) if curve else _no_curve())


def record_row_columns(
    fields: dict[str, Any], curve: CurveColumns | None, settings: Settings
) -> dict[str, Any]:
    """:func:`record_row` of the trial whose fields (by name, ``curve`` aside) are ``fields``
    and whose learning curve, held as columns, is ``curve`` (a reader's quick path, see
    :func:`~hpo_analysis.normalize.clean_columns`): the same row, computed column by column
    instead of epoch by epoch, without a Trial object."""
    if curve is None:
        return _row(fields, _no_curve())
    return _row(fields, column_facts(curve, fields["objective"]))


# What a learning curve contributes to a row: best epoch and its val_loss, the count of
# non-finite values, the number of epochs, the last train_loss, val_auc and val_loss, whether
# a loss is non-finite and the metrics matching the objective.
CurveFacts = tuple[
    int | None, float | None, int, int, float | None, float | None, float | None, bool, list[str]
]


def _no_curve() -> CurveFacts:
    """The :data:`CurveFacts` of a record without a curve (a fresh list each time: rows own
    their values)."""
    return (None, None, 0, 0, None, None, None, False, [])


def curve_facts(curve: Sequence[CurvePoint], objective: float | None) -> CurveFacts:
    """The :data:`CurveFacts` of a curve of points (any curve)."""
    epoch_best, loss_best = best_epoch(curve)
    non_finite = count_non_finite(curve)
    return (
        epoch_best,
        loss_best,
        non_finite,
        len(curve),
        last_metric(curve, "train_loss"),
        last_metric(curve, "val_auc"),
        last_metric(curve, "val_loss"),
        # a loss can only be non-finite when some value of the curve is
        bool(non_finite) and _loss_non_finite(curve),
        objective_matches(objective, curve),
    )


def column_facts(curve: CurveColumns, objective: float | None) -> CurveFacts:
    """The :data:`CurveFacts` of a curve held as columns of floats (the same definitions as
    :func:`curve_facts`; ``tests/test_fast_paths.py`` checks they agree)."""
    epochs, columns = curve.epochs, curve.columns
    by_name = dict(zip(curve.names, columns, strict=True))
    losses = by_name.get("val_loss")
    epoch_best: int | None = None
    loss_best: float | None = None
    if losses is not None:
        if _finite_sum(losses):
            position = losses.index(min(losses))  # the first of equal minima: earliest epoch
            epoch_best, loss_best = epochs[position], losses[position]
        else:
            lowest = math.inf
            for epoch, loss in zip(epochs, losses, strict=True):
                if lowest > loss > -math.inf:  # false for NaN and for both infinities
                    lowest = loss
                    epoch_best, loss_best = epoch, loss
    non_finite = 0
    if not _finite_sum(map(sum, columns)):  # a finite total: nothing to count
        non_finite = sum(1 for column in columns for v in column if v - v != 0.0)
    loss_non_finite = bool(non_finite) and any(
        v - v != 0.0 for name in LOSS_METRICS for v in by_name.get(name, ())
    )
    matches: list[str] = []
    if _finite(objective):
        for name, column in by_name.items():
            if _finite_sum(column):
                found = objective in (column[-1], min(column), max(column))
            else:
                values = [v for v in column if v - v == 0.0]
                last = column[-1]
                found = bool(values) and (
                    objective in (min(values), max(values))
                    or (last - last == 0.0 and last == objective)
                )
            if found:
                matches.append(name)
    return (
        epoch_best,
        loss_best,
        non_finite,
        len(epochs),
        _last_finite(by_name, "train_loss"),
        _last_finite(by_name, "val_auc"),
        _last_finite(by_name, "val_loss"),
        loss_non_finite,
        matches,
    )


def _last_finite(by_name: dict[str, tuple[float, ...]], name: str) -> float | None:
    column = by_name.get(name)
    if column is None:
        return None
    last = column[-1]
    return last if last - last == 0.0 else None


_ARCH_FIELDS = ("d_model", "n_layers", "n_heads", "d_ff", "param_count", "arch_idx")
_TRAINING_FIELDS = ("lr", "epochs_config", "weight_decay", "warmup_steps", "dropout", "batch_size")
_RESULT_FIELDS = (
    "val_accuracy",
    "duration_sec",
    "train_accuracy",
    "val_loss",
    "epochs_trained",
    "datetime_start",
    "datetime_complete",
)


def _row(trial: dict[str, Any], facts: CurveFacts) -> dict[str, Any]:
    """The row of :func:`record_row` from the trial's fields (by name) and its curve's
    facts."""
    (
        epoch_best,
        loss_best,
        non_finite,
        curve_len,
        last_train_loss,
        last_val_auc,
        last_val_loss,
        loss_non_finite,
        matches,
    ) = facts
    factors = trial["factors"]
    objective = trial["objective"]
    direction = trial["direction"]
    # each group's values in one pass in C (the dict's get, so an absent key reads None)
    d_model, n_layers, n_heads, d_ff, param_count, arch_idx = map(
        trial["architecture"].get, _ARCH_FIELDS
    )
    lr, epochs_config, weight_decay, warmup_steps, dropout, batch_size = map(
        trial["training"].get, _TRAINING_FIELDS
    )
    (
        val_accuracy,
        duration_sec,
        train_accuracy,
        results_val_loss,
        results_epochs_trained,
        datetime_start,
        datetime_complete,
    ) = map(trial["results"].get, _RESULT_FIELDS)
    epochs_trained: int | None = curve_len if curve_len else results_epochs_trained
    row: dict[str, Any] = {
        "study": trial["study"],
        "budget": factors.get("budget"),
        "horizon": factors.get("horizon"),
        "trial_num": trial["trial_num"],
        "d_model": d_model,
        "n_layers": n_layers,
        "n_heads": n_heads,
        "d_ff": d_ff,
        "param_count": param_count,
        "arch_idx": arch_idx,
        "lr": lr,
        "epochs_config": epochs_config,
        "weight_decay": weight_decay,
        "warmup_steps": warmup_steps,
        "dropout": dropout,
        "val_loss": None,
        "train_loss": last_train_loss,
        "val_accuracy": finite_or_none(val_accuracy),
        "best_epoch": epoch_best,
        "best_val_loss": loss_best,
        "epochs_trained": epochs_trained,
        "early_stopped": None,
        "duration_sec": finite_or_none(duration_sec),
        "diverged": None,
        "rank_in_study": None,
        "is_best_in_study": None,
        "arch_category": None,
        "objective": finite_or_none(objective),
        "objective_kind": number_kind(objective),
        "objective_name": None,
        "direction": None,
        "direction_source": None,
        "state": trial["state"],
        "stop_reason": None,
        "batch_size": batch_size,
        "train_accuracy": finite_or_none(train_accuracy),
        "final_val_auc": last_val_auc,
        "last_val_loss": last_val_loss,
        "curve_non_finite": non_finite,
        "datetime_start": datetime_start,
        "datetime_complete": datetime_complete,
        "source_file": trial["source_file"],
        "_direction": direction if direction in ("minimize", "maximize") else None,
        "_direction_source": trial["direction_source"],
        "_objective_name": trial["objective_name"],
        "_results_val_loss": finite_or_none(results_val_loss),
        "_last_val_loss": last_val_loss,
        "_curve_len": curve_len,
        "_loss_non_finite": loss_non_finite,
        "_objective_matches": matches,
    }
    if len(factors) > 2 or not factors.keys() <= {"budget", "horizon"}:
        for name, value in factors.items():
            if name not in ("budget", "horizon"):
                row[name] = value
    for label, objective_value in trial["objective_values"].items():
        row[f"{OBJECTIVE_PREFIX}{label}"] = finite_or_none(objective_value)
    for name, value in trial["extra_params"].items():
        row[f"{PARAM_PREFIX}{name}"] = value
    return row


def trial_row(trial: Trial, settings: Settings) -> dict[str, Any]:
    """The finished row of one trial taken alone (a study of one trial): :func:`record_row`
    then :func:`finish_rows`. The pipeline finishes whole studies instead."""
    row = record_row(trial, settings)
    finish_rows([row], settings, lambda _row: trial.curve)
    return row


def _objective_is_val_loss(name: str | None) -> bool:
    return name is None or name.lower() in VAL_LOSS_NAMES


def finish_row(
    row: dict[str, Any],
    direction: str,
    direction_source: str,
    objective_name: str | None,
    rule: DivergenceRule,
    thresholds: tuple[float, float],
) -> None:
    """Set the columns that depend on the study: direction, val_loss, diverged, early
    stopping, stop reason and the fixed-threshold style (in place)."""
    row["direction"], row["direction_source"] = direction, direction_source
    row["objective_name"] = objective_name or "value"
    kind = row["objective_kind"]
    if _objective_is_val_loss(objective_name) and direction == "minimize" and kind != "missing":
        row["val_loss"] = row["objective"]
    else:
        row["val_loss"] = row.get("_results_val_loss") or row.get("_last_val_loss")
    diverged = rule.diverged(row["objective"], kind, bool(row.get("_loss_non_finite")))
    row["diverged"] = diverged
    early: bool | None = None
    epochs_config = row.get("epochs_config")
    if row.get("_curve_len") and epochs_config is not None:
        ended_early = row["_curve_len"] < epochs_config
        early = ended_early and not diverged and row["state"] not in ("PRUNED", "FAIL")
    row["early_stopped"] = early
    row["stop_reason"] = stop_reason(
        row["state"], diverged, early, row.get("epochs_trained"), epochs_config
    )
    row["arch_category"] = arch_category(row.get("n_layers"), row.get("d_model"), thresholds)


DIVERGE_FACTOR = 10.0


@dataclass(frozen=True)
class DivergenceRule:
    """Which trials of one study count as diverged, and where a curve blows up.

    A trial is diverged when its objective is NaN or ±inf, when a val_loss or train_loss of
    its curve is NaN or ±inf, or (minimize studies) when its objective is at least
    ``objective_threshold`` or equals the runner's ``sentinel``. ``curve_threshold`` is the
    finite loss at which :func:`divergence_point` says the curve crossed.
    """

    objective_threshold: float | None
    curve_threshold: float
    sentinel: float | None
    text: str

    def diverged(self, objective: float | None, kind: str, curve_non_finite: bool) -> bool | None:
        if kind == "missing":
            return None
        if kind != "finite" or curve_non_finite:
            return True
        assert objective is not None
        if self.sentinel is not None and objective == self.sentinel:
            return True
        return self.objective_threshold is not None and objective >= self.objective_threshold


def _median(values: Sequence[float]) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def runner_sentinel(values: Sequence[float]) -> float | None:
    """The value a runner writes for every trial it gave up on (e.g. ``100.0``): the largest
    value, shared exactly by at least two trials and at least 10× the smallest positive one.

    >>> runner_sentinel([0.61, 0.7, 100.0, 0.65, 100.0]), runner_sentinel([0.6, 0.6, 0.7])
    (100.0, None)
    """
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) < 3:
        return None
    top = max(finite)
    positive = [v for v in finite if v > 0]
    if finite.count(top) < 2 or not positive or top < DIVERGE_FACTOR * min(positive):
        return None
    return top


def divergence_rule(
    rows: Sequence[dict[str, Any]], direction: str, objective_name: str | None, settings: Settings
) -> DivergenceRule:
    """The divergence rule of one study.

    ``--diverge-threshold X`` is an absolute threshold (objective ≥ X in a minimize study; a
    curve loss ≥ X marks the point). By default the rule is scale-aware: the threshold is
    :data:`DIVERGE_FACTOR` × the study's median finite objective of COMPLETE trials (minimize
    studies with a positive median; the runner's sentinel value is left out of the median and
    counts as diverged), so an RMSE around 20,000 or a latency in milliseconds is not
    "diverged". Curve losses are compared with 10 × the median objective when the objective is
    the validation loss, else with 10 × the study's median best_val_loss.
    """
    if settings.diverge_threshold is not None:
        x = settings.diverge_threshold
        return DivergenceRule(
            x if direction == "minimize" else None,
            x,
            None,
            f"absolute threshold {x:g} (--diverge-threshold): objective ≥ {x:g}"
            + (" (minimize study)" if direction == "minimize" else " (not applied: maximize)")
            + ", or a NaN/±inf objective or curve loss",
        )
    values = [
        r["objective"] for r in rows if r["state"] == "COMPLETE" and r["objective_kind"] == "finite"
    ]
    sentinel = runner_sentinel(values) if direction == "minimize" else None
    median = _median([v for v in values if v != sentinel])
    losses = [r["best_val_loss"] for r in rows if _finite(r.get("best_val_loss"))]
    loss_median = _median(losses)
    objective_threshold = None
    if direction == "minimize" and median is not None and median > 0:
        objective_threshold = DIVERGE_FACTOR * median
    if objective_threshold is not None and _objective_is_val_loss(objective_name):
        curve_threshold = objective_threshold
    elif loss_median is not None and loss_median > 0:
        curve_threshold = DIVERGE_FACTOR * loss_median
    else:
        curve_threshold = math.inf
    parts = ["a NaN/±inf objective or curve loss"]
    if objective_threshold is not None:
        parts.append(
            f"objective ≥ {objective_threshold:.6g} ({DIVERGE_FACTOR:g} × the median "
            f"objective {median:.6g})"
        )
    elif direction == "maximize":
        parts.append("no objective threshold (maximize study)")
    else:
        parts.append("no objective threshold (no positive median objective)")
    if sentinel is not None:
        parts.append(f"the runner's sentinel value {sentinel:g}")
    return DivergenceRule(
        objective_threshold, curve_threshold, sentinel, "scale-aware: " + "; ".join(parts)
    )


@dataclass(frozen=True)
class StudyDecision:
    """What the study-level step decided for one study (written to the metadata/README)."""

    direction: str
    direction_source: str
    objective_name: str | None
    rule: DivergenceRule


MATCH_SHARE = 0.9  # share of a study's scored trials whose value a curve metric must equal


def study_objective(rows: Sequence[dict[str, Any]]) -> tuple[str | None, str | None]:
    """The objective's name and, when inferred, why: the records' own name, else the one
    curve metric whose final or best value equals the objective in at least 90% of the
    study's COMPLETE trials with a finite objective and a curve (at least 2 trials; a
    runner's sentinel for diverged trials equals no metric, hence not 100%)."""
    named = sorted({r["_objective_name"] for r in rows if r.get("_objective_name")})
    if named:
        return named[0], None
    scored = [
        r
        for r in rows
        if r["state"] == "COMPLETE" and r["objective_kind"] == "finite" and r.get("_curve_len")
    ]
    if len(scored) < 2:
        return None, None
    counts: dict[str, int] = {}
    for r in scored:
        for name in r.get("_objective_matches") or ():
            counts[name] = counts.get(name, 0) + 1
    common = sorted(n for n, c in counts.items() if c >= MATCH_SHARE * len(scored))
    if len(common) != 1:
        return None, None
    name = common[0]
    return name, (
        f"objective name {name!r} (the value equals that curve metric's final or best value "
        f"in {counts[name]} of {len(scored)} trials)"
    )


def study_direction(
    study: str,
    rows: Sequence[dict[str, Any]],
    objective_name: str | None,
    settings: Settings,
    meta_direction: tuple[str, str] | None = None,
) -> tuple[str, str]:
    """The study's direction and why: ``--direction``, else the records' source (an Optuna
    study, a dump), else a best-trial file beside the trials, else the objective's name,
    else minimize."""
    forced = settings.direction_for(study)
    if forced:
        return forced, "--direction option"
    given: dict[tuple[str, str], int] = {}
    for r in rows:
        if r.get("_direction"):
            key = (r["_direction"], r.get("_direction_source") or "source")
            given[key] = given.get(key, 0) + 1
    if given:
        return max(sorted(given), key=lambda k: given[k])
    if meta_direction is not None:
        return meta_direction
    name = (objective_name or "").lower()
    if name and any(hint in name for hint in MAXIMIZE_HINTS) and "loss" not in name:
        return "maximize", f"objective name {objective_name!r}"
    return "minimize", "default"


CurveLoader = Callable[[dict[str, Any]], Sequence[CurvePoint]]


def finish_rows(
    rows: Sequence[dict[str, Any]],
    settings: Settings,
    curve_of: CurveLoader,
    meta_directions: dict[str, Callable[[list[float]], tuple[str, str] | None]] | None = None,
) -> dict[str, StudyDecision]:
    """The study-level step, in place: per study, the objective's name, the direction, the
    divergence rule, then every row's study-dependent columns and, for diverged rows, where
    the curve blew up (``curve_of(row)`` loads a row's curve; only diverged rows ask)."""
    by_study: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_study.setdefault(row["study"], []).append(row)
    decisions: dict[str, StudyDecision] = {}
    for study, study_rows in by_study.items():
        name, name_source = study_objective(study_rows)
        meta = None
        if meta_directions and study in meta_directions:
            meta = meta_directions[study](
                [
                    r["objective"]
                    for r in study_rows
                    if r["state"] == "COMPLETE" and r["objective_kind"] == "finite"
                ]
            )
        direction, source = study_direction(study, study_rows, name, settings, meta)
        if source == "default" and name_source is not None and direction == "minimize":
            source = name_source  # minimize because the matched metric is a loss
        elif source.startswith("objective name") and name_source is not None:
            source = name_source
        rule = divergence_rule(study_rows, direction, name, settings)
        decisions[study] = StudyDecision(direction, source, name, rule)
        for row in study_rows:
            finish_row(row, direction, source, name, rule, settings.arch_thresholds)
            if row["diverged"]:
                d = divergence_point(curve_of(row), rule.curve_threshold)
                row.update(
                    diverge_epoch=d.diverge_epoch,
                    last_good_loss=d.last_good_loss,
                    loss_at_diverge=d.loss_at_diverge,
                    diverge_kind=d.diverge_kind,
                )
            else:
                for key in ("diverge_epoch", "last_good_loss", "loss_at_diverge", "diverge_kind"):
                    row.pop(key, None)
    return decisions


def assign_ranks(rows: Iterable[dict[str, Any]]) -> None:
    """Set rank_in_study / is_best_in_study in place, per study, direction-aware.

    Only COMPLETE trials with a finite objective are ranked; ties share the lowest rank
    ("min" ranking: 1, 2, 2, 4).
    """
    by_study: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_study.setdefault(row["study"], []).append(row)
    for study_rows in by_study.values():
        rankable = [r for r in study_rows if r["state"] == "COMPLETE" and _finite(r["objective"])]
        sign = -1.0 if any(r["direction"] == "maximize" for r in rankable) else 1.0
        rankable.sort(key=lambda r: sign * r["objective"])
        rank = 0
        previous: float | None = None
        for position, row in enumerate(rankable, start=1):
            if previous is None or row["objective"] != previous:
                rank = position
                previous = row["objective"]
            row["rank_in_study"] = rank
        for row in study_rows:
            row["is_best_in_study"] = row["rank_in_study"] == 1 if row["rank_in_study"] else False


def _arch_vector(row: dict[str, Any]) -> tuple[float, float, float] | None:
    values = [row.get(k) for k in ("d_model", "n_layers", "n_heads")]
    logs = [math.log2(v) for v in values if isinstance(v, int) and v > 0]
    return (logs[0], logs[1], logs[2]) if len(logs) == 3 else None


def assign_similar_successful(rows: Sequence[dict[str, Any]]) -> None:
    """For each diverged row, the nearest successful trial of the same budget (in place).

    Candidates: not diverged, ranked (COMPLETE, finite objective), architecture known.
    Distance: Euclidean on log2(d_model), log2(n_layers), log2(n_heads). Ties: same study
    first, then the better rank, then study name and trial number.

    The search runs over the budget's *distinct* architectures (a few dozen, however many
    trials share them): for each, the best candidate overall and per study are kept, so a
    diverged trial costs one distance per distinct architecture, not one per trial.
    """
    groups: dict[str, dict[tuple[float, float, float], _Candidates]] = {}
    for row in rows:
        vector = _arch_vector(row)
        if row.get("diverged") is False and row.get("rank_in_study") and vector is not None:
            by_vector = groups.setdefault(_budget_key(row), {})
            by_vector.setdefault(vector, _Candidates()).add(row)
    for row in rows:
        if not row.get("diverged"):
            continue
        row.update(similar_successful_trial=None, similar_val_loss=None, similar_distance=None)
        vector = _arch_vector(row)
        candidates = groups.get(_budget_key(row))
        if vector is None or not candidates:
            continue
        distances = {v: round(math.dist(vector, v), 12) for v in candidates}
        nearest = min(distances.values())
        tied = [candidates[v] for v, d in distances.items() if d == nearest]
        same_study = [c.by_study[row["study"]] for c in tied if row["study"] in c.by_study]
        pool = same_study or [c.best for c in tied]
        best = min(pool, key=_candidate_order)
        row["similar_successful_trial"] = f"{best['study']}/{best['trial_num']}"
        row["similar_val_loss"] = best["val_loss"]
        row["similar_distance"] = round(nearest, 6)


def _candidate_order(row: dict[str, Any]) -> tuple[Any, ...]:
    return row["rank_in_study"], row["study"], row["trial_num"]


class _Candidates:
    """The successful trials of one architecture: the best overall and the best per study."""

    __slots__ = ("best", "by_study")

    def __init__(self) -> None:
        self.best: dict[str, Any] = {}
        self.by_study: dict[str, dict[str, Any]] = {}

    def add(self, row: dict[str, Any]) -> None:
        if not self.best or _candidate_order(row) < _candidate_order(self.best):
            self.best = row
        mine = self.by_study.get(row["study"])
        if mine is None or _candidate_order(row) < _candidate_order(mine):
            self.by_study[row["study"]] = row


def _budget_key(row: dict[str, Any]) -> str:
    """Rows are compared within a budget; without a parsed budget, within their study."""
    return f"budget:{row['budget']}" if row.get("budget") else f"study:{row['study']}"
