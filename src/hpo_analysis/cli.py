"""The ``hpo-analysis`` command: parses arguments, calls the library, maps errors to exit codes.

Exit codes: 0 success, 1 data or validation failure (or a rejected file with ``--strict``),
2 usage error (bad option, missing source, unusable output directory). No logic lives here.
"""

from __future__ import annotations

import argparse
import math
import re
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .config import DEFAULT_OUT, DEFAULT_SOURCES, extract_options, load_config
from .errors import HpoAnalysisError, UsageProblem, require
from .model import Settings
from .pipeline import extract
from .sources.optuna_storage import mask_url
from .validate import SchemaCheckUnavailable, validate_dir
from .version import __version__

MAX_PROBLEM_LINES = 200

EXTRACT_EXAMPLES = """\
examples:
  hpo-analysis extract                                   # outputs/hpo -> outputs/analysis
  hpo-analysis extract examples/hpo --out outputs/analysis
  hpo-analysis extract runs/a runs/b --diverge-threshold 5 --study-pattern '(?P<budget>\\d+[MB])_(?P<seed>s\\d+)'
  hpo-analysis extract sqlite:///runs/optuna.db --study 'sweep_*' --out outputs/analysis
  hpo-analysis extract runs/journal.log run.log --rank-by accuracy
  hpo-analysis extract examples/hpo --top-k 10 --no-report
"""


QUERY_EXAMPLES = """\
examples:
  hpo-analysis query "SELECT study, trial_num, objective FROM trials WHERE is_best_in_study"
  hpo-analysis query outputs/analysis "SELECT budget, count(*) FILTER (WHERE diverged) AS diverged FROM trials GROUP BY budget"
  hpo-analysis query "SELECT epoch, val_loss FROM curves WHERE study = 'phase6a_2B_h1_threshold_1pct' AND trial_num = 2" --format csv

tables: trials (one row per trial), curves (one row per epoch), diverged (diverged trials)
"""


class UsageError(UsageProblem):
    pass


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite positive number: {text!r}")
    return value


def _trial_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"trial numbers are 0 or more, got {text!r}")
    return value


def _diverge_threshold(text: str) -> float | None:
    """``auto`` (the scale-aware rule) or a positive number (an absolute threshold)."""
    return None if text.strip().lower() == "auto" else _positive_float(text)


def _thresholds(text: str) -> tuple[float, float]:
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected two numbers LOW,HIGH such as 0.15,0.5, got {text!r}"
        ) from None
    if not 0 <= low <= high:
        raise argparse.ArgumentTypeError(f"need 0 <= LOW <= HIGH, got {text!r}")
    return (low, high)


def _top_k(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _direction(text: str) -> tuple[str, str]:
    study, _, direction = text.rpartition("=")
    if direction not in ("minimize", "maximize"):
        raise argparse.ArgumentTypeError(
            f"expected minimize, maximize or STUDY=minimize|maximize, got {text!r}"
        )
    return (study or "*", direction)


def _pattern(text: str) -> str:
    try:
        compiled = re.compile(text)
    except re.error as err:
        raise argparse.ArgumentTypeError(f"invalid regular expression: {err}") from None
    if not compiled.groupindex:
        raise argparse.ArgumentTypeError("the pattern needs named groups, e.g. (?P<budget>...)")
    return text


# Options that set what extract computes have no argparse default: an option the user did not
# type is absent from the namespace, so the config file's value (then Settings') applies.
UNSET = argparse.SUPPRESS
DEFAULTS = Settings()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hpo-analysis",
        description="Turn the raw output of HPO studies into an analysis-ready dataset.",
    )
    parser.add_argument("--version", action="version", version=f"hpo-analysis {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ext = commands.add_parser(
        "extract",
        help="read trial files and write the dataset",
        description="Read HPO trial files and write the analysis dataset (summary CSV, full "
        "JSON, diverged-trial analysis, README, manifest).",
        epilog=EXTRACT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ext.add_argument(
        "sources",
        nargs="*",
        metavar="SOURCE",
        default=UNSET,
        help="directories, files or Optuna storage URLs (sqlite:///optuna.db, "
        f"postgresql://...) to read (default: {' '.join(DEFAULT_SOURCES)})",
    )
    ext.add_argument(
        "--out",
        default=UNSET,
        metavar="DIR",
        help=f"output directory (default: {DEFAULT_OUT}); replaced atomically",
    )
    ext.add_argument(
        "--config",
        metavar="FILE",
        help="project config (default: ./hpo-analysis.toml when present); options given here "
        "win over it",
    )
    ext.add_argument(
        "--diverge-threshold",
        type=_diverge_threshold,
        default=UNSET,
        metavar="X|auto",
        help="an absolute threshold: objective at or above X (or non-finite) means diverged. "
        "Default (auto): scale-aware, per study (non-finite, the runner's sentinel, or at least 10 x "
        "the study's median objective)",
    )
    ext.add_argument(
        "--study-pattern",
        type=_pattern,
        default=UNSET,
        metavar="REGEX",
        help="regex whose named groups are parsed from study names into columns "
        "(default finds budget like 2B and horizon like h3)",
    )
    ext.add_argument(
        "--arch-thresholds",
        type=_thresholds,
        default=UNSET,
        metavar="LOW,HIGH",
        help="n_layers/d_model bounds of wide-shallow / narrow-deep for the fixed arch_category "
        f"column (default {DEFAULTS.arch_thresholds[0]},{DEFAULTS.arch_thresholds[1]}); the "
        "findings use arch_style, relative to each budget",
    )
    ext.add_argument(
        "--direction",
        type=_direction,
        action="append",
        dest="directions",
        default=UNSET,
        metavar="[STUDY=]DIR",
        help="minimize or maximize, for all studies or STUDY=DIR for studies matching a glob "
        "(repeatable); default: from the source, else from the objective's name "
        "(auc, accuracy, ... maximize), else minimize",
    )
    ext.add_argument(
        "--study",
        action="append",
        dest="studies",
        default=UNSET,
        metavar="NAME",
        help="read only studies whose name matches this glob (repeatable; default all); for a "
        "log without study-creation lines, one plain NAME names its study",
    )
    ext.add_argument(
        "--rank-by",
        metavar="N|NAME",
        default=UNSET,
        help="objective that ranks a multi-objective study: its index (0 = first, the "
        "default) or its metric name",
    )
    ext.add_argument(
        "--objective",
        metavar="NAME",
        default=UNSET,
        help="metric that is the objective where the source names none or several (Ray "
        "Tune, MLflow, runs tables); for Ray Tune and KerasTuner it replaces theirs",
    )
    ext.add_argument(
        "--max-file-size",
        type=_positive_float,
        dest="max_file_size_mib",
        default=UNSET,
        metavar="MIB",
        help=f"reject input files larger than this many MiB (default {DEFAULTS.max_file_bytes >> 20})",
    )
    ext.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="follow symlinks whose target is outside the source (default: list them as ignored)",
    )
    ext.add_argument(
        "--jobs",
        type=_top_k,
        default=None,
        metavar="N",
        help="worker processes for reading large trees (default: up to 2)",
    )
    ext.add_argument(
        "--top-k",
        type=_top_k,
        default=UNSET,
        metavar="K",
        help=f"trials per budget in the top-k findings (default {DEFAULTS.top_k}, or all if fewer)",
    )
    ext.add_argument(
        "--no-report",
        action="store_true",
        help="do not write report.html and figure_*.png (they need the [report] extra)",
    )
    ext.add_argument(
        "--no-cache",
        action="store_true",
        help="read every file even if unchanged since the last run, and keep no cache in "
        "DIR/.cache (by default unchanged files are not parsed again, and when nothing "
        "changed at all the output set is kept as it is)",
    )
    ext.add_argument(
        "--strict", action="store_true", help="exit with status 1 when any input file is rejected"
    )
    ext.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar and no per-file problem lines"
    )

    val = commands.add_parser(
        "validate",
        help="check an extracted dataset for consistency",
        description="Check row counts, required fields, diverged flags and CSV/JSON agreement.",
        epilog="example:\n  hpo-analysis validate outputs/analysis --expect-trials 600",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    val.add_argument("directory", metavar="DIR")
    val.add_argument("--expect-trials", type=int, metavar="N")
    val.add_argument("--expect-studies", type=int, metavar="N")
    val.add_argument("--expect-diverged", type=int, metavar="N")
    val.add_argument(
        "--config",
        metavar="FILE",
        help="take the expectations not given here from [validate] of this file "
        "(default: ./hpo-analysis.toml when present)",
    )

    ann = commands.add_parser(
        "annotate",
        help="tag or note a trial; kept across re-extraction",
        description="Add or update (same tag) an annotation in DIR/annotations.csv. Every "
        "extract carries the file over and merges it into hpo_summary.csv (tags, note) and "
        "hpo_full.json (annotations). A trial that is not in the dataset is refused (exit "
        "status 2) unless --force.",
        epilog="example:\n  hpo-analysis annotate outputs/analysis phase6a_2B_h3_threshold_1pct "
        '12 --tag lr-too-high --note "NaN from epoch 3"',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ann.add_argument("directory", metavar="DIR")
    ann.add_argument("study", metavar="STUDY")
    ann.add_argument("trial_num", metavar="TRIAL", type=_trial_number)
    ann.add_argument(
        "--tag", default="", help="a short label, e.g. lr-too-high (at most 200 characters)"
    )
    ann.add_argument("--note", default="", help="free text (at most 10,000 characters)")
    ann.add_argument(
        "--force",
        action="store_true",
        help="keep the annotation even if the trial is not in the dataset (yet)",
    )
    ann.add_argument(
        "--remove",
        action="store_true",
        help="remove the annotation with this tag instead of adding it",
    )

    rep = commands.add_parser(
        "report",
        help="write report.html and figure_*.png for an extracted dataset",
        description="Draw the findings and key figures of an extracted output directory into "
        "one self-contained report.html (opens offline) and figure_*.png. Needs the [report] "
        "extra (matplotlib).",
        epilog="example:\n  hpo-analysis report outputs/analysis",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rep.add_argument(
        "directory",
        nargs="?",
        default=DEFAULT_OUT,
        metavar="DIR",
        help=f"an output directory written by extract (default: {DEFAULT_OUT})",
    )

    mcp = commands.add_parser(
        "mcp",
        help="serve a dataset to MCP clients over stdio",
        description="Serve an extracted dataset over the Model Context Protocol (stdio): tools "
        "overview, query (read-only SQL), get_trial, get_curve, compare_trials, findings; the "
        "README and JSON Schema as resources. Needs the mcp extra: "
        "pip install 'hpo-analysis[mcp]'.",
        epilog="example (what an MCP client runs):\n  hpo-analysis mcp outputs/analysis\n"
        "  hpo-analysis mcp outputs/analysis --allow-annotate",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mcp.add_argument(
        "directory",
        metavar="DIR",
        nargs="?",
        default=DEFAULT_OUT,
        help=f"extracted dataset directory (default: {DEFAULT_OUT})",
    )
    mcp.add_argument(
        "--allow-annotate",
        action="store_true",
        help="also offer the annotate tool, which writes DIR/annotations.csv",
    )

    qry = commands.add_parser(
        "query",
        help="run SQL (DuckDB) over an extracted dataset",
        description="Run a SQL query with DuckDB over the tables trials, curves and diverged of "
        "an extracted dataset (its Parquet files) and print the result.",
        epilog=QUERY_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    qry.add_argument(
        "directory",
        nargs="?",
        default=DEFAULT_OUT,
        metavar="DIR",
        help=f"dataset directory written by extract (default: {DEFAULT_OUT})",
    )
    qry.add_argument("sql", metavar="SQL", help="the query")
    qry.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help="table (aligned text, default), csv, or json (one object per line)",
    )
    qry.add_argument(
        "--max-rows",
        type=int,
        default=50,
        metavar="N",
        help="rows shown by the table format (0: all; default 50)",
    )

    ex = commands.add_parser(
        "make-example",
        help="write the simulated example tree",
        description="Write a simulated HPO output tree (seeded, deterministic).",
        epilog="example:\n  hpo-analysis make-example /tmp/hpo --trials-per-study 100",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ex.add_argument("directory", metavar="DIR")
    ex.add_argument("--seed", type=int, default=0)
    ex.add_argument("--trials-per-study", type=int, default=50)
    ex.add_argument("--n-diverged", type=int, default=14)
    return parser


class _Console:
    """Problem lines on stderr (capped, then counted) and a progress bar on a terminal."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.shown = 0
        self.hidden = 0
        self.bar: Any = None

    def report(self, line: str) -> None:
        if self.quiet:
            return
        if self.shown >= MAX_PROBLEM_LINES:
            self.hidden += 1
            return
        self.shown += 1
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)

    def progress(self) -> Callable[[int], Callable[[], None]] | None:
        if self.quiet or not sys.stderr.isatty():
            return None

        def start(total: int) -> Callable[[], None]:
            from tqdm import tqdm  # type: ignore[import-untyped]

            self.bar = tqdm(total=total, unit="file", file=sys.stderr, leave=False)

            def tick() -> None:
                self.bar.update(1)
                if self.bar.n >= total:
                    self.bar.close()
                    self.bar = None

            return tick

        return start

    def finish(self, manifest: Path) -> None:
        if self.hidden:
            print(
                f"... and {self.hidden} more problem lines; every file's status and reason "
                f"is in {manifest}",
                file=sys.stderr,
            )


# Command-line destinations that are Settings fields (or config keys) of the same meaning.
_EXTRACT_OPTIONS = (
    "sources",
    "out",
    "diverge_threshold",
    "study_pattern",
    "arch_thresholds",
    "directions",
    "studies",
    "rank_by",
    "objective",
    "max_file_size_mib",
    "top_k",
)


def run_extract(args: argparse.Namespace, argv: Sequence[str]) -> int:
    given = {name: getattr(args, name) for name in _EXTRACT_OPTIONS if hasattr(args, name)}
    given["write_report"] = not args.no_report
    given["follow_symlinks"] = args.follow_symlinks
    options = extract_options(given, load_config(args.config))  # ConfigError: usage error
    settings = options.settings
    console = _Console(args.quiet)
    command = "hpo-analysis " + shlex.join(mask_url(arg) for arg in argv)  # no passwords
    result = extract(
        list(options.sources),
        Path(options.out),
        settings,
        jobs=args.jobs,
        command=command,
        report=console.report,
        progress=console.progress(),
        cache=not args.no_cache,
    )
    for failure in result.validation_failures:
        print(f"validation: {failure}", file=sys.stderr)
    if not args.no_report:
        from .report import INSTALL_HINT, report_available

        if not report_available():
            print(f"report skipped: matplotlib is not installed ({INSTALL_HINT})", file=sys.stderr)
    console.finish(Path(options.out) / "manifest.csv")
    print(result.summary_line())
    if result.validation_failures:
        return 1
    if args.strict and result.n_rejected:
        print(
            f"--strict: {result.n_rejected} file(s) rejected; see "
            f"{Path(options.out) / 'manifest.csv'}",
            file=sys.stderr,
        )
        return 1
    return 0


def run_validate(args: argparse.Namespace) -> int:
    directory = Path(args.directory)
    if not directory.is_dir():
        raise UsageError(f"{directory}: no such directory")
    configured = load_config(args.config).validate
    expectations = {
        "expect_trials": args.expect_trials,
        "expect_studies": args.expect_studies,
        "expect_diverged": args.expect_diverged,
    }
    for key, value in configured.items():
        if expectations[key] is None:
            expectations[key] = value
    try:
        failures = validate_dir(directory, **expectations)
    except SchemaCheckUnavailable as err:
        print(f"hpo-analysis: note: schema not checked; {err}", file=sys.stderr)
        failures = validate_dir(directory, schema=False, **expectations)
    for failure in failures:
        print(failure, file=sys.stderr)
    print(f"{directory}: {'valid' if not failures else f'{len(failures)} problem(s)'}")
    return 1 if failures else 0


def run_annotate(args: argparse.Namespace) -> int:
    from .annotations import add_annotation
    from .write.atomic import is_our_output

    directory = Path(args.directory)
    if not directory.is_dir() or not is_our_output(directory):
        raise UsageError(f"{directory}: not an hpo-analysis output directory")
    if not args.tag and not args.note:
        raise UsageError("give --tag and/or --note")
    add_annotation(
        directory,
        args.study,
        args.trial_num,
        tag=args.tag,
        note=args.note,
        remove=args.remove,
        force=args.force,
    )
    known = _trial_exists(directory, args.study, args.trial_num)
    action = "removed" if args.remove else "saved"
    print(
        f"{action}: {args.study}/{args.trial_num} tag={args.tag!r} in "
        f"{directory / 'annotations.csv'}"
        + ("" if known else " (no such trial in this dataset yet; kept)")
    )
    return 0


def run_report(args: argparse.Namespace) -> int:
    from .report import REPORT_HTML, write_report

    directory = Path(args.directory)
    if not directory.is_dir():
        raise UsageError(f"{directory}: no such directory")
    figures = write_report(directory)
    print(f"wrote {directory / REPORT_HTML} and {len(figures)} figure_*.png files in {directory}")
    return 0


def _trial_exists(directory: Path, study: str, trial_num: int) -> bool:
    import csv

    from .write.cells import allow_large_csv_fields, unneutralize

    allow_large_csv_fields()
    try:
        with open(directory / "hpo_summary.csv", encoding="utf-8", newline="") as handle:
            return any(
                unneutralize(r["study"]) == study and r["trial_num"] == str(trial_num)
                for r in csv.DictReader(handle)
            )
    except OSError:
        return False


def run_mcp(args: argparse.Namespace) -> int:
    for module in ("duckdb", "mcp"):
        require(module, "mcp", f"the mcp command ({module})")
    from .mcp_server import run_server

    run_server(Path(args.directory), allow_annotate=args.allow_annotate)
    return 0


def run_query(args: argparse.Namespace) -> int:
    from .api import load
    from .mcp_server import check_sql
    from .query import render

    dataset = load(args.directory)  # DatasetError: not a dataset (exit 2)
    if args.max_rows < 0:
        raise UsageError("--max-rows must be 0 (all rows) or more")
    try:
        # one read-only SELECT, as the MCP query tool takes: COPY, ATTACH, SET, ... are refused
        frame = dataset.sql(check_sql(args.sql, dataset.connection))
    finally:
        dataset.close()
    sys.stdout.write(render(frame, args.format, args.max_rows or None))
    return 0


def run_make_example(args: argparse.Namespace) -> int:
    from .example import generate_example

    try:
        files = generate_example(
            Path(args.directory),
            seed=args.seed,
            trials_per_study=args.trials_per_study,
            n_diverged=args.n_diverged,
        )
    except ValueError as err:
        raise UsageError(str(err)) from None
    print(
        f"wrote {len(files)} files (per-trial files, study dumps, best-trial files) under {args.directory}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        if args.command == "extract":
            return run_extract(args, argv)
        if args.command == "validate":
            return run_validate(args)
        if args.command == "annotate":
            return run_annotate(args)
        if args.command == "report":
            return run_report(args)
        if args.command == "query":
            return run_query(args)
        if args.command == "mcp":
            return run_mcp(args)
        return run_make_example(args)
    except HpoAnalysisError as err:  # the one place errors become exit codes (errors.py)
        print(f"hpo-analysis: {err.label}: {err}", file=sys.stderr)
        return err.exit_code
    except OSError as err:  # e.g. disk full while writing: the previous outputs are intact
        where = f"{err.filename}: " if err.filename else ""
        print(
            f"hpo-analysis: error: {where}{err.strerror or err}; previous outputs left unchanged",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print("hpo-analysis: interrupted; previous outputs left unchanged", file=sys.stderr)
        return 130
