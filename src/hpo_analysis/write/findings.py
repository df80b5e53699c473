"""``findings.json``: every finding as data — question id, table, sentence, n and thresholds.

The README's "Known patterns and findings" section and ``report.html`` draw the same
:class:`~hpo_analysis.analyze.Finding` objects; this file lets a notebook or a paper appendix
use them without parsing Markdown. Strict RFC 8259 JSON (non-finite numbers become ``null``).

Example::

    >>> import json  # doctest: +SKIP
    >>> doc = json.load(open("outputs/analysis/findings.json"))  # doctest: +SKIP
    >>> [f["id"] for f in doc["findings"]][:2]  # doctest: +SKIP
    ['best_trial_per_study', 'best_architecture']
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..derive import budget_params
from ..finding import INSUFFICIENT, THRESHOLDS, THRESHOLDS_TEXT, Finding, budget_sort_key
from ..jsonio import dump_strict
from ..model import Settings
from ..stats import METHOD


def document(
    findings: Sequence[Finding], meta: dict[str, Any], settings: Settings
) -> dict[str, Any]:
    """The findings.json object: a function of the data and settings only (no timestamp, which
    is in hpo_full.json's metadata), so the same input gives the same bytes."""
    return {
        "tool_version": meta.get("tool_version"),
        "n_trials": meta.get("n_trials"),
        "top_k": settings.top_k,
        "thresholds": THRESHOLDS,
        "thresholds_text": THRESHOLDS_TEXT,
        "insufficient": INSUFFICIENT,
        "interval_method": METHOD,
        "budget_params": _budget_params(findings),
        "findings": [f.to_dict() for f in findings],
    }


def _budget_params(findings: Sequence[Finding]) -> dict[str, int]:
    """Each budget named in a findings table and its size, smallest first: the tables name
    budgets as text ("2M"), and this map gives the number to sort or join them by."""
    names = {
        row[0]
        for finding in findings
        if finding.columns[:1] == ["budget"]
        for row in finding.rows
        if row and isinstance(row[0], str)
    }
    sized = {name: budget_params(name) for name in names}
    return {
        name: size
        for name, size in sorted(sized.items(), key=lambda item: budget_sort_key(item[0]))
        if size is not None
    }


def write(
    path: Path, findings: Sequence[Finding], meta: dict[str, Any], settings: Settings
) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        dump_strict(document(findings, meta, settings), handle, indent=1)
        handle.write("\n")
