"""The one definition of the output columns.

Everything that names a column is generated from :data:`COLUMNS`: the column order of
``hpo_summary.csv`` and ``diverged_analysis.csv``, the layout of each trial object in
``hpo_full.json`` (which group a field sits in), the README data dictionary and the checks
of ``validate``. Adding a column is one line here plus the code that computes its value.

Example::

    >>> [c.name for c in SUMMARY_COLUMNS][:4]
    ['study', 'budget', 'horizon', 'trial_num']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

ColumnType = Literal["str", "int", "float", "bool"]
# Where a column lives inside one trial object of hpo_full.json ("" = top level).
Group = Literal["", "architecture", "training_params", "results", "dynamics", "flags", "diagnosis"]


@dataclass(frozen=True)
class Column:
    """One output column: its name, type, unit, meaning and where it is written."""

    name: str
    type: ColumnType
    description: str
    group: Group = ""
    unit: str = ""
    summary: bool = True  # in hpo_summary.csv (and therefore also in diverged_analysis.csv)
    nullable: bool = True  # False: every trial has a value (validate and the JSON Schema check)
    values: tuple[str, ...] = ()  # the closed set of values of a text column, if it has one


def _c(
    name: str,
    type_: ColumnType,
    group: Group,
    description: str,
    unit: str = "",
    summary: bool = True,
    *,
    nullable: bool = True,
    values: tuple[str, ...] = (),
) -> Column:
    return Column(name, type_, description, group, unit, summary, nullable, values)


STOP_REASONS: tuple[str, ...] = (
    "completed",
    "early_stopped",
    "diverged",
    "pruned",
    "failed",
    "running",
    "unknown",
)
STATES: tuple[str, ...] = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING", "UNKNOWN")
OBJECTIVE_KINDS: tuple[str, ...] = ("finite", "nan", "inf", "-inf", "missing")
# Words no CSV reader takes for a missing value ("nan" is one to pandas and spreadsheets).
DIVERGE_KINDS: tuple[str, ...] = ("nan_loss", "inf_loss", "above_threshold", "value_only")
ARCH_STYLES: tuple[str, ...] = ("narrow-deep", "balanced", "wide-shallow")


COLUMNS: tuple[Column, ...] = (
    # --- the seed columns, in the order users pivot on -------------------------------------
    _c(
        "study", "str", "", "Study name (the directory holding the study's trials).", nullable=False
    ),
    _c("budget", "str", "", "Parameter budget parsed from the study name, e.g. `2M`, `2B`."),
    _c("horizon", "str", "", "Prediction horizon parsed from the study name, e.g. `h3`."),
    _c(
        "trial_num",
        "int",
        "",
        "Trial number within the study (Optuna's `trial.number`).",
        nullable=False,
    ),
    _c("d_model", "int", "architecture", "Model width (embedding dimension)."),
    _c("n_layers", "int", "architecture", "Number of layers (depth)."),
    _c("n_heads", "int", "architecture", "Number of attention heads."),
    _c("d_ff", "int", "architecture", "Feed-forward hidden dimension."),
    _c("param_count", "int", "architecture", "Number of model parameters.", "parameters"),
    _c(
        "arch_idx",
        "int",
        "architecture",
        "Index into the runner's architecture list (from `params`, or from `user_attrs` for "
        "forced-extreme trials).",
    ),
    _c("lr", "float", "training_params", "Learning rate."),
    _c("epochs_config", "int", "training_params", "Maximum number of epochs configured.", "epochs"),
    _c("weight_decay", "float", "training_params", "Weight decay."),
    _c("warmup_steps", "int", "training_params", "Learning-rate warm-up steps.", "steps"),
    _c("dropout", "float", "training_params", "Dropout probability."),
    _c(
        "val_loss",
        "float",
        "results",
        "Final validation loss: the trial's objective value where the objective is the "
        "validation loss (named `val_loss`/`loss`, or unnamed in a minimize study, as in the "
        "per-trial JSON layout), else the val_loss of the last curve epoch. Empty when "
        "non-finite or unknown (e.g. a study maximizing AUC without a curve).",
    ),
    _c(
        "train_loss",
        "float",
        "results",
        "Training loss of the last epoch in the learning curve. Empty when non-finite or no curve.",
    ),
    _c(
        "val_accuracy",
        "float",
        "results",
        "Validation accuracy reported by the runner.",
        "fraction",
    ),
    _c(
        "best_epoch",
        "int",
        "results",
        "Epoch (0-based, as recorded) of the lowest finite val_loss in the curve; earliest wins "
        "ties. Empty without a curve.",
        "epoch",
    ),
    _c("best_val_loss", "float", "results", "The lowest finite val_loss in the curve."),
    _c(
        "epochs_trained",
        "int",
        "dynamics",
        "Number of epochs recorded in the learning curve; without a curve, the runner's "
        "`epochs_run` / `epochs_trained` attribute, else empty.",
        "epochs",
    ),
    _c(
        "early_stopped",
        "bool",
        "dynamics",
        "True when training ended before `epochs_config` for a reason other than divergence, "
        "pruning or failure. Empty when there is no curve or no `epochs_config`.",
    ),
    _c(
        "duration_sec",
        "float",
        "results",
        "Wall time of the trial (`duration_seconds` / `duration_sec`, also as a user "
        "attribute, else completion minus start time).",
        "seconds",
    ),
    _c(
        "diverged",
        "bool",
        "flags",
        "True when the objective is non-finite or at least the divergence threshold "
        "(minimize studies). Empty when the trial has no objective.",
    ),
    _c(
        "rank_in_study",
        "int",
        "results",
        "1 = best objective within the study (direction-aware); ties share the lowest rank; "
        "only COMPLETE trials with a finite objective are ranked.",
    ),
    _c("is_best_in_study", "bool", "results", "True for the trial(s) with rank_in_study 1."),
    # --- further columns -------------------------------------------------------------------
    _c(
        "budget_params",
        "int",
        "",
        "The budget as a number (`2M` → 2000000, `2B` → 2000000000; suffixes K, M, B, T): "
        "sort or compare budgets by this column, not by the text, which sorts 200M before 2M.",
        "parameters",
    ),
    _c(
        "arch_category",
        "str",
        "architecture",
        "Shape of the model from n_layers/d_model with fixed thresholds (`--arch-thresholds`, "
        "default 0.15 and 0.5, as in the paper): `narrow-deep` above the upper one, "
        "`wide-shallow` below the lower one, else `balanced`. Large budgets can fall entirely "
        "into one category; `arch_style` splits each budget's own range.",
        values=ARCH_STYLES,
    ),
    _c(
        "arch_style",
        "str",
        "architecture",
        "Shape of the model relative to the other architectures of its budget: the distinct "
        "n_layers/d_model ratios tried in the budget are ranked (0 … k−1, lowest = widest and "
        "shallowest); a ratio whose rank midpoint (i + 0.5)/k falls in the lowest third is "
        "`wide-shallow`, in the highest third `narrow-deep`, else `balanced` (so each style "
        "holds about a third of the budget's architectures; a budget with one architecture is "
        "all `balanced`). Trials without a budget are compared within their study. The findings "
        "use this column.",
        values=ARCH_STYLES,
    ),
    _c(
        "objective",
        "float",
        "results",
        "The trial's objective value exactly as reported (`value`); empty when missing or "
        "non-finite (see `objective_kind`).",
    ),
    _c(
        "objective_kind",
        "str",
        "results",
        "`finite`, `nan`, `inf`, `-inf` or `missing`: what the reported objective was, so "
        "nothing is lost when a non-finite value is written as empty/null.",
        nullable=False,
        values=OBJECTIVE_KINDS,
    ),
    _c(
        "objective_name",
        "str",
        "results",
        "Name of the objective: the study's metric name, a study dump's user attribute that "
        "equals the value in every trial (e.g. `val_auc`), else `value` (in the per-trial "
        "layout the value is the final validation loss). In a multi-objective study, the one "
        "ranked (`--rank-by`); every objective has its own `objective_<name>` column.",
    ),
    _c(
        "direction",
        "str",
        "results",
        "`minimize` or `maximize`: how the objective is ranked.",
        nullable=False,
        values=("minimize", "maximize"),
    ),
    _c(
        "direction_source",
        "str",
        "results",
        "Why that direction: `--direction option`, the source (e.g. the Optuna study), the "
        "objective's name, or `default` (minimize).",
    ),
    _c(
        "state",
        "str",
        "",
        "Trial state: COMPLETE, PRUNED, FAIL, RUNNING, WAITING or UNKNOWN (`TrialState.` "
        "prefixes removed).",
        nullable=False,
        values=STATES,
    ),
    _c(
        "stop_reason",
        "str",
        "dynamics",
        "Why training ended: completed, early_stopped, diverged, pruned, failed, running or "
        "unknown.",
        nullable=False,
        values=STOP_REASONS,
    ),
    _c("batch_size", "int", "training_params", "Batch size."),
    _c(
        "train_accuracy",
        "float",
        "results",
        "Training accuracy reported by the runner.",
        "fraction",
    ),
    _c(
        "final_val_auc",
        "float",
        "results",
        "val_auc of the last curve epoch, when the curve records it.",
    ),
    _c(
        "last_val_loss",
        "float",
        "results",
        "val_loss of the last curve epoch: the same epoch as train_loss, so last_val_loss − "
        "train_loss is a generalization gap of one epoch (val_loss can be the best epoch's). "
        "Empty when non-finite or no curve.",
    ),
    _c(
        "curve_non_finite",
        "int",
        "flags",
        "Number of NaN/Infinity values in the learning curve (written as null in JSON).",
    ),
    _c("datetime_start", "str", "results", "Trial start time as recorded (ISO 8601)."),
    _c("datetime_complete", "str", "results", "Trial completion time as recorded (ISO 8601)."),
    _c(
        "source_file",
        "str",
        "",
        "The input file (or storage URL) of the trial's most detailed record: the row's "
        "values come from it first (see `sources`).",
        nullable=False,
    ),
    _c(
        "source_format",
        "str",
        "",
        "Format it was read in: `per-trial JSON`, `study dump`, `Optuna storage`, `Optuna "
        "journal` or `Optuna log (recovered)` (a log carries no user attributes, intermediate "
        "values or start times, and no parameters or value for pruned trials).",
    ),
    _c(
        "sources",
        "str",
        "",
        "Every input file (or storage URL) holding a record of this trial, separated by `; `, "
        "most detailed first: the row merges them field by field (a per-trial file, then an "
        "Optuna storage or journal, then a study dump, then a log); fields only a later record "
        "has fill the gaps. Disagreements are listed in manifest.csv.",
        nullable=False,
    ),
    _c(
        "tags",
        "str",
        "",
        "Your tags for this trial from annotations.csv (sorted, separated by `; `). Tags typed "
        "into this column are added to annotations.csv by the next extract.",
    ),
    _c(
        "note",
        "str",
        "",
        "Your notes for this trial from annotations.csv (joined by ` | `). A note typed into "
        "this column is added to annotations.csv by the next extract.",
    ),
    # --- divergence diagnosis (diverged_analysis.* only) ------------------------------------
    _c(
        "diverge_epoch",
        "int",
        "diagnosis",
        "First curve epoch whose train or val loss is non-finite or at least the threshold. "
        "Empty when the curve never crosses it.",
        "epoch",
        summary=False,
    ),
    _c(
        "last_good_loss",
        "float",
        "diagnosis",
        "val_loss of the epoch before diverge_epoch.",
        summary=False,
    ),
    _c(
        "loss_at_diverge",
        "float",
        "diagnosis",
        "The loss that crossed at diverge_epoch (val_loss if it crossed, else train_loss); "
        "empty when non-finite (see diverge_kind).",
        summary=False,
    ),
    _c(
        "diverge_kind",
        "str",
        "diagnosis",
        "`nan_loss` (a NaN loss), `inf_loss` (an infinite loss), `above_threshold` (finite but "
        "at least the threshold) or `value_only` "
        "(the curve never crosses; only the objective says diverged).",
        summary=False,
        values=DIVERGE_KINDS,
    ),
    _c(
        "similar_successful_trial",
        "str",
        "diagnosis",
        "`study/trial_num` of the nearest non-diverged, ranked trial of the same budget by "
        "architecture: Euclidean distance on log2 of d_model, n_layers and n_heads; ties go to "
        "the same study, then the better objective, then study name and trial number.",
        summary=False,
    ),
    _c(
        "similar_val_loss",
        "float",
        "diagnosis",
        "val_loss of similar_successful_trial.",
        summary=False,
    ),
    _c(
        "similar_distance",
        "float",
        "diagnosis",
        "Architecture distance to similar_successful_trial (0 = same architecture).",
        summary=False,
    ),
)

BY_NAME: dict[str, Column] = {c.name: c for c in COLUMNS}
SUMMARY_COLUMNS: tuple[Column, ...] = tuple(c for c in COLUMNS if c.summary)
DIVERGED_COLUMNS: tuple[Column, ...] = COLUMNS

# The columns every summary must start with, in this order (the users' contract).
SEED_COLUMNS: tuple[str, ...] = (
    "study",
    "budget",
    "horizon",
    "trial_num",
    "d_model",
    "n_layers",
    "n_heads",
    "d_ff",
    "param_count",
    "arch_idx",
    "lr",
    "epochs_config",
    "weight_decay",
    "warmup_steps",
    "dropout",
    "val_loss",
    "train_loss",
    "val_accuracy",
    "best_epoch",
    "best_val_loss",
    "epochs_trained",
    "early_stopped",
    "duration_sec",
    "diverged",
    "rank_in_study",
    "is_best_in_study",
)

assert tuple(c.name for c in SUMMARY_COLUMNS[: len(SEED_COLUMNS)]) == SEED_COLUMNS

# Dynamic columns: optimizer parameters without a standard column, and extra named groups of
# --study-pattern. They follow the fixed summary columns, sorted by name.
PARAM_PREFIX = "param_"
# One column per objective of a multi-objective study: objective_<metric name or index>.
OBJECTIVE_PREFIX = "objective_"

MANIFEST_COLUMNS: tuple[str, ...] = (
    "path",
    "status",
    "reason",
    "n_trials",
    "size_bytes",
    "sha256",
    "format",
    "study",
    "trial_num",
    "n_merged",
)

CURVE_METRICS: tuple[str, ...] = ("train_loss", "val_loss", "val_auc")


def dynamic_columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Columns beyond the schema: extra study-name factors, ``objective_*`` (one per objective
    of a multi-objective study), then ``param_*``, each sorted."""
    keys: set[str] = set().union(*rows)  # the keys of every row, gathered in C
    names = {k for k in keys if k not in BY_NAME and not k.startswith("_")}
    objectives = sorted(n for n in names if n.startswith(OBJECTIVE_PREFIX))
    params = sorted(n for n in names if n.startswith(PARAM_PREFIX))
    factors = sorted(names - set(objectives) - set(params))
    return factors + objectives + params
