"""Overview: how many trials diverged or stopped early per budget, and each study's best trial.

These three findings read the plain rows (no DataFrame needed): they are the answers a reader
wants before any analysis, and the ones the pipeline can always give.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import stats
from ..finding import (
    INSUFFICIENT,
    MIN_N,
    Finding,
)
from .cells import (
    _pct,
    _pct_ci,
    _rate_text,
    _record,
)
from .frame import (
    _by_budget,
    _label,
)


def divergence_by_budget(rows: Sequence[dict[str, Any]]) -> Finding:
    table = []
    estimates: list[dict[str, Any]] = []
    for budget, group in _by_budget(rows).items():
        flags = [bool(r.get("diverged")) for r in group]
        diverged = sum(flags)
        if len(group) >= MIN_N:
            estimate = stats.rate(flags)
            estimates.append(_record(estimate, 4, budget=_label(budget)))
            table.append([_label(budget), len(group), diverged, _pct(diverged, len(group))])
            table[-1].extend(_pct_ci(estimate))
        else:
            table.append([_label(budget), len(group), diverged, INSUFFICIENT, None, None])
    total = sum(1 for r in rows if r.get("diverged"))
    hit = [f"{r[0]} ({r[2]} of {r[1]})" for r in table if r[2]]
    if len(table) > 1:
        table.append(["all budgets", len(rows), total, _pct(total, len(rows)), None, None])
    if not rows:
        sentence = "No trials were read."
    elif not hit:
        sentence = f"None of the {len(rows)} trials diverged."
    else:
        sentence = (
            f"{total} of {len(rows)} trials diverged ({_pct(total, len(rows))}); "
            f"by budget: {', '.join(hit)}."
        )
    return Finding(
        "divergence_by_budget",
        "Trials and diverged trials per budget",
        ["budget", "trials", "diverged", "diverged_rate", "ci_low", "ci_high"],
        table,
        sentence,
        len(rows),
        estimates=estimates,
    )


def early_stopping_by_budget(rows: Sequence[dict[str, Any]]) -> Finding:
    """Share of non-diverged trials with a known early_stopped flag that stopped early.

    A diverged trial cannot stop early (its flag is False), so counting it in the
    denominator would lower the rate of exactly the budgets that diverge most.
    """
    table: list[list[Any]] = []
    estimates: list[dict[str, Any]] = []
    parts: list[str] = []
    for budget, group in _by_budget(rows).items():
        known = [
            r for r in group if r.get("early_stopped") is not None and r.get("diverged") is not True
        ]
        flags = [bool(r["early_stopped"]) for r in known]
        stopped = sum(flags)
        diverged = sum(1 for r in group if r.get("diverged") is True)
        if len(known) >= MIN_N:
            estimate = stats.rate(flags)
            estimates.append(_record(estimate, 4, budget=_label(budget)))
            row = [_label(budget), len(known), stopped, _pct(stopped, len(known))]
            row += [*_pct_ci(estimate), diverged]
            parts.append(f"{row[0]} {_rate_text(estimate)} of {len(known)}")
        else:
            row = [_label(budget), len(known), stopped, INSUFFICIENT, None, None, diverged]
            if known:
                parts.append(f"{row[0]} {INSUFFICIENT} (n = {len(known)})")
        table.append(row)
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
    table = []
    studies: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        studies.setdefault(row["study"], []).append(row)
    for study in sorted(studies):
        group = studies[study]
        best = sorted(
            (r for r in group if r.get("rank_in_study") == 1), key=lambda r: r["trial_num"]
        )
        ranked = sum(1 for r in group if r.get("rank_in_study"))
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
    if not with_best:
        sentence = "No study has a ranked trial."
    else:
        top = (
            min(with_best, key=lambda r: r[2])
            if all(r.get("direction") != "maximize" for r in rows)
            else max(with_best, key=lambda r: r[2])
        )
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
