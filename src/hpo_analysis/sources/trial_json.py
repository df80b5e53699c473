"""Reader for the per-trial JSON layout: ``<study>/trials/trial_NNNN.json``, one trial a file.

The study is the directory above ``trials/`` (or the file's own directory when there is no
``trials/`` level); the trial number falls back to the digits of the file name.

Example::

    >>> sniff(Path("outputs/hpo/s/trials/trial_0007.json")), sniff(Path("s/trials.json"))
    (True, False)
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path, PurePath
from typing import Any

from ..jsonio import LoadedJson
from ..model import Problem, Settings
from ..normalize import clean_columns, name_text, normalize_trial, parse_study_factors
from .base import (
    CleanRead,
    CleanTrial,
    ReadResult,
    duplicate_keys_problem,
    json_kind,
    read_json_checked,
)
from .study_meta import DUMP_NAMES, DUMP_SUFFIX

NAME = "trial_json"
FORMAT = "per-trial JSON"
_NUMBER_IN_NAME = re.compile(r"(\d+)(?!.*\d)")


def sniff(path: Path) -> bool:
    """Claims ``*.json`` files inside a ``trials`` directory or named ``trial*.json``, except
    the names of study dumps (``trials.json``, ``all_trials.json``, ``*_all_trials.json``)."""
    name = path.name.lower()
    if path.suffix.lower() != ".json" or name in DUMP_NAMES or name.endswith(DUMP_SUFFIX):
        return False
    return path.parent.name == "trials" or name.startswith("trial")


def study_of(path: Path) -> str:
    parent = path.parent
    if parent.name == "trials" and parent.parent.name:
        return name_text(parent.parent.name)
    return name_text(parent.name) or "study"


def number_in_name(path: Path) -> int | None:
    return _number_in_file_name(path.name)


@functools.lru_cache(maxsize=1 << 16)
def _number_in_file_name(name: str) -> int | None:
    """:func:`number_in_name` by the file's name (``trial_0007.json``: the same in every
    study's folder)."""
    match = _NUMBER_IN_NAME.search(PurePath(name).stem)
    return int(match.group(1)) if match else None


def read(path: Path, display: str, settings: Settings) -> ReadResult:
    result = ReadResult()
    loaded = read_json_checked(path, settings.max_file_bytes, result)
    if loaded is None:
        return result
    return _normalized(loaded, path, display, settings, result)


def read_clean(path: Path, display: str, settings: Settings) -> CleanRead | ReadResult:
    """:func:`read`, or for the runner's common clean file its trial with the learning curve
    as columns (:class:`~.base.CleanRead`), which the pipeline turns into its row, curve block
    and JSON fragment without a per-epoch object. The file is read and parsed once either way;
    anything the quick path is not sure of gets exactly :func:`read`'s result."""
    result = ReadResult()
    loaded = read_json_checked(path, settings.max_file_bytes, result, apart=_CURVE_PATH)
    if loaded is None:
        return result
    raw = loaded.value
    if type(raw) is dict and not result.problems and not loaded.duplicate_keys:
        clean = clean_columns(raw, **_context(path, display, settings))
        if clean is not None:
            fields, curve = clean
            apart = loaded.apart  # the curve's JSON, when these are the entries encoded
            curve_json = (
                apart[1] if apart and curve is not None and curve.entries is apart[0] else None
            )
            return CleanRead(result, [CleanTrial(fields, curve, curve_json)])
    return _normalized(loaded, path, display, settings, result)


# where the runner keeps a trial's learning curve (the quick path writes it again)
_CURVE_PATH = ("user_attrs", "learning_curve")


def _context(path: Path, display: str, settings: Settings) -> dict[str, Any]:
    """What a trial file's path and the settings say of its trial, for either path."""
    key = (os.path.dirname(path), settings.study_pattern)
    known = _FOLDERS.get(key)
    if known is None:
        if len(_FOLDERS) >= _FOLDERS_KEPT:
            _FOLDERS.clear()
        study = study_of(path)
        known = _FOLDERS[key] = (study, parse_study_factors(study, settings.compiled_pattern()))
    study, factors = known
    return {
        "study": study,
        "source_file": display,
        "factors": dict(factors),
        "fallback_number": number_in_name(path),
        "aliases": settings.field_aliases,
    }


# (a folder's path text, the study-name pattern) -> the study and factors of its trial files:
# the same for every file of a folder (study_of looks at the file's parent only), so worked
# out once per folder
_FOLDERS: dict[tuple[str, str], tuple[str, dict[str, str | None]]] = {}
_FOLDERS_KEPT = 4096


def _normalized(
    loaded: LoadedJson, path: Path, display: str, settings: Settings, result: ReadResult
) -> ReadResult:
    raw = loaded.value
    if not isinstance(raw, dict):
        result.problems.append(
            Problem(
                "not_an_object",
                f"expected a JSON object (one trial), found {json_kind(raw)}",
                "rejected",
            )
        )
        return result
    duplicates = duplicate_keys_problem(loaded)
    if duplicates is not None:
        result.problems.append(duplicates)
    trial = normalize_trial(raw, **_context(path, display, settings))
    if isinstance(trial, Problem):
        result.problems.append(trial)
        return result
    result.problems.extend(trial.problems)
    result.trials.append(trial)
    return result
