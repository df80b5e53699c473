"""The JSON Schema of ``hpo_full.json``, generated from :data:`hpo_analysis.schema.COLUMNS`.

Each column becomes a property of the trial object (or of its group object, e.g.
``architecture``) with its JSON type, nullability, closed set of values and description, so
the schema changes whenever a column does. ``extract`` writes it next to the data as
``hpo_full.schema.json``; ``validate`` checks the file against it (with the ``jsonschema``
package when it is installed); any JSON Schema tool can use it.

Example::

    >>> schema = full_json_schema()
    >>> trial = schema["$defs"]["trial"]
    >>> flags = trial["properties"]["flags"]["properties"]
    >>> trial["properties"]["trial_num"]["type"], flags["diverged"]["type"]
    ('integer', ['boolean', 'null'])
"""

from __future__ import annotations

import re
from typing import Any

from .schema import COLUMNS, CURVE_METRICS, OBJECTIVE_PREFIX, Column

_JSON_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}


def column_schema(column: Column) -> dict[str, Any]:
    """The JSON Schema of one column's value."""
    json_type = _JSON_TYPES[column.type]
    schema: dict[str, Any] = {"type": json_type if not column.nullable else [json_type, "null"]}
    if column.values:
        schema["enum"] = list(column.values) + ([None] if column.nullable else [])
    description = column.description
    if column.unit:
        description += f" Unit: {column.unit}."
    if column.type == "float":
        description += " Non-finite values are written as null."
    schema["description"] = description
    return schema


def _object(properties: dict[str, Any], required: list[str], extra: Any = True) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": extra,
    }


def trial_schema() -> dict[str, Any]:
    """One element of ``trials``: the schema's columns, grouped, plus the curve and extras."""
    top: dict[str, Any] = {}
    top_required: list[str] = []
    groups: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for column in COLUMNS:
        if column.group:
            properties, required = groups.setdefault(column.group, ({}, []))
        else:
            properties, required = top, top_required
        properties[column.name] = column_schema(column)
        if column.summary:  # diagnosis columns are written for diverged trials only
            required.append(column.name)
    for name, (properties, required) in groups.items():
        # optimizer parameters without a standard column are written into training_params
        extra: Any = True if name == "training_params" else False
        top[name] = _object(properties, required, extra)
        if name == "results":  # each objective of a multi-objective study
            taken = "|".join(
                re.escape(c[len(OBJECTIVE_PREFIX) :]) + "$"
                for c in properties
                if c.startswith(OBJECTIVE_PREFIX)
            )  # objective_kind, objective_name are columns of their own
            top[name]["patternProperties"] = {
                f"^{OBJECTIVE_PREFIX}(?!{taken})": {
                    "type": ["number", "null"],
                    "description": "One objective of a multi-objective study (`objective_<name>`).",
                }
            }
        top[name]["description"] = f"The trial's {name.replace('_', ' ')} columns."
        if name != "diagnosis":
            top_required.append(name)
    metric = {"type": ["number", "null"]}
    top["learning_curve"] = {
        "type": "array",
        "description": "One object per recorded epoch: `epoch` and the metrics (e.g. "
        + ", ".join(f"`{m}`" for m in CURVE_METRICS)
        + "); non-finite values are null and listed in learning_curve_non_finite.",
        "items": {
            "type": "object",
            "properties": {"epoch": {"type": "integer"}, **{m: metric for m in CURVE_METRICS}},
            "required": ["epoch"],
            "additionalProperties": metric,
        },
    }
    top["learning_curve_non_finite"] = {
        "type": "array",
        "description": "Every NaN/Infinity value of the learning curve as recorded.",
        "items": _object(
            {
                "epoch": {"type": "integer"},
                "metric": {"type": "string"},
                "value": {"enum": ["NaN", "Infinity", "-Infinity"]},
            },
            ["epoch", "metric", "value"],
            False,
        ),
    }
    top["extra"] = {
        "type": "object",
        "description": "Keys of the input file that no column takes, kept as read.",
    }
    text = {"type": "string"}
    top["annotations"] = {
        "type": "array",
        "description": "Your annotations of this trial from annotations.csv.",
        "items": _object({"tag": text, "note": text, "updated": text}, ["tag", "note"]),
    }
    top_required += ["learning_curve", "learning_curve_non_finite", "extra", "annotations"]
    # named groups of --study-pattern beyond budget/horizon become top-level text fields
    return _object(top, top_required, {"type": ["string", "null"]})


def _described(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {**schema, "description": description}


def study_entry_schema() -> dict[str, Any]:
    """One element of ``metadata.studies``: what extract decided and found about one study."""
    text, integer = {"type": "string"}, {"type": "integer"}
    nullable_text = {"type": ["string", "null"]}
    return _object(
        {
            "study": _described(text, "Study name, as in the `study` column."),
            "budget": _described(nullable_text, "Budget parsed from the study name."),
            "horizon": _described(nullable_text, "Horizon parsed from the study name."),
            "direction": _described(
                {"enum": ["minimize", "maximize", None]},
                "Whether a lower or a higher objective is better in this study.",
            ),
            "direction_source": _described(
                text, "Where the direction comes from (a file and its evidence, or the default)."
            ),
            "n_trials": _described(integer, "Trials of the study in the dataset."),
            "n_diverged": _described(integer, "Of them, diverged trials."),
            "objective_name": _described(
                nullable_text, "Name of the objective the divergence rule looks at."
            ),
            "divergence_rule": _described(text, "The divergence rule applied, in words."),
            "diverge_objective_threshold": _described(
                {"type": ["number", "null"]},
                "Objective at or beyond which a trial counts as diverged (null: none).",
            ),
            "diverge_sentinel": _described(
                {"type": ["number", "null"]},
                "The runner's sentinel objective in this study (a value it writes for failed "
                "runs, e.g. 100.0); a trial with it counts as diverged (null: none).",
            ),
            "factors": _described(
                {"type": "object"},
                "The study's value of each entry of `metadata.factors` (budget, horizon, "
                "named groups of the study-name pattern).",
            ),
            "best_trial": _described(
                integer, "trial_num of the study's best trial (rank 1); absent when none is ranked."
            ),
            "best_objective": _described({"type": ["number", "null"]}, "Objective of that trial."),
        },
        ["study"],
    )


def metadata_schema() -> dict[str, Any]:
    """``metadata``: how the dataset was made and what a reader asks first, answered once."""
    integer = {"type": "integer", "minimum": 0}
    text = {"type": "string"}
    return _object(
        {
            "generated": _described(text, "UTC time of the run (ISO 8601)."),
            "tool": _described({"const": "hpo-analysis"}, "The tool that wrote the dataset."),
            "tool_version": _described(text, "Its version."),
            "command": _described(text, "The command line of the run."),
            "sources": _described(
                {"type": "array", "items": text}, "The input folders or files given."
            ),
            "n_files": _described(integer, "Input files looked at (see manifest.csv)."),
            "files_by_status": _described(
                {"type": "object", "additionalProperties": integer},
                "Input files per manifest status (ok, warning, rejected, ignored).",
            ),
            "n_studies": _described(integer, "Studies in the dataset."),
            "n_trials": _described(integer, "Trials in the dataset (rows of hpo_summary.csv)."),
            "n_diverged": _described(integer, "Diverged trials."),
            "settings": _described(
                {"type": "object"}, "The settings that decide what extract computes."
            ),
            "studies": _described(
                {"type": "array", "items": study_entry_schema()}, "One entry per study."
            ),
            "factors": _described(
                {"type": "array", "items": text},
                "Columns constant within each study that tell studies apart (budget, horizon, "
                "named groups of the study-name pattern).",
            ),
            "states": _described(
                {"type": "object", "additionalProperties": integer},
                "Trials per state (COMPLETE, PRUNED, FAIL, ...).",
            ),
            "merge_order": _described(
                text, "The order in which the records of one trial are merged, in words."
            ),
            "annotations": _described(
                _object(
                    {
                        "file": _described(text, "The annotations file read."),
                        "trials_annotated": _described(integer, "Trials with an annotation."),
                        "orphans": _described(
                            {"type": "array", "items": text},
                            "Annotated study/trial_num pairs not in the dataset.",
                        ),
                    },
                    ["file", "trials_annotated", "orphans"],
                ),
                "Annotations carried over from annotations.csv.",
            ),
            "finding_answers": _described(
                {
                    "type": "array",
                    "items": _object(
                        {"id": text, "title": text, "sentence": text}, ["id", "title", "sentence"]
                    ),
                },
                "Each finding's one-line answer (the tables are in findings.json).",
            ),
        },
        ["generated", "tool", "tool_version", "n_trials", "n_studies", "n_diverged", "settings"],
    )


def full_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the whole ``hpo_full.json`` document."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "hpo_full.json",
        "description": "Every trial of an hpo-analysis dataset with its full learning curve, "
        "generated from the column definitions in hpo_analysis.schema.",
        "type": "object",
        "properties": {
            "metadata": {"$ref": "#/$defs/metadata"},
            "trials": {"type": "array", "items": {"$ref": "#/$defs/trial"}},
        },
        "required": ["metadata", "trials"],
        "additionalProperties": False,
        "$defs": {"metadata": metadata_schema(), "trial": trial_schema()},
    }
