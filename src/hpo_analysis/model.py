"""The records that flow through the pipeline: settings, problems and the canonical Trial.

Problems are data, not exceptions: a reader or the normalizer appends a :class:`Problem` and
carries on, and the manifest and stderr report them. Only a problem of severity ``rejected``
keeps a file's trial out of the dataset; a ``note`` is written to the manifest's reason column
(e.g. "recovered from log lines") without making the file a warning.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["note", "warning", "rejected"]

DEFAULT_STUDY_PATTERN = (
    r"(?:^|[_\-.])(?P<budget>\d+(?:\.\d+)?[KkMmBbTt])(?=$|[_\-.])"
    r"|(?:^|[_\-.])(?P<horizon>[Hh]\d+)(?=$|[_\-.])"
)


@dataclass(frozen=True)
class Problem:
    """Something wrong with one input file; ``message`` is written for a person."""

    code: str
    message: str
    severity: Severity = "warning"


@dataclass(frozen=True)
class Settings:
    """Everything that changes what ``extract`` computes (and nothing that does not)."""

    # --diverge-threshold: an absolute objective threshold; None = the scale-aware rule
    diverge_threshold: float | None = None
    study_pattern: str = DEFAULT_STUDY_PATTERN
    arch_thresholds: tuple[float, float] = (0.15, 0.5)
    max_file_bytes: int = 64 * 1024 * 1024
    # --direction: (study glob, direction) pairs; the glob "*" is the global setting.
    directions: tuple[tuple[str, str], ...] = ()
    # --study: globs of the study names to read; empty = every study.
    studies: tuple[str, ...] = ()
    # --rank-by: which objective of a multi-objective study ranks it (index or metric name).
    rank_by: str | None = None
    top_k: int = 20  # --top-k: trials per budget in the top-k findings
    # report.html and figure_*.png (needs matplotlib). The command line turns it on unless
    # --no-report; library calls (notebooks, loops) leave it off unless asked.
    write_report: bool = False
    # hpo-analysis.toml [fields]: canonical column -> extra spellings, tried before the
    # built-in ones, e.g. (("lr", ("my_lr",)),).
    field_aliases: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # --objective: the metric that is the objective of sources that do not name one (Ray Tune
    # without an experiment metric, MLflow, runs tables); wins over the source's own choice.
    objective: str | None = None
    # hpo-analysis.toml [table]: a runs table in the user's own layout — its objective column,
    # its parameter columns (empty: every other column) and its study column
    table_objective: str | None = None
    table_params: tuple[str, ...] = ()
    table_study: str | None = None
    # --follow-symlinks: follow symlinks whose target lies outside the source.
    follow_symlinks: bool = False

    def study_selected(self, study: str) -> bool:
        """True when ``--study`` was not given or one of its globs matches ``study``.

        >>> Settings(studies=("hpo_2*",)).study_selected("hpo_20m"), Settings().study_selected("x")
        (True, True)
        """
        return not self.studies or any(fnmatch.fnmatchcase(study, p) for p in self.studies)

    def compiled_pattern(self) -> re.Pattern[str]:
        return re.compile(self.study_pattern)

    def direction_for(self, study: str) -> str | None:
        """The direction the user forced for ``study`` (last matching rule wins), or None."""
        chosen = None
        for pattern, direction in self.directions:
            if fnmatch.fnmatchcase(study, pattern):
                chosen = direction
        return chosen


@dataclass(frozen=True)
class CurvePoint:
    """One epoch of a learning curve; metrics may be NaN/inf exactly as recorded."""

    epoch: int
    metrics: dict[str, float | None]


@dataclass(frozen=True)
class Trial:
    """One trial, normalized: canonical names and types, provenance, nothing derived yet."""

    study: str
    trial_num: int
    state: str
    objective: float | None
    architecture: dict[str, int | None]
    training: dict[str, Any]
    results: dict[str, Any]
    curve: tuple[CurvePoint, ...]
    factors: dict[str, str | None]
    extra_params: dict[str, Any]
    extra: dict[str, Any]
    source_file: str
    problems: tuple[Problem, ...] = field(default=())
    # What the source says about the objective: its direction ("minimize"/"maximize") and
    # name. None for the per-trial layout, whose value is the final validation loss.
    direction: str | None = None
    direction_source: str | None = None
    objective_name: str | None = None
    # Multi-objective trials: every objective value by label (metric name or index); the
    # ranked one is also ``objective``. Empty for single-objective trials.
    objective_values: dict[str, float | None] = field(default_factory=dict)


@dataclass
class ManifestRow:
    """One input file's line in manifest.csv (columns: :data:`~.schema.MANIFEST_COLUMNS`)."""

    path: str
    status: str
    reason: str = ""
    size_bytes: int | None = None
    sha256: str = ""
    format: str = ""
    study: str | None = None
    trial_num: int | None = None  # set when the file holds exactly one trial
    n_trials: int = 0  # trials whose row this file leads (its record is the most detailed)
    n_merged: int = 0  # trials of this file merged into another file's more detailed record
