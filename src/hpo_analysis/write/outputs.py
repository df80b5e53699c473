"""Writers for every output file; each output's layout comes from :mod:`hpo_analysis.schema`.

All files are written into the staging directory (see :mod:`.atomic`); ``manifest.csv`` is
written last and marks the set complete.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..finding import Finding
from ..jsonio import dumps_bytes, dumps_strict, loads_lossless
from ..layout import (  # noqa: F401  (re-exported: the writer's file names)
    CURVES_PARQUET,
    DIVERGED_CSV,
    DIVERGED_JSON,
    DIVERGED_PARQUET,
    FINDINGS_JSON,
    FULL_JSON,
    FULL_JSON_INDEX,
    FULL_JSON_SCHEMA,
    MANIFEST,
    OUTPUT_FILES,
    README,
    SUMMARY_CSV,
    TRIALS_PARQUET,
)
from ..model import Settings
from ..schema import (
    BY_NAME,
    COLUMNS,
    MANIFEST_COLUMNS,
    OBJECTIVE_PREFIX,
    PARAM_PREFIX,
    SUMMARY_COLUMNS,
    dynamic_columns,
)
from . import parquet
from .cells import csv_cell

if TYPE_CHECKING:
    from ..cache import CacheWriter, Location
    from ..model import ManifestRow

SpoolIndex = dict[tuple[str, int], "Location"]


def generated_at() -> str:
    """UTC timestamp of the run; honours SOURCE_DATE_EPOCH for reproducible outputs."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    try:
        seconds = int(epoch) if epoch else time.time()
    except ValueError:
        seconds = time.time()
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def summary_header(
    rows: Sequence[dict[str, Any]], dynamic: Sequence[str] | None = None
) -> list[str]:
    """The summary columns; ``dynamic``: :func:`dynamic_columns` of ``rows`` when known (it
    scans every key of every row)."""
    return [c.name for c in SUMMARY_COLUMNS] + list(
        dynamic_columns(rows) if dynamic is None else dynamic
    )


def diverged_header(
    rows: Sequence[dict[str, Any]], dynamic: Sequence[str] | None = None
) -> list[str]:
    return [c.name for c in COLUMNS] + list(dynamic_columns(rows) if dynamic is None else dynamic)


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


def _float_cell(value: Any) -> str:
    return repr(value) if type(value) is float and value - value == 0.0 else csv_cell(value)


def _int_cell(value: Any) -> str:
    return str(value) if type(value) is int else csv_cell(value)


def _typed_cell(name: str) -> Any:
    """csv_cell, with a shortcut for the usual value of a float or int column."""
    column = BY_NAME.get(name)
    kind = column.type if column else None
    return {"float": _float_cell, "int": _int_cell}.get(kind or "", csv_cell)


def write_csv(path: Path, header: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    cells = [(name, _typed_cell(name)) for name in header]
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows([cell(row.get(name)) for name, cell in cells] for row in rows)


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


def write_full_json(
    path: Path,
    rows: Sequence[dict[str, Any]],
    meta: dict[str, Any],
    store: CacheWriter,
    index: SpoolIndex,
    dynamic: Sequence[str] | None = None,
) -> list[tuple[int, int]]:
    """hpo_full.json, one trial object per line; returns each trial line's (offset, length)."""
    if dynamic is None:
        dynamic = dynamic_columns(rows)
    where: list[tuple[int, int]] = []
    last = len(rows) - 1
    with open(path, "wb") as out:
        head = ('{"metadata": ' + dumps_strict(meta, indent=1) + ',\n"trials": [\n').encode()
        out.write(head)
        offset = len(head)
        for position, row in enumerate(rows):
            obj = dumps_bytes(trial_object(row, dynamic))
            fragment = store.fragment(index[(row["study"], row["trial_num"])])
            line = obj[:-1] + b"," + fragment + b"}" if fragment else obj
            where.append((offset, len(line)))
            out.write(line)
            out.write(b",\n" if position < last else b"\n")
            offset += len(line) + (2 if position < last else 1)
        out.write(b"]}\n")
    return where


def write_full_json_index(
    path: Path, rows: Sequence[dict[str, Any]], where: Sequence[tuple[int, int]]
) -> None:
    """Byte offset and length of every trial's line in hpo_full.json, for lookups by key."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_arrays(
        [
            pa.array([r["study"] for r in rows], type=pa.string()),
            pa.array([r["trial_num"] for r in rows], type=pa.int64()),
            pa.array([w[0] for w in where], type=pa.int64()),
            pa.array([w[1] for w in where], type=pa.int64()),
        ],
        names=["study", "trial_num", "offset", "length"],
    )
    pq.write_table(table, path, compression=parquet.COMPRESSION)


def _curve_of(store: CacheWriter, index: SpoolIndex, key: tuple[str, int]) -> list[Any]:
    fragment = store.fragment(index[key])
    return loads_lossless(b"{" + fragment + b"}")["learning_curve"]


def diverged_objects(
    rows: Sequence[dict[str, Any]],
    diverged: Sequence[dict[str, Any]],
    store: CacheWriter,
    index: SpoolIndex,
    dynamic: Sequence[str] | None = None,
) -> Iterator[dict[str, Any]]:
    """Each diverged trial flat (the CSV's columns) with its curve and its neighbour's curve:
    the trials of diverged_analysis.json, one at a time (the report draws them too)."""
    header = diverged_header(rows, dynamic)
    wanted = {
        tuple(r["similar_successful_trial"].rpartition("/")[::2])
        for r in diverged
        if r.get("similar_successful_trial")
    }
    by_key = {
        (r["study"], r["trial_num"]): r for r in rows if (r["study"], str(r["trial_num"])) in wanted
    }
    for row in diverged:
        key = (row["study"], row["trial_num"])
        obj = {name: row.get(name) for name in header}
        obj["learning_curve"] = _curve_of(store, index, key)
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
            similar["learning_curve"] = _curve_of(store, index, other_key)
        obj["similar_trial"] = similar
        yield obj


def write_diverged_json(
    path: Path,
    rows: Sequence[dict[str, Any]],
    diverged: Sequence[dict[str, Any]],
    meta: dict[str, Any],
    store: CacheWriter,
    index: SpoolIndex,
    dynamic: Sequence[str] | None = None,
) -> None:
    """Each diverged trial flat (the CSV's columns) with its curve and its neighbour's curve."""
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.write(
            '{"metadata": ' + dumps_strict(diverged_metadata(meta), indent=1) + ',\n"trials": [\n'
        )
        objects = diverged_objects(rows, diverged, store, index, dynamic)
        for position, obj in enumerate(objects):
            out.write(dumps_strict(obj))
            out.write(",\n" if position < len(diverged) - 1 else "\n")
        out.write("]}\n")


def diverged_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """The part of the run's metadata that diverged_analysis.json carries."""
    return {k: meta[k] for k in ("generated", "tool_version", "n_trials", "n_diverged", "settings")}


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
    store: CacheWriter,
    index: SpoolIndex,
    metric_names: set[str],
    findings: Sequence[Finding],
) -> None:
    """Every data file and findings.json; the report, the README and the manifest follow
    (:func:`write_readme_and_manifest`)."""
    from ..schema_json import full_json_schema
    from . import findings as findings_json

    diverged = [r for r in rows if r["diverged"]]
    dynamic = dynamic_columns(rows)  # once: it looks at every key of every row
    summary = summary_header(rows, dynamic)
    diverged_columns = diverged_header(rows, dynamic)
    write_csv(directory / SUMMARY_CSV, summary, rows)
    where = write_full_json(directory / FULL_JSON, rows, meta, store, index, dynamic)
    write_full_json_index(directory / FULL_JSON_INDEX, rows, where)
    (directory / FULL_JSON_SCHEMA).write_text(
        dumps_strict(full_json_schema(), indent=2) + "\n", encoding="utf-8"
    )
    write_csv(directory / DIVERGED_CSV, diverged_columns, diverged)
    write_diverged_json(directory / DIVERGED_JSON, rows, diverged, meta, store, index, dynamic)
    parquet.write_table(directory / TRIALS_PARQUET, summary, rows)
    parquet.write_table(directory / DIVERGED_PARQUET, diverged_columns, diverged)
    parquet.write_curves(
        directory / CURVES_PARQUET,
        ((r["study"], r["trial_num"]) for r in rows),
        lambda key: store.curve(index[key]),
        metric_names,
    )
    findings_json.write(directory / FINDINGS_JSON, findings, meta, settings)


def write_readme_and_manifest(
    directory: Path,
    rows: Sequence[dict[str, Any]],
    manifest: Sequence[ManifestRow],
    meta: dict[str, Any],
    settings: Settings,
    findings: Sequence[Finding],
    figures: Sequence[str] = (),
) -> None:
    """The README, which shows the report's ``figures`` (so it follows the report), and then
    the manifest: written last, it marks the set complete."""
    from . import readme

    (directory / README).write_text(
        readme.render(rows, manifest, meta, settings, findings=findings, figures=figures),
        encoding="utf-8",
    )
    write_manifest(directory / MANIFEST, manifest)
