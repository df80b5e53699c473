"""Training dynamics: where the best epoch falls, what dropout does, when runs stop early."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from .. import stats
from ..finding import (
    INSUFFICIENT,
    MIN_GROUP,
    MIN_N,
    Finding,
)
from ..stats import Estimate
from .cells import (
    CI_NOTE,
    _ci,
    _finding,
    _pct,
    _pct_ci,
    _quantiles,
    _rate_text,
    _record,
    _rho,
    _rho_text,
    _sig,
    fmt,
)
from .frame import (
    Budget,
    Rows,
    Tally,
    _equals,
    _flag,
    _scored_known,
    as_frame,
    group_by,
    per_budget,
)


def best_epoch_gap(rows: Rows) -> Finding:
    """epochs_trained − best_epoch per budget and stop_reason (non-diverged trials with a curve).

    With 0-based epochs (the usual layout) the gap is one more than the number of epochs
    trained after the best one; an early-stopped run with patience p has a gap of exactly
    p + 1, so a median over all trials only tracks the early-stopped share. Early-stopped and
    completed trials are therefore summarised apart.
    """
    frame = as_frame(rows)

    def compute(entry: Budget, tally: Tally) -> None:
        budget, group = entry.label, entry.whole
        table, parts, estimates = tally.table, tally.parts, tally.estimates
        cell_all = group.where(
            _flag(group, "diverged", False)
            & np.isfinite(group["best_epoch"])
            & np.isfinite(group["epochs_trained"])
        )
        tally.total += len(cell_all)
        texts = []
        for reason in ("early_stopped", "completed"):
            cell = cell_all.where(_equals(cell_all["stop_reason"], reason))
            gap = cell["epochs_trained"] - cell["best_epoch"]
            n = len(gap)
            if n < MIN_N:
                table.append([budget, reason, n, INSUFFICIENT, None, None, None, None])
                if n:
                    texts.append(f"{reason} {INSUFFICIENT} (n = {n})")
                continue
            q1, med, q3 = _quantiles(gap)
            estimate = stats.median(gap)
            estimates.append(_record(estimate, 6, budget=budget, stop_reason=reason))
            low, high = (
                _sig(x) if x is not None else None for x in (estimate.ci_low, estimate.ci_high)
            )
            table.append([budget, reason, n, med, low, high, q1, q3])
            spread = "all equal" if q1 == q3 else f"IQR {fmt(q1)}–{fmt(q3)}"
            texts.append(f"{reason} median {fmt(med)} ({spread}, n = {n})")
        if texts:
            parts.append(f"{budget} " + ", ".join(texts))

    tally = per_budget(frame, compute, count=False)
    table, parts, estimates, total = tally.table, tally.parts, tally.estimates, tally.total
    sentence = (
        "Gap between epochs_trained and best_epoch by stop reason: " + "; ".join(parts) + "."
        if parts
        else "No trials were read."
    )
    return replace(
        _finding(
            "best_epoch_gap",
            "Training dynamics",
            "Gap between best_epoch and epochs_trained per budget and stop_reason",
            ["budget", "stop_reason", "n", "median_gap", "ci_low", "ci_high", "q1_gap", "q3_gap"],
            table,
            sentence,
            total,
            "gap = epochs_trained − best_epoch (best_epoch as recorded); non-diverged trials with "
            "a curve, early-stopped and completed apart (with patience p an early-stopped "
            "trial's gap is p + 1, so its median says nothing more); quartiles by linear "
            f"interpolation; needs n ≥ {MIN_N}. {CI_NOTE}",
        ),
        estimates=estimates,
    )


def _dropout_reading(
    estimate: Estimate, better_when_negative: bool, subject: tuple[str, str]
) -> str:
    good, bad = f"higher dropout, {subject[0]}", f"higher dropout, {subject[1]}"
    if better_when_negative:
        return stats.reading(estimate, bad, good)
    return stats.reading(estimate, good, bad)


def dropout_generalization(rows: Rows) -> Finding:
    """Spearman's ρ of dropout with the one-epoch val−train gap and with the objective.

    Both losses of the gap come from the last curve epoch (``last_val_loss`` − ``train_loss``):
    ``val_loss`` can be the best epoch's value, and mixing it with the last epoch's train loss
    would mix two points of training.
    """
    frame = as_frame(rows)

    def compute(entry: Budget, tally: Tally) -> None:
        budget, group = entry.label, entry.whole
        table, parts, estimates = tally.table, tally.parts, tally.estimates
        healthy = group.where(
            _flag(group, "diverged", False)
            & np.isfinite(group["dropout"])
            & np.isfinite(group["last_val_loss"])
            & np.isfinite(group["train_loss"])
        )
        gap = healthy["last_val_loss"] - healthy["train_loss"]
        rho_gap = _rho(healthy["dropout"], gap)
        scored, direction = entry.trials, entry.direction
        rho_obj = _rho(scored["dropout"], scored["objective"]) if direction else None
        tally.total += max(len(healthy), len(scored))
        row: list[Any] = [budget, len(healthy)]
        texts = []
        if rho_gap is not None:
            reading = _dropout_reading(rho_gap, True, ("smaller gap", "larger gap"))
            row += [rho_gap.value, *_ci(rho_gap)]
            estimates.append(rho_gap.to_dict(budget=budget, outcome="gap"))
            texts.append(f"gap {_rho_text(rho_gap, reading)}")
        else:
            row += [INSUFFICIENT, None, None]
            texts.append(f"gap {INSUFFICIENT} (n = {len(healthy)})")
        row.append(len(scored))
        if rho_obj is not None and direction is not None:
            reading = _dropout_reading(
                rho_obj, direction == "minimize", ("better objective", "worse objective")
            )
            row += [rho_obj.value, *_ci(rho_obj)]
            estimates.append(rho_obj.to_dict(budget=budget, outcome="objective"))
            texts.append(f"objective {_rho_text(rho_obj, reading)}")
        else:
            marker = entry.reason()
            row += [marker, None, None]
            texts.append(f"objective {marker} (n = {len(scored)})")
        table.append(row)
        parts.append(f"{budget} " + ", ".join(texts))

    select = _scored_known("dropout")
    tally = per_budget(frame, compute, select=select, directed=True, count=False)
    table, parts, estimates, total = tally.table, tally.parts, tally.estimates, tally.total
    sentence = (
        "Spearman correlation of dropout with the last epoch's val−train loss gap and with the "
        "objective: " + "; ".join(parts) + "."
        if parts
        else "No trials were read."
    )
    return replace(
        _finding(
            "dropout_generalization",
            "Training dynamics",
            "Dropout vs generalization gap and objective per budget",
            [
                "budget",
                "n_gap",
                "rho_dropout_gap",
                "gap_ci_low",
                "gap_ci_high",
                "n_objective",
                "rho_dropout_objective",
                "objective_ci_low",
                "objective_ci_high",
            ],
            table,
            sentence,
            total,
            "gap = last_val_loss − train_loss, both from the last curve epoch, of non-diverged "
            "trials (a smaller gap is better generalization); the objective uses scored trials; "
            f"needs ≥ {MIN_N} trials. {CI_NOTE}",
        ),
        estimates=estimates,
    )


def early_stopping_by_epochs(rows: Rows) -> Finding:
    """Early-stopping rate per budget and epochs_config (non-diverged trials).

    The epoch budget drives early stopping more than anything else: a run configured for 25
    epochs rarely has time to plateau for ``patience`` epochs, one configured for 100 often
    does, so a budget's overall rate mostly reflects its mix of epochs_config values.
    """
    frame = as_frame(rows)
    known = frame.where(
        (_flag(frame, "early_stopped", True) | _flag(frame, "early_stopped", False))
        & ~_flag(frame, "diverged", True)
        & np.isfinite(frame["epochs_config"])
    )

    def compute(entry: Budget, tally: Tally) -> None:
        budget, group = entry.label, entry.whole
        table, parts, estimates = tally.table, tally.parts, tally.estimates
        cells = []
        for epochs, cell in group_by(group, ["epochs_config"]):
            flags = _flag(cell, "early_stopped", True)
            stopped = int(flags.sum())
            if len(cell) < MIN_GROUP:
                table.append([budget, int(epochs), len(cell), stopped, INSUFFICIENT, None, None])
                continue
            estimate = stats.rate(flags)
            estimates.append(_record(estimate, 4, budget=budget, epochs_config=int(epochs)))
            row = [budget, int(epochs), len(cell), stopped, _pct(stopped, len(cell))]
            table.append(row + _pct_ci(estimate))
            cells.append((int(epochs), estimate))
        if len(cells) >= 2:
            (low_e, low), (high_e, high) = cells[0], cells[-1]
            parts.append(
                f"{budget} {_rate_text(low)} at {low_e} epochs vs {_rate_text(high)} at "
                f"{high_e} epochs"
            )

    tally = per_budget(known, compute, count=False)
    table, parts = tally.table, tally.parts
    sentence = (
        "Early-stopping rate by configured epochs (shortest vs longest): " + "; ".join(parts) + "."
        if parts
        else "No budget has two epochs_config values with enough trials to compare."
    )
    return _finding(
        "early_stopping_by_epochs",
        "Training dynamics",
        "Early-stopping rate by epochs_config per budget",
        ["budget", "epochs_config", "trials", "early_stopped", "rate", "ci_low", "ci_high"],
        table,
        sentence,
        len(known),
        f"Non-diverged trials with a known early_stopped flag; a rate needs ≥ {MIN_GROUP} "
        f"trials per epochs_config. {CI_NOTE}",
    )
