"""Reader for Optuna journal files (``JournalStorage(JournalFileBackend(path))``), without Optuna.

A journal is one JSON operation per line (``{"op_code": 4, "worker_id": ..., ...}``); the
study is the result of replaying them in order. ``optuna.load_study(...).trials`` does that
too, but builds and deep-copies a ``FrozenTrial`` (and re-parses every parameter's
distribution) for each trial, which takes seconds to minutes on large journals.
:func:`replay_journal` replays the same operations into plain records, with the same rules
(see ``JournalStorageReplayResult`` in Optuna), so its result equals Optuna's reading — the
tests prove it on journals written by Optuna, including studies still running.

Like Optuna's ``JournalFileBackend``, it reads only the bytes present when the file was
opened and ignores an unfinished (or undecodable) last line, which is what a study that is
still being written looks like. An invalid line in the middle stops the replay there, with a
warning (Optuna refuses the whole file).

Example::

    >>> replay = replay_journal(Path("optuna_journal.log"))  # doctest: +SKIP
    >>> [(s.name, len(s.trial_ids)) for s in replay.studies.values()]  # doctest: +SKIP
    [('search', 120)]
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..memory import collector_paused
from ..model import Problem, Settings
from ..normalize import parse_study_factors
from .base import ReadResult, head_bytes
from .optuna_common import (
    STATE_NAMES,
    build_trial,
    direction_name,
    not_selected,
    objective_spec,
)

NAME = "optuna_journal"
FORMAT = "Optuna journal"
SNIFF_BYTES = 4096

# JournalOperation in optuna.storages.journal._storage
CREATE_STUDY, DELETE_STUDY, SET_STUDY_USER_ATTR, SET_STUDY_SYSTEM_ATTR = 0, 1, 2, 3
CREATE_TRIAL, SET_TRIAL_PARAM, SET_TRIAL_STATE_VALUES = 4, 5, 6
SET_TRIAL_INTERMEDIATE_VALUE, SET_TRIAL_USER_ATTR, SET_TRIAL_SYSTEM_ATTR = 7, 8, 9
DISCARD_TRIALS = 10
RUNNING, WAITING = 0, 4
FINISHED = {1, 2, 3}  # COMPLETE, PRUNED, FAIL
METRIC_NAMES_ATTR = "study:metric_names"


def sniff(path: Path) -> bool:
    """Claims a file whose first line is a JSON object with an ``op_code`` (any file name)."""
    head = head_bytes(path, SNIFF_BYTES)
    if head is None:
        return False
    first = head.lstrip(b"\xef\xbb\xbf \t\r\n").split(b"\n", 1)[0]
    return first.startswith(b"{") and b'"op_code"' in first


@dataclass
class JournalStudy:
    study_id: int
    name: str
    directions: list[int]
    user_attrs: dict[str, Any] = field(default_factory=dict)
    system_attrs: dict[str, Any] = field(default_factory=dict)
    trial_ids: list[int] = field(default_factory=list)
    # per parameter: (number of the first trial in the study that has it, its distribution
    # kind); Optuna checks every new distribution against that trial's
    first_distribution: dict[str, tuple[int, tuple[Any, ...]]] = field(default_factory=dict)

    def saw_distribution(self, name: str, number: int, key: tuple[Any, ...]) -> None:
        known = self.first_distribution.get(name)
        if known is None or number < known[0]:
            self.first_distribution[name] = (number, key)


@dataclass(slots=True)
class JournalTrial:
    trial_id: int
    study_id: int
    number: int
    state: int
    values: list[Any] | None
    params: dict[str, Any]
    user_attrs: dict[str, Any]
    system_attrs: dict[str, Any]
    intermediate_values: dict[int, Any]
    datetime_start: str | None  # as recorded (Optuna ≥ 4 writes UTC with +00:00)
    datetime_complete: str | None

    @property
    def state_name(self) -> str:
        return STATE_NAMES.get(self.state, "UNKNOWN")


@dataclass
class JournalReplay:
    studies: dict[int, JournalStudy] = field(default_factory=dict)  # deleted ones removed
    trials: list[JournalTrial] = field(default_factory=list)  # index = trial_id
    n_operations: int = 0
    size_bytes: int = 0
    sha256: str = ""
    problems: list[Problem] = field(default_factory=list)

    def study_trials(self, study: JournalStudy) -> list[JournalTrial]:
        return [self.trials[i] for i in study.trial_ids]


# -- distributions: internal → external representation, parsed once per distinct JSON text ----

Converter = Callable[[Any], Any] | None  # None: the internal value is the external one
_FLOAT_NAMES = {
    "FloatDistribution",
    "UniformDistribution",
    "LogUniformDistribution",
    "DiscreteUniformDistribution",
}
_INT_NAMES = {"IntDistribution", "IntUniformDistribution", "IntLogUniformDistribution"}
_LOG_NAMES = {"LogUniformDistribution", "IntLogUniformDistribution"}


def _distribution(text: str, cache: dict[str, tuple[Converter, tuple[Any, ...]]]) -> Any:
    """(converter, compatibility key) of a distribution JSON text, as Optuna interprets it."""
    found = cache.get(text)
    if found is not None:
        return found
    spec = json.loads(text)
    if "name" in spec:
        name, attrs = spec["name"], spec.get("attributes", {})
    else:  # the abbreviated form: {"type": "float", "low": ..., "high": ..., "log": ...}
        name = {
            "categorical": "CategoricalDistribution",
            "float": "FloatDistribution",
            "int": "IntDistribution",
        }[spec["type"]]
        attrs = spec
    converter: Converter
    if name == "CategoricalDistribution":
        choices = tuple(attrs["choices"])
        converter = lambda internal: choices[int(internal)]  # noqa: E731
        key: tuple[Any, ...] = (name, choices)
    elif name in _FLOAT_NAMES or name in _INT_NAMES:
        log = bool(attrs.get("log", name in _LOG_NAMES))
        converter = int if name in _INT_NAMES else None
        key = (name, log)
    else:
        raise ValueError(f"unknown distribution {name!r}")
    cache[text] = (converter, key)
    return cache[text]


def _compatible(old: tuple[Any, ...], new: tuple[Any, ...]) -> bool:
    """Optuna's check_distribution_compatibility: same kind, same log flag / same choices."""
    return old == new


# -- replay ---------------------------------------------------------------------------------


class _Replayer:
    def __init__(self) -> None:
        self.result = JournalReplay()
        self.distributions: dict[str, tuple[Converter, tuple[Any, ...]]] = {}
        self.names: set[str] = set()
        self.next_study_id = 0
        self.skipped: dict[str, int] = {}

    def apply(self, op: dict[str, Any]) -> None:
        code = op["op_code"]
        handler = self.HANDLERS.get(code)
        if handler is None:
            if code != DISCARD_TRIALS:  # Optuna itself ignores DISCARD_TRIALS
                self.skipped[f"unknown op_code {code!r}"] = (
                    self.skipped.get(f"unknown op_code {code!r}", 0) + 1
                )
            return
        handler(self, op)

    def _create_study(self, op: dict[str, Any]) -> None:
        name = op["study_name"]
        directions = [int(d) for d in op["directions"]]
        if name in self.names:
            return
        study_id = self.next_study_id
        self.next_study_id += 1
        self.names.add(name)
        self.result.studies[study_id] = JournalStudy(study_id, name, directions)

    def _delete_study(self, op: dict[str, Any]) -> None:
        study = self.result.studies.pop(op["study_id"], None)
        if study is not None:
            self.names.discard(study.name)

    def _study_attr(self, op: dict[str, Any]) -> None:
        study = self.result.studies.get(op["study_id"])
        if study is None:
            return
        if "user_attr" in op:
            study.user_attrs = {**study.user_attrs, **op["user_attr"]}
        else:
            study.system_attrs = {**study.system_attrs, **op["system_attr"]}

    def _create_trial(self, op: dict[str, Any]) -> None:
        study = self.result.studies.get(op["study_id"])
        if study is None:
            return
        trials = self.result.trials
        number = len(study.trial_ids)
        params: dict[str, Any] = {}
        raw_params = op.get("params")
        if raw_params:
            dists = op.get("distributions", {})
            cache = self.distributions
            first = study.first_distribution
            for name, internal in raw_params.items():
                text = dists[name]
                converter, key = cache.get(text) or _distribution(text, cache)
                params[name] = internal if converter is None else converter(internal)
                if name not in first:  # numbers only grow: the first trial with it stays first
                    first[name] = (number, key)
        value, values = op.get("value"), op.get("values")
        if value is not None and values is not None:
            raise ValueError("both 'value' and 'values' are set")
        if values is not None and not isinstance(values, list):
            raise ValueError("'values' is not a list")
        intermediate = op.get("intermediate_values")
        trial = JournalTrial(
            trial_id=len(trials),
            study_id=study.study_id,
            number=number,
            state=int(op.get("state", RUNNING)),
            values=[value] if value is not None else (list(values) if values is not None else None),
            params=params,
            user_attrs=op.get("user_attrs", {}),
            system_attrs=op.get("system_attrs", {}),
            intermediate_values=(
                dict(zip(map(int, intermediate), intermediate.values(), strict=True))
                if intermediate
                else {}
            ),
            datetime_start=op["datetime_start"],
            datetime_complete=op.get("datetime_complete"),
        )
        trials.append(trial)
        study.trial_ids.append(trial.trial_id)

    def _updatable(self, op: dict[str, Any]) -> JournalTrial | None:
        trial_id = op["trial_id"]
        if not 0 <= trial_id < len(self.result.trials):
            return None
        trial = self.result.trials[trial_id]
        return None if trial.state in FINISHED else trial

    def _set_param(self, op: dict[str, Any]) -> None:
        trial = self._updatable(op)
        if trial is None:
            return
        name = op["param_name"]
        converter, key = _distribution(op["distribution"], self.distributions)
        study = self.result.studies.get(trial.study_id)
        if study is not None:
            first = study.first_distribution.get(name)
            if first is not None and not _compatible(first[1], key):
                return
        internal = op["param_value_internal"]
        external = internal if converter is None else converter(internal)
        trial.params = {**trial.params, name: external}
        if study is not None:
            study.saw_distribution(name, trial.number, key)

    def _set_state_values(self, op: dict[str, Any]) -> None:
        trial = self._updatable(op)
        if trial is None:
            return
        state = int(op["state"])
        if state == RUNNING and trial.state == RUNNING:
            return  # another worker already popped this waiting trial
        if state == RUNNING:
            trial.datetime_start = op["datetime_start"]
        if state in FINISHED:
            trial.datetime_complete = op["datetime_complete"]
        if op["values"] is not None and not isinstance(op["values"], list):
            raise ValueError("'values' is not a list")
        trial.state = state
        if op["values"] is not None:
            trial.values = op["values"]

    def _set_intermediate(self, op: dict[str, Any]) -> None:
        trial = self._updatable(op)
        if trial is not None:
            trial.intermediate_values = {
                **trial.intermediate_values,
                op["step"]: op["intermediate_value"],
            }

    def _trial_attr(self, op: dict[str, Any]) -> None:
        trial = self._updatable(op)
        if trial is None:
            return
        if "user_attr" in op:
            trial.user_attrs = {**trial.user_attrs, **op["user_attr"]}
        else:
            trial.system_attrs = {**trial.system_attrs, **op["system_attr"]}

    HANDLERS: dict[int, Callable[[_Replayer, dict[str, Any]], None]] = {
        CREATE_STUDY: _create_study,
        DELETE_STUDY: _delete_study,
        SET_STUDY_USER_ATTR: _study_attr,
        SET_STUDY_SYSTEM_ATTR: _study_attr,
        CREATE_TRIAL: _create_trial,
        SET_TRIAL_PARAM: _set_param,
        SET_TRIAL_STATE_VALUES: _set_state_values,
        SET_TRIAL_INTERMEDIATE_VALUE: _set_intermediate,
        SET_TRIAL_USER_ATTR: _trial_attr,
        SET_TRIAL_SYSTEM_ATTR: _trial_attr,
    }


def replay_journal(path: Path) -> JournalReplay:
    """Replay the journal at ``path`` as Optuna would; problems are recorded, never raised
    (except ``OSError`` when the file cannot be read).

    The cyclic garbage collector is paused meanwhile: replay builds many small dicts and no
    cycles, and collections triggered by those allocations would cost a third of the time.
    """
    with collector_paused():
        return _replay(path)


def _replay(path: Path) -> JournalReplay:
    replayer = _Replayer()
    result = replayer.result
    decode = json.JSONDecoder().decode
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        remaining = os.fstat(handle.fileno()).st_size  # bytes appended later are not read
        result.size_bytes = remaining
        pending: tuple[int, str] | None = None  # a bad line: fatal only if another follows
        for line_no, line in enumerate(handle, start=1):
            if remaining - len(line) < 0:
                break
            remaining -= len(line)
            digest.update(line)
            if pending is not None:
                result.problems.append(
                    Problem(
                        "journal_invalid_line",
                        f"line {pending[0]}: {pending[1]}; the operations after it are not read",
                    )
                )
                digest.update(handle.read(max(remaining, 0)))
                break
            if not line.endswith(b"\n"):
                pending = (line_no, "unfinished line")
                continue
            try:
                op = decode(line.decode("utf-8"))
            except (ValueError, RecursionError) as err:
                pending = (line_no, f"not valid JSON ({err})")
                continue
            result.n_operations += 1
            try:
                replayer.apply(op)
            except (KeyError, TypeError, ValueError, IndexError, ArithmeticError) as err:
                what = f"missing {err}" if isinstance(err, KeyError) else str(err)
                reason = f"malformed operation ({what})"
                replayer.skipped[reason] = replayer.skipped.get(reason, 0) + 1
        if pending is not None and not any(
            p.code == "journal_invalid_line" for p in result.problems
        ):
            result.problems.append(
                Problem(
                    "journal_unfinished",
                    f"last line ({pending[0]}) is incomplete and was ignored, as Optuna does "
                    "(was the study still running?)",
                    "note",
                )
            )
    result.sha256 = digest.hexdigest()
    for reason, count in sorted(replayer.skipped.items()):
        result.problems.append(
            Problem("journal_skipped_op", f"{count} operation(s) skipped: {reason}")
        )
    return result


def metric_names(study: JournalStudy) -> list[str] | None:
    names = study.system_attrs.get(METRIC_NAMES_ATTR)
    return [str(n) for n in names] if isinstance(names, list) else None


def read(path: Path, display: str, settings: Settings) -> ReadResult:
    result = ReadResult()
    try:
        replay = replay_journal(path)
    except OSError as err:
        result.problems.append(
            Problem("unreadable", f"cannot read: {err.strerror or err}", "rejected")
        )
        return result
    result.size_bytes, result.sha256 = replay.size_bytes, replay.sha256
    result.problems.extend(replay.problems)
    skipped = []
    for study in replay.studies.values():
        if not settings.study_selected(study.name):
            skipped.append(study.name)
            continue
        directions = [direction_name(d) for d in study.directions]
        trials = replay.study_trials(study)
        n_objectives = max(
            [len(directions)] + [len(t.values) for t in trials if t.values is not None]
        )
        spec = objective_spec(n_objectives, metric_names(study), directions, settings.rank_by)
        if spec.problem is not None:
            result.problems.append(spec.problem)
        factors = parse_study_factors(study.name, settings.compiled_pattern())
        for trial in trials:
            raw = {
                "number": trial.number,
                "state": trial.state_name,
                "values": trial.values,
                "params": trial.params,
                "user_attrs": trial.user_attrs,
                "datetime_start": trial.datetime_start,
                "datetime_complete": trial.datetime_complete,
            }
            built = build_trial(
                raw,
                study=study.name,
                source_file=display,
                factors=factors,
                spec=spec,
                intermediate_values=trial.intermediate_values,
                aliases=settings.field_aliases,
            )
            result.add(built)
    if skipped:
        result.problems.append(not_selected(skipped))
    if not replay.studies:
        result.problems.append(Problem("no_studies", "journal holds no study", "warning"))
    return result
