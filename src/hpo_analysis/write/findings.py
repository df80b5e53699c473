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

from ..analyze import INSUFFICIENT, THRESHOLDS, THRESHOLDS_TEXT, Finding
from ..jsonio import dumps_strict
from ..model import Settings


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
        "findings": [f.to_dict() for f in findings],
    }


def write(
    path: Path, findings: Sequence[Finding], meta: dict[str, Any], settings: Settings
) -> None:
    path.write_text(
        dumps_strict(document(findings, meta, settings), indent=1) + "\n", encoding="utf-8"
    )
