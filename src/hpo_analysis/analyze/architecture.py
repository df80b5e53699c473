"""Architecture patterns: which widths, depths, head counts and feed-forward ratios win.

Per budget: the best trial's architecture, the values common among the top-k, styles relative to
the budget's own architectures, divergence by depth, head-count effects (correlation, best per
width, controlled pairs) and the feed-forward ratio; plus the report's architecture grid.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from typing import Any

import numpy as np

from .. import stats
from ..finding import (
    ARCH_CATEGORIES,
    DEFAULT_TOP_K,
    INSUFFICIENT,
    MIN_GROUP,
    MIN_N,
    MIXED,
    STYLE_TOP,
    Finding,
)
from ..stats import Estimate, interval_text
from .cells import (
    CI_NOTE,
    _budgets_sentence,
    _ci,
    _finding,
    _pct,
    _pct_ci,
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
    _counts,
    _equals,
    _flag,
    _int,
    _known,
    _known_divergence,
    _map_distinct,
    _mean_std,
    _rank_order,
    _row,
    _scored,
    _scored_known,
    _study_codes,
    as_frame,
    group_by,
    per_budget,
    sign,
)


def best_architecture(rows: Rows) -> Finding:
    """The best scored trial of each budget and its architecture (direction-aware)."""

    def compute(budget: Budget, tally: Tally) -> None:
        best = _row(budget.trials, _rank_order(budget.trials, str(budget.direction))[0])
        row = [
            budget.label,
            budget.n,
            budget.direction,
            float(best["objective"]),
            _int(best["d_model"]),
            _int(best["n_layers"]),
            _int(best["n_heads"]),
            _int(best["d_ff"]),
            best["arch_style"],
            best["study"],
            _int(best["trial_num"]),
        ]
        tally.table.append(row)
        tally.parts.append(
            f"{budget.label} d_model {fmt(row[4])}, n_layers {fmt(row[5])}, n_heads "
            f"{fmt(row[6])} (objective {fmt(row[3])}, n = {budget.n})"
        )

    def short(budget: Budget, marker: str) -> list[Any]:
        if marker == MIXED:
            return [budget.label, budget.n, MIXED] + [None] * 8
        return [budget.label, budget.n, budget.direction, marker] + [None] * 7

    tally = per_budget(
        as_frame(rows), compute, select=_scored, directed=True, min_n=MIN_N, short=short
    )
    table, parts, total = tally.table, tally.parts, tally.total
    sentence = (
        "Best trial per budget: " + "; ".join(parts) + "." if parts else "No trials were read."
    )
    return _finding(
        "best_architecture",
        "Architecture patterns",
        "Best trial's architecture per budget",
        [
            "budget",
            "n",
            "direction",
            "objective",
            "d_model",
            "n_layers",
            "n_heads",
            "d_ff",
            "arch_style",
            "study",
            "trial_num",
        ],
        table,
        sentence,
        total,
        f"n = scored trials of the budget (all horizons); needs n ≥ {MIN_N}; arch_style is "
        "relative to the budget's own architectures.",
    )


def top_k_architecture(rows: Rows, top_k: int = DEFAULT_TOP_K) -> Finding:
    """How often each d_model and n_layers value appears among a budget's top-k scored trials.

    ``in_all`` gives the same count among all scored trials of the budget: a value that is
    common at the top only because it was sampled often shows the same share in both.
    """

    def compute(budget: Budget, tally: Tally) -> None:
        scored, n = budget.trials, budget.n
        k = min(top_k, n)
        top = scored.take(_rank_order(scored, str(budget.direction))[:k])
        modes = []
        for parameter in ("d_model", "n_layers"):
            in_top = _counts(top[parameter])
            in_all = _counts(scored[parameter])
            for value in sorted(in_all):
                count = in_top.get(value, 0)
                tally.table.append(
                    [
                        budget.label,
                        n,
                        k,
                        parameter,
                        value,
                        count,
                        _pct(count, k),
                        in_all[value],
                        _pct(in_all[value], n),
                    ]
                )
            if in_top:
                mode, mode_count = sorted(in_top.items(), key=lambda item: (-item[1], item[0]))[0]
                modes.append(
                    f"{parameter} {mode} ({mode_count} of the top {k}; {in_all[mode]} of all {n})"
                )
        tally.parts.append(f"{budget.label}: " + ", ".join(modes))

    def short(budget: Budget, marker: str) -> list[Any]:
        return [budget.label, budget.n, None, "d_model, n_layers", marker, None, None, None, None]

    tally = per_budget(
        as_frame(rows), compute, select=_scored, directed=True, min_n=MIN_N, short=short
    )
    table, parts, total = tally.table, tally.parts, tally.total
    sentence = (
        f"Most common among each budget's top {top_k} scored trials: " + "; ".join(parts) + "."
        if parts
        else "No trials were read."
    )
    return _finding(
        "top_k_architecture",
        "Architecture patterns",
        f"d_model and n_layers among the top {top_k} trials per budget",
        [
            "budget",
            "n",
            "k",
            "parameter",
            "value",
            "in_top_k",
            "share_of_top_k",
            "in_all",
            "share_of_all",
        ],
        table,
        sentence,
        total,
        f"k = min(--top-k, scored trials of the budget); needs ≥ {MIN_N} scored trials; "
        "in_all counts all scored trials of the budget.",
    )


def architecture_style(rows: Rows) -> Finding:
    """Per budget and arch_style: best objective and the mean ± std of its best 10 trials.

    The style is relative to the budget's own architectures (``arch_style``); the fixed
    thresholds of ``arch_category`` put every 200M and 2B architecture into one category.
    """
    frame = as_frame(rows)

    def compute(entry: Budget, tally: Tally) -> None:
        budget, scored, direction = entry.label, entry.trials, entry.direction
        table, parts = tally.table, tally.parts
        candidates: list[list[Any]] = []
        for category in ARCH_CATEGORIES:
            cell = scored.where(_equals(scored["arch_style"], category))
            n = len(cell)
            if not n:
                continue
            known = _known(cell, ["d_model", "n_layers"])
            shapes = ", ".join(
                f"{int(d)}×{int(n_l)}"
                for d, n_l in sorted(
                    set(zip(known["d_model"].tolist(), known["n_layers"].tolist(), strict=True))
                )
            )
            marker = entry.marker(n, MIN_N)
            if marker is not None:
                table.append([budget, category, n, shapes, marker, None, None, None, None, None])
                continue
            top = cell["objective"][_rank_order(cell, str(direction))[:STYLE_TOP]]
            mean, std = _mean_std(top)
            if std <= 1e-12 * max(1.0, abs(mean)):  # equal values: rounding noise, not spread
                std = 0.0
            med = stats.median(cell["objective"])
            row = [
                budget,
                category,
                n,
                shapes,
                _sig(float(top[0])),
                len(top),
                _sig(mean),
                _sig(std),
                _sig(med.value),
                f"{fmt(_sig(med.ci_low or math.nan))}…{fmt(_sig(med.ci_high or math.nan))}",
            ]
            table.append(row)
            candidates.append(row)
        if direction is None:
            parts.append(f"{budget} {MIXED}")
        elif not candidates:
            parts.append(f"{budget} {INSUFFICIENT}")
        else:
            best = min(candidates, key=lambda r: sign(direction) * r[6])
            alone = "the only style with enough trials; " if len(candidates) == 1 else ""
            parts.append(
                f"{budget} {best[1]} ({alone}top-{best[5]} mean {fmt(best[6])} ± "
                f"{fmt(best[7])}, median {fmt(best[8])} with 95% CI {best[9]}, n = {best[2]}; "
                f"{len(candidates)} styles with ≥ {MIN_N} trials)"
            )

    tally = per_budget(frame, compute, select=_scored, directed=True)
    table, parts, total = tally.table, tally.parts, tally.total
    sentence = (
        "Best architecture style per budget (styles relative to the budget's own depth/width "
        "ratios) by the mean objective of its best trials: " + "; ".join(parts) + "."
        if parts
        else "No trials were read."
    )
    return _finding(
        "architecture_style",
        "Architecture patterns",
        "Architecture style per budget (arch_style: narrow-deep / balanced / wide-shallow "
        "within the budget)",
        [
            "budget",
            "arch_style",
            "n",
            "architectures (d_model×n_layers)",
            "best_objective",
            "top_n",
            "top_mean",
            "top_std",
            "median_objective",
            "median_95ci",
        ],
        table,
        sentence,
        total,
        "arch_style ranks the distinct n_layers/d_model ratios of each budget and splits them "
        "into thirds (see the data dictionary); the fixed-threshold arch_category "
        f"(--arch-thresholds) stays in the tables. top = the best min({STYLE_TOP}, n) scored "
        "trials of the style; std is the sample standard deviation (ddof = 1); the median's "
        f"interval: {stats.METHOD}; needs n ≥ {MIN_N} per style.",
    )


def depth_band(n_layers: float) -> str:
    """Power-of-two band of a depth: 1, 2, 3-4, 5-8, 9-16, 17-32, 33-64, …

    >>> [depth_band(n) for n in (1, 2, 3, 8, 9, 48)]
    ['1', '2', '3-4', '5-8', '9-16', '33-64']
    """
    depth = int(n_layers)
    high = 1 << (depth - 1).bit_length()
    low = high // 2 + 1
    return str(high) if low >= high else f"{low}-{high}"


def divergence_by_depth(rows: Rows) -> Finding:
    """Divergence rate per budget and n_layers band (all trials whose divergence is known)."""
    frame = _known_divergence(as_frame(rows))
    frame = frame.where(np.isfinite(frame["n_layers"]) & (frame["n_layers"] >= 1))

    def compute(entry: Budget, tally: Tally) -> None:
        budget, group = entry.label, entry.whole
        table, parts, estimates, calm = tally.table, tally.parts, tally.estimates, tally.quiet
        bands = group.with_columns(_band=_map_distinct(group["n_layers"], depth_band))
        hit = []
        for band, cell in sorted(
            group_by(bands, ["_band"], sort=False), key=lambda item: int(str(item[0]).split("-")[0])
        ):
            diverged = int(_flag(cell, "diverged", True).sum())
            interval: list[Any] = [None, None]
            if len(cell) >= MIN_GROUP:
                rate = _pct(diverged, len(cell))
                estimate = stats.rate(_flag(cell, "diverged", True))
                estimates.append(_record(estimate, 4, budget=budget, n_layers_band=band))
                interval = _pct_ci(estimate)
            else:
                rate = INSUFFICIENT
            table.append([budget, band, len(cell), diverged, rate, *interval])
            if diverged:
                hit.append(f"{band} layers {diverged} of {len(cell)} ({rate})")
        if hit:
            parts.append(f"{budget}: " + ", ".join(hit))
        else:
            calm.append(budget)

    tally = per_budget(frame, compute, count=False)
    table, parts, estimates, calm = tally.table, tally.parts, tally.estimates, tally.quiet
    sentence = _budgets_sentence(
        "Diverged trials by depth band: ",
        parts,
        calm,
        "no divergence at any depth in",
        "No trial diverged at any depth ({}).",
        "No trial has both a known depth and a known divergence flag.",
    )
    return _finding(
        "divergence_by_depth",
        "Architecture patterns",
        "Divergence rate by n_layers band per budget",
        ["budget", "n_layers_band", "trials", "diverged", "diverged_rate", "ci_low", "ci_high"],
        table,
        sentence,
        len(frame),
        f"Bands are powers of two (1, 2, 3-4, 5-8, …); a rate needs ≥ {MIN_GROUP} trials in the "
        f"band; all trials with a known diverged flag count. {CI_NOTE}",
        estimates,
    )


def _confound_text(group: Frame) -> str:
    """``; depth is confounded with width: …`` for a budget with such widths, else empty."""
    confounds = confounded_widths(group)
    if not confounds:
        return ""
    return (
        "; depth is confounded with width: "
        + ", ".join(f"d_model {w} only with {d} layers" for w, d, _ in confounds)
        + ", and divergence depends on lr × depth (see the interaction table)"
    )


def max_reliable_depth(rows: Rows) -> Finding:
    """Per budget: the largest n_layers with at least MIN_GROUP trials and none diverged.

    Also shows the shallowest depth at which any trial diverged, which can be shallower than
    the reliable depth (a deeper depth may simply have had luckier trials).
    """
    frame = _known_divergence(as_frame(rows))
    frame = frame.where(np.isfinite(frame["n_layers"]))

    def compute(entry: Budget, tally: Tally) -> None:
        budget, group = entry.label, entry.whole
        table, parts = tally.table, tally.parts
        # per depth (sorted): its trials and its diverged trials
        depths, at, size = np.unique(group["n_layers"], return_inverse=True, return_counts=True)
        diverged = np.bincount(at, weights=_flag(group, "diverged", True), minlength=len(depths))
        enough = size >= MIN_GROUP
        clean = enough & (diverged == 0)
        diverged_depths = depths[diverged > 0]
        shallowest = int(diverged_depths.min()) if len(diverged_depths) else None
        deepest = int(depths.max())
        n_div = int(diverged.sum())
        if not enough.any():
            reliable: Any = INSUFFICIENT
            at_depth = None
            parts.append(f"{budget} {INSUFFICIENT} (no depth has {MIN_GROUP} trials)")
        elif not clean.any():
            reliable, at_depth = "none", None
            parts.append(
                f"{budget} none (every depth with ≥ {MIN_GROUP} trials had a divergence"
                f"{_confound_text(group) if n_div else ''})"
            )
        else:
            deepest_clean = np.flatnonzero(clean)[-1]
            reliable = int(depths[deepest_clean])
            at_depth = int(size[deepest_clean])
            text = f"{budget} {reliable} layers ({at_depth} trials"
            if shallowest is not None:
                text += f"; shallowest divergence at {shallowest} layers"
            else:
                text += "; no trial of the budget diverged"
            if shallowest is not None:
                text += _confound_text(group)
            parts.append(text + ")")
        confounded = ", ".join(f"{w}×{d}" for w, d, _ in confounded_widths(group))
        table.append(
            [budget, len(group), n_div, reliable, at_depth, shallowest, deepest, confounded]
        )

    tally = per_budget(frame, compute, count=False)
    table, parts = tally.table, tally.parts
    sentence = (
        f"Largest depth with no divergence among ≥ {MIN_GROUP} trials: " + "; ".join(parts) + "."
        if parts
        else "No trial has both a known depth and a known divergence flag."
    )
    return _finding(
        "max_reliable_depth",
        "Architecture patterns",
        "Largest reliable depth per budget",
        [
            "budget",
            "trials",
            "diverged",
            "max_reliable_depth",
            "trials_at_that_depth",
            "shallowest_diverged_depth",
            "deepest_depth_tried",
            "widths_with_one_depth (d_model×n_layers)",
        ],
        table,
        sentence,
        len(frame),
        f"max_reliable_depth: the largest n_layers value with ≥ {MIN_GROUP} trials and no "
        f"diverged trial; `none` when every depth with ≥ {MIN_GROUP} trials had a divergence. "
        f"widths_with_one_depth: d_model values (≥ {MIN_GROUP} trials) only ever tried at one "
        "depth, whose effect cannot be told apart from that depth's.",
    )


def _heads_reading(estimate: Estimate, direction: str) -> str:
    worse_when_positive = direction == "minimize"
    more_worse, more_better = "more heads, worse objective", "more heads, better objective"
    if worse_when_positive:
        return stats.reading(estimate, more_worse, more_better)
    return stats.reading(estimate, more_better, more_worse)


def heads_correlation(rows: Rows) -> Finding:
    """Spearman's ρ of n_heads with the objective per budget (scored trials), with its CI."""
    frame = as_frame(rows)

    def compute(entry: Budget, tally: Tally) -> None:
        budget, scored, direction, n = entry.label, entry.trials, entry.direction, entry.n
        table, parts, estimates = tally.table, tally.parts, tally.estimates
        rho = _rho(scored["n_heads"], scored["objective"]) if direction else None
        if direction is None:
            table.append([budget, n, None, MIXED, None, None, None])
            parts.append(f"{budget} {MIXED}")
        elif rho is None:
            table.append([budget, n, direction, INSUFFICIENT, None, None, None])
            parts.append(f"{budget} {INSUFFICIENT} (n = {n})")
        else:
            reading = _heads_reading(rho, direction)
            table.append([budget, n, direction, rho.value, *_ci(rho), reading])
            estimates.append(rho.to_dict(budget=budget))
            parts.append(f"{budget} {_rho_text(rho, reading)}")

    tally = per_budget(frame, compute, select=_scored_known("n_heads"), directed=True)
    table, parts, estimates, total = tally.table, tally.parts, tally.estimates, tally.total
    sentence = (
        "Spearman rank correlation of n_heads with the objective: " + "; ".join(parts) + "."
        if parts
        else "No trials were read."
    )
    return replace(
        _finding(
            "heads_correlation",
            "Architecture patterns",
            "n_heads vs objective (Spearman) per budget",
            ["budget", "n", "direction", "spearman_rho", "ci_low", "ci_high", "reading"],
            table,
            sentence,
            total,
            f"Spearman's ρ = Pearson's r of average ranks; needs ≥ {MIN_N} scored trials and "
            f"variation in both; the reading follows the study direction. {CI_NOTE}",
        ),
        estimates=estimates,
    )


def best_heads_per_width(rows: Rows) -> Finding:
    """Per budget and d_model: the n_heads of the best scored trial (does it move with width?)."""
    frame = as_frame(rows)

    def compute(entry: Budget, tally: Tally) -> None:
        budget, scored, direction = entry.label, entry.trials, entry.direction
        table, parts = tally.table, tally.parts
        pairs = []
        for d_model, cell in group_by(scored, ["d_model"]):
            tried = ", ".join(str(int(h)) for h in sorted(set(cell["n_heads"].tolist())))
            marker = entry.marker(len(cell), MIN_GROUP)
            if marker is not None:
                table.append([budget, int(d_model), len(cell), tried, marker, None])
                continue
            best = _row(cell, _rank_order(cell, str(direction))[0])
            row = [budget, int(d_model), len(cell), tried, int(best["n_heads"])]
            row.append(float(best["objective"]))
            table.append(row)
            pairs.append(f"{row[1]} → {row[4]}")
        if pairs:
            parts.append(f"{budget} " + ", ".join(pairs))

    select = _scored_known("d_model", "n_heads")
    tally = per_budget(frame, compute, select=select, directed=True)
    table, parts, total = tally.table, tally.parts, tally.total
    sentence = (
        "Best n_heads per d_model (d_model → n_heads): " + "; ".join(parts) + "."
        if parts
        else f"No d_model has {MIN_GROUP} scored trials."
    )
    return _finding(
        "best_heads_per_width",
        "Architecture patterns",
        "Best n_heads per d_model",
        ["budget", "d_model", "n", "n_heads_tried", "best_n_heads", "objective"],
        table,
        sentence,
        total,
        f"needs ≥ {MIN_GROUP} scored trials per d_model.",
    )


def heads_controlled_pairs(rows: Rows) -> Finding:
    """Same study, d_model and n_layers, different n_heads: did more heads do better?

    Within each (study, d_model, n_layers) the best scored trial of each n_heads value is
    taken, and every pair of n_heads values is compared: difference = objective(more heads)
    − objective(fewer heads). The differences of a budget are pooled into one median, so a
    budget whose studies mix minimize and maximize says ``mixed directions`` instead.
    """
    frame = as_frame(rows)

    def compute(entry: Budget, tally: Tally) -> None:
        budget, scored = entry.label, entry.trials
        table, parts, estimates = tally.table, tally.parts, tally.estimates
        if entry.direction is None:  # "more heads better" means opposite things: no pairs
            table.append([budget, None, None, None, None, MIXED, None, None])
            parts.append(f"{budget} {MIXED}")
            return
        score = sign(entry.direction) * scored["objective"]
        # sorted by study (missing ones last), d_model, n_layers, n_heads, score and trial
        # number; the first row of each (study, d_model, n_layers, n_heads) is its best trial
        studies = _study_codes(scored["study"].tolist())
        arch = [scored[c] for c in ("d_model", "n_layers", "n_heads")]
        order = np.lexsort((scored["trial_num"], score, *arch[::-1], studies))
        keys = zip(studies[order].tolist(), *(a[order].tolist() for a in arch), strict=True)
        best: list[int] = []
        previous: Any = object()
        for key, position in zip(keys, order.tolist(), strict=True):
            if key != previous:
                best.append(position)
                previous = key
        differences: list[float] = []
        more = fewer = ties = 0
        used = 0
        # best is sorted by study, d_model and n_layers: each (study, d_model, n_layers) is one
        # run of rows, the runs in key order (what a group-by of the three walks, without a
        # selection per cell); rows without a study are left out, as a group-by leaves them out
        records = zip(
            *(scored[c][best].tolist() for c in ("study", "d_model", "n_layers", "objective")),
            score[best].tolist(),
            strict=True,
        )
        for (study, _, _), run in itertools.groupby(records, key=lambda r: r[:3]):
            cell = list(run)
            if study is None or study != study or len(cell) < 2:
                continue
            used += len(cell)
            objectives = [r[3] for r in cell]
            scores = [r[4] for r in cell]
            for i in range(len(objectives)):
                for j in range(i + 1, len(objectives)):
                    differences.append(objectives[j] - objectives[i])
                    if scores[j] == scores[i]:
                        ties += 1
                    elif scores[j] < scores[i]:
                        more += 1
                    else:
                        fewer += 1
        tally.total += used
        pairs = len(differences)
        interval: list[Any] = [None, None]
        if pairs >= MIN_N:
            median: Any = _sig(float(np.median(differences)))
            estimate = stats.median(differences)
            estimates.append(_record(estimate, 6, budget=budget))
            interval = [_sig(x) if x is not None else None for x in _ci(estimate, 12)]
        else:
            median = INSUFFICIENT if pairs else None
        table.append([budget, pairs, more, fewer, ties, median, *interval])
        if pairs:
            text = f"{budget} more heads better in {more} of {pairs} pairs"
            if pairs >= MIN_N:
                shown = Estimate("median", median, interval[0], interval[1], pairs)
                unclear = "; no clear effect" if shown.contains_zero() else ""
                text += f" (median difference {fmt(median)}, {interval_text(shown, 12)}{unclear})"
            parts.append(text)

    select = _scored_known("d_model", "n_layers", "n_heads")
    tally = per_budget(frame, compute, select=select, directed=True, count=False)
    table, parts, estimates, total = tally.table, tally.parts, tally.estimates, tally.total
    if parts:
        sentence = (
            "With study, d_model and n_layers fixed: " + "; ".join(parts) + ". Difference = "
            "objective with more heads − objective with fewer heads."
        )
    else:
        sentence = "No two trials share study, d_model and n_layers with different n_heads."
    return _finding(
        "heads_controlled_pairs",
        "Architecture patterns",
        "Controlled n_heads comparisons (same study, d_model and n_layers)",
        [
            "budget",
            "pairs",
            "more_heads_better",
            "fewer_heads_better",
            "ties",
            "median_difference",
            "ci_low",
            "ci_high",
        ],
        table,
        sentence,
        total,
        "Best scored trial per n_heads within each (study, d_model, n_layers); every pair of "
        f"n_heads values counts once; the median needs ≥ {MIN_N} pairs; better follows the "
        f"study direction. n = trials entering a pair. {CI_NOTE}",
        estimates,
    )


def ff_ratio(rows: Rows, top_k: int = DEFAULT_TOP_K) -> Finding:
    """d_ff/d_model among each budget's top-k scored trials, next to all scored trials."""
    frame = as_frame(rows)

    def compute(entry: Budget, tally: Tally) -> None:
        budget, scored, direction, n = entry.label, entry.trials, entry.direction, entry.n
        table, parts = tally.table, tally.parts
        k = min(top_k, n)
        ratios_all = scored["d_ff"] / scored["d_model"]
        top = ratios_all[_rank_order(scored, str(direction))[:k]]
        counts = _counts(np.round(top, 6), whole=False)
        mode_value, mode_count = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[0]
        row = [
            budget,
            k,
            _sig(float(np.median(top))),
            _sig(float(top.min())),
            _sig(float(top.max())),
            _sig(float(mode_value)),
            int(mode_count),
            n,
            _sig(float(np.median(ratios_all))),
        ]
        table.append(row)
        parts.append(
            f"{budget} median {fmt(row[2])} (range {fmt(row[3])}–{fmt(row[4])}, top {k}; "
            f"all {n} scored trials: median {fmt(row[8])})"
        )

    def with_ratio(group: Frame) -> Frame:
        scored = _scored(group)
        return scored.where(np.isfinite(scored["d_ff"]) & (scored["d_model"] > 0))

    def short(budget: Budget, marker: str) -> list[Any]:
        return [budget.label, None, marker, None, None, None, None, budget.n, None]

    tally = per_budget(frame, compute, select=with_ratio, directed=True, min_n=MIN_N, short=short)
    table, parts, total = tally.table, tally.parts, tally.total
    sentence = (
        "d_ff/d_model among the top trials: " + "; ".join(parts) + "."
        if parts
        else "No trials were read."
    )
    return _finding(
        "ff_ratio",
        "Architecture patterns",
        f"Feed-forward ratio d_ff/d_model among the top {top_k} trials per budget",
        [
            "budget",
            "k",
            "median_ratio_top",
            "min_ratio_top",
            "max_ratio_top",
            "most_common_ratio_top",
            "its_count",
            "n_all",
            "median_ratio_all",
        ],
        table,
        sentence,
        total,
        f"k = min(--top-k, scored trials with d_ff and d_model); needs ≥ {MIN_N} such trials.",
    )


def confounded_widths(frame: Frame) -> list[tuple[int, int, int]]:
    """(d_model, its only n_layers, trials) for each width tried with one depth only.

    Such a width cannot be told apart from its depth: any effect of the one is the other's.
    Widths with fewer than ``MIN_GROUP`` trials are left out (too few to matter), as are
    budgets where every width has one depth (then depth and width are simply one grid axis
    each, and the table by depth already shows them).

    >>> from .frame import trial_frame
    >>> widths = [1536] * 3 + [2048] * 4
    >>> depths = [48] * 3 + [24, 32, 48, 24]
    >>> confounded_widths(trial_frame(
    ...     {"d_model": w, "n_layers": d} for w, d in zip(widths, depths, strict=True)))
    [(1536, 48, 3)]
    """
    known = _known(frame, ["d_model", "n_layers"])
    # per width: its distinct depths, its first depth and its trials
    depths: dict[float, tuple[set[float], float, list[int]]] = {}
    for width, depth in zip(known["d_model"].tolist(), known["n_layers"].tolist(), strict=True):
        found = depths.get(width)
        if found is None:
            depths[width] = ({depth}, depth, [1])
        else:
            found[0].add(depth)
            found[2][0] += 1
    if len(depths) < 2 or all(len(d[0]) == 1 for d in depths.values()):
        return []
    return [
        (int(width), int(first), count)
        for width, (distinct, first, (count,)) in sorted(depths.items())
        if len(distinct) == 1 and count >= MIN_GROUP
    ]


def scored_frame(rows: Rows) -> Frame:
    """The scored trials (COMPLETE, finite objective, not diverged) as a :class:`Frame`."""
    return _scored(as_frame(rows))


def architecture_grid(rows: Rows) -> Finding:
    """Best objective per budget, d_model and n_layers: the report's architecture map.

    Not part of :func:`all_findings` (the table is long); cells with fewer than ``MIN_GROUP``
    scored trials say ``insufficient data``.
    """
    frame = as_frame(rows)

    def compute(entry: Budget, tally: Tally) -> None:
        budget, scored, direction = entry.label, entry.trials, entry.direction
        table = tally.table
        for (d_model, n_layers), cell in group_by(scored, ["d_model", "n_layers"]):
            marker = entry.marker(len(cell), MIN_GROUP)
            if marker is not None:
                table.append([budget, int(d_model), int(n_layers), len(cell), direction, marker])
                continue
            best = _row(cell, _rank_order(cell, str(direction))[0])
            table.append(
                [
                    budget,
                    int(d_model),
                    int(n_layers),
                    len(cell),
                    direction,
                    float(best["objective"]),
                ]
            )

    select = _scored_known("d_model", "n_layers")
    tally = per_budget(frame, compute, select=select, directed=True)
    table, total = tally.table, tally.total
    return _finding(
        "architecture_grid",
        "Architecture patterns",
        "Best objective per d_model and n_layers",
        ["budget", "d_model", "n_layers", "n", "direction", "best_objective"],
        table,
        f"Best scored objective of each (d_model, n_layers) cell per budget ({total} trials).",
        total,
        f"needs ≥ {MIN_GROUP} scored trials per cell.",
    )
