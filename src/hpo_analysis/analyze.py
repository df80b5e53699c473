"""Findings computed from the trial rows: small tables, their n and one plain sentence each.

Computation is separate from rendering: each function returns a :class:`Finding`, and the README
writer (and any later report) only draws it. Every number in a sentence is taken from the
finding's own table.

Example::

    >>> rows = [{"budget": "2M", "diverged": False, "stop_reason": "early_stopped"},
    ...         {"budget": "2M", "diverged": True, "stop_reason": "diverged"}]
    >>> divergence_by_budget(rows).rows
    [['2M', 2, 1, '50.0%']]
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_SUFFIX = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}


@dataclass(frozen=True)
class Finding:
    id: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    sentence: str
    n: int


def budget_sort_key(budget: str | None) -> tuple[int, float, str]:
    """Order budgets by size (2M < 20M < 200M < 2B); unparsable ones last, by name."""
    if budget is None:
        return (2, 0.0, "")
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMBT])", budget.upper())
    if not match:
        return (1, 0.0, budget)
    return (0, float(match.group(1)) * _SUFFIX[match.group(2)], budget)


def _by_budget(rows: Sequence[dict[str, Any]]) -> dict[str | None, list[dict[str, Any]]]:
    groups: dict[str | None, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row.get("budget"), []).append(row)
    return {b: groups[b] for b in sorted(groups, key=budget_sort_key)}


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "n/a"


def _label(budget: str | None) -> str:
    return budget if budget is not None else "(none)"


def divergence_by_budget(rows: Sequence[dict[str, Any]]) -> Finding:
    table = []
    for budget, group in _by_budget(rows).items():
        diverged = sum(1 for r in group if r.get("diverged"))
        table.append([_label(budget), len(group), diverged, _pct(diverged, len(group))])
    total = sum(1 for r in rows if r.get("diverged"))
    hit = [f"{r[0]} ({r[2]} of {r[1]})" for r in table if r[2]]
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
        ["budget", "trials", "diverged", "diverged_rate"],
        table,
        sentence,
        len(rows),
    )


def early_stopping_by_budget(rows: Sequence[dict[str, Any]]) -> Finding:
    """Share of trials with a known early_stopped flag that stopped early, per budget."""
    table = []
    for budget, group in _by_budget(rows).items():
        known = [r for r in group if r.get("early_stopped") is not None]
        stopped = sum(1 for r in known if r["early_stopped"])
        table.append([_label(budget), len(known), stopped, _pct(stopped, len(known))])
    n = sum(r[1] for r in table)
    if not n:
        sentence = (
            "No trial has both a learning curve and a configured epoch count, so early "
            "stopping cannot be measured."
        )
    else:
        parts = [f"{r[0]} {r[3]} (n={r[1]})" for r in table if r[1]]
        sentence = "Early stopping triggered in " + ", ".join(parts) + "."
    return Finding(
        "early_stopping_by_budget",
        "Early-stopping rate per budget",
        ["budget", "trials_with_curve", "early_stopped", "early_stop_rate"],
        table,
        sentence,
        n,
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


def core_findings(rows: Sequence[dict[str, Any]]) -> list[Finding]:
    return [divergence_by_budget(rows), early_stopping_by_budget(rows), best_trial_per_study(rows)]
