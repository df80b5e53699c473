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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from .model import CurvePoint, Settings, Trial
from .schema import OBJECTIVE_PREFIX, PARAM_PREFIX


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def finite_or_none(value: Any) -> float | None:
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
            if any(math.isnan(v) for v in bad):
                kind = "nan"
            elif any(math.isinf(v) for v in bad):
                kind = "inf"
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
    """
    groups: dict[str, list[Fraction]] = {}
    for row in rows:
        row["budget_params"] = budget_params(row.get("budget"))
        ratio = _ratio(row)
        if ratio is not None:
            groups.setdefault(_budget_key(row), []).append(ratio)
    styles = {key: style_ranks(ratios) for key, ratios in groups.items()}
    for row in rows:
        ratio = _ratio(row)
        row["arch_style"] = None if ratio is None else styles[_budget_key(row)][ratio]


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


def resolve_direction(trial: Trial, settings: Settings) -> tuple[str, str]:
    """Direction and why: the --direction option, else the source, else the objective's name
    (auc, accuracy, … maximize), else minimize.

    >>> from hpo_analysis.model import Trial
    >>> t = Trial("s", 0, "COMPLETE", 0.8, {}, {}, {}, (), {}, {}, {}, "f",
    ...           objective_name="val_auc")
    >>> resolve_direction(t, Settings())
    ('maximize', "objective name 'val_auc'")
    """
    forced = settings.direction_for(trial.study)
    if forced:
        return forced, "--direction option"
    if trial.direction in ("minimize", "maximize"):
        return trial.direction, trial.direction_source or "source"
    name = (trial.objective_name or "").lower()
    if name and any(hint in name for hint in MAXIMIZE_HINTS) and "loss" not in name:
        return "maximize", f"objective name {trial.objective_name!r}"
    return "minimize", "default"


def objective_is_val_loss(trial: Trial) -> bool:
    """Named like a validation loss, or unnamed (then it counts as one only when minimized)."""
    return trial.objective_name is None or trial.objective_name.lower() in VAL_LOSS_NAMES


def trial_row(trial: Trial, settings: Settings) -> dict[str, Any]:
    """The flat, per-trial part of a summary row (ranks and neighbours come later)."""
    curve = trial.curve
    arch = trial.architecture
    training = trial.training
    epoch_best, loss_best = best_epoch(curve)
    epochs_trained: int | None = len(curve) if curve else trial.results.get("epochs_trained")
    direction, direction_source = resolve_direction(trial, settings)
    diverged = is_diverged(trial.objective, settings.diverge_threshold, direction)
    early: bool | None = None
    if curve and training.get("epochs_config") is not None:
        ended_early = len(curve) < training["epochs_config"]
        early = ended_early and not diverged and trial.state not in ("PRUNED", "FAIL")
    non_finite = count_non_finite(curve)
    if objective_is_val_loss(trial) and direction == "minimize" and trial.objective is not None:
        val_loss = finite_or_none(trial.objective)
    else:
        val_loss = finite_or_none(trial.results.get("val_loss")) or last_metric(curve, "val_loss")
    row: dict[str, Any] = {
        "study": trial.study,
        "budget": trial.factors.get("budget"),
        "horizon": trial.factors.get("horizon"),
        "trial_num": trial.trial_num,
        **{
            k: arch.get(k)
            for k in ("d_model", "n_layers", "n_heads", "d_ff", "param_count", "arch_idx")
        },
        "lr": training.get("lr"),
        "epochs_config": training.get("epochs_config"),
        "weight_decay": training.get("weight_decay"),
        "warmup_steps": training.get("warmup_steps"),
        "dropout": training.get("dropout"),
        "val_loss": val_loss,
        "train_loss": last_metric(curve, "train_loss"),
        "val_accuracy": finite_or_none(trial.results.get("val_accuracy")),
        "best_epoch": epoch_best,
        "best_val_loss": loss_best,
        "epochs_trained": epochs_trained,
        "early_stopped": early,
        "duration_sec": finite_or_none(trial.results.get("duration_sec")),
        "diverged": diverged,
        "rank_in_study": None,
        "is_best_in_study": None,
        "arch_category": arch_category(
            arch.get("n_layers"), arch.get("d_model"), settings.arch_thresholds
        ),
        "objective": finite_or_none(trial.objective),
        "objective_kind": number_kind(trial.objective),
        "objective_name": trial.objective_name or "value",
        "direction": direction,
        "direction_source": direction_source,
        "state": trial.state,
        "stop_reason": stop_reason(
            trial.state, diverged, early, epochs_trained, training.get("epochs_config")
        ),
        "batch_size": training.get("batch_size"),
        "train_accuracy": finite_or_none(trial.results.get("train_accuracy")),
        "final_val_auc": last_metric(curve, "val_auc"),
        "last_val_loss": last_metric(curve, "val_loss"),
        "curve_non_finite": non_finite,
        "datetime_start": trial.results.get("datetime_start"),
        "datetime_complete": trial.results.get("datetime_complete"),
        "source_file": trial.source_file,
    }
    if diverged:
        d = divergence_point(curve, settings.diverge_threshold)
        row.update(
            diverge_epoch=d.diverge_epoch,
            last_good_loss=d.last_good_loss,
            loss_at_diverge=d.loss_at_diverge,
            diverge_kind=d.diverge_kind,
        )
    for name, value in trial.factors.items():
        if name not in ("budget", "horizon"):
            row[name] = value
    for label, objective_value in trial.objective_values.items():
        row[f"{OBJECTIVE_PREFIX}{label}"] = finite_or_none(objective_value)
    for name, value in trial.extra_params.items():
        row[f"{PARAM_PREFIX}{name}"] = value
    return row


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
    """
    groups: dict[str, list[tuple[tuple[float, float, float], dict[str, Any]]]] = {}
    for row in rows:
        vector = _arch_vector(row)
        if row.get("diverged") is False and row.get("rank_in_study") and vector is not None:
            groups.setdefault(_budget_key(row), []).append((vector, row))
    for row in rows:
        if not row.get("diverged"):
            continue
        row.update(similar_successful_trial=None, similar_val_loss=None, similar_distance=None)
        vector = _arch_vector(row)
        if vector is None:
            continue
        best_key: tuple[Any, ...] | None = None
        best_row: dict[str, Any] | None = None
        for cand_vector, cand in groups.get(_budget_key(row), []):
            distance = math.dist(vector, cand_vector)
            key = (
                round(distance, 12),
                cand["study"] != row["study"],
                cand["rank_in_study"],
                cand["study"],
                cand["trial_num"],
            )
            if best_key is None or key < best_key:
                best_key, best_row = key, cand
        if best_row is not None and best_key is not None:
            row["similar_successful_trial"] = f"{best_row['study']}/{best_row['trial_num']}"
            row["similar_val_loss"] = best_row["val_loss"]
            row["similar_distance"] = round(best_key[0], 6)


def _budget_key(row: dict[str, Any]) -> str:
    """Rows are compared within a budget; without a parsed budget, within their study."""
    return f"budget:{row['budget']}" if row.get("budget") else f"study:{row['study']}"
