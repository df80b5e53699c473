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
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..arrays import text
from ..arrays import values as arrow_values
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
from ..memory import release_memory
from ..model import Settings
from ..schema import (
    COLUMNS,
    MANIFEST_COLUMNS,
    OBJECTIVE_PREFIX,
    PARAM_PREFIX,
    SUMMARY_COLUMNS,
    dynamic_columns,
)
from . import parquet
from .cells import csv_column, csv_lines
from .columns import block_columns

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


# Rows are written a block at a time: each block's columns are formatted whole (see
# csv_column), and memory holds one block of cells, not the table's.
_CSV_BLOCK_ROWS = 4096


def write_csv(path: Path, header: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    """The rows as CSV with the cells of :mod:`.cells`, formatted column by column."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\r\n").writerow(header)
        for columns in block_columns(rows, header, _CSV_BLOCK_ROWS):
            handle.write(csv_lines([csv_column(values) for values in columns]))


_Layout = tuple[list[tuple[str, str]], list[tuple[str, list[tuple[str, str]]]]]


def _trial_layout(diverged: bool, dynamic: Sequence[str]) -> _Layout:
    """Where each column goes in a trial object of hpo_full.json: the top-level (key, column)
    pairs and, per group in order, its (key, column) pairs. Worked out once per kind of trial
    (diverged or not), not once per trial."""
    top: list[tuple[str, str]] = []
    groups: dict[str, list[tuple[str, str]]] = {}
    for column in COLUMNS:
        if not column.summary and not diverged:
            continue
        if column.group:
            groups.setdefault(column.group, []).append((column.name, column.name))
        else:
            top.append((column.name, column.name))
    for name in dynamic:
        if name.startswith(PARAM_PREFIX):
            groups.setdefault("training_params", []).append((name[len(PARAM_PREFIX) :], name))
        elif name.startswith(OBJECTIVE_PREFIX):
            groups.setdefault("results", []).append((name, name))
        else:
            top.append((name, name))
    return top, list(groups.items())


def _build_trial(row: dict[str, Any], layout: _Layout) -> dict[str, Any]:
    top, groups = layout
    get = row.get
    obj = {key: get(name) for key, name in top}
    for group, members in groups:
        obj[group] = {key: get(name) for key, name in members}
    obj["annotations"] = get("_annotations", [])
    return obj


def trial_object(row: dict[str, Any], dynamic: Sequence[str]) -> dict[str, Any]:
    """One trial of hpo_full.json, grouped as the schema says (without its curve)."""
    return _build_trial(row, _trial_layout(bool(row.get("diverged")), dynamic))


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
    layouts = {flag: _trial_layout(flag, dynamic) for flag in (False, True)}
    where: list[tuple[int, int]] = []
    last = len(rows) - 1
    with open(path, "wb") as out:
        head = ('{"metadata": ' + dumps_strict(meta, indent=1) + ',\n"trials": [\n').encode()
        out.write(head)
        offset = len(head)
        parts: list[bytes] = []  # written a few thousand pieces at a time, not line by line
        for position, row in enumerate(rows):
            obj = dumps_bytes(_build_trial(row, layouts[bool(row.get("diverged"))]))
            fragment = store.fragment(index[(row["study"], row["trial_num"])])
            end = b",\n" if position < last else b"\n"
            if fragment:  # the curve goes inside the object: {..., "learning_curve": ...}
                parts += (obj[:-1], b",", fragment, b"}", end)
                length = len(obj) + 1 + len(fragment)
            else:
                parts += (obj, end)
                length = len(obj)
            where.append((offset, length))
            offset += length + len(end)
            if len(parts) >= 4096:
                out.write(b"".join(parts))
                parts.clear()
        out.write(b"".join(parts) + b"]}\n")
    return where


_KEY = itemgetter("study", "trial_num")


def write_full_json_index(
    path: Path, rows: Sequence[dict[str, Any]], where: Sequence[tuple[int, int]]
) -> None:
    """Byte offset and length of every trial's line in hpo_full.json, for lookups by key."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    # each row visited once for both keys, each pair once for both numbers
    studies, numbers = zip(*map(_KEY, rows), strict=True) if rows else ((), ())
    offsets, lengths = zip(*where, strict=True) if where else ((), ())
    table = pa.Table.from_arrays(
        [
            text(studies),
            arrow_values(numbers, "int64"),
            arrow_values(offsets, "int64"),
            arrow_values(lengths, "int64"),
        ],
        names=["study", "trial_num", "offset", "length"],
    )
    pq.write_table(table, path, compression=parquet.COMPRESSION)
    del table
    release_memory()


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
        fields = attrgetter(*MANIFEST_COLUMNS)  # a tuple of the row's values (several names)
        for start in range(0, len(manifest), _CSV_BLOCK_ROWS):
            block = manifest[start : start + _CSV_BLOCK_ROWS]
            columns = zip(*map(fields, block), strict=True)
            handle.write(csv_lines([csv_column(values) for values in columns]))


def write_all(
    directory: Path,
    rows: Sequence[dict[str, Any]],
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
