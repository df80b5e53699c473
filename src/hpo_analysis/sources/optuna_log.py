"""Recovery of trials from the log lines Optuna prints, for when the storage is lost.

Optuna logs one line per finished trial::

    [I 2024-05-01 10:00:03,120] A new study created in memory with name: search
    [I 2024-05-01 10:00:04,512] Trial 0 finished with value: 0.25 and parameters:
        {'lr': 0.01}. Best is trial 0 with value: 0.25.
    [I 2024-05-01 10:00:05,007] Trial 1 finished with values: [0.9, 12.0] and parameters: {...}.
    [I 2024-05-01 10:00:05,901] Trial 2 pruned. Trial was pruned at epoch 3.
    [W 2024-05-01 10:00:06,230] Trial 3 failed with parameters: {...} because of the
        following error: ValueError('x').
    [W 2024-05-01 10:00:06,231] Trial 3 failed with value None.

(each one line in the log; wrapped here).

Lines are grouped into studies by the study-creation lines (``A new study created in
memory|RDB|Journal with name: X``, ``Using an existing study with name 'X'``); lines before any
of them belong to the study named by ``--study NAME`` (one name without wildcards), else to the
log file's stem. Parameters and values are parsed as Python literals by walking the syntax tree
(:func:`safe_literal`; ``nan``/``inf`` and ``np.float64(0.1)`` are accepted) — nothing is ever
evaluated. Other lines (training output, tracebacks) are skipped.

What a log cannot carry is said in the manifest (a note on the file) and in each trial's
``source_format``: user attributes, intermediate values, start times, and for pruned trials
the parameters and value. The completion time is the log line's time stamp. The direction is
inferred from the ``Best is trial M with value: W`` lines when they show which way is better.

Example::

    >>> safe_literal("{'lr': 0.01, 'opt': 'adam', 'x': -inf, 'n': np.int64(3)}")
    {'lr': 0.01, 'opt': 'adam', 'x': -inf, 'n': 3}
"""

from __future__ import annotations

import ast
import hashlib
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import HpoAnalysisError
from ..model import Problem, Settings
from ..normalize import parse_study_factors
from .base import ReadResult, head_bytes
from .optuna_common import build_trial, not_selected, objective_spec

NAME = "optuna_log"
FORMAT = "Optuna log (recovered)"
SUFFIXES = {".log", ".txt", ".out", ".err", ""}
SNIFF_BYTES = 256 * 1024
MAX_LITERAL_CHARS = 1_000_000
CANNOT_CARRY = (
    "recovered from log lines: a log carries no user attributes, intermediate values or start "
    "times, and no parameters or value for pruned trials"
)

_STAMP = re.compile(r"\[(?P<level>[A-Z]) (?P<stamp>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")
_CREATED = re.compile(r"A new study created (?:in|with) [\w ]+? with name: (?P<name>.+?)\s*$")
_EXISTING = re.compile(r"Using an existing study with name '(?P<name>.*)' instead of creating")
_FINISHED = re.compile(
    r"Trial (?P<number>\d+) finished with values?: (?P<value>.+?) and parameters: "
    r"(?P<params>\{.*\})\.(?: Best is trial (?P<best>\d+) with value: (?P<best_value>\S+?)\.)?"
    r"\s*$"
)
_PRUNED = re.compile(r"Trial (?P<number>\d+) pruned\.")
_FAILED_PARAMS = re.compile(
    r"Trial (?P<number>\d+) failed with parameters: (?P<params>\{.*\}) because of the following "
    r"error: (?P<error>.*?)\.?\s*$"
)
_FAILED_OLD = re.compile(
    r"Trial (?P<number>\d+) failed(?:,)? because (?:of the following error: |the objective "
    r"function returned )(?P<error>.*?)\.?\s*$"
)
_FAILED_VALUE = re.compile(r"Trial (?P<number>\d+) failed with value (?P<value>.*?)\.?\s*$")
_ANY = re.compile(rb"Trial \d+ (?:finished with|pruned\.|failed)|A new study created")
_NAMES = {"nan": math.nan, "inf": math.inf, "NaN": math.nan, "Infinity": math.inf}
_NUMPY_SCALARS = re.compile(r"^(?:np|numpy)\.(?:float|int|uint|bool_|str_)\w*$")


class LiteralError(HpoAnalysisError, ValueError):
    """Text that is not a plain Python literal (a call, a name, an operator, ...)."""


def safe_literal(text: str) -> Any:
    """Parse a printed dict/list/number without evaluating anything.

    >>> safe_literal("[0.5, nan]")[0], safe_literal("{'a': (1, -2.5)}")
    (0.5, {'a': (1, -2.5)})
    >>> safe_literal("__import__('os')")
    Traceback (most recent call last):
    ...
    hpo_analysis.sources.optuna_log.LiteralError: not a literal: Call
    """
    if len(text) > MAX_LITERAL_CHARS:
        raise LiteralError("literal too long")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        raise LiteralError(f"not a literal ({type(err).__name__})") from None
    try:
        return _value(tree.body)
    except RecursionError:
        raise LiteralError("literal nested too deeply") from None


def _value(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in _NAMES:
        return _NAMES[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = _value(node.operand)
        if isinstance(operand, (int, float)) and not isinstance(operand, bool):
            return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.List):
        return [_value(item) for item in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_value(item) for item in node.elts)
    if isinstance(node, ast.Dict):
        result = {}
        for key, item in zip(node.keys, node.values, strict=True):
            if key is None:
                raise LiteralError("not a literal: ** in a dict")
            result[_value(key)] = _value(item)
        return result
    if (  # numpy 2 prints scalars as np.float64(0.1): keep the number
        isinstance(node, ast.Call)
        and len(node.args) == 1
        and not node.keywords
        and _NUMPY_SCALARS.match(ast.unparse(node.func))
    ):
        return _value(node.args[0])
    raise LiteralError(f"not a literal: {type(node).__name__}")


def sniff(path: Path) -> bool:
    """Claims text logs (``.log``, ``.txt``, ``.out``, ``.err``, no suffix) whose first
    256 KiB hold an Optuna trial or study-creation line."""
    if path.suffix.lower() not in SUFFIXES:
        return False
    head = head_bytes(path, SNIFF_BYTES)
    return head is not None and bool(_ANY.search(head))


@dataclass
class _LogTrial:
    number: int
    state: str
    line: int
    values: list[Any] | None = None
    metric_names: list[str] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    datetime_complete: str | None = None


@dataclass
class _LogStudy:
    name: str
    trials: dict[int, _LogTrial] = field(default_factory=dict)
    completed: list[float] = field(default_factory=list)  # finite values, in log order
    # evidence from "Best is trial M with value: W": True = a higher value was not best, ...
    lower_is_better: bool = False
    higher_is_better: bool = False
    duplicates: int = 0

    def direction(self) -> str | None:
        if self.lower_is_better == self.higher_is_better:
            return None
        return "minimize" if self.lower_is_better else "maximize"


def _stamp(line: str) -> str | None:
    match = _STAMP.search(line)
    if not match:
        return None
    try:
        moment = datetime.strptime(match.group("stamp"), "%Y-%m-%d %H:%M:%S,%f")
    except ValueError:
        return None
    return moment.isoformat(timespec="microseconds")


def _default_study(path: Path, settings: Settings) -> str:
    if len(settings.studies) == 1 and not any(ch in settings.studies[0] for ch in "*?["):
        return settings.studies[0]
    return path.stem or "study"


class _Parser:
    def __init__(self, default_study: str) -> None:
        self.studies: dict[str, _LogStudy] = {}
        self.current = default_study
        self.bad_literals: list[int] = []

    def study(self) -> _LogStudy:
        return self.studies.setdefault(self.current, _LogStudy(self.current))

    def feed(self, line_no: int, line: str) -> None:
        if "Trial " not in line and "study" not in line:
            return
        for pattern in (_CREATED, _EXISTING):
            match = pattern.search(line)
            if match:
                self.current = match.group("name")
                self.study()
                return
        match = _FINISHED.search(line)
        if match:
            self._finished(line_no, line, match)
            return
        match = _FAILED_PARAMS.search(line) or _FAILED_OLD.search(line)
        if match:
            trial = self._trial(line_no, line, int(match.group("number")), "FAIL")
            if trial is not None and "params" in match.groupdict():
                trial.params = self._literal(match.group("params"), line_no) or {}
            return
        match = _FAILED_VALUE.search(line)
        if match:
            self._trial(line_no, line, int(match.group("number")), "FAIL", merge=True)
            return
        match = _PRUNED.search(line)
        if match:
            self._trial(line_no, line, int(match.group("number")), "PRUNED")

    def _trial(
        self, line_no: int, line: str, number: int, state: str, merge: bool = False
    ) -> _LogTrial | None:
        study = self.study()
        known = study.trials.get(number)
        if known is not None:
            # the second line of a failure ("failed with value ...") belongs to the first
            if not (merge and known.state == "FAIL"):
                study.duplicates += 1
            return None
        trial = _LogTrial(number, state, line_no, datetime_complete=_stamp(line))
        study.trials[number] = trial
        return trial

    def _literal(self, text: str, line_no: int) -> Any:
        try:
            return safe_literal(text)
        except LiteralError:
            self.bad_literals.append(line_no)
            return None

    def _finished(self, line_no: int, line: str, match: re.Match[str]) -> None:
        trial = self._trial(line_no, line, int(match.group("number")), "COMPLETE")
        if trial is None:
            return
        study = self.study()
        value = self._literal(match.group("value"), line_no)
        if isinstance(value, dict):  # named metrics: {'auc': 0.71} or {'acc': .9, 'lat': 3}
            trial.metric_names = [str(k) for k in value]
            trial.values = list(value.values())
        elif isinstance(value, (list, tuple)):
            trial.values = list(value)
        elif value is not None:
            trial.values = [value]
        params = self._literal(match.group("params"), line_no)
        trial.params = params if isinstance(params, dict) else {}
        own = trial.values[0] if trial.values and len(trial.values) == 1 else None
        if isinstance(own, (int, float)) and math.isfinite(own):
            study.completed.append(float(own))
        if match.group("best_value") is not None:
            try:
                best = float(match.group("best_value"))
            except ValueError:
                return
            if any(v < best for v in study.completed):
                study.higher_is_better = True
            if any(v > best for v in study.completed):
                study.lower_is_better = True


def read(path: Path, display: str, settings: Settings) -> ReadResult:
    result = ReadResult()
    parser = _Parser(_default_study(path, settings))
    digest = hashlib.sha256()
    size = 0
    try:
        with open(path, "rb") as handle:
            for line_no, raw_line in enumerate(handle, start=1):
                digest.update(raw_line)
                size += len(raw_line)
                parser.feed(line_no, raw_line.decode("utf-8", errors="replace"))
    except OSError as err:
        result.problems.append(
            Problem("unreadable", f"cannot read: {err.strerror or err}", "rejected")
        )
        return result
    result.size_bytes, result.sha256 = size, digest.hexdigest()
    if parser.bad_literals:
        lines = ", ".join(str(n) for n in parser.bad_literals[:5])
        result.problems.append(
            Problem(
                "log_unparsed_literal",
                f"{len(parser.bad_literals)} value(s) or parameter set(s) could not be read as "
                f"literals (line {lines}{', …' if len(parser.bad_literals) > 5 else ''}); "
                "those trials lack them",
            )
        )
    skipped = []
    for study in parser.studies.values():
        if not study.trials:
            continue
        if not settings.study_selected(study.name):
            skipped.append(study.name)
            continue
        if study.duplicates:
            result.problems.append(
                Problem(
                    "log_duplicate_trial",
                    f"study {study.name!r}: {study.duplicates} trial number(s) logged more "
                    "than once; the first line of each is used",
                )
            )
        _emit(study, display, settings, result)
    if skipped:
        result.problems.append(not_selected(skipped))
    if not result.trials and not skipped:
        result.problems.append(Problem("no_trials", "no Optuna trial lines found", "rejected"))
    else:
        result.problems.append(Problem("recovered_from_log", CANNOT_CARRY, "note"))
    return result


def _emit(study: _LogStudy, display: str, settings: Settings, result: ReadResult) -> None:
    trials = [study.trials[n] for n in sorted(study.trials)]
    n_objectives = max([1] + [len(t.values) for t in trials if t.values])
    names = next((t.metric_names for t in trials if t.metric_names), None)
    direction = study.direction() if n_objectives == 1 else None
    spec = objective_spec(
        n_objectives,
        names,
        [direction] * n_objectives,
        settings.rank_by,
        direction_source="log: best-trial lines",
    )
    if spec.problem is not None:
        result.problems.append(spec.problem)
    factors = parse_study_factors(study.name, settings.compiled_pattern())
    for trial in trials:
        raw = {
            "number": trial.number,
            "state": trial.state,
            "values": trial.values,
            "params": trial.params,
            "datetime_complete": trial.datetime_complete,
        }
        built = build_trial(
            raw,
            study=study.name,
            source_file=display,
            factors=factors,
            spec=spec,
            aliases=settings.field_aliases,
        )
        result.add(built)
