"""Horizon effects: does a best architecture transfer across horizons, which horizon is
easiest, and does depth help more for longer horizons?"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from itertools import groupby
from operator import itemgetter
from typing import Any

import numpy as np

from .. import stats
from ..finding import (
    INSUFFICIENT,
    MIN_N,
    MIXED,
    Finding,
    horizon_sort_key,
)
from .cells import (
    CI_NOTE,
    _ci,
    _finding,
    _record,
    _rho,
    _rho_text,
    _sig,
    fmt,
)
from .frame import (
    Budget,
    Frame,
    Rows,
    Tally,
    _better,
    _horizon_groups,
    _is_not_none,
    _known,
    _missing,
    _ranked,
    _scored,
    as_frame,
    per_budget,
    sign,
)

_ARCH = ["d_model", "n_layers", "n_heads"]


def _transfer_table(frame: Frame) -> tuple[list[list[Any]], int]:
    """Rows of (budget, horizon, its best architecture, objective, other horizon, rank there,
    architectures there) and the number of scored trials compared.

    Every horizon of a budget is compared with every other one, so the table itself grows
    with the square of the horizons; everything else is computed once per budget: one sort
    ranks the architectures (d_model, n_layers, n_heads) of every horizon by their best
    scored trial ("min" ranks), and each pair is then a dictionary look-up of the horizon's
    best architecture among the other horizon's ranks.
    """

    def compute(budget: Budget, tally: Tally) -> None:
        scored = budget.trials.where(_is_not_none(budget.trials["horizon"]))
        counts = Counter(h for h in scored["horizon"].tolist() if not _missing(h))
        sizes = {str(h): n for h, n in counts.items()}
        horizons = sorted(sizes, key=horizon_sort_key)
        if len(horizons) < 2:
            return
        if budget.direction is None:
            tally.table.append([budget.label, None, None, None, None, MIXED, None, None, None])
            return
        tally.total += sum(sizes.values())
        # Best first within each horizon (the ranking of _ranked): the first row of each
        # (horizon, architecture) is its best trial, and an architecture's "min" rank in its
        # horizon is one more than the number of architectures with a better best score.
        ranked = _ranked(_known(scored, _ARCH), budget.direction)
        seen: set[tuple[Any, ...]] = set()
        scores: dict[str, list[float]] = {}  # per horizon, each architecture's best score
        firsts: dict[tuple[Any, ...], float] = {}
        tops: dict[str, tuple[Any, ...]] = {}  # per horizon, its best trial's (arch, objective)
        columns = (ranked[c].tolist() for c in ("horizon", *_ARCH, "_score", "objective"))
        for horizon_value, *arch_values, score, objective in zip(*columns, strict=True):
            key = (str(horizon_value), *arch_values)
            if key in seen:
                continue
            seen.add(key)
            firsts[key] = score
            scores.setdefault(key[0], []).append(score)
            tops.setdefault(key[0], (*arch_values, objective))
        ordered = {h: np.sort(np.array(v)) for h, v in scores.items()}
        rank_of = {
            key: int(np.searchsorted(ordered[key[0]], score, side="left")) + 1
            for key, score in firsts.items()
        }
        archs = {h: len(v) for h, v in scores.items()}
        for horizon in horizons:
            if sizes[horizon] < MIN_N or horizon not in tops:
                tally.table.append(
                    [budget.label, horizon, None, None, None, INSUFFICIENT, None, None, None]
                )
                continue
            *top_arch, objective = tops[horizon]
            arch: tuple[Any, ...] = tuple(int(v) for v in top_arch)
            for other in horizons:
                if other == horizon:
                    continue
                rank: Any = rank_of.get((other, *arch), "not tried")
                if sizes[other] < MIN_N:
                    rank = INSUFFICIENT
                tally.table.append(
                    [budget.label, horizon, *arch, objective, other, rank, archs.get(other, 0)]
                )

    tally = per_budget(frame, compute, select=_scored, directed=True, count=False)
    return tally.table, tally.total


def transfer_findings(frame: Frame) -> list[Finding]:
    """:func:`horizon_transfer` and :func:`horizon_transfer_summary` from one pair table."""
    table, total = _transfer_table(frame)
    return [_transfer_finding(table, total), _transfer_summary(table, total)]


def horizon_transfer(rows: Rows) -> Finding:
    """Within a budget: each horizon's best architecture and its rank in the other horizons.

    Architectures (d_model, n_layers, n_heads) are ranked in a horizon by their best scored
    trial ("min" ranks: ties share the better rank). :func:`horizon_transfer_summary` counts
    how often the rank is 1.
    """
    return _transfer_finding(*_transfer_table(as_frame(rows)))


def _transfer_finding(table: list[list[Any]], total: int) -> Finding:
    compared = [r for r in table if r[6] is not None]
    sentence = (
        f"Each horizon's best architecture (d_model, n_layers, n_heads) and its rank among the "
        f"architectures tried in every other horizon of the same budget, {len(compared)} "
        "comparisons; the next table summarises them."
        if compared
        else "No budget has two horizons with enough scored trials to compare."
    )
    return _finding(
        "horizon_transfer",
        "Horizon effects",
        "Do best architectures transfer across horizons?",
        [
            "budget",
            "horizon",
            "d_model",
            "n_layers",
            "n_heads",
            "objective",
            "other_horizon",
            "rank_there",
            "architectures_there",
        ],
        table,
        sentence,
        total,
        f"Ranks are among the architectures tried in the other horizon (1 = best); each horizon "
        f"needs ≥ {MIN_N} scored trials.",
    )


def horizon_transfer_summary(rows: Rows) -> Finding:
    """Per budget and over all budgets: comparisons, how many ranked 1, median rank."""
    return _transfer_summary(*_transfer_table(as_frame(rows)))


def _median_of_counts(counts: dict[int, int]) -> float:
    """``float(numpy.median(values))`` of the integers that ``counts`` counts (below 2^53):
    the middle value, or the mean of the middle two.

    >>> _median_of_counts({3: 1, 1: 2}), _median_of_counts({1: 1, 4: 1})
    (1.0, 2.5)
    """
    total = sum(counts.values())
    middle = [(total - 1) // 2, total // 2]
    found: list[int] = []
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        while len(found) < 2 and middle[len(found)] < seen:
            found.append(value)
    return (found[0] + found[1]) / 2


def _transfer_summary(detail: list[list[Any]], total: int) -> Finding:
    # per budget (in table order), how often each rank (or marker) comes up: the table has a
    # row for every pair of horizons of a budget, 358,800 at 300 horizons a budget
    by_budget: dict[str, Counter[Any]] = {}
    for budget, rows in groupby(detail, key=itemgetter(0)):
        chosen = [r[7] for r in rows if r[6] is not None]
        by_budget.setdefault(budget, Counter()).update(chosen)
    groups = [(b, c) for b, c in by_budget.items() if c.keys() - {INSUFFICIENT}]
    if len(groups) > 1:
        groups.append(("all budgets", sum((c for _, c in groups), Counter())))
    table: list[list[Any]] = []
    for budget, counts in groups:
        ranks = {r: n for r, n in counts.items() if type(r) is int}
        n_ranks = sum(ranks.values())
        median: Any = _sig(_median_of_counts(ranks)) if n_ranks >= MIN_N else INSUFFICIENT
        table.append([budget, n_ranks, ranks.get(1, 0), median, counts["not tried"]])
    if table:
        overall = table[-1]
        where = "over all budgets" if overall[0] == "all budgets" else f"in {overall[0]}"
        sentence = (
            f"A horizon's best architecture was also the best in another horizon of the same "
            f"budget in {overall[2]} of {overall[1]} comparisons {where} (median rank "
            f"{fmt(overall[3])}; not tried there: {overall[4]})"
        )
        if len(table) > 1:
            sentence += "; by budget: " + ", ".join(f"{r[0]} {r[2]} of {r[1]}" for r in table[:-1])
        sentence += "."
    else:
        sentence = "No budget has two horizons with enough scored trials to compare."
    return _finding(
        "horizon_transfer_summary",
        "Horizon effects",
        "How often a horizon's best architecture is also best in another horizon",
        ["budget", "comparisons", "also_best", "median_rank", "not_tried"],
        table,
        sentence,
        total,
        f"Comparisons from the previous table (ranked ones; `not tried` counted apart); the "
        f"median rank needs ≥ {MIN_N} comparisons.",
    )


def easiest_horizon(rows: Rows) -> Finding:
    """Best and median objective per horizon, within each budget and over all budgets."""
    frame = as_frame(rows)

    def compute(budget: Budget, tally: Tally) -> None:
        horizons = _horizon_groups(budget.trials)
        if not horizons:
            return
        if budget.direction is None:
            tally.table.append([budget.label, None, budget.n, None, MIXED, None, None, None])
            tally.parts.append(f"{budget.label} {MIXED}")
            return
        direction = budget.direction
        cells: list[list[Any]] = []
        for horizon, cell in horizons:
            n = len(cell)
            if n < MIN_N:
                row = [budget.label, horizon, n, direction, INSUFFICIENT, None, None, None]
                tally.table.append(row)
                continue
            objective = cell["objective"]
            best = (sign(direction) * objective).min() * sign(direction)  # (all finite)
            row = [
                budget.label,
                horizon,
                n,
                direction,
                _sig(float(best)),
                _sig(float(np.median(objective))),
            ]
            estimate = stats.median(objective)
            tally.estimates.append(_record(estimate, 12, budget=budget.label, horizon=horizon))
            row += [_sig(x) if x is not None else None for x in _ci(estimate, 12)]
            tally.table.append(row)
            cells.append(row)
        if len(horizons) == 1:
            tally.parts.append(f"{budget.label} only {horizons[0][0]} (nothing to compare)")
            return
        if len(cells) < 2:
            tally.parts.append(f"{budget.label} {INSUFFICIENT}")
            return
        by_best = min(cells, key=lambda r: (sign(direction) * r[4], horizon_sort_key(r[1])))
        by_median = min(cells, key=lambda r: (sign(direction) * r[5], horizon_sort_key(r[1])))
        if by_best is by_median:
            tally.parts.append(
                f"{budget.label} {by_best[1]} (best {fmt(by_best[4])}, median "
                f"{fmt(by_best[5])}, n = {by_best[2]})"
            )
        else:
            tally.parts.append(
                f"{budget.label} {by_best[1]} by best ({fmt(by_best[4])}, n = {by_best[2]}) "
                f"but {by_median[1]} by median ({fmt(by_median[5])}, n = {by_median[2]})"
            )

    several = len(set(frame["budget"].tolist())) > 1  # else "all budgets" repeats the one
    tally = per_budget(frame, compute, select=_scored, directed=True, pooled=several)
    table, parts, estimates = tally.table, tally.parts, tally.estimates
    scored_all = _scored(frame)
    sentence = (
        "Easiest horizon (best and median objective, in each study's direction): "
        + "; ".join(parts)
        + "."
        if parts
        else "No horizon was parsed from the study names."
    )
    return _finding(
        "easiest_horizon",
        "Horizon effects",
        "Easiest horizon per budget and overall",
        [
            "budget",
            "horizon",
            "n",
            "direction",
            "best_objective",
            "median_objective",
            "median_ci_low",
            "median_ci_high",
        ],
        table,
        sentence,
        len(scored_all),
        f"Easiest = {_better('minimize')} objective for minimize studies, higher for maximize; "
        f"needs ≥ {MIN_N} scored trials per horizon; `all budgets` pools every budget. "
        f"{CI_NOTE}",
        estimates,
    )


def depth_by_horizon(rows: Rows) -> Finding:
    """Spearman's ρ of n_layers with the objective per horizon, per budget and pooled."""
    frame = as_frame(rows)

    def compute(budget: Budget, tally: Tally) -> None:
        direction = budget.direction
        for horizon, cell in _horizon_groups(budget.trials):
            cell = cell.where(np.isfinite(cell["n_layers"]))
            rho = _rho(cell["n_layers"], cell["objective"]) if direction else None
            if rho is None or direction is None:
                marker = budget.reason()
                tally.table.append([budget.label, horizon, len(cell), marker, None, None, None])
                if budget.label == "all budgets":
                    tally.parts.append(f"{horizon} {marker} (n = {len(cell)})")
                continue
            worse, better = "deeper, worse objective", "deeper, better objective"
            reading = (
                stats.reading(rho, worse, better)
                if direction == "minimize"
                else stats.reading(rho, better, worse)
            )
            tally.table.append([budget.label, horizon, len(cell), rho.value, *_ci(rho), reading])
            tally.estimates.append(rho.to_dict(budget=budget.label, horizon=horizon))
            if budget.label == "all budgets":
                tally.parts.append(f"{horizon} {_rho_text(rho, reading)}")

    tally = per_budget(frame, compute, select=_scored, directed=True, pooled=True)
    table, pooled, estimates = tally.table, tally.parts, tally.estimates
    total = len(_scored(frame))
    sentence = (
        "Spearman correlation of n_layers with the objective per horizon, all budgets pooled: "
        + "; ".join(pooled)
        + " (per-budget values in the table)."
        if pooled
        else "No horizon was parsed from the study names."
    )
    return replace(
        _finding(
            "depth_by_horizon",
            "Horizon effects",
            "Do deeper models help more for longer horizons?",
            ["budget", "horizon", "n", "spearman_rho_n_layers", "ci_low", "ci_high", "reading"],
            table,
            sentence,
            total,
            f"Scored trials; needs ≥ {MIN_N} per cell; the pooled rows mix budgets, whose sizes "
            f"also change depth, so read the per-budget rows for a controlled view. {CI_NOTE}",
        ),
        estimates=estimates,
    )
