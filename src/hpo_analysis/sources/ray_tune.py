"""Reader for Ray Tune (2.x) experiment directories, read as plain files (Ray not needed).

Layout written by ``Tuner.fit()``::

    <experiment>/experiment_state-<time>.json   # the trials' ids, status, dirs; the metric
    <experiment>/<trial_dir>/params.json        # the trial's config
    <experiment>/<trial_dir>/result.json        # one JSON line per reported iteration
    <experiment>/<trial_dir>/progress.csv       # the same results as a table (not needed)
    <experiment>/<trial_dir>/error.txt          # when the trial raised

The newest ``experiment_state-*.json`` is claimed and reads the whole experiment: one study
(the experiment directory's name), one trial per trial directory. The trial number is the
index Tune gives each trial (``1c076_00003`` → 3; the id is kept in ``hpo_full.json``). Pickled
files (``tuner.pkl``, ``params.pkl``, ``error.pkl``, the searcher state) are never opened.

- **params**: ``params.json`` (else the config in the experiment state), nested dicts
  flattened with dots (``model.width``);
- **curve**: one point per line of ``result.json``, ``training_iteration`` as the epoch, every
  numeric metric the trial reported (Tune's own bookkeeping keys left out);
- **objective**: ``--objective NAME`` when given, else the experiment's ``metric`` (stored in
  the experiment state), the value of the last iteration (Tune's default ``scope="last"``);
- **state**: ``TERMINATED`` → COMPLETE, ``ERROR`` (or an ``error.txt``) → FAIL, ``RUNNING`` →
  RUNNING, ``PENDING``/``PAUSED`` → WAITING. A terminated trial with fewer iterations than the
  longest trial of the experiment was stopped by the scheduler (ASHA, HyperBand, …): PRUNED;
- **direction**: Tune keeps ``mode`` only in ``tuner.pkl``, so it comes from ``--direction``,
  else from the metric's name (``val_loss`` minimize, ``val_acc`` maximize).

Example::

    >>> trial_number("1c076_00003", 9), trial_number("custom", 9)
    (3, 9)
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..jsonio import JsonReadError, load_json_bytes
from ..model import Problem, Settings
from ..normalize import parse_study_factors
from .base import ReadResult, read_bytes_checked, read_json_checked
from .foreign import ForeignRun, build_run, flatten, number_or_none

NAME = "ray_tune"
FORMAT = "Ray Tune experiment"
CACHEABLE = False  # one state file stands for a whole directory of trial files
STATE_PREFIX = "experiment_state-"
_STATE_NAME = re.compile(r"^experiment_state-.*\.json$")
TRIAL_FILES = ("params.json", "result.json")
# keys Tune adds to every result: bookkeeping, not metrics
BOOKKEEPING = frozenset(
    {
        "training_iteration",
        "timestamp",
        "time_this_iter_s",
        "time_total_s",
        "time_since_restore",
        "iterations_since_restore",
        "timesteps_since_restore",
        "timesteps_total",
        "episodes_total",
        "pid",
        "done",
        "trial_id",
        "date",
        "hostname",
        "node_ip",
        "config",
        "checkpoint_dir_name",
        "should_checkpoint",
        "experiment_id",
        "experiment_tag",
    }
)
# the files Tune writes besides the ones read (never opened: pickles, TensorBoard events)
RAY_FILES = frozenset(
    {
        *TRIAL_FILES,
        "progress.csv",
        "params.pkl",
        "error.txt",
        "error.pkl",
        "tuner.pkl",
        "trainable.pkl",
        ".validate_storage_marker",
    }
)
RAY_PREFIXES = ("events.out.tfevents", "basic-variant-state", "search_gen_state", STATE_PREFIX)
STATES = {
    "TERMINATED": "COMPLETE",
    "ERROR": "FAIL",
    "RUNNING": "RUNNING",
    "PENDING": "WAITING",
    "PAUSED": "WAITING",
}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def sniff(path: Path) -> bool:
    """The newest ``experiment_state-*.json`` of a directory (names sort by their time); in
    an experiment without one (trial directories copied on their own), the ``result.json`` of
    its first trial directory, which then stands for the whole experiment."""
    if path.name == "result.json":
        experiment = path.parent.parent
        return (
            (path.parent / "params.json").is_file()
            and _newest_state(experiment) is None
            and _first_trial(experiment) == path.parent.name
        )
    if not _STATE_NAME.match(path.name):
        return False
    return path.name == _newest_state(path.parent)


# directory listings, keyed by (directory, its mtime): a tree of thousands of trial files asks
# the same two directories again for every file, and a changed directory gets a new key
# (the sorted names, the newest experiment state among them)
_LISTINGS: dict[tuple[str, int], tuple[list[str], str | None]] = {}


def _listing(directory: Path) -> tuple[list[str], str | None]:
    try:
        key = (str(directory), os.stat(directory).st_mtime_ns)
    except OSError:
        return [], None
    found = _LISTINGS.get(key)
    if found is None:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            names = []
        states = [n for n in names if _STATE_NAME.match(n)]
        found = (names, max(states) if states else None)
        if len(_LISTINGS) > 1024:
            _LISTINGS.clear()
        _LISTINGS[key] = found
    return found


def _newest_state(directory: Path) -> str | None:
    return _listing(directory)[1]


def _first_trial(experiment: Path) -> str | None:
    """The first (by name) directory of ``experiment`` holding a trial's two files."""
    for name in _listing(experiment)[0]:
        if all(os.path.isfile(os.path.join(experiment, name, file)) for file in TRIAL_FILES):
            return name
    return None


def _ray_name(name: str) -> bool:
    return name in RAY_FILES or name.startswith(RAY_PREFIXES)


def _anchor(path: Path) -> tuple[Path, str] | None:
    """The experiment a Ray file belongs to and the file read for it, or None."""
    for experiment in (path.parent, path.parent.parent):
        state = _newest_state(experiment)
        if state is not None:
            return experiment, state
    first = _first_trial(path.parent)  # a file of the experiment directory itself
    if first is not None:
        return path.parent, f"{first}/result.json"
    if all((path.parent / file).is_file() for file in TRIAL_FILES):
        first = _first_trial(path.parent.parent)
        if first is not None:
            return path.parent.parent, f"{first}/result.json"
    return None


def ignore_reason(path: Path) -> str | None:
    """Why the other files of an experiment are listed but not read on their own."""
    if not _ray_name(path.name):
        return None
    found = _anchor(path)
    if found is None:
        return None
    experiment, read_through = found
    if path.parent == experiment:
        if _STATE_NAME.match(path.name):
            return f"an older Ray Tune experiment state; {read_through} is read"
        return (
            f"Ray Tune experiment file (internal or pickled state, not read); "
            f"{read_through} is read"
        )
    if path.name in TRIAL_FILES or path.name == "error.txt":
        return f"part of Ray Tune trial {path.parent.name}: read through {read_through}"
    return f"Ray Tune trial file (not needed or pickled, not read); {read_through} is read"


def trial_number(trial_id: str, fallback: int) -> int:
    """Tune's trial index: the digits after the last ``_`` of the trial id."""
    tail = trial_id.rpartition("_")[2]
    return int(tail) if tail.isdigit() else fallback


def _state_trials(state: Any) -> tuple[str | None, dict[str, dict[str, Any]]]:
    """The experiment's metric and, per trial directory, what the state says of the trial."""
    if not isinstance(state, dict):
        return None, {}
    runner = state.get("runner_data")
    metric = runner.get("_metric") if isinstance(runner, dict) else None
    trials: dict[str, dict[str, Any]] = {}
    for entry in state.get("trial_data") or []:
        text = entry[0] if isinstance(entry, list) and entry else entry
        if not isinstance(text, str):
            continue
        try:
            info = load_json_bytes(text.encode("utf-8")).value
        except JsonReadError:
            continue
        if isinstance(info, dict) and isinstance(info.get("relative_logdir"), str):
            trials[info["relative_logdir"]] = info
    return (metric if isinstance(metric, str) and metric else None), trials


def _trial_dirs(experiment: Path, known: dict[str, dict[str, Any]]) -> list[Path]:
    found = set()
    try:
        for child in experiment.iterdir():
            if child.is_dir() and any((child / n).is_file() for n in TRIAL_FILES):
                found.add(child.name)
    except OSError:
        pass
    found.update(name for name in known if (experiment / name).is_dir())
    return [experiment / name for name in sorted(found)]


def _results(path: Path, max_bytes: int, problems: list[Problem]) -> list[dict[str, Any]]:
    """The lines of ``result.json``; an unfinished last line (a trial still running) is
    skipped, a damaged line elsewhere is skipped with a warning."""
    if not path.is_file():
        return []
    holder = ReadResult()
    data = read_bytes_checked(path, max_bytes, holder)
    if data is None:
        problems.extend(
            Problem(p.code, f"{path.parent.name}/result.json: {p.message}") for p in holder.problems
        )
        return []
    lines = data.split(b"\n")
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = load_json_bytes(line).value
        except JsonReadError as err:
            if number == len(lines):
                problems.append(
                    Problem(
                        "unfinished_line",
                        f"{path.parent.name}/result.json: last line unfinished; ignored",
                        "note",
                    )
                )
            else:
                problems.append(
                    Problem(
                        "invalid_json",
                        f"{path.parent.name}/result.json line {number}: {err}; skipped",
                    )
                )
            continue
        if isinstance(value, dict):
            rows.append(value)
    return rows


def _metrics(result: dict[str, Any]) -> dict[str, float]:
    flat = flatten({k: v for k, v in result.items() if k not in BOOKKEEPING})
    metrics: dict[str, float] = {}
    for key, value in flat.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            metrics[key] = float(value)
    return metrics


def _error_line(trial_dir: Path) -> str | None:
    try:
        text = (trial_dir / "error.txt").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    lines = [_ANSI.sub("", line).strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:500] if lines else "error.txt"


def read(path: Path, display: str, settings: Settings) -> ReadResult:
    result = ReadResult()
    if path.name == "result.json":  # an experiment without its state file
        if read_bytes_checked(path, settings.max_file_bytes, result) is None:
            return result
        experiment, state_value = path.parent.parent, None
        result.problems.append(
            Problem(
                "no_experiment_state",
                "no experiment_state-*.json: every trial directory of "
                f"{experiment.name or 'the experiment'} read from here; statuses from "
                "error files only",
                "note",
            )
        )
        display = display.rsplit("/", 1)[0]
    else:
        loaded = read_json_checked(path, settings.max_file_bytes, result)
        if loaded is None:
            return result
        experiment, state_value = path.parent, loaded.value
    study = experiment.name or "ray_tune"
    if not settings.study_selected(study):
        result.problems.append(
            Problem("study_not_selected", f"1 study(ies) not selected by --study: {study}", "note")
        )
        return result
    metric, known = _state_trials(state_value)
    objective = settings.objective or metric
    if objective is None:
        result.problems.append(
            Problem(
                "objective_unknown",
                "the experiment state names no metric; give --objective NAME "
                "(the trials are kept without an objective value)",
            )
        )
    runs = list(_runs(experiment, known, objective, settings))
    longest = max((len(run.curve) for run in runs), default=0)
    for run in runs:
        if run.state == "COMPLETE" and 0 < len(run.curve) < longest:
            run.state = "PRUNED"  # stopped by the scheduler before the longest trial's end
    factors = parse_study_factors(study, settings.compiled_pattern())
    prefix = display.rsplit("/", 1)[0] if "/" in display else experiment.as_posix()
    for run in sorted(runs, key=lambda r: r.number):
        result.add(
            build_run(
                run,
                study=study,
                source_file=f"{prefix}/{run.extra['ray_trial_dir']}",
                factors=factors,
                objective_name=objective,
                direction=None,
                direction_source=None,
                aliases=settings.field_aliases,
            )
        )
    if not runs:
        result.problems.append(Problem("no_trials", "the experiment holds no trial directories"))
    return result


def _runs(
    experiment: Path,
    known: dict[str, dict[str, Any]],
    objective: str | None,
    settings: Settings,
) -> Iterator[ForeignRun]:
    for position, trial_dir in enumerate(_trial_dirs(experiment, known)):
        info = known.get(trial_dir.name, {})
        run_problems: list[Problem] = []
        params_raw: Any = None
        params_file = trial_dir / "params.json"
        if params_file.is_file():
            holder = ReadResult()
            loaded = read_json_checked(params_file, settings.max_file_bytes, holder)
            params_raw = loaded.value if loaded is not None else None
            run_problems.extend(
                Problem(p.code, f"{trial_dir.name}/params.json: {p.message}")
                for p in holder.problems
            )
        if not isinstance(params_raw, dict):
            params_raw = info.get("config") if isinstance(info.get("config"), dict) else {}
        results = _results(trial_dir / "result.json", settings.max_file_bytes, run_problems)
        trial_id = info.get("trial_id") or next(
            (r["trial_id"] for r in results if isinstance(r.get("trial_id"), str)), None
        )
        trial_id = trial_id if isinstance(trial_id, str) else trial_dir.name
        curve: list[dict[str, Any]] = []
        for index, row in enumerate(results):
            epoch = row.get("training_iteration")
            epoch = epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else index + 1
            curve.append({"epoch": epoch, **_metrics(row)})
        error = _error_line(trial_dir) if (trial_dir / "error.txt").is_file() else None
        status = info.get("status")
        state = STATES.get(status, "COMPLETE") if isinstance(status, str) else "COMPLETE"
        if error is not None:
            state = "FAIL"
        value = None
        if objective is not None:
            steps = [(p["epoch"], p[objective]) for p in curve if objective in p]
            value = steps[-1][1] if steps else None
            if value is None and state == "COMPLETE":
                run_problems.append(
                    Problem(
                        "objective_missing",
                        f"{trial_dir.name}: no {objective!r} in its results",
                    )
                )
        last = results[-1] if results else {}
        extra: dict[str, Any] = {"ray_trial_id": trial_id, "ray_trial_dir": trial_dir.name}
        if error is not None:
            extra["ray_error"] = error
        yield ForeignRun(
            number=trial_number(trial_id, position),
            state=state,
            objective=value,
            params=flatten(params_raw),
            curve=curve,
            duration_sec=number_or_none(last.get("time_total_s")),
            extra=extra,
            problems=run_problems,
        )
