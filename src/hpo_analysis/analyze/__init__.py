"""Findings computed from the trial rows: small tables, their n and one plain sentence each.

Computation is separate from rendering: each function returns a :class:`Finding`, and the README
writer, ``findings.json`` and the HTML report only draw it. Every number in a sentence is taken
from the finding's own table, formatted as the table renders it.

The rows are the flat per-trial dicts the pipeline builds (keys are schema column names). Where a
sample is too small to say anything, the table says ``insufficient data`` instead of a number:

- ``MIN_N`` (5): any statistic of one sample (a best trial, top-k, rate, median, quartiles, mean,
  standard deviation, rank correlation);
- ``MIN_GROUP`` (3): each cell of a breakdown (a depth band, a depth, a d_model within a
  budget) and each side of a two-group comparison (diverged vs not diverged);
- ``MIN_IMPORTANCE_TRIALS`` (20): parameter importance of a budget.

Objective-based answers use the *scored* trials: COMPLETE, finite objective, not diverged (a
diverged trial's objective is often a sentinel such as 100.0). "Best" follows each study's
direction through one rule (:func:`.frame.direction_of` and :func:`.frame.sign`): a set of
trials mixing minimize and maximize studies has no comparable objective, so every finding that
names a best trial, ranks, takes a top-k or compares objectives says ``mixed directions`` there
instead of comparing a loss with an accuracy (the best trial per study, too, names no best
objective overall then).

The package is split by research question: :mod:`.frame` (the trial table, its groups, the
direction rule and :func:`.frame.per_budget`, the walk over the budgets every finding shares),
:mod:`.cells` (numbers as table cells and phrases), then one module per README section:
:mod:`.overview`, :mod:`.architecture`, :mod:`.dynamics`, :mod:`.horizon`, :mod:`.divergence`
and :mod:`.importance`.

Example::

    >>> rows = [{"budget": "2M", "diverged": d} for d in (False, False, False, True, True)]
    >>> divergence_by_budget(rows).rows
    [['2M', 5, 2, '40.0%', '0.0%', '80.0%']]
    >>> divergence_by_budget(rows[:4]).rows
    [['2M', 4, 1, 'insufficient data', None, None]]
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from .. import stats
from ..finding import (
    ARCH_CATEGORIES,
    DEFAULT_TOP_K,
    DIVERGENCE_PARAMS,
    IMPORTANCE_PARAMS,
    INSUFFICIENT,
    LARGE_DELTA,
    MAX_IMPORTANCE_TRIALS,
    MIN_GROUP,
    MIN_IMPORTANCE_TRIALS,
    MIN_N,
    MIXED,
    SECTIONS,
    STYLE_TOP,
    THRESHOLDS,
    THRESHOLDS_TEXT,
    Finding,
    budget_sort_key,
    horizon_sort_key,
)
from ..memory import release_memory
from ..version import library_versions, source_digest
from . import horizon
from .architecture import (
    architecture_grid,
    architecture_style,
    best_architecture,
    best_heads_per_width,
    confounded_widths,
    depth_band,
    divergence_by_depth,
    ff_ratio,
    heads_controlled_pairs,
    heads_correlation,
    max_reliable_depth,
    scored_frame,
    top_k_architecture,
)
from .cells import CI_NOTE, cliffs_delta, fmt, spearman
from .divergence import diverge_epochs, divergence_hyperparameters, divergence_interactions, lr_band
from .dynamics import best_epoch_gap, dropout_generalization, early_stopping_by_epochs
from .frame import _OBJECTS, FRAME_COLUMNS, Frame, Rows, as_frame, trial_frame
from .horizon import depth_by_horizon, easiest_horizon, horizon_transfer, horizon_transfer_summary
from .importance import (
    IMPORTANCE_NOT_INSTALLED,
    MAX_CHOICES,
    _distribution,
    _importance,
    param_importance,
)
from .memo import BudgetMemo, _distinct_by_value, _ExactPickler, kept_budgets
from .overview import best_trial_per_study, divergence_by_budget, early_stopping_by_budget

__all__ = [
    "ARCH_CATEGORIES",
    "BudgetMemo",
    "CI_NOTE",
    "DEFAULT_TOP_K",
    "DIVERGENCE_PARAMS",
    "IMPORTANCE_NOT_INSTALLED",
    "IMPORTANCE_PARAMS",
    "INSUFFICIENT",
    "LARGE_DELTA",
    "MAX_CHOICES",
    "MAX_IMPORTANCE_TRIALS",
    "MIN_GROUP",
    "MIN_IMPORTANCE_TRIALS",
    "MIN_N",
    "MIXED",
    "SECTIONS",
    "STYLE_TOP",
    "THRESHOLDS",
    "THRESHOLDS_TEXT",
    "Finding",
    "Rows",
    "_distribution",
    "_importance",
    "all_findings",
    "architecture_grid",
    "architecture_style",
    "as_frame",
    "best_architecture",
    "best_epoch_gap",
    "best_heads_per_width",
    "best_trial_per_study",
    "budget_sort_key",
    "cliffs_delta",
    "confounded_widths",
    "core_findings",
    "depth_band",
    "depth_by_horizon",
    "diverge_epochs",
    "divergence_by_budget",
    "divergence_by_depth",
    "divergence_hyperparameters",
    "divergence_interactions",
    "dropout_generalization",
    "early_stopping_by_budget",
    "early_stopping_by_epochs",
    "easiest_horizon",
    "ff_ratio",
    "fmt",
    "heads_controlled_pairs",
    "heads_correlation",
    "horizon_sort_key",
    "horizon_transfer",
    "horizon_transfer_summary",
    "lr_band",
    "max_reliable_depth",
    "param_importance",
    "scored_frame",
    "spearman",
    "top_k_architecture",
    "trial_frame",
]


def core_findings(rows: Sequence[dict[str, Any]]) -> list[Finding]:
    return [divergence_by_budget(rows), early_stopping_by_budget(rows), best_trial_per_study(rows)]


# Every value all_findings reads from a row: the trial frame's columns (the per-study best
# trial, read from the rows, needs no other); tests/test_findings_cache.py records what the
# findings read and fails on any other.
FINDINGS_INPUTS: tuple[str, ...] = FRAME_COLUMNS


def findings_key(rows: Sequence[dict[str, Any]], top_k: int) -> str | None:
    """A digest of everything ``all_findings(rows, top_k)`` depends on, for reusing findings
    computed before: the rows' :data:`FINDINGS_INPUTS` in order (values and types exactly:
    1, 1.0 and True differ, as do NaN and None), ``top_k``, the source of this package and
    the versions of the libraries the findings compute with. ``None`` when a value cannot be
    encoded exactly, or a text or flag column holds a NaN or a value that is not an atom
    (:func:`_distinct_by_value`): then nothing is reused.

    >>> findings_key([{"objective": 1}], 5) == findings_key([{"objective": 1.0}], 5)
    False
    """
    import hashlib

    digest = _Digest(hashlib.sha256())
    pickler = _ExactPickler(digest, protocol=5)
    pickler.fast = True  # no memo: equal values encode alike whatever objects hold them
    try:
        pickler.dump((_code_and_libraries(), top_k, FINDINGS_INPUTS, len(rows)))
        for name in FINDINGS_INPUTS:  # column by column: one list each
            column = [row.get(name) for row in rows]
            if name in _OBJECTS and not _distinct_by_value(column):
                return None
            pickler.dump(column)
    except (pickle.PicklingError, TypeError, ValueError, RecursionError):
        return None
    return digest.hash.hexdigest()


class _Digest:
    """A file that hashes what is written to it."""

    def __init__(self, hash: Any) -> None:
        self.hash = hash

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        return len(data)


def _code_and_libraries() -> tuple[str, tuple[tuple[str, str | None], ...]]:
    """The digest of this package's source files and the versions of the libraries the
    findings compute with (a changed line of code or library gives other findings)."""
    return source_digest(), library_versions(("numpy", "optuna"))


def all_findings(
    rows: Sequence[dict[str, Any]], top_k: int = DEFAULT_TOP_K, memo: BudgetMemo | None = None
) -> list[Finding]:
    """Every finding, grouped by section in reading order (what findings.json holds).

    With ``memo``, a finding's answer for a budget whose rows (and everything else it reads)
    are those of ``memo.previous`` is reused instead of computed, and every answer goes to
    ``memo.current`` (see :mod:`.memo`): the findings are the same either way.

    >>> [f.id for f in all_findings([])][:3]
    ['best_trial_per_study', 'best_architecture', 'top_k_architecture']
    """
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    # the findings share the resamples of each sample size, not their selections of trials:
    # kept for every finding, those held 200 MB more at 1,200 studies and saved 6 % of the
    # findings' time
    with stats.kept_resamples(), kept_budgets(memo):
        try:
            return _findings(rows, top_k, memo)
        finally:
            if memo is not None:
                memo.unbind()  # the trial frame is not held after the findings


def _findings(
    rows: Sequence[dict[str, Any]], top_k: int, memo: BudgetMemo | None = None
) -> list[Finding]:
    frame = trial_frame(rows)  # built once: every finding but the per-study one reads it
    if memo is not None:
        memo.bind(frame, pickle.dumps((_code_and_libraries(), top_k), protocol=5))
    findings = []
    for finding in _in_reading_order(rows, frame, top_k):
        findings.append(finding)
        # the finding's working memory (its selections of the trial frame) back to the
        # system before the next: freed, it would stay with the C library's allocator, and
        # the findings' peak would be the sum of their largest pieces
        release_memory()
    # the horizon-transfer table (one table, drawn by two findings) is computed last, in its
    # place in reading order: with many horizons it is the largest result (a row per pair of
    # horizons of a budget, 358,800 at 300 horizons per budget), and no other finding's
    # working memory then sits on top of it. The resamples depend on the sample size only, so
    # the order of computing changes no number.
    at = [f.id for f in findings].index("easiest_horizon")
    findings[at:at] = horizon.transfer_findings(frame)
    return findings


def _in_reading_order(
    rows: Sequence[dict[str, Any]], frame: Frame, top_k: int
) -> Iterator[Finding]:
    """Every finding but the horizon transfer, in reading order, one at a time."""
    yield replace(
        best_trial_per_study(rows),
        section="Overview",
        notes="Best = rank_in_study 1 (direction-aware); ranked = COMPLETE, finite objective.",
    )
    yield best_architecture(frame)
    yield top_k_architecture(frame, top_k)
    yield architecture_style(frame)
    yield divergence_by_depth(frame)
    yield max_reliable_depth(frame)
    yield heads_correlation(frame)
    yield best_heads_per_width(frame)
    yield heads_controlled_pairs(frame)
    yield ff_ratio(frame, top_k)
    yield replace(
        early_stopping_by_budget(frame),
        section="Training dynamics",
        notes=f"Non-diverged trials with a known early_stopped flag (a diverged trial never "
        f"stops early, so it is left out of the denominator); the rate needs ≥ {MIN_N} of "
        f"them. {CI_NOTE}",
    )
    yield early_stopping_by_epochs(frame)
    yield best_epoch_gap(frame)
    yield dropout_generalization(frame)
    yield easiest_horizon(frame)
    yield depth_by_horizon(frame)
    yield replace(
        divergence_by_budget(frame),
        section="Divergence patterns",
        notes=f"All trials; the rate needs ≥ {MIN_N} trials in the budget. {CI_NOTE}",
    )
    yield divergence_hyperparameters(frame)
    yield divergence_interactions(frame)
    yield diverge_epochs(frame)
    yield param_importance(frame)
