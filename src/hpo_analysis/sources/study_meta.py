"""``best_params.json``: a study's metadata written by its runner beside a study dump.

It is not a trial: it is listed in the manifest with no trials, and it is used twice.

- The dump reader takes from it what the study name lacks (budget, horizon, any other named
  group of the study pattern such as a tier), the direction (an explicit ``direction`` key,
  else which end of the dump's values its ``best_value`` sits at) and the objective's name
  (``objective``/``metric`` keys, else the ``best_user_attrs`` entry equal to
  ``best_value``, e.g. ``val_auc``).
- This reader cross-checks it against the dump and the study name and reports every
  disagreement as a warning: a best trial that is not in the dump or has another value, an
  ``experiment`` naming another study, a budget, horizon or other factor contradicting the
  study name (the study name wins: runners copy these files between studies and forget to
  update them).

Example::

    >>> sniff(Path("hpo_2m_h1/best_params.json")), sniff(Path("s_best_params.json"))
    (True, True)
    >>> horizon_text(1), horizon_text("H3"), budget_text("20m")
    ('h1', 'h3', '20M')
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..jsonio import JsonReadError, load_json_bytes
from ..model import Problem, Settings
from ..normalize import name_text, normalize_state, parse_study_factors
from .base import ReadResult, load_json_shared, read_bytes_checked, read_json_checked
from .optuna_common import direction_name, not_selected

NAME = "study_meta"
FORMAT = "study metadata"
META_NAME = "best_params.json"
META_SUFFIX = "_best_params.json"
BEST_SUFFIX = "_best.json"  # <study>_<budget>_best.json, rewritten by the runner after each trial
DUMP_NAMES = ("all_trials.json", "trials.json")
DUMP_SUFFIX = "_all_trials.json"
OBJECTIVE_KEYS = ("objective", "objective_name", "metric", "metric_name")


def sniff(path: Path) -> bool:
    name = path.name.lower()
    return name == META_NAME or name.endswith((META_SUFFIX, BEST_SUFFIX))


def horizon_text(raw: Any) -> str | None:
    """``1`` / ``"1"`` / ``"h1"`` → ``"h1"`` (the study-name spelling)."""
    if isinstance(raw, bool) or raw is None:
        return None
    text = str(raw).strip().lower()
    if text.isdigit():
        return f"h{text}"
    return text if text.startswith("h") and text[1:].isdigit() else None


def budget_text(raw: Any) -> str | None:
    return raw.strip().upper() if isinstance(raw, str) and raw.strip() else None


@dataclass
class StudyMeta:
    """What a best_params.json says about its study."""

    path: Path
    experiment: str | None
    budget: str | None
    horizon: str | None
    direction: str | None
    objective_name: str | None
    best_trial: int | None
    best_value: float | None
    n_trials: int | None
    raw: dict[str, Any]
    # trials by state the file says the study had when it was written (None: not given)
    n_by_state: dict[str, int] = field(default_factory=dict)

    def factor(self, name: str) -> str | None:
        """The value of a study-name factor (a named group of the study pattern), spelled as
        the study name would spell it."""
        if name == "budget":
            return self.budget
        if name == "horizon":
            return self.horizon
        raw = self.raw.get(name)
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
            return None
        return str(raw)

    def direction_from_values(self, values: dict[int, float]) -> tuple[str, str] | None:
        """Which way the study went, from where ``best_value`` sits among the dump's finite
        values of COMPLETE trials: the highest → maximize, the lowest → minimize."""
        if self.best_value is None or not math.isfinite(self.best_value):
            return None
        finite = [v for v in values.values() if math.isfinite(v)]
        if len(set(finite)) < 2:
            return None
        label = f"{self.path.name}: best_value is the {{}} of the dump's values"
        if self.best_value >= max(finite):
            return "maximize", label.format("highest")
        if self.best_value <= min(finite):
            return "minimize", label.format("lowest")
        return None


def same_factor(name: str, a: str, b: str) -> bool:
    """``h1`` is horizon ``1``, ``20m`` is budget ``20M``; other factors compare as text."""
    if name == "horizon":
        return horizon_text(a) == horizon_text(b)
    if name == "budget":
        return budget_text(a) == budget_text(b)
    return a == b


def _number(raw: Any) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        return None
    return float(raw)


def parse_meta(path: Path, data: Any) -> StudyMeta | None:
    if not isinstance(data, dict):
        return None
    direction = direction_name(data.get("direction"))
    if direction is None and isinstance(data.get("directions"), list) and data["directions"]:
        direction = direction_name(data["directions"][0])
    objective = next((data[k] for k in OBJECTIVE_KEYS if isinstance(data.get(k), str)), None)
    best_value = _number(data.get("best_value"))
    attrs = data.get("best_user_attrs")
    if objective is None and isinstance(attrs, dict) and best_value is not None:
        objective = next(
            (k for k, v in sorted(attrs.items()) if _number(v) == best_value),
            None,
        )
    best_trial = data.get("best_trial", data.get("best_trial_number"))
    if isinstance(best_trial, dict):  # some runners store the whole trial
        best_trial = best_trial.get("number")
    n_trials = data.get("n_trials")
    return StudyMeta(
        path=path,
        experiment=data.get("experiment") if isinstance(data.get("experiment"), str) else None,
        budget=budget_text(data.get("budget")),
        horizon=horizon_text(data.get("horizon")),
        direction=direction,
        objective_name=objective,
        best_trial=best_trial if isinstance(best_trial, int) else None,
        best_value=best_value,
        n_trials=_count(n_trials),
        raw=data,
        n_by_state={
            state: count
            for state, key in COUNT_KEYS.items()
            if (count := _count(data.get(key))) is not None
        },
    )


COUNT_KEYS = {
    "COMPLETE": "n_trials_completed",
    "PRUNED": "n_trials_pruned",
    "RUNNING": "n_trials_running",
}


def _count(raw: Any) -> int | None:
    return raw if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0 else None


def load_meta(path: Path, max_bytes: int) -> StudyMeta | None:
    """The parsed file, or None when it is absent or unusable (its own reader says why)."""
    result = ReadResult()
    data = read_bytes_checked(path, max_bytes, result)
    if data is None:
        return None
    try:
        return parse_meta(path, load_json_bytes(data).value)
    except JsonReadError:
        return None


def meta_candidates(dump: Path) -> list[Path]:
    """Where the metadata file of a study dump may be, first found first."""
    candidates = []
    if dump.name.lower().endswith(DUMP_SUFFIX):
        candidates.append(dump.with_name(dump.name[: -len(DUMP_SUFFIX)] + META_SUFFIX))
    candidates.append(dump.with_name(META_NAME))
    return candidates


def meta_beside(dump: Path) -> Path | None:
    """``X_best_params.json`` for ``X_all_trials.json``, else ``best_params.json``."""
    return next((c for c in meta_candidates(dump) if c.is_file()), None)


def dump_candidates(meta: Path) -> list[Path]:
    """Every file :func:`dump_beside` looks at for a metadata file (the dumps of its folder
    when it has no name of its own), in that function's order."""
    name = meta.name.lower()
    if name.endswith(META_SUFFIX) and name != META_NAME:
        return [meta.with_name(meta.name[: -len(META_SUFFIX)] + DUMP_SUFFIX)]
    candidates = [meta.parent / dump_name for dump_name in DUMP_NAMES]
    try:
        candidates += sorted(
            p for p in meta.parent.iterdir() if p.name.lower().endswith(DUMP_SUFFIX)
        )
    except OSError:
        pass
    return candidates


def dump_beside(meta: Path) -> Path | None:
    """The study dump this metadata file belongs to (inverse of :func:`meta_beside`): of
    :func:`dump_candidates`, ``X_all_trials.json`` for ``X_best_params.json``, else the first
    of :data:`DUMP_NAMES` that is a file, else the folder's one ``*_all_trials.json``."""
    candidates = dump_candidates(meta)
    name = meta.name.lower()
    if name.endswith(META_SUFFIX) and name != META_NAME:
        return candidates[0] if candidates[0].is_file() else None
    named = next((c for c in candidates[: len(DUMP_NAMES)] if c.is_file()), None)
    if named is not None:
        return named
    dumps = candidates[len(DUMP_NAMES) :]
    return dumps[0] if len(dumps) == 1 else None


def depends_on(path: Path) -> list[Path]:
    """The files besides ``path`` whose contents its reading uses: the study dump it is
    checked against (see :func:`dump_beside`). The cache keeps its results only as long as
    these are unchanged."""
    return dump_candidates(path)


def study_of(path: Path) -> str:
    """Study name of a dump or metadata file: ``X`` for ``X_all_trials.json`` /
    ``X_best_params.json``, else the directory name (``<study>/<study>_2B_best.json``)."""
    name = path.name
    for suffix in (DUMP_SUFFIX, META_SUFFIX):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name_text(name[: -len(suffix)])
    return name_text(path.parent.name or path.stem)


def meta_study(path: Path) -> str:
    """The study a metadata file describes: the study of the dump beside it, else as
    :func:`study_of` says."""
    dump = dump_beside(path)
    return study_of(dump if dump is not None else path)


def check_against_trials(
    meta: StudyMeta, trials: list[tuple[int, str, float | None]], checked_by_dump: bool
) -> list[Problem]:
    """Compare what the file says with the trials read for its study (every record of every
    trial merged): counts by state, and the best trial when no dump beside it was checked.
    ``trials`` holds (trial number, state, finite objective or None)."""
    problems = []
    counts: dict[str, int] = {}
    for _, state, _ in trials:
        counts[state] = counts.get(state, 0) + 1
    for state, claimed in sorted(meta.n_by_state.items()):
        have = counts.get(state, 0)
        if have < claimed:
            problems.append(
                Problem(
                    "meta_trials_missing",
                    f"{COUNT_KEYS[state]} {claimed} but {have} {state} trial(s) of the study "
                    f"were read: {claimed - have} missing from the sources",
                )
            )
        elif have > claimed:
            problems.append(
                Problem(
                    "meta_older_than_trials",
                    f"{COUNT_KEYS[state]} {claimed} but {have} {state} trial(s) were read "
                    "(the file predates the last trials)",
                    "note",
                )
            )
    if not checked_by_dump and meta.best_trial is not None:
        found = {number: (state, value) for number, state, value in trials}
        if meta.best_trial not in found:
            problems.append(
                Problem("meta_best_missing", f"best trial {meta.best_trial} was not read")
            )
        else:
            state, value = found[meta.best_trial]
            if (
                meta.best_value is not None
                and value is not None
                and not math.isclose(value, meta.best_value, rel_tol=1e-12, abs_tol=0.0)
            ):
                problems.append(
                    Problem(
                        "meta_best_mismatch",
                        f"best_value {meta.best_value!r} but trial {meta.best_trial} has {value!r}",
                    )
                )
    return problems


def direction_from(meta: StudyMeta, values: list[float]) -> tuple[str, str] | None:
    """The study's direction by this file: its ``direction`` key, else where ``best_value``
    sits among the study's finite objectives of COMPLETE trials."""
    if meta.direction:
        return meta.direction, meta.path.name
    found = meta.direction_from_values(dict(enumerate(values)))
    return (
        (found[0], found[1].replace("the dump's values", "the study's values")) if found else None
    )


def completed_values(trials: list[Any]) -> dict[int, float]:
    """number → value of the COMPLETE trials of a dump (for the direction and the checks)."""
    values: dict[int, float] = {}
    for raw in trials:
        if not isinstance(raw, dict):
            continue
        number = raw.get("number", raw.get("trial_number"))
        value = _number(raw.get("value"))
        if value is None and isinstance(raw.get("values"), list) and raw["values"]:
            value = _number(raw["values"][0])
        state, _ = normalize_state(raw.get("state", "COMPLETE"))
        if isinstance(number, int) and value is not None and state == "COMPLETE":
            values[number] = value
    return values


def dump_trials(data: Any) -> list[Any] | None:
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and isinstance(data.get("trials"), list):
        return data["trials"]
    return None


def read(path: Path, display: str, settings: Settings) -> ReadResult:
    result = ReadResult()
    loaded = read_json_checked(path, settings.max_file_bytes, result)
    if loaded is None:
        return result
    meta = parse_meta(path, loaded.value)
    if meta is None:
        result.problems.append(
            Problem("not_an_object", "expected a JSON object of study metadata", "rejected")
        )
        return result
    dump = dump_beside(path)
    study = study_of(dump if dump is not None else path)
    warn = result.problems.append
    if meta.experiment is not None and meta.experiment != study:
        warn(
            Problem(
                "meta_other_study",
                f"names experiment {meta.experiment!r} but belongs to study {study!r} "
                "(the study name is used)",
            )
        )
    if not settings.study_selected(study):
        result.problems.append(not_selected([study]))
        return result
    parsed = parse_study_factors(study, settings.compiled_pattern())
    for factor, from_name in parsed.items():
        value = meta.factor(factor)
        if value is not None and from_name and not same_factor(factor, from_name, value):
            warn(
                Problem(
                    "meta_factor_mismatch",
                    f"{factor} {value!r} contradicts the study name's {from_name!r} "
                    "(the study name's is used)",
                )
            )
    if dump is None:
        result.problems.append(
            Problem("meta_no_dump", "no study dump beside it; not cross-checked", "note")
        )
        return result
    _cross_check(meta, dump, settings, result)
    return result


def _cross_check(meta: StudyMeta, dump: Path, settings: Settings, result: ReadResult) -> None:
    holder = ReadResult()
    raw = read_bytes_checked(dump, settings.max_file_bytes, holder)
    try:  # parsed once for this check and the dump's own reader
        trials = (
            dump_trials(load_json_shared(raw, holder.sha256).value) if raw is not None else None
        )
    except JsonReadError:
        trials = None
    if trials is None:
        result.problems.append(
            Problem("meta_dump_unreadable", f"{dump.name} beside it is unusable; not cross-checked")
        )
        return
    values = completed_values(trials)
    warn = result.problems.append
    if meta.n_trials is not None and meta.n_trials != len(trials):
        warn(
            Problem(
                "meta_count_mismatch",
                f"n_trials {meta.n_trials} but {dump.name} holds {len(trials)} trials",
            )
        )
    if meta.best_trial is not None:
        if meta.best_trial not in values:
            warn(
                Problem(
                    "meta_best_missing",
                    f"best_trial {meta.best_trial} is not a COMPLETE trial of {dump.name}",
                )
            )
        elif meta.best_value is not None and not math.isclose(
            values[meta.best_trial], meta.best_value, rel_tol=1e-12, abs_tol=0.0
        ):
            warn(
                Problem(
                    "meta_best_mismatch",
                    f"best_value {meta.best_value!r} but trial {meta.best_trial} has "
                    f"{values[meta.best_trial]!r} in {dump.name}",
                )
            )
    inferred = meta.direction_from_values(values)
    if meta.direction and inferred and inferred[0] != meta.direction:
        warn(
            Problem(
                "meta_direction_mismatch",
                f"direction {meta.direction!r} but best_value is the "
                f"{'highest' if inferred[0] == 'maximize' else 'lowest'} value of {dump.name}",
            )
        )
    if meta.best_value is not None and inferred is None and len(set(values.values())) > 1:
        warn(
            Problem(
                "meta_best_not_extreme",
                f"best_value {meta.best_value!r} is neither the highest nor the lowest value "
                f"of {dump.name}",
            )
        )
