"""Reader for study dumps: one JSON file holding many Optuna-like trials.

Two shapes are read:

- a list of trial objects (``number``, ``value`` or ``values``, ``state``, ``params``,
  ``user_attrs``, optionally ``intermediate_values`` and datetimes), as in
  ``<study>/all_trials.json``;
- an object with a ``trials`` list, as in ``<study>_all_trials.json``; its ``study_name``,
  ``direction``/``directions`` and ``metric_names`` keys are used when present.

The study is the directory name for ``all_trials.json`` / ``trials.json``, ``X`` for
``X_all_trials.json``, else the object's ``study_name`` or the file stem. A
``best_params.json`` beside the dump (see :mod:`.study_meta`) fills the budget and horizon the
study name lacks and gives the direction. Without any direction, the objective's name is
taken from a user attribute equal to the value in every trial that has it (``val_auc`` in
runners that store the metric twice), and the direction follows from that name.

Files are claimed by name (``all_trials.json``, ``trials.json``, ``*_all_trials.json``) before
the per-trial reader looks at them, and — after every other reader — by content: any other
``.json`` whose first 4 KiB open a list of trial objects or an object with a ``trials`` list.
A ``trial_metrics.csv`` beside a dump (the same trials flattened by the runner) is listed in
the manifest as ignored, with that reason: the dump is the source.

Example::

    >>> sniff_name(Path("hpo_2m_h1/all_trials.json")), sniff_name(Path("a/trials/trial_1.json"))
    (True, False)
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from ..model import Problem, Settings, Trial
from ..normalize import clean_columns, parse_study_factors
from .base import (
    CleanRead,
    CleanTrial,
    ReadResult,
    duplicate_keys_problem,
    head_bytes,
    read_json_checked,
)
from .optuna_common import (
    ObjectiveSpec,
    build_trial,
    direction_name,
    finite,
    is_plain,
    objective_spec,
    spec_fields,
)
from .study_meta import (
    DUMP_NAMES,
    DUMP_SUFFIX,
    OBJECTIVE_KEYS,
    completed_values,
    load_meta,
    meta_beside,
    meta_candidates,
)

NAME = "study_dump"
FORMAT = "study dump"


def depends_on(path: Path) -> list[Path]:
    """The files besides ``path`` whose contents its reading uses: the study's metadata file
    (see :func:`~hpo_analysis.sources.study_meta.meta_beside`: horizon, factors, objective,
    direction). The cache keeps its results only as long as these are unchanged."""
    return meta_candidates(path)


SNIFF_BYTES = 4096
SIDECAR_CSV = ("trial_metrics.csv",)
_TRIAL_KEYS = re.compile(rb'"(?:number|trial_number|params|value|values|state)"\s*:')
_TRIALS_LIST = re.compile(rb'"trials"\s*:\s*\[')


def sniff_name(path: Path) -> bool:
    name = path.name.lower()
    return name in DUMP_NAMES or (name.endswith(DUMP_SUFFIX) and name != DUMP_SUFFIX[1:])


def sniff_content(path: Path) -> bool:
    """A ``.json`` opening a list of trial objects, or an object with a ``trials`` list."""
    if path.suffix.lower() != ".json":
        return False
    head = head_bytes(path, SNIFF_BYTES)
    if head is None:
        return False
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"["):
        return text[1:].lstrip().startswith(b"{") and bool(_TRIAL_KEYS.search(text))
    return text.startswith(b"{") and bool(_TRIALS_LIST.search(text))


def ignore_reason(path: Path) -> str | None:
    """Why a runner's side file next to a dump is not read (None: not such a file)."""
    if path.name.lower() not in SIDECAR_CSV:
        return None
    for dump_name in DUMP_NAMES:
        if (path.parent / dump_name).is_file():
            return (
                f"the trials of {dump_name} beside it, flattened by the runner; not read "
                "(the dump is the source)"
            )
    return None


def study_name(path: Path, container: dict[str, Any]) -> str:
    name = path.name
    if name.lower() in DUMP_NAMES:
        return path.parent.name or path.stem
    if name.lower().endswith(DUMP_SUFFIX):
        return name[: -len(DUMP_SUFFIX)]
    given = container.get("study_name")
    return given if isinstance(given, str) and given else path.stem


def read(path: Path, display: str, settings: Settings) -> ReadResult:
    result = ReadResult()
    _read(path, display, settings, result, result.trials, False)
    return result


def read_clean(path: Path, display: str, settings: Settings) -> CleanRead | ReadResult:
    """:func:`read`, with each clean trial (the common thin record of a runner's dump) as
    its fields (:class:`~.base.CleanTrial`), which the pipeline turns into its row without a
    Trial object; the others are read as :func:`read` reads them, in the file's order."""
    if settings.studies:  # the pipeline filters the trials of a Trial each
        return read(path, display, settings)
    result = ReadResult()
    trials: list[CleanTrial | Trial] = []
    _read(path, display, settings, result, trials, True)
    return CleanRead(result, trials)


def _read(
    path: Path,
    display: str,
    settings: Settings,
    result: ReadResult,
    trials: list[Any],
    quick: bool,
) -> None:
    """Read the dump into ``result`` (its problems) and ``trials`` (each a Trial, or with
    ``quick`` a :class:`~.base.CleanTrial` when it is clean)."""
    meta_path = meta_beside(path)
    # a best-trial file beside it reads the dump too: one parse for both
    loaded = read_json_checked(path, settings.max_file_bytes, result, meta_path is not None)
    if loaded is None:
        return
    value = loaded.value
    container: dict[str, Any] = value if isinstance(value, dict) else {}
    raw_trials = value if isinstance(value, list) else container.get("trials")
    if not isinstance(raw_trials, list):
        result.problems.append(
            Problem(
                "not_a_dump",
                'expected a JSON list of trials or an object with a "trials" list',
                "rejected",
            )
        )
        return
    duplicates = duplicate_keys_problem(loaded)
    if duplicates is not None:
        result.problems.append(duplicates)
    study = study_name(path, container)
    objects = [t for t in raw_trials if isinstance(t, dict)]
    if len(objects) < len(raw_trials):
        result.problems.append(
            Problem(
                "not_a_trial", f"{len(raw_trials) - len(objects)} entries are not objects; skipped"
            )
        )
    meta = load_meta(meta_path, settings.max_file_bytes) if meta_path else None

    factors = parse_study_factors(study, settings.compiled_pattern())
    if meta is not None:
        for factor in factors:
            meta_value = meta.factor(factor)
            if meta_value is not None and not factors.get(factor):
                factors[factor] = meta_value
    spec = _objective(container, objects, meta, settings)
    if spec.problem is not None:
        result.problems.append(spec.problem)
    aliases = settings.field_aliases
    for raw in objects:
        intermediate = None
        if "intermediate_values" in raw:  # build_trial copies raw: no copy without them
            raw = dict(raw)
            intermediate = _intermediate(raw.pop("intermediate_values"))
        elif quick and is_plain(raw):  # what build_trial's clean path would build
            clean = clean_columns(
                raw,
                study=study,
                source_file=display,
                factors=factors,
                aliases=aliases,
                **spec_fields(spec, {}),
            )
            if clean is not None:
                trials.append(CleanTrial(*clean))
                continue
        built = build_trial(
            raw,
            study=study,
            source_file=display,
            factors=factors,
            spec=spec,
            intermediate_values=intermediate,
            aliases=aliases,
        )
        if isinstance(built, Problem):  # as ReadResult.add, in the file's order
            result.problems.append(built)
        else:
            result.problems.extend(built.problems)
            trials.append(built)
    if not objects:
        result.problems.append(Problem("no_trials", "the dump holds no trials"))


def _intermediate(raw: Any) -> dict[int, Any] | None:
    if not isinstance(raw, dict):
        return None
    steps: dict[int, Any] = {}
    for key, value in raw.items():
        try:
            steps[int(key)] = value
        except (TypeError, ValueError):
            continue
    return steps


def _objective(
    container: dict[str, Any], trials: list[dict[str, Any]], meta: Any, settings: Settings
) -> ObjectiveSpec:
    """Objectives, their names and direction: the dump's own keys, then best_params.json,
    then a user attribute mirroring the value."""
    n_objectives = max(
        [1] + [len(t["values"]) for t in trials if isinstance(t.get("values"), list)]
    )
    names = container.get("metric_names")
    names = [str(n) for n in names] if isinstance(names, list) else None
    raw_directions = container.get("directions")
    if not isinstance(raw_directions, list):
        raw_directions = [container.get("direction")]
    directions = [direction_name(d) for d in raw_directions]
    source = "study dump"
    if not any(directions) and meta is not None:
        source = meta.path.name
        if meta.direction:
            directions = [meta.direction]
        else:
            inferred = meta.direction_from_values(completed_values(trials))
            if inferred:
                directions, source = [inferred[0]], inferred[1]
    spec = objective_spec(n_objectives, names, directions, settings.rank_by, source)
    if n_objectives == 1 and spec.name is None:
        name = next(
            (container[k] for k in OBJECTIVE_KEYS if isinstance(container.get(k), str)), None
        )
        name = name or (meta.objective_name if meta is not None else None)
        name = name or mirrored_attribute(trials)
        spec = dataclasses.replace(spec, name=name)
    return spec


def mirrored_attribute(trials: list[dict[str, Any]]) -> str | None:
    """The user attribute equal to the trial's value in every trial that has it (at least
    one), e.g. ``val_auc`` when the runner also stores the objective as an attribute.

    >>> mirrored_attribute([{"value": 0.7, "user_attrs": {"val_auc": 0.7, "epochs_run": 5}},
    ...                     {"value": 0.6}])
    'val_auc'
    """
    seen: dict[str, bool] = {}
    for trial in trials:
        attrs = trial.get("user_attrs")
        value = trial.get("value")
        if not isinstance(attrs, dict) or not finite(value):
            continue
        for key, attr in attrs.items():
            same = finite(attr) and attr == value
            seen[key] = seen.get(key, True) and same
    matches = sorted(k for k, same in seen.items() if same)
    return matches[0] if len(matches) == 1 else None
