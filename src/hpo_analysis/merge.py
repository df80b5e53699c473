"""One row per trial from every record of it: merge, don't pick.

A runner rarely writes one kind of file. Beside ``<study>/trials/trial_NNNN.json`` it keeps a
study dump (``<study>_all_trials.json``), a best-trial file and often the Optuna storage; a
log may hold the same trials again. Every record of one trial (same study, same trial number)
is combined into one row, field by field:

- records are ordered by how much they hold (:data:`MERGE_ORDER`): a per-trial file first,
  then an Optuna storage or journal, then a study dump, then a log; within one form, by path;
- each field comes from the first record that has it; fields only a later record has fill the
  gaps (``val_accuracy`` from a dump, dates from a storage);
- the learning curve and the columns computed from it come together from the first record
  that has a curve;
- where two records disagree on a compared field (:data:`COMPARED_FIELDS`: the objective, the
  state, the architecture, every parameter), the first record's value is kept and a
  :class:`Conflict` names both files, the field and both values;
- two records of the same form (two per-trial files, two journals) claiming one trial are a
  real duplicate: the first by path is kept, the other is not used.

Example::

    >>> a = Record({"study": "s", "trial_num": 1, "objective": 0.5, "objective_kind": "finite",
    ...             "state": "COMPLETE", "lr": 0.1, "val_accuracy": None, "_curve_len": 3},
    ...            (0, 1, 1, 1), [], "s/trials/trial_1.json", "trial_json", 0)
    >>> b = Record({"study": "s", "trial_num": 1, "objective": 0.5, "objective_kind": "finite",
    ...             "state": "COMPLETE", "lr": 0.2, "val_accuracy": 0.8, "_curve_len": 0},
    ...            (9, 1, 1, 0), [], "s/s_all_trials.json", "study_dump", 1)
    >>> merged = merge_records([b, a])
    >>> merged.row["lr"], merged.row["val_accuracy"], merged.row["sources"]
    (0.1, 0.8, 's/trials/trial_1.json; s/s_all_trials.json')
    >>> [(c.field, c.kept, c.other) for c in merged.conflicts]
    [('lr', 0.1, 0.2)]
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import compress
from typing import Any, NamedTuple

from .derive import CURVE_FIELDS
from .schema import BY_NAME, OBJECTIVE_PREFIX, PARAM_PREFIX

# Reader name -> place in the merge order (lower = more detailed, preferred).
MERGE_ORDER: dict[str, int] = {
    "trial_json": 0,
    "optuna_storage": 1,
    "optuna_journal": 1,
    "study_dump": 2,
    "optuna_log": 3,
}
OTHER_FORMATS = 2  # readers not listed above sit with the dumps
MERGE_ORDER_TEXT = (
    "per-trial JSON file → Optuna storage or journal → study dump (and other tables) → Optuna log"
)
SOURCES_SEPARATOR = "; "

ARCHITECTURE_FIELDS = ("d_model", "n_layers", "n_heads", "d_ff", "param_count", "arch_idx")
TRAINING_FIELDS = ("lr", "epochs_config", "weight_decay", "warmup_steps", "dropout", "batch_size")
COMPARED_FIELDS = ("objective", "state", *ARCHITECTURE_FIELDS, *TRAINING_FIELDS)
# Taken from the first record as they are: where the row came from, and its identity.
_OWN_FIELDS = {"study", "trial_num", "source_file", "source_format", "sources"}
_CURVE = set(CURVE_FIELDS) | {"epochs_trained"}
_DIRECTION = ("_direction", "_direction_source")


# text that repeats across records (the same few values, or one file's name for all of its
# records): one shared string each, so that records and rows stay small at scale
REPEATED_TEXT = frozenset(
    {
        "study",
        "budget",
        "horizon",
        "state",
        "stop_reason",
        "objective_kind",
        "objective_name",
        "direction",
        "direction_source",
        "arch_category",
        "arch_style",
        "source_file",
        "source_format",
    }
)


class _Form(NamedTuple):
    """What the records of one form (the field names of a record, in order) share: the
    names, where the repeated text is, and what a fold reads of them."""

    keys: tuple[str, ...]
    texts: tuple[int, ...]  # where the repeated text is
    compared: tuple[str, ...]  # the compared fields among the names, sorted
    checked: tuple[str, ...]  # what the comparison of those fields reads
    fillable: tuple[bool, ...]  # per name: may it fill a gap of the row it is folded into


_FORMS: dict[tuple[str, ...], _Form] = {}


def _form(keys: tuple[str, ...]) -> _Form:
    found = _FORMS.get(keys)
    if found is None:
        found = _FORMS[keys] = _Form(
            keys,
            tuple(i for i, k in enumerate(keys) if k in REPEATED_TEXT),
            _compared_names(keys),
            (*_compared_names(keys), "objective_kind"),
            tuple(k not in _NOT_FILLED for k in keys),
        )
    return found


_KEY_FORM = ("study", "trial_num")


class Record:
    """One file's record of one trial: its row, where its blobs are and where it came from.

    Every record of a run waits in memory for the merge, so the row is kept packed: the
    field names as one tuple shared by every record of the same form, and the values as a
    tuple (a third of a dict's size). :attr:`row` gives it back as a new dict, in its order;
    :attr:`key` is the trial's (study, trial number).
    """

    __slots__ = (
        "_form",
        "_values",
        "key",
        "location",
        "names",
        "file",
        "reader",
        "order",
        "outcome",
        "lead",
    )

    def __init__(
        self,
        row: dict[str, Any],
        location: Any,  # the spool location of its JSON fragment and curve block
        names: list[str],  # curve metric names of its curve block
        file: str,
        reader: str,
        order: int,  # position of the file in the sorted walk
    ) -> None:
        self._form = form = _form(tuple(row))
        values = list(row.values())
        for i in form.texts:
            if type(values[i]) is str:
                values[i] = sys.intern(values[i])
        self._values = tuple(values)
        study = row["study"]
        self.key: tuple[str, int] = (
            sys.intern(study) if type(study) is str else study,
            row["trial_num"],
        )
        self.location, self.names, self.file = location, names, file
        self.reader, self.order = reader, order
        # set by merge_records: "kept" (its row is the trial's row), "merged" (folded into
        # ``lead``'s row) or "duplicate" (same form as ``lead``, not used)
        self.outcome = ""
        self.lead: Record | None = None

    def __repr__(self) -> str:
        return f"Record({self.file!r}, {self.reader!r}, {self.row!r})"

    @property
    def row(self) -> dict[str, Any]:
        return dict(zip(self._form.keys, self._values, strict=True))

    @property
    def rank(self) -> tuple[int, int]:
        return MERGE_ORDER.get(self.reader, OTHER_FORMATS), self.order

    def release(self) -> None:
        """Once merged, keep only the trial's key: the manifest needs no more."""
        self._form, self._values = _form(_KEY_FORM), self.key


@dataclass(frozen=True)
class Conflict:
    """Two records of one trial disagree on ``field``; ``kept`` is the value used."""

    study: str
    trial_num: int
    field: str
    kept: Any
    other: Any
    kept_file: str
    other_file: str

    def message(self) -> str:
        return (
            f"trial {self.trial_num}: {self.field} {self.other!r} here but {self.kept!r} in "
            f"{self.kept_file} (kept)"
        )


@dataclass
class Merged:
    """The row of one trial, the blobs it uses, and what happened to its records."""

    row: dict[str, Any]
    location: Any
    names: list[str]
    primary: Record
    merged: list[Record] = field(default_factory=list)  # records folded into the primary
    duplicates: list[Record] = field(default_factory=list)  # same form as a kept record
    conflicts: list[Conflict] = field(default_factory=list)


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return True  # a gap is not a disagreement
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if isinstance(a, float) and math.isnan(a) and isinstance(b, float) and math.isnan(b):
            return True
        return a == b or math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)
    return bool(a == b)


def _compared(name: str) -> bool:
    """The objective, state, architecture and parameters, and the dynamic ``param_*`` and
    ``objective_<label>`` columns (not schema columns such as ``objective_kind``)."""
    if name in COMPARED_FIELDS:
        return True
    return name.startswith((PARAM_PREFIX, OBJECTIVE_PREFIX)) and name not in BY_NAME


def _objective_value(row: dict[str, Any]) -> Any:
    """The objective as recorded: finite value, or its kind (``nan``, ``inf``…)."""
    kind = row.get("objective_kind")
    return row.get("objective") if kind == "finite" else (None if kind == "missing" else kind)


def merge_records(records: Sequence[Record]) -> Merged:
    """Merge every record of one trial (see the module docstring)."""
    ordered = sorted(records, key=lambda r: r.rank)
    primary = ordered[0]
    primary.outcome, primary.lead = "kept", None
    row = primary.row
    result = Merged(row, primary.location, primary.names, primary)
    forms = {primary.reader: primary}
    for other in ordered[1:]:
        if other.reader in forms:
            other.outcome, other.lead = "duplicate", forms[other.reader]
            result.duplicates.append(other)
            continue
        forms[other.reader] = other
        other.outcome, other.lead = "merged", primary
        result.merged.append(other)
        _fold(result, other)
    row["sources"] = SOURCES_SEPARATOR.join(r.file for r in [primary, *result.merged])
    return result


def _fold(result: Merged, other: Record) -> None:
    row, form, values = result.row, other._form, other._values
    theirs = dict(zip(form.keys, values, strict=True))
    kept_file = result.primary.file
    get, their_get = row.get, theirs.get
    mine_values = tuple(map(get, form.checked))
    their_values = tuple(map(their_get, form.checked))
    # the usual case, settled in C: every compared field (and the objective's kind) equal and
    # of one type in both rows, which no comparison below would find in conflict
    agree = mine_values == their_values and tuple(map(type, mine_values)) == tuple(
        map(type, their_values)
    )
    for name in () if agree else form.compared:
        if name == "objective":
            mine, their = _objective_value(row), _objective_value(theirs)
        elif name == "state":
            mine = None if get("state") == "UNKNOWN" else get("state")
            their = None if their_get("state") == "UNKNOWN" else their_get("state")
        else:
            mine, their = get(name), their_get(name)
            # the usual case, settled without a call: a gap, or equal values of one type
            # (which _same accepts whatever the type)
            if mine is None or their is None or (type(mine) is type(their) and mine == their):
                continue
        if not _same(mine, their):
            result.conflicts.append(
                Conflict(row["study"], row["trial_num"], name, mine, their, kept_file, other.file)
            )
    if not get("_curve_len") and their_get("_curve_len"):
        for name in _CURVE:
            row[name] = their_get(name)
        result.location, result.names = other.location, other.names
    if get("objective_kind") == "missing" and their_get("objective_kind") != "missing":
        row["objective"], row["objective_kind"] = their_get("objective"), theirs["objective_kind"]
    if get("state") == "UNKNOWN" and their_get("state") not in (None, "UNKNOWN"):
        row["state"] = theirs["state"]
    if get("_direction") is None and their_get("_direction") is not None:
        for name in _DIRECTION:
            row[name] = their_get(name)
    # the gaps of the row filled from theirs (a new key goes last, in their order)
    row.update(
        {
            name: value
            for name, value in compress(zip(form.keys, values, strict=True), form.fillable)
            if value is not None and get(name) is None
        }
    )


# taken from the first record, set together above, or settled above
_NOT_FILLED = frozenset(
    _OWN_FIELDS | _CURVE | set(_DIRECTION) | {"objective", "objective_kind", "state"}
)


@functools.lru_cache(maxsize=1024)
def _compared_names(names: tuple[str, ...]) -> tuple[str, ...]:
    """The compared fields among a row's ``names``, sorted (rows of one form share their
    names, so this is worked out once per form)."""
    return tuple(sorted(name for name in names if _compared(name)))
