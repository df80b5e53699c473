"""What a finding is, and the thresholds every finding follows.

The analysis (:mod:`hpo_analysis.analyze`) produces :class:`Finding` objects; the writers
(``findings.json``, the README) and the report only draw them. Keeping the type and its
constants here lets the write stage depend on what a finding *is* without importing the code
that computes one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any

from .derive import budget_params

MIN_N = 5
MIN_GROUP = 3
MIN_IMPORTANCE_TRIALS = 20
# Above this many scored trials per budget, importance is computed on a seeded random sample
# of this size: PED-ANOVA's quantile estimates are stable long before that, and rebuilding
# every trial as an Optuna trial dominated the run time of large sweeps.
MAX_IMPORTANCE_TRIALS = 5000
DEFAULT_TOP_K = 20
STYLE_TOP = 10
INSUFFICIENT = "insufficient data"
MIXED = "mixed directions"
# |Cliff's delta| at or above this is "large" by the usual convention (Romano et al., 2006).
LARGE_DELTA = 0.474
DIVERGENCE_PARAMS: tuple[str, ...] = ("lr", "warmup_steps", "n_layers", "d_model", "dropout")
IMPORTANCE_PARAMS: tuple[str, ...] = (
    "d_model",
    "n_layers",
    "n_heads",
    "d_ff",
    "lr",
    "weight_decay",
    "warmup_steps",
    "dropout",
    "batch_size",
    "epochs_config",
)
ARCH_CATEGORIES: tuple[str, ...] = ("narrow-deep", "balanced", "wide-shallow")
SECTIONS: tuple[str, ...] = (
    "Overview",
    "Architecture patterns",
    "Training dynamics",
    "Horizon effects",
    "Divergence patterns",
    "Hyperparameter importance",
)
THRESHOLDS: dict[str, Any] = {
    "min_n": MIN_N,
    "min_group": MIN_GROUP,
    "min_importance_trials": MIN_IMPORTANCE_TRIALS,
    "style_top": STYLE_TOP,
    "large_cliffs_delta": LARGE_DELTA,
    "insufficient_marker": INSUFFICIENT,
}
THRESHOLDS_TEXT = (
    f"A statistic of one sample (best trial, top-k, rate, median, quartiles, mean, standard "
    f"deviation, rank correlation) needs at least {MIN_N} values; each cell of a breakdown "
    f"(depth band, depth, d_model) and each side of a two-group comparison needs at least "
    f"{MIN_GROUP}; parameter importance needs {MIN_IMPORTANCE_TRIALS} scored trials per budget. "
    f"Below that the table says `{INSUFFICIENT}`. Objective-based answers use the scored "
    f"trials (COMPLETE, finite objective, not diverged) and follow each study's direction."
)


@dataclass(frozen=True)
class Finding:
    """One answered question: a small table, one sentence quoting it, and the n behind it.

    ``n`` is the number of trials the answer is computed from; ``notes`` states the thresholds
    and definitions that apply; ``section`` groups findings in the README and the report.
    ``estimates`` lists every compared number with its bootstrap interval and method
    (:meth:`hpo_analysis.stats.Estimate.to_dict`: value, ci_low, ci_high, n, method and the
    budget/parameter it belongs to).

    >>> f = Finding("x", "X", ["a"], [[1]], "One.", 1)
    >>> Finding.from_dict(f.to_dict()) == f
    True
    """

    id: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    sentence: str
    n: int
    notes: str = ""
    section: str = "Overview"
    estimates: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The finding as a dict of its fields, sharing their values (asdict's deep copy of
        every table row costs seconds at a thousand studies and is not needed to encode it)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(
            id=str(data["id"]),
            title=str(data["title"]),
            columns=[str(c) for c in data["columns"]],
            rows=[list(r) for r in data["rows"]],
            sentence=str(data["sentence"]),
            n=int(data["n"]),
            notes=str(data.get("notes", "")),
            section=str(data.get("section", "Overview")),
            estimates=[dict(e) for e in data.get("estimates", [])],
        )


def budget_sort_key(budget: str | None) -> tuple[int, float, str]:
    """Order budgets by size (2M < 20M < 200M < 2B, as ``budget_params``); others last, by name.

    >>> sorted(["200M", "20M", "2B", "2M"], key=budget_sort_key)
    ['2M', '20M', '200M', '2B']
    """
    if budget is None:
        return (2, 0.0, "")
    size = budget_params(budget)
    if size is None:
        return (1, 0.0, budget)
    return (0, float(size), budget)


def horizon_sort_key(horizon: str | None) -> tuple[int, float, str]:
    """Order horizons by their number (h1 < h3 < h10); others after, by name."""
    if horizon is None:
        return (2, 0.0, "")
    match = re.search(r"\d+(?:\.\d+)?", horizon)
    return (0, float(match.group()), horizon) if match else (1, 0.0, horizon)
