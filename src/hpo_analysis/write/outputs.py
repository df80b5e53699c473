"""Writers for every output file; each output's layout comes from :mod:`hpo_analysis.schema`.

All files are written into the staging directory (see :mod:`.atomic`); ``manifest.csv`` is
written last and marks the set complete.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..jsonio import dumps_strict
from ..model import Settings
from ..schema import (
    BY_NAME,
    COLUMNS,
    MANIFEST_COLUMNS,
    OBJECTIVE_PREFIX,
    PARAM_PREFIX,
    SUMMARY_COLUMNS,
)
from .cells import csv_cell

if TYPE_CHECKING:
    from ..pipeline import ManifestRow

SUMMARY_CSV = "hpo_summary.csv"
FULL_JSON = "hpo_full.json"
DIVERGED_CSV = "diverged_analysis.csv"
DIVERGED_JSON = "diverged_analysis.json"
FINDINGS_JSON = "findings.json"
README = "README.md"
MANIFEST = "manifest.csv"
OUTPUT_FILES = (
    SUMMARY_CSV,
    FULL_JSON,
    DIVERGED_CSV,
    DIVERGED_JSON,
    FINDINGS_JSON,
    README,
    MANIFEST,
)

SpoolIndex = dict[tuple[str, int], tuple[int, int]]


def generated_at() -> str:
    """UTC timestamp of the run; honours SOURCE_DATE_EPOCH for reproducible outputs."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    try:
        seconds = int(epoch) if epoch else time.time()
    except ValueError:
        seconds = time.time()
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def dynamic_columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Columns beyond the schema: extra study-name factors, ``objective_*`` (one per objective
    of a multi-objective study), then ``param_*``, each sorted."""
    names = {k for row in rows for k in row if k not in BY_NAME and not k.startswith("_")}
    objectives = sorted(n for n in names if n.startswith(OBJECTIVE_PREFIX))
    params = sorted(n for n in names if n.startswith(PARAM_PREFIX))
    factors = sorted(names - set(objectives) - set(params))
    return factors + objectives + params


def summary_header(rows: Sequence[dict[str, Any]]) -> list[str]:
    return [c.name for c in SUMMARY_COLUMNS] + dynamic_columns(rows)


def diverged_header(rows: Sequence[dict[str, Any]]) -> list[str]:
    return [c.name for c in COLUMNS] + dynamic_columns(rows)


def metadata(
    rows: Sequence[dict[str, Any]],
    settings: Settings,
    sources: Sequence[str],
    manifest: Sequence[ManifestRow],
    *,
    command: str,
    version: str,
) -> dict[str, Any]:
    studies: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = studies.setdefault(
            row["study"],
            {
                "study": row["study"],
                "budget": row["budget"],
                "horizon": row["horizon"],
                "direction": row["direction"],
                "direction_source": row["direction_source"],
                "n_trials": 0,
                "n_diverged": 0,
            },
        )
        entry["n_trials"] += 1
        entry["n_diverged"] += bool(row["diverged"])
    by_status: dict[str, int] = {}
    for item in manifest:
        by_status[item.status] = by_status.get(item.status, 0) + 1
    return {
        "generated": generated_at(),
        "tool": "hpo-analysis",
        "tool_version": version,
        "command": command,
        "sources": list(sources),
        "n_files": len(manifest),
        "files_by_status": dict(sorted(by_status.items())),
        "n_studies": len(studies),
        "n_trials": len(rows),
        "n_diverged": sum(1 for r in rows if r["diverged"]),
        "settings": {
            "diverge_threshold": settings.diverge_threshold,
            "arch_thresholds": list(settings.arch_thresholds),
            "study_pattern": settings.study_pattern,
            "directions": [list(rule) for rule in settings.directions],
            "studies": list(settings.studies),
            "rank_by": settings.rank_by,
            "max_file_bytes": settings.max_file_bytes,
        },
        "studies": [studies[name] for name in sorted(studies)],
    }


def write_csv(path: Path, header: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow([csv_cell(row.get(name)) for name in header])


def trial_object(row: dict[str, Any], dynamic: Sequence[str]) -> dict[str, Any]:
    """One trial of hpo_full.json, grouped as the schema says (without its curve)."""
    obj: dict[str, Any] = {}
    groups: dict[str, dict[str, Any]] = {}
    for column in COLUMNS:
        if not column.summary and not row.get("diverged"):
            continue
        if column.group:
            groups.setdefault(column.group, {})[column.name] = row.get(column.name)
        else:
            obj[column.name] = row.get(column.name)
    for name in dynamic:
        if name.startswith(PARAM_PREFIX):
            groups.setdefault("training_params", {})[name[len(PARAM_PREFIX) :]] = row.get(name)
        elif name.startswith(OBJECTIVE_PREFIX):
            groups.setdefault("results", {})[name] = row.get(name)
        else:
            obj[name] = row.get(name)
    obj.update(groups)
    obj["annotations"] = row.get("_annotations", [])
    return obj


def _read_fragment(spool: Any, index: SpoolIndex, key: tuple[str, int]) -> str:
    offset, length = index[key]
    spool.seek(offset)
    return spool.read(length).decode("utf-8")


def _splice(obj: dict[str, Any], fragment: str) -> str:
    head = dumps_strict(obj)
    return head[:-1] + ", " + fragment + "}" if fragment else head


def write_full_json(
    path: Path,
    rows: Sequence[dict[str, Any]],
    meta: dict[str, Any],
    spool_path: Path,
    index: SpoolIndex,
) -> None:
    dynamic = dynamic_columns(rows)
    with open(path, "w", encoding="utf-8", newline="\n") as out, open(spool_path, "rb") as spool:
        out.write('{"metadata": ' + dumps_strict(meta, indent=1) + ',\n"trials": [\n')
        for position, row in enumerate(rows):
            key = (row["study"], row["trial_num"])
            out.write(_splice(trial_object(row, dynamic), _read_fragment(spool, index, key)))
            out.write(",\n" if position < len(rows) - 1 else "\n")
        out.write("]}\n")


def write_diverged_json(
    path: Path,
    rows: Sequence[dict[str, Any]],
    diverged: Sequence[dict[str, Any]],
    meta: dict[str, Any],
    spool_path: Path,
    index: SpoolIndex,
) -> None:
    """Each diverged trial flat (the CSV's columns) with its curve and its neighbour's curve."""
    import json

    header = diverged_header(rows)
    by_key = {(r["study"], r["trial_num"]): r for r in rows}
    with open(path, "w", encoding="utf-8", newline="\n") as out, open(spool_path, "rb") as spool:
        out.write(
            '{"metadata": '
            + dumps_strict(
                {
                    k: meta[k]
                    for k in ("generated", "tool_version", "n_trials", "n_diverged", "settings")
                },
                indent=1,
            )
            + ',\n"trials": [\n'
        )
        for position, row in enumerate(diverged):
            key = (row["study"], row["trial_num"])
            obj = {name: row.get(name) for name in header}
            obj["learning_curve"] = json.loads("{" + _read_fragment(spool, index, key) + "}")[
                "learning_curve"
            ]
            similar = None
            if row.get("similar_successful_trial"):
                study, _, num = row["similar_successful_trial"].rpartition("/")
                other_key = (study, int(num))
                other = by_key[other_key]
                similar = {
                    name: other.get(name)
                    for name in (
                        "study",
                        "trial_num",
                        "d_model",
                        "n_layers",
                        "n_heads",
                        "d_ff",
                        "lr",
                        "warmup_steps",
                        "dropout",
                        "weight_decay",
                        "val_loss",
                        "best_epoch",
                        "epochs_trained",
                        "stop_reason",
                    )
                }
                similar["learning_curve"] = json.loads(
                    "{" + _read_fragment(spool, index, other_key) + "}"
                )["learning_curve"]
            obj["similar_trial"] = similar
            out.write(dumps_strict(obj))
            out.write(",\n" if position < len(diverged) - 1 else "\n")
        out.write("]}\n")


def write_manifest(path: Path, manifest: Sequence[ManifestRow]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(MANIFEST_COLUMNS)
        for item in manifest:
            writer.writerow([csv_cell(getattr(item, name)) for name in MANIFEST_COLUMNS])


def write_all(
    directory: Path,
    rows: Sequence[dict[str, Any]],
    manifest: Sequence[ManifestRow],
    meta: dict[str, Any],
    settings: Settings,
    spool_path: Path,
    index: SpoolIndex,
) -> None:
    from ..analyze import all_findings
    from . import findings as findings_json
    from . import readme

    diverged = [r for r in rows if r["diverged"]]
    write_csv(directory / SUMMARY_CSV, summary_header(rows), rows)
    write_full_json(directory / FULL_JSON, rows, meta, spool_path, index)
    write_csv(directory / DIVERGED_CSV, diverged_header(rows), diverged)
    write_diverged_json(directory / DIVERGED_JSON, rows, diverged, meta, spool_path, index)
    spool_path.unlink()
    findings = all_findings(rows, settings.top_k)
    findings_json.write(directory / FINDINGS_JSON, findings, meta, settings)
    figures: list[str] = []
    if settings.write_report:
        from ..report import report_available, write_report

        if report_available():
            figures = write_report(directory, staged=True)
    (directory / README).write_text(
        readme.render(rows, manifest, meta, settings, findings=findings, figures=figures),
        encoding="utf-8",
    )
    write_manifest(directory / MANIFEST, manifest)
