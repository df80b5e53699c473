"""The dataset's README: what each file and column means, where the data came from, and what
it shows. The data dictionary is generated from :mod:`hpo_analysis.schema`; the findings from
:mod:`hpo_analysis.analyze`; the example queries are run against the output by the tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..finding import SECTIONS, THRESHOLDS_TEXT, Finding, budget_sort_key
from ..layout import (
    DIVERGED_CSV,
    DIVERGED_JSON,
    FINDINGS_JSON,
    FULL_JSON,
    MANIFEST,
    SUMMARY_CSV,
    TRIALS_PARQUET,
)
from ..model import Settings
from ..schema import COLUMNS, dynamic_columns

if TYPE_CHECKING:
    from ..model import ManifestRow


def md_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return (
        str(value)
        .replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("\n", " ")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    )


def md_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(md_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _diverged_definition(settings: Settings) -> str:
    if settings.diverge_threshold is not None:
        return (
            f"the objective is NaN/±inf, or at least the absolute threshold "
            f"**{settings.diverge_threshold:g}** (`--diverge-threshold`) in a minimize study, or "
            "a val_loss/train_loss of the curve is NaN/±inf."
        )
    return (
        "scale-aware, per study (`--diverge-threshold auto`, the default): the objective is "
        "NaN/±inf, or a val_loss/train_loss of the curve is NaN/±inf, or (minimize studies) the "
        "objective equals the runner's sentinel (the largest value, shared exactly by at least "
        "two trials and at least 10× the smallest) or is at least 10× the study's median finite "
        "objective of COMPLETE trials (the sentinel left out). An RMSE around 20,000 or a "
        "latency in milliseconds is therefore not 'diverged' by its size; give "
        "`--diverge-threshold X` for an absolute threshold."
    )


def _definitions(settings: Settings) -> str:
    low, high = settings.arch_thresholds
    return f"""\
- **Objective**: the trial's reported `value`; each study is ranked in its direction (table
  above: minimize or maximize, and why: the `--direction` option, else the source — an Optuna
  study's direction, a `best_params.json`, best-trial lines of a log — else the objective's
  name (`auc`, `acc`, … maximize), else minimize).
- **Learning curves from Optuna**: a trial without a `learning_curve` user attribute gets its
  intermediate values (`trial.report(value, step)`) as its curve: `epoch` is the step and the
  metric `intermediate_value` is the value reported at that step (whatever the objective
  reported, e.g. a validation loss or AUC).
- **Trials recovered from Optuna logs** (`source_format` `Optuna log (recovered)`): only what
  the log lines carry — number, state, value(s), parameters and the line's time as
  `datetime_complete`; no user attributes, curves or start times, and pruned trials have no
  parameters or value.
- **rank_in_study**: 1 = best objective within the study; ties share the lowest rank (1, 2, 2,
  4); only `COMPLETE` trials with a finite objective are ranked, others have no rank.
  **is_best_in_study** is true for rank 1.
- **best_epoch / best_val_loss**: the epoch (as recorded, 0-based in the usual layout) of the
  lowest finite `val_loss` in the learning curve, and that loss; the earliest epoch wins ties.
- **epochs_trained**: the number of epochs recorded in the learning curve.
- **early_stopped**: training ended before `epochs_config` (epochs_trained < epochs_config) for a
  reason other than divergence, pruning or failure. Empty when there is no curve or no
  `epochs_config`.
- **diverged**: {_diverged_definition(settings)} The rule applied to each study is in the
  table above (`divergence rule`). Empty when a trial has no objective.
- **stop_reason**: the first that applies of running (state RUNNING/WAITING), failed (FAIL),
  pruned (PRUNED), diverged, early_stopped, completed (COMPLETE with a known epoch count),
  unknown.
- **arch_category**: n_layers/d_model > {high:g} is narrow-deep, < {low:g} wide-shallow, otherwise
  balanced (`--arch-thresholds`, fixed thresholds as in the paper). Large budgets can fall
  entirely into one category, so the findings use **arch_style**: the distinct
  n_layers/d_model ratios of each budget ranked and split into thirds (wide-shallow, balanced,
  narrow-deep), relative to what that budget tried.
- **budget_params**: the budget as a number (`2M` → 2000000); budgets are ordered by it.
- **Intervals**: every compared number (rates, medians, differences, Spearman's ρ, Cliff's δ)
  carries a 95% percentile-bootstrap interval (1,000 resamples, seeded); `ci_low`, `ci_high`
  and `method` are in `findings.json`. An effect whose interval contains 0 is written as
  `no clear effect`.
- **diverge_epoch**: the first curve epoch whose train or val loss is non-finite or at least the
  threshold; **diverge_kind** says what was found there: `nan_loss`, `inf_loss`,
  `above_threshold`, or `value_only` when the curve never crosses and only the objective marks
  the divergence.
- **similar_successful_trial**: for each diverged trial, the nearest trial of the same budget
  that did not diverge and is ranked, by Euclidean distance on log2(d_model), log2(n_layers),
  log2(n_heads); ties go to the same study, then the better rank, then study and trial number.
- **Non-finite numbers** (`NaN`, `Infinity` in the inputs): empty cells in the CSVs, `null` in
  the JSON files, which are strict RFC 8259 JSON; the Parquet files keep a non-finite
  hyperparameter or curve value as NaN or ±inf. Nothing is lost: `objective_kind` records what
  the objective was, and each trial's `learning_curve_non_finite` lists every non-finite curve
  value (`epoch`, `metric`, `value` as `"NaN"`, `"Infinity"` or `"-Infinity"`).
- **Study factors**: parsed from the study name with the pattern
  `{settings.study_pattern}`; its named groups become columns.
- **Spreadsheet safety**: text cells starting with `=`, `+`, `-`, `@`, tab, CR or LF are
  prefixed with `'` so spreadsheets do not run them as formulas; numbers are never changed."""


def _dictionary(rows: Sequence[dict[str, Any]]) -> str:
    table = []
    for column in COLUMNS:
        where = f"{SUMMARY_CSV}, {DIVERGED_CSV}" if column.summary else DIVERGED_CSV
        group = column.group or "(top level)"
        table.append(
            [f"`{column.name}`", column.type, column.unit, where, group, column.description]
        )
    text = md_table(["column", "type", "unit", "in", "hpo_full.json group", "meaning"], table)
    dynamic = dynamic_columns(rows)
    if dynamic:
        text += (
            "\n\nFurther columns in this dataset: "
            + ", ".join(f"`{md_cell(n)}`" for n in dynamic)
            + ". `param_<name>` columns are optimizer parameters without a standard column "
            "(in `hpo_full.json` under `training_params.<name>`); `objective_<name>` columns are "
            "the values of each objective of a multi-objective study, by metric name or index "
            "(under `results`; `objective` is the one ranked, see `--rank-by`); other names are "
            "named groups of the study-name pattern."
        )
    return text + "\n\n" + _metadata_dictionary()


def _metadata_dictionary() -> str:
    """The keys of hpo_full.json's ``metadata``, from the same JSON Schema validate checks."""
    from ..schema_json import metadata_schema, study_entry_schema

    def table(schema: dict[str, Any], prefix: str) -> list[list[str]]:
        return [
            [f"`{prefix}{name}`", md_cell(entry.get("description", ""))]
            for name, entry in schema["properties"].items()
        ]

    rows = table(metadata_schema(), "metadata.") + table(
        study_entry_schema(), "metadata.studies[]."
    )
    return (
        f"`{FULL_JSON}` also holds `metadata`, one object about the whole dataset:\n\n"
        + md_table(["key", "meaning"], rows)
    )


def _examples(rows: Sequence[dict[str, Any]]) -> str:
    example = next((r for r in rows if r.get("diverged")), rows[0] if rows else None)
    study = example["study"] if example else "STUDY"
    trial = example["trial_num"] if example else 0
    study_json = study.replace("\\", "\\\\").replace('"', '\\"').replace("'", "'\\''")
    study_py = repr(study)
    text_columns = _wrapped_list([c.name for c in COLUMNS if c.type == "str" and c.summary])
    maximize = bool(rows) and all(r.get("direction") == "maximize" for r in rows)
    best_word, best_agg = ("highest", "max") if maximize else ("lowest", "min")
    return f"""\
With [jq](https://jqlang.org/), from this directory:

```sh
jq '.metadata.n_trials' {FULL_JSON}
jq -r '.trials[] | select(.flags.diverged == true) | [.study, .trial_num, .dynamics.stop_reason] | @tsv' {FULL_JSON}
jq '.trials[] | select(.study == "{study_json}" and .trial_num == {trial}) | [.learning_curve[] | .val_loss]' {FULL_JSON}
```

With pandas:

```python
import json
import pandas as pd

# the Parquet files keep every column's type: pd.read_parquet("{TRIALS_PARQUET}")
# from the CSV: text columns as strings, and only an empty cell is missing (pandas would
# otherwise read a word such as "nan" as missing, and an empty tags column as numbers)
text = {{name: "string" for name in {text_columns}}}
trials = pd.read_csv("{SUMMARY_CSV}", dtype=text, keep_default_na=False, na_values=[""])
# best ({best_word}) objective per budget and horizon, the spreadsheet pivot
print(trials.pivot_table(index=["budget_params", "budget"], columns="horizon", values="objective", aggfunc="{best_agg}"))
# divergence rate per budget (budget_params sorts 2M < 20M < 200M < 2B; the text would not)
print(trials.groupby(["budget_params", "budget"])["diverged"].agg(lambda s: (s == True).mean()))

# every learning curve in long format, then one trial's curve
with open("{FULL_JSON}", encoding="utf-8") as handle:
    full = json.load(handle)
curves = pd.json_normalize(full["trials"], "learning_curve", ["study", "trial_num"])
print(curves[(curves.study == {study_py}) & (curves.trial_num == {trial})])

# a diverged trial next to its most similar successful trial
diverged = pd.read_csv(
    "{DIVERGED_CSV}",
    dtype={{**text, "diverge_kind": "string", "similar_successful_trial": "string"}},
    keep_default_na=False,
    na_values=[""],
)
print(diverged[["study", "trial_num", "diverge_epoch", "diverge_kind",
                "similar_successful_trial", "similar_val_loss"]])
```"""


def _wrapped_list(names: Sequence[str], width: int = 88) -> str:
    """A Python list literal of ``names``, one indented block of lines at most ``width`` wide."""
    import textwrap

    body = textwrap.fill(
        " ".join(f'"{name}",' for name in names),
        width=width,
        initial_indent="    ",
        subsequent_indent="    ",
        break_long_words=False,
        break_on_hyphens=False,
    )
    return "[\n" + body + "\n]"


# rows of a finding's table shown in the README: with a thousand studies a table can have
# hundreds of thousands, which no reader pages through (findings.json keeps them all)
README_MAX_ROWS = 100


def _finding_md(finding: Finding) -> str:
    text = f"#### {md_cell(finding.title)}\n\n{md_cell(finding.sentence)} (n = {finding.n})"
    if finding.rows:
        text += "\n\n" + md_table(finding.columns, finding.rows[:README_MAX_ROWS])
    if len(finding.rows) > README_MAX_ROWS:
        text += (
            f"\n\n<sub>The first {README_MAX_ROWS:,} of {len(finding.rows):,} rows; every row is "
            f"in `{FINDINGS_JSON}` (finding `{finding.id}`).</sub>"
        )
    if finding.notes:
        text += f"\n\n<sub>{md_cell(finding.notes)}</sub>"
    return text


FIGURE_TITLES = {
    "figure_best_objective_heatmap.png": "Best objective by budget and horizon",
    "figure_architecture_map.png": "Best objective per d_model and n_layers, per budget",
    "figure_diverged_curves.png": "Diverged trials next to their most similar successful trials",
    "figure_training_dynamics.png": "How training ended; best_epoch and the epochs after it",
    "figure_param_importance.png": "Hyperparameter importance per budget",
    "figure_parallel_coordinates.png": "Best trials per budget and diverged trials across their hyperparameters",
    "figure_divergence_lr_depth.png": "Divergence rate by lr × depth per budget",
}


def findings_section(
    findings: Sequence[Finding], figures: Sequence[str] = (), top_k: int | None = None
) -> str:
    """The "Known patterns and findings" body: thresholds, figures, then each finding by section.

    >>> from hpo_analysis.analyze import Finding
    >>> print(findings_section([Finding("x", "X", ["a"], [[1]], "One.", 1, "", "Overview")]))
    ... # doctest: +ELLIPSIS
    Computed from this dataset when it was generated...
    """
    k = f" Top-k findings use k = {top_k} (`--top-k`)." if top_k is not None else ""
    parts = [
        "Computed from this dataset when it was generated; the same tables are in "
        f"`{FINDINGS_JSON}`"
        + (" and `report.html`" if figures else "")
        + ". "
        + THRESHOLDS_TEXT.replace("`", "")
        + k
    ]
    if figures:
        parts.append(
            "\n\n".join(f"![{FIGURE_TITLES.get(path, 'figure')}]({path})" for path in figures)
        )
    order = list(SECTIONS) + sorted({f.section for f in findings} - set(SECTIONS))
    for section in order:
        chosen = [f for f in findings if f.section == section]
        if chosen:
            parts.append(f"### {section}\n\n" + "\n\n".join(_finding_md(f) for f in chosen))
    return "\n\n".join(parts)


def render(
    rows: Sequence[dict[str, Any]],
    manifest: Sequence[ManifestRow],
    meta: dict[str, Any],
    settings: Settings,
    *,
    findings: Sequence[Finding],
    figures: Sequence[str] = (),
) -> str:
    studies_table = md_table(
        ["study", "budget", "horizon", "direction", "why", "trials", "diverged", "divergence rule"],
        [
            [
                s["study"],
                s["budget"],
                s["horizon"],
                s["direction"],
                s["direction_source"],
                s["n_trials"],
                s["n_diverged"],
                s.get("divergence_rule", ""),
            ]
            for s in sorted(
                meta["studies"], key=lambda s: (budget_sort_key(s["budget"]), s["study"])
            )
        ],
    )
    status = ", ".join(f"{n} {k}" for k, n in meta["files_by_status"].items()) or "none"
    sources = ", ".join(f"`{md_cell(s)}`" for s in meta["sources"])
    findings_md = findings_section(findings, figures, settings.top_k)
    report_rows = (
        "| `report.html` | the findings and figures in one self-contained page (opens offline) |\n"
        "| `figure_*.png` | the report's key figures, shown below |\n"
        if figures
        else ""
    )
    return f"""\
# HPO analysis dataset

{meta["n_trials"]} trials from {meta["n_studies"]} studies, {meta["n_diverged"]} diverged.
Generated by hpo-analysis {meta["tool_version"]} on {meta["generated"]}.

## Files

| file | contents |
|---|---|
| `{SUMMARY_CSV}` | one row per trial, for spreadsheets and pandas (columns below) |
| `{FULL_JSON}` | `metadata` and every trial with its full learning curve, grouped into `architecture`, `training_params`, `results`, `dynamics`, `flags` (and `diagnosis` for diverged trials) |
| `{DIVERGED_CSV}` | the diverged trials: summary columns plus the divergence diagnosis |
| `{DIVERGED_JSON}` | the same, with the learning curves of each diverged trial and of its similar successful trial |
| `{FINDINGS_JSON}` | the findings below as data: per question its id, title, table (columns, rows), sentence, n, threshold notes and `estimates` (value, `ci_low`, `ci_high`, `method`); `budget_params` maps each budget to its size |
{report_rows}| `{MANIFEST}` | every input file looked at: status (ok, warning, rejected, ignored), reason, size, sha256 |
| `trials.parquet`, `diverged.parquet` | the rows of `{SUMMARY_CSV}` and `{DIVERGED_CSV}` with typed columns (int64, float64, bool, string) for DuckDB, Polars, Spark and pandas |
| `curves.parquet` | every learning curve, one row per (study, trial_num, epoch), sorted; NaN and ±inf kept as recorded |
| `hpo_full.schema.json` | the JSON Schema of `{FULL_JSON}` |
| `hpo_full.index.parquet` | byte offset and length of each trial's line in `{FULL_JSON}` |
| `README.md` | this file |

## Data lineage

- Command: `{md_cell(meta["command"])}`
- Tool: hpo-analysis {meta["tool_version"]}
- Sources: {sources}
- Files seen: {meta["n_files"]} ({status}); see `{MANIFEST}` for each file and why.
- Records of one trial in several files are merged into one row, field by field, most detailed
  first: {meta.get("merge_order", "")}. `sources` lists each trial's files; `{MANIFEST}` gives
  per file `n_trials` (rows it leads), `n_merged` (records merged into another file's row) and
  every disagreement between records (kept value first).

{studies_table}

## Definitions

{_definitions(settings)}

## Data dictionary

{_dictionary(rows)}

## Example queries

{_examples(rows)}

## Known patterns and findings

{findings_md}
"""
