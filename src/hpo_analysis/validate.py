"""Consistency checks of an output directory, run by ``validate`` and at the end of ``extract``.

Each check reads the files as a user would (csv module, strict JSON) and returns plain
messages; an empty list means the dataset is consistent.

Example::

    >>> validate_dir("outputs/analysis", expect_trials=600)  # doctest: +SKIP
    []
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any

from .schema import BY_NAME, COLUMNS, SEED_COLUMNS, SUMMARY_COLUMNS
from .write.cells import unneutralize
from .write.outputs import (
    DIVERGED_CSV,
    DIVERGED_JSON,
    FINDINGS_JSON,
    FULL_JSON,
    MANIFEST,
    OUTPUT_FILES,
    SUMMARY_CSV,
)

REQUIRED = ("study", "trial_num", "state", "stop_reason", "objective_kind", "source_file")
MAX_REPORTED = 20


def _strict_constant(token: str) -> float:
    raise ValueError(f"non-standard JSON token {token}")


def _load_strict(path: Path) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle, parse_constant=_strict_constant)


def _parse_cell(text: str, type_: str) -> Any:
    if text == "":
        return None
    if type_ == "int":
        return int(text)
    if type_ == "float":
        return float(text)
    if type_ == "bool":
        if text not in ("true", "false"):
            raise ValueError(f"not a boolean: {text!r}")
        return text == "true"
    return unneutralize(text)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return math.isclose(a, float(b), rel_tol=1e-12)
    return bool(a == b)


def validate_dir(
    directory: str | os.PathLike[str],
    *,
    expect_trials: int | None = None,
    expect_studies: int | None = None,
    expect_diverged: int | None = None,
) -> list[str]:
    """All consistency failures of the dataset in ``directory`` (empty list = valid)."""
    root = Path(directory)
    failures: list[str] = []
    missing = [name for name in OUTPUT_FILES if not (root / name).is_file()]
    if missing:
        return [f"{root}: missing output file(s): {', '.join(missing)}"]
    loaded: dict[str, Any] = {}
    for name in (FULL_JSON, DIVERGED_JSON, FINDINGS_JSON):
        try:
            loaded[name] = _load_strict(root / name)
        except (ValueError, OSError) as err:
            return [f"{root / name}: not strict JSON: {err}"]
    full, diverged_json = loaded[FULL_JSON], loaded[DIVERGED_JSON]
    failures.extend(_findings_well_formed(loaded[FINDINGS_JSON]))
    with open(root / SUMMARY_CSV, encoding="utf-8", newline="") as handle:
        summary = list(csv.DictReader(handle))
        handle.seek(0)
        header = next(csv.reader(handle), [])
    with open(root / DIVERGED_CSV, encoding="utf-8", newline="") as handle:
        diverged_rows = list(csv.DictReader(handle))
    with open(root / MANIFEST, encoding="utf-8", newline="") as handle:
        manifest = list(csv.DictReader(handle))

    if tuple(header[: len(SEED_COLUMNS)]) != SEED_COLUMNS:
        failures.append(f"{SUMMARY_CSV}: header does not start with the standard columns")
    meta = full.get("metadata", {})
    trials = full.get("trials", [])
    threshold = meta.get("settings", {}).get("diverge_threshold", 10.0)

    counts = {
        f"{SUMMARY_CSV} rows": len(summary),
        f"{FULL_JSON} trials": len(trials),
        "metadata.n_trials": meta.get("n_trials"),
        f"{MANIFEST} trials (n_trials of ok + warning rows)": sum(
            int(m["n_trials"] or 0) for m in manifest if m["status"] in ("ok", "warning")
        ),
    }
    if len(set(counts.values())) != 1:
        failures.append(
            "trial counts disagree: " + ", ".join(f"{k} = {v}" for k, v in counts.items())
        )

    keys = set()
    parsed: list[dict[str, Any]] = []
    for line, row in enumerate(summary, start=2):
        try:
            values = {c.name: _parse_cell(row.get(c.name, ""), c.type) for c in SUMMARY_COLUMNS}
        except ValueError as err:
            failures.append(f"{SUMMARY_CSV} line {line}: {err}")
            continue
        parsed.append(values)
        for name in REQUIRED:
            if values.get(name) in (None, ""):
                failures.append(f"{SUMMARY_CSV} line {line}: required field {name} is empty")
        key = (values["study"], values["trial_num"])
        if key in keys:
            failures.append(f"{SUMMARY_CSV} line {line}: duplicate trial {key}")
        keys.add(key)
        failures.extend(_diverged_consistent(values, threshold, f"{SUMMARY_CSV} line {line}"))

    failures.extend(_csv_matches_json(parsed, trials))

    flagged = sum(1 for v in parsed if v["diverged"])
    if flagged != len(diverged_rows) or flagged != len(diverged_json.get("trials", [])):
        failures.append(
            f"diverged counts disagree: {flagged} flagged in {SUMMARY_CSV}, "
            f"{len(diverged_rows)} rows in {DIVERGED_CSV}, "
            f"{len(diverged_json.get('trials', []))} in {DIVERGED_JSON}"
        )
    for line, row in enumerate(diverged_rows, start=2):
        if not row.get("diverge_kind"):
            failures.append(f"{DIVERGED_CSV} line {line}: no diverge_kind")

    studies = {v["study"] for v in parsed}
    for label, expected, actual in (
        ("trials", expect_trials, len(parsed)),
        ("studies", expect_studies, len(studies)),
        ("diverged trials", expect_diverged, flagged),
    ):
        if expected is not None and expected != actual:
            failures.append(f"expected {expected} {label}, found {actual}")
    if len(failures) > MAX_REPORTED:
        failures = failures[:MAX_REPORTED] + [f"... and {len(failures) - MAX_REPORTED} more"]
    return failures


def _findings_well_formed(doc: Any) -> list[str]:
    """findings.json: a list of findings, each with its fields and rows as wide as its columns."""
    items = doc.get("findings") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        return [f"{FINDINGS_JSON}: no list of findings"]
    failures = []
    for position, item in enumerate(items):
        keys = ("id", "title", "columns", "rows", "sentence", "n")
        if not isinstance(item, dict) or any(k not in item for k in keys):
            failures.append(f"{FINDINGS_JSON}: finding {position} lacks one of {', '.join(keys)}")
            continue
        width = len(item["columns"])
        if any(not isinstance(r, list) or len(r) != width for r in item["rows"]):
            failures.append(f"{FINDINGS_JSON}: finding {item['id']}: a row is not {width} wide")
    return failures


def _diverged_consistent(values: dict[str, Any], threshold: float, where: str) -> list[str]:
    kind, objective, flag = values["objective_kind"], values["objective"], values["diverged"]
    if kind == "missing":
        expected = None
    elif kind != "finite":
        expected = True
    else:
        expected = values["direction"] == "minimize" and objective >= threshold
    if flag != expected:
        return [f"{where}: diverged={flag} but objective {objective} ({kind}) implies {expected}"]
    return []


def _csv_matches_json(parsed: list[dict[str, Any]], trials: list[dict[str, Any]]) -> list[str]:
    failures: list[str] = []
    by_key = {(t.get("study"), t.get("trial_num")): t for t in trials}
    for values in parsed:
        trial = by_key.get((values["study"], values["trial_num"]))
        if trial is None:
            failures.append(
                f"trial {values['study']}/{values['trial_num']} is in "
                f"{SUMMARY_CSV} but not in {FULL_JSON}"
            )
            continue
        for column in SUMMARY_COLUMNS:
            node = trial.get(column.group, {}) if column.group else trial
            if not _same(values[column.name], node.get(column.name)):
                failures.append(
                    f"trial {values['study']}/{values['trial_num']}: {column.name} is "
                    f"{values[column.name]!r} in {SUMMARY_CSV} but "
                    f"{node.get(column.name)!r} in {FULL_JSON}"
                )
                break
    return failures


__all__ = ["validate_dir", "BY_NAME", "COLUMNS"]
