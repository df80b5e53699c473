"""Divergence patterns: how diverged trials differ, when they blow up, and which learning-rate
× depth cells diverge together."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace
from typing import Any

import numpy as np

from .. import stats
from ..finding import (
    DIVERGENCE_PARAMS,
    INSUFFICIENT,
    LARGE_DELTA,
    MIN_GROUP,
    MIN_N,
    Finding,
)
from ..stats import Estimate, interval_text
from .architecture import confounded_widths, depth_band
from .cells import (
    CI_NOTE,
    _budgets_sentence,
    _ci,
    _finding,
    _pct,
    _points_text,
    _record,
    _sig,
    cliffs_delta,
    fmt,
)
from .frame import (
    Budget,
    Frame,
    Rows,
    Tally,
    _flag,
    _known_divergence,
    _map_distinct,
    _missing,
    _not_nan,
    as_frame,
    group_by,
    per_budget,
)


def divergence_hyperparameters(rows: Rows) -> Finding:
    """Diverged vs non-diverged trials of the same budget: medians and Cliff's δ per parameter.

    δ > 0 means the diverged trials tend to have the larger value. One parameter at a time:
    where parameters are confounded (see :func:`divergence_interactions`), δ of one of them
    carries the other's effect too.
    """
    frame = _known_divergence(as_frame(rows))

    def compute(entry: Budget, tally: Tally) -> None:
        budget, group = entry.label, entry.whole
        table, parts, estimates, calm = tally.table, tally.parts, tally.estimates, tally.quiet
        diverged = group.where(_flag(group, "diverged", True))
        healthy = group.where(_flag(group, "diverged", False))
        if not len(diverged):
            calm.append(budget)
            return
        rows_here: list[list[Any]] = []
        for parameter in DIVERGENCE_PARAMS:
            a = _not_nan(diverged[parameter])
            b = _not_nan(healthy[parameter])
            if len(a) < MIN_GROUP or len(b) < MIN_GROUP:
                table.append([budget, parameter, len(a), len(b), None, None, INSUFFICIENT])
                table[-1] += [None, None]
                continue
            delta = stats.cliffs_delta(a, b).rounded(3)
            estimates.append(delta.to_dict(budget=budget, parameter=parameter))
            row: list[Any] = [
                budget,
                parameter,
                len(a),
                len(b),
                _sig(float(np.median(a))),
                _sig(float(np.median(b))),
                cliffs_delta(a, b),
                *_ci(delta),
            ]
            table.append(row)
            rows_here.append(row)
        if not rows_here:
            parts.append(f"{budget} {INSUFFICIENT} ({len(diverged)} diverged)")
            return
        top = max(rows_here, key=lambda r: (abs(r[6]), -DIVERGENCE_PARAMS.index(r[1])))
        top_estimate = Estimate("cliffs_delta", top[6], top[7], top[8], top[2] + top[3])
        side = stats.reading(top_estimate, "higher", "lower")
        text = (
            f"{budget}: diverged trials differ most in {top[1]} ({side}; median {fmt(top[4])} "
            f"vs {fmt(top[5])}, Cliff's δ = {fmt(top[6])}, {interval_text(top_estimate)}, "
            f"n = {top[2]} vs {top[3]})"
        )
        clear = [
            r[1]
            for r in rows_here
            if abs(r[6]) >= LARGE_DELTA and not Estimate("d", r[6], r[7], r[8], 0).contains_zero()
        ]
        if clear:
            text += f"; |δ| ≥ {LARGE_DELTA} with an interval excluding zero for {', '.join(clear)}"
        parts.append(text)

    tally = per_budget(frame, compute, count=False)
    table, parts, estimates, calm = tally.table, tally.parts, tally.estimates, tally.quiet
    sentence = _budgets_sentence(
        "",
        parts,
        calm,
        "no diverged trials in",
        None,
        "No trial diverged, so there is nothing to compare.",
    )
    return replace(
        _finding(
            "divergence_hyperparameters",
            "Divergence patterns",
            "Hyperparameters of diverged vs non-diverged trials (same budget)",
            [
                "budget",
                "parameter",
                "n_diverged",
                "n_not_diverged",
                "median_diverged",
                "median_not_diverged",
                "cliffs_delta",
                "ci_low",
                "ci_high",
            ],
            table,
            sentence,
            len(frame),
            "Cliff's δ = (#(d > o) − #(d < o)) / (n_d·n_o) over all pairs of a diverged value d "
            "and a non-diverged value o (via the Mann–Whitney U of average ranks); δ > 0: "
            f"diverged trials have larger values; |δ| ≥ {LARGE_DELTA} is large by convention; "
            f"each group needs ≥ {MIN_GROUP} values. One parameter at a time: see the lr × "
            f"depth table for interactions. {CI_NOTE}",
        ),
        estimates=estimates,
    )


def diverge_epochs(rows: Rows) -> Finding:
    """At which epoch trials diverge: median and range of diverge_epoch per budget."""
    frame = as_frame(rows)
    frame = frame.where(_flag(frame, "diverged", True))

    def compute(entry: Budget, tally: Tally) -> None:
        budget, group = entry.label, entry.whole
        table, parts = tally.table, tally.parts
        epochs = _not_nan(group["diverge_epoch"])
        named = (k or "unknown" for k in group["diverge_kind"].tolist())
        kinds = Counter(k for k in named if not _missing(k))
        kinds_text = ", ".join(f"{k} {kinds[k]}" for k in sorted(kinds))
        if len(epochs) < MIN_N:
            table.append([budget, len(group), len(epochs), INSUFFICIENT, None, None, kinds_text])
            parts.append(f"{budget} {INSUFFICIENT} ({len(epochs)} with a diverge_epoch)")
            return
        row = [
            budget,
            len(group),
            len(epochs),
            _sig(float(np.median(epochs))),
            int(epochs.min()),
            int(epochs.max()),
            kinds_text,
        ]
        table.append(row)
        parts.append(f"{budget} median epoch {fmt(row[3])} (range {row[4]}–{row[5]}, n = {row[2]})")

    tally = per_budget(frame, compute, count=False)
    table, parts = tally.table, tally.parts
    sentence = (
        "Diverged trials blow up at: " + "; ".join(parts) + "." if parts else "No trial diverged."
    )
    return _finding(
        "diverge_epochs",
        "Divergence patterns",
        "Epoch at which trials diverge",
        [
            "budget",
            "diverged",
            "with_diverge_epoch",
            "median_epoch",
            "min_epoch",
            "max_epoch",
            "diverge_kinds",
        ],
        table,
        sentence,
        len(frame),
        "diverge_epoch: first curve epoch whose train or val loss is non-finite or at least the "
        f"threshold (value_only trials have none); the median needs ≥ {MIN_N} epochs.",
    )


def lr_band(lr: float) -> str:
    """Decade band of a learning rate, e.g. ``1e-04–1e-03`` (lower bound included).

    >>> lr_band(3e-4), lr_band(1e-3), lr_band(0.0093)
    ('1e-04–1e-03', '1e-03–1e-02', '1e-03–1e-02')
    """
    exponent = math.floor(math.log10(lr) + 1e-9)
    return f"{10.0**exponent:.0e}–{10.0 ** (exponent + 1):.0e}"


def _band_start(band: str) -> float:
    """The lower bound of an lr band (``1e-04–1e-03``) or a depth band (``17-32``), to sort."""
    return float(band.split("–")[0]) if "–" in band else float(band.split("-")[0])


def divergence_interactions(rows: Rows) -> Finding:
    """Divergence rate per budget by lr band × depth band, and the cell that stands out.

    Divergence is mostly an interaction (a high learning rate is fatal only for deep models),
    which one-variable comparisons hide. Per budget, every (lr decade, n_layers power-of-two
    band) cell gets its trial and diverged counts; the cell with the highest rate (≥
    ``MIN_GROUP`` trials) is compared with all other trials of the budget: difference of the
    rates with a bootstrap interval. Widths tried at one depth only are named as confounded.
    """
    frame = _known_divergence(as_frame(rows))
    frame = frame.where(
        np.isfinite(frame["n_layers"])
        & (frame["n_layers"] >= 1)
        & np.isfinite(frame["lr"])
        & (frame["lr"] > 0)
    )

    def compute(entry: Budget, tally: Tally) -> None:
        budget, group = entry.label, entry.whole
        table, parts, estimates, calm = tally.table, tally.parts, tally.estimates, tally.quiet
        banded = group.with_columns(
            _lr=_map_distinct(group["lr"], lr_band),
            _depth=_map_distinct(group["n_layers"], depth_band),
            _div=_flag(group, "diverged", True),
            _position=np.arange(len(group)),
        )
        cells = []
        for (lr_text, depth_text), cell in group_by(banded, ["_lr", "_depth"], sort=False):
            cells.append(
                (_band_start(str(lr_text)), _band_start(str(depth_text)), lr_text, depth_text, cell)
            )
        cells.sort(key=lambda c: (c[0], c[1]))
        best: tuple[float, Any, Any, Frame] | None = None
        for _, _, lr_text, depth_text, cell in cells:
            diverged = int(cell["_div"].sum())
            enough = len(cell) >= MIN_GROUP
            rate_text = _pct(diverged, len(cell)) if enough else INSUFFICIENT
            table.append(
                [budget, lr_text, depth_text, len(cell), diverged, rate_text, None, None, None]
            )
            if enough and diverged and (best is None or diverged / len(cell) > best[0]):
                best = (diverged / len(cell), lr_text, depth_text, cell)
        total_div = int(banded["_div"].sum())
        if not total_div:
            calm.append(budget)
            return
        confounds = confounded_widths(group)
        confound_text = ""
        if confounds:
            confound_text = "; confounded: " + ", ".join(
                f"d_model {w} only with {d} layers ({n} trials)" for w, d, n in confounds
            )
        for width, depth, count in confounds:
            table.append(
                [budget, "confounded", f"d_model {width} only with {depth} layers", count]
                + [None] * 5
            )
        if best is None:
            parts.append(
                f"{budget}: no cell with ≥ {MIN_GROUP} trials has a divergence{confound_text}"
            )
            return
        _, lr_text, depth_text, cell = best
        inside = cell["_div"]
        elsewhere = np.ones(len(banded), dtype=bool)
        elsewhere[cell["_position"]] = False
        outside = banded["_div"][elsewhere]
        difference = stats.rate_difference(inside, outside)
        estimates.append(
            _record(difference, 4, budget=budget, lr_band=lr_text, n_layers_band=depth_text)
        )
        points = [
            None if x is None else round(100 * x, 1) + 0.0
            for x in (difference.value, difference.ci_low, difference.ci_high)
        ]
        table.append(
            [
                budget,
                f"{lr_text} × {depth_text} vs the rest",
                "all other cells",
                len(outside),
                int(outside.sum()),
                _pct(int(outside.sum()), len(outside)),
                *points,
            ]
        )
        parts.append(
            f"{budget}: lr {lr_text} with {depth_text} layers diverged in {int(inside.sum())} of "
            f"{len(inside)} trials ({_pct(int(inside.sum()), len(inside))}) vs "
            f"{int(outside.sum())} of {len(outside)} ({_pct(int(outside.sum()), len(outside))}) "
            f"of the other trials ({_points_text(difference)})"
            f"{confound_text}"
        )

    tally = per_budget(frame, compute, count=False)
    table, parts, estimates, calm = tally.table, tally.parts, tally.estimates, tally.quiet
    sentence = _budgets_sentence(
        "Divergence by learning rate and depth together: ",
        parts,
        calm,
        "no divergence in",
        "No trial diverged ({}).",
        "No trial has a known lr, depth and divergence flag.",
    )
    return replace(
        _finding(
            "divergence_interactions",
            "Divergence patterns",
            "Divergence rate by lr band × n_layers band per budget",
            [
                "budget",
                "lr_band",
                "n_layers_band",
                "trials",
                "diverged",
                "diverged_rate",
                "difference_points",
                "ci_low_points",
                "ci_high_points",
            ],
            table,
            sentence,
            len(frame),
            "lr bands are decades (lower bound included), n_layers bands powers of two; a rate "
            f"needs ≥ {MIN_GROUP} trials in the cell; the cell with the highest rate is compared "
            "with the rest of its budget (difference of the two rates, each group resampled on "
            "its own); a width tried at one depth only (≥ "
            f"{MIN_GROUP} trials) is named as confounded with that depth. {CI_NOTE}",
        ),
        estimates=estimates,
    )
