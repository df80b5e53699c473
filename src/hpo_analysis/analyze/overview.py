"""Overview: how many trials diverged or stopped early per budget, and each study's best trial.

These three findings read the plain rows or the trial frame: they are the answers a reader
wants before any analysis, and the ones the pipeline can always give.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import stats
from ..finding import (
    INSUFFICIENT,
    MIN_N,
    MIXED,
    Finding,
)
from .cells import (
    _pct,
    _pct_ci,
    _rate_text,
    _record,
)
from .frame import (
    Budget,
    Frame,
    Rows,
    Tally,
    _is_not_none,
    as_frame,
    direction_of,
    per_budget,
    sign,
)


def divergence_by_budget(rows: Rows) -> Finding:
    frame = as_frame(rows)

    def compute(budget: Budget, tally: Tally) -> None:
        flags = [bool(v) for v in budget.trials["diverged"].tolist()]
        estimate = stats.rate(flags)
        tally.estimates.append(_record(estimate, 4, budget=budget.label))
        diverged = sum(flags)
        row = [budget.label, budget.n, diverged, _pct(diverged, budget.n), *_pct_ci(estimate)]
        tally.table.append(row)

    def short(budget: Budget, marker: str) -> list[Any]:
        diverged = sum(bool(v) for v in budget.trials["diverged"].tolist())
        return [budget.label, budget.n, diverged, marker, None, None]

    tally = per_budget(frame, compute, min_n=MIN_N, short=short)
    table, estimates = tally.table, tally.estimates
    n_rows = len(frame)
    total = sum(bool(v) for v in frame["diverged"].tolist())
    hit = [f"{r[0]} ({r[2]} of {r[1]})" for r in table if r[2]]
    if len(table) > 1:
        table.append(["all budgets", n_rows, total, _pct(total, n_rows), None, None])
    if not n_rows:
        sentence = "No trials were read."
    elif not hit:
        sentence = f"None of the {n_rows} trials diverged."
    else:
        sentence = (
            f"{total} of {n_rows} trials diverged ({_pct(total, n_rows)}); "
            f"by budget: {', '.join(hit)}."
        )
    return Finding(
        "divergence_by_budget",
        "Trials and diverged trials per budget",
        ["budget", "trials", "diverged", "diverged_rate", "ci_low", "ci_high"],
        table,
        sentence,
        n_rows,
        estimates=estimates,
    )


def early_stopping_by_budget(rows: Rows) -> Finding:
    """Share of non-diverged trials with a known early_stopped flag that stopped early.

    A diverged trial cannot stop early (its flag is False), so counting it in the
    denominator would lower the rate of exactly the budgets that diverge most.
    """

    def known(group: Frame) -> Frame:
        flagged = _is_not_none(group["early_stopped"])
        diverged = group["diverged"].tolist()
        not_diverged = np.fromiter((v is not True for v in diverged), bool, len(diverged))
        return group.where(flagged & not_diverged)

    def compute(budget: Budget, tally: Tally) -> None:
        flags = [bool(v) for v in budget.trials["early_stopped"].tolist()]
        stopped = sum(flags)
        diverged = sum(1 for v in budget.whole["diverged"].tolist() if v is True)
        n = budget.n
        if budget.marker(min_n=MIN_N) is None:
            estimate = stats.rate(flags)
            tally.estimates.append(_record(estimate, 4, budget=budget.label))
            row = [budget.label, n, stopped, _pct(stopped, n), *_pct_ci(estimate), diverged]
            tally.parts.append(f"{budget.label} {_rate_text(estimate)} of {n}")
        else:
            row = [budget.label, n, stopped, INSUFFICIENT, None, None, diverged]
            if n:
                tally.parts.append(f"{budget.label} {INSUFFICIENT} (n = {n})")
        tally.table.append(row)

    tally = per_budget(as_frame(rows), compute, select=known)
    table, parts, estimates = tally.table, tally.parts, tally.estimates
    n = sum(r[1] for r in table)
    if not n:
        sentence = (
            "No non-diverged trial has both a learning curve and a configured epoch count, so "
            "early stopping cannot be measured."
        )
    else:
        sentence = (
            "Early stopping among non-diverged trials with a curve and epochs_config: "
            + ", ".join(parts)
            + "."
        )
    return Finding(
        "early_stopping_by_budget",
        "Early-stopping rate per budget (non-diverged trials)",
        [
            "budget",
            "non_diverged_with_flag",
            "early_stopped",
            "early_stop_rate",
            "ci_low",
            "ci_high",
            "diverged_left_out",
        ],
        table,
        sentence,
        n,
        estimates=estimates,
    )


def best_trial_per_study(rows: Sequence[dict[str, Any]]) -> Finding:
    """Each study's rank-1 trial; the sentence names the best of them when all the studies
    with a best trial share one direction (:func:`~.frame.direction_of`), and says
    ``mixed directions`` otherwise: a minimize study's loss and a maximize study's accuracy
    are not on one scale.
    """
    table = []
    studies: dict[str, list[dict[str, Any]]] = {}
    directions: dict[str, set[str | None]] = {}
    for row in rows:
        studies.setdefault(row["study"], []).append(row)
    for study in sorted(studies):
        group = studies[study]
        best = sorted(
            (r for r in group if r.get("rank_in_study") == 1), key=lambda r: r["trial_num"]
        )
        ranked = sum(1 for r in group if r.get("rank_in_study"))
        directions[study] = {r.get("direction") for r in group}
        if best:
            b = best[0]
            table.append(
                [
                    study,
                    b["trial_num"],
                    b["objective"],
                    b.get("d_model"),
                    b.get("n_layers"),
                    b.get("n_heads"),
                    b.get("lr"),
                    ranked,
                ]
            )
        else:
            table.append([study, None, None, None, None, None, None, ranked])
    with_best = [r for r in table if r[1] is not None]
    direction = direction_of(d for study in with_best for d in directions[study[0]])
    if not with_best:
        sentence = "No study has a ranked trial."
    elif direction is None:
        sentence = (
            f"{len(with_best)} of {len(table)} studies have a best trial; {MIXED} (minimize "
            "and maximize studies), so no objective is the best overall."
        )
    else:
        top = min(with_best, key=lambda r: sign(direction) * r[2])
        sentence = (
            f"{len(with_best)} of {len(table)} studies have a best trial; the best "
            f"objective overall is {top[2]:.6g} (study {top[0]}, trial {top[1]})."
        )
    return Finding(
        "best_trial_per_study",
        "Best trial per study",
        [
            "study",
            "trial_num",
            "objective",
            "d_model",
            "n_layers",
            "n_heads",
            "lr",
            "ranked_trials",
        ],
        table,
        sentence,
        len(rows),
    )
