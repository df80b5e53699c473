"""Raw trial dict → canonical :class:`~hpo_analysis.model.Trial`.

Runners disagree on names (``learning_rate`` or ``lr``), on where things live (``params``,
``user_attrs.training_params``, top level), on spellings (``TrialState.COMPLETE``) and on types
(``"0.001"``). This module is the one place that knows those variants. Every oddity becomes a
:class:`~hpo_analysis.model.Problem`; nothing raises.

Example::

    >>> t = normalize_trial({"trial_number": 3, "value": 0.5, "state": "TrialState.COMPLETE",
    ...                      "params": {"learning_rate": "0.001"}}, study="s", source_file="f")
    >>> t.state, t.training["lr"], [p.code for p in t.problems]
    ('COMPLETE', 0.001, ['number_as_string'])
"""

from __future__ import annotations

import functools
import math
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from operator import itemgetter, lt
from typing import Any

from .model import CurvePoint, Problem, Trial

# canonical name -> accepted spellings, searched in this order
TRAINING_ALIASES: dict[str, tuple[str, ...]] = {
    "lr": ("learning_rate", "lr"),
    "epochs_config": ("epochs", "n_epochs", "num_epochs", "max_epochs", "epochs_config"),
    "weight_decay": ("weight_decay", "wd"),
    "warmup_steps": ("warmup_steps", "warmup"),
    "dropout": ("dropout", "dropout_rate"),
    "batch_size": ("batch_size",),
}
INT_TRAINING = {"epochs_config", "warmup_steps", "batch_size"}
ARCH_KEYS = ("d_model", "n_layers", "n_heads", "d_ff", "param_count")
ARCH_ALIASES: dict[str, tuple[str, ...]] = {
    "d_model": ("d_model", "hidden_size", "width"),
    "n_layers": ("n_layers", "num_layers", "depth", "num_hidden_layers"),
    "n_heads": ("n_heads", "num_heads", "nhead", "n_head", "num_attention_heads"),
    "d_ff": ("d_ff", "ffn_dim", "dim_feedforward", "intermediate_size"),
    "param_count": ("param_count", "n_params", "num_params"),
}
# d_ff given as a multiple of d_model (d_ff = d_model * ratio) when d_ff itself is absent
D_FF_RATIO_ALIASES: tuple[str, ...] = ("d_ff_ratio", "ffn_ratio", "mlp_ratio")
# user attributes holding the settings of trials the runner forced instead of sampling:
# ``forced_d_model`` stands for the parameter ``d_model`` (``forced_extreme`` is a flag)
FORCED_PREFIX = "forced_"
FORCED_FLAGS = {"forced_extreme"}
# epochs actually run, when there is no learning curve to count them from
EPOCHS_TRAINED_ALIASES: tuple[str, ...] = ("epochs_trained", "epochs_run", "n_epochs_run")
DURATION_ALIASES: tuple[str, ...] = ("duration_seconds", "duration_sec", "duration")
STATES = {"COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING"}
STATE_ALIASES = {"COMPLETED": "COMPLETE", "FAILED": "FAIL", "FAILURE": "FAIL"}

_TOP_KNOWN = {
    "trial_number",
    "number",
    "value",
    "values",
    "params",
    "state",
    "datetime_start",
    "datetime_complete",
    *DURATION_ALIASES,
    *EPOCHS_TRAINED_ALIASES,
    "architecture",
    "user_attrs",
    "learning_curve",
    "training_params",
    "val_accuracy",
    "train_accuracy",
    "val_loss",
}
_ATTRS_KNOWN = {
    *DURATION_ALIASES,
    *EPOCHS_TRAINED_ALIASES,
    "arch_idx",
    "architecture",
    "training_params",
    "learning_curve",
    "val_accuracy",
    "train_accuracy",
    "val_loss",
}


class _Collector:
    """Accumulates problems for one file while values are coerced."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def warn(self, code: str, message: str) -> None:
        self.problems.append(Problem(code, message, "warning"))

    def number(self, value: Any, where: str, *, integer: bool = False) -> Any:
        """Coerce ``value`` to float/int; ``None`` (and a warning) when it is not a number."""
        if value is None:
            return None
        if isinstance(value, bool):
            self.warn("wrong_type", f"{where}: expected a number, found a boolean")
            return None
        if isinstance(value, str):
            text = value.strip()
            try:
                number: float | int = float(text) if not integer else _parse_int(text)
            except ValueError:
                self.warn("wrong_type", f"{where}: expected a number, found text {value!r}")
                return None
            self.warn("number_as_string", f"{where}: number written as a string ({value!r})")
            value = number
        if not isinstance(value, (int, float)):
            self.warn("wrong_type", f"{where}: expected a number, found {_kind(value)}")
            return None
        if integer:
            if isinstance(value, float):
                if not math.isfinite(value) or value != int(value):
                    self.warn("wrong_type", f"{where}: expected a whole number, found {value!r}")
                    return None
                return int(value)
            return value
        return float(value)


def _parse_int(text: str) -> int:
    number = float(text)
    if not math.isfinite(number) or number != int(number):
        raise ValueError(text)
    return int(number)


def _kind(value: Any) -> str:
    names: dict[type, str] = {dict: "an object", list: "an array", str: "text"}
    return names.get(type(value), type(value).__name__)


def normalize_state(raw: Any) -> tuple[str, str | None]:
    """Canonical state and, when the spelling was not recognised, a message."""
    if raw is None:
        return "UNKNOWN", None
    text = str(raw).strip().upper()
    if text.startswith("TRIALSTATE."):
        text = text[len("TRIALSTATE.") :]
    text = STATE_ALIASES.get(text, text)
    if text in STATES:
        return text, None
    return "UNKNOWN", f"state: unrecognised value {raw!r}; recorded as UNKNOWN"


def parse_study_factors(study: str, pattern: re.Pattern[str]) -> dict[str, str | None]:
    """Named groups of ``pattern`` found anywhere in the study name (first match per group).

    >>> from hpo_analysis.model import Settings
    >>> parse_study_factors("phase6a_2B_h3_threshold_1pct", Settings().compiled_pattern())
    {'budget': '2B', 'horizon': 'h3'}
    >>> parse_study_factors("hpo_20m_1_a50", re.compile(r"_(?P<budget>\\d+m)_(?P<horizon>\\d+)"))
    {'budget': '20M', 'horizon': 'h1'}
    """
    return dict(_study_factors(study, pattern))


@functools.lru_cache(maxsize=4096)
def _study_factors(study: str, pattern: re.Pattern[str]) -> tuple[tuple[str, str | None], ...]:
    """:func:`parse_study_factors` for one (study, pattern), remembered: every trial file of a
    study asks the same question."""
    factors: dict[str, str | None] = {name: None for name in pattern.groupindex}
    for match in pattern.finditer(study):
        for name, value in match.groupdict().items():
            if value is not None and factors.get(name) is None:
                factors[name] = value
    if factors.get("budget"):
        factors["budget"] = factors["budget"].upper()  # type: ignore[union-attr]
    if factors.get("horizon"):
        horizon = factors["horizon"].lower()  # type: ignore[union-attr]
        factors["horizon"] = f"h{horizon}" if horizon.isdigit() else horizon  # 1 -> h1
    return tuple(factors.items())


def _dict_at(obj: dict[str, Any], key: str, where: str, col: _Collector) -> dict[str, Any]:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        col.warn("wrong_type", f"{where}: expected an object, found {_kind(value)}; ignored")
        return {}
    return value


def _seconds_between(start: Any, end: Any) -> float | None:
    if not isinstance(start, str) or not isinstance(end, str):
        return None
    try:
        delta = datetime.fromisoformat(end) - datetime.fromisoformat(start)
    except (ValueError, TypeError):
        return None
    return delta.total_seconds()


CONFIGURABLE_FIELDS = (*ARCH_KEYS, "arch_idx", *TRAINING_ALIASES)
# hpo-analysis.toml [fields] (Settings.field_aliases): canonical column -> extra spellings
FieldAliases = tuple[tuple[str, tuple[str, ...]], ...]


class _Spellings:
    """The spellings of each column for one call: the config's extra ones first, then the
    built-in ones (passed in, never kept in module state)."""

    def __init__(self, aliases: FieldAliases) -> None:
        self.extra = {name: tuple(spellings) for name, spellings in aliases}

    def of(self, name: str, built_in: tuple[str, ...]) -> tuple[str, ...]:
        return self.extra.get(name, ()) + built_in

    def architecture(self) -> set[str]:
        """Every spelling of an architecture column (read at the top level of a dump's
        trials)."""
        return {a for key in ARCH_KEYS for a in self.of(key, ARCH_ALIASES[key])} | set(
            D_FF_RATIO_ALIASES
        )

    def configured(self) -> set[str]:
        return {a for spellings in self.extra.values() for a in spellings}


def name_text(name: str) -> str:
    r"""A name taken from the file system as text every output can hold: bytes that are not
    UTF-8 (POSIX names may hold any; Python keeps them as lone surrogates) written as
    ``\xNN``. Study names from folders, displayed paths and the manifest's reasons pass here.

    >>> name_text("trial_\udcff01.json")
    'trial_\\xff01.json'
    """
    if name.isascii():
        return name
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return name


def normalize_trial(
    raw: dict[str, Any],
    *,
    study: str,
    source_file: str,
    factors: dict[str, str | None] | None = None,
    fallback_number: int | None = None,
    aliases: FieldAliases = (),
) -> Trial | Problem:
    """Build a Trial from one raw trial object, or a rejecting Problem when impossible.

    ``aliases``: extra spellings of the standard columns (the project config's ``[fields]``),
    tried before the built-in ones.

    Most trials are clean (numbers where numbers belong, no disagreement between the places a
    value is stored): :func:`clean_fields` builds those without the per-value checks, and
    anything it is not sure of goes to :func:`careful_trial`, which gives the same Trial for a
    clean trial and the problems of an odd one (``tests/test_fast_paths.py`` checks this).

    >>> t = normalize_trial({"number": 0, "params": {"my_lr": 0.1}}, study="s", source_file="f",
    ...                     aliases=(("lr", ("my_lr",)),))
    >>> t.training["lr"], t.extra_params
    (0.1, {})
    """
    study = name_text(study)  # a folder's name, for most readers
    trial = clean_trial(
        raw,
        study=study,
        source_file=source_file,
        factors=factors,
        fallback_number=fallback_number,
        aliases=aliases,
    )
    if trial is not None:
        return trial
    return careful_trial(
        raw,
        study=study,
        source_file=source_file,
        factors=factors,
        fallback_number=fallback_number,
        aliases=aliases,
    )


def clean_trial(
    raw: dict[str, Any],
    *,
    study: str,
    source_file: str,
    factors: dict[str, str | None] | None = None,
    fallback_number: int | None = None,
    aliases: FieldAliases = (),
    **more: Any,
) -> Trial | None:
    """The Trial of a clean trial object (see :func:`clean_fields`), None when the careful
    path must decide. ``more``: further Trial fields a reader knows (direction, ...)."""
    if type(raw) is not dict:
        return None
    fields = clean_fields(raw, fallback_number, aliases)
    if fields is None:
        return None
    curve_raw = fields.pop("curve")
    curve = () if curve_raw is None else _clean_curve(curve_raw)
    if curve is None:
        return None
    return Trial(
        study=study,
        source_file=source_file,
        factors=dict(factors or {}),
        curve=curve,
        **fields,
        **more,
    )


def clean_columns(
    raw: dict[str, Any],
    *,
    study: str,
    source_file: str,
    factors: dict[str, str | None],
    fallback_number: int | None = None,
    aliases: FieldAliases = (),
    **more: Any,
) -> tuple[dict[str, Any], CurveColumns | None] | None:
    """:func:`clean_trial` without the Trial object, for a reader's quick path: the Trial's
    fields by name (``curve`` aside; ``factors`` as given, not copied) and its learning curve
    as columns (None: no curve, see :func:`curve_columns`). None when :func:`clean_trial`
    would not build it, or the curve is not of the columns' shape."""
    fields = clean_fields(raw, fallback_number, aliases)
    if fields is None:
        return None
    curve_raw = fields.pop("curve")
    curve = curve_columns(curve_raw) if curve_raw else None
    if curve is None and curve_raw:
        return None
    fields["study"], fields["source_file"], fields["factors"] = study, source_file, factors
    fields.update(_NO_SOURCE_FACTS)
    if more:
        fields.update(more)
    if "objective_values" not in fields:
        fields["objective_values"] = {}
    return fields, curve


# the Trial fields only some readers set (the direction and name of the objective)
_NO_SOURCE_FACTS = {"direction": None, "direction_source": None, "objective_name": None}


class _Plan:
    """The spellings of one ``aliases`` setting, resolved once (every trial asks again)."""

    def __init__(self, aliases: FieldAliases) -> None:
        spellings = _Spellings(aliases)
        self.architecture = tuple(
            (key, spellings.of(key, ARCH_ALIASES[key]), True) for key in ARCH_KEYS
        )
        self.architecture_names = frozenset(
            name for _, names, _ in self.architecture for name in names
        )
        self.arch_idx = spellings.of("arch_idx", ("arch_idx",))
        self.training = tuple(
            (key, spellings.of(key, built_in), key in INT_TRAINING)
            for key, built_in in TRAINING_ALIASES.items()
        )
        self.training_names = frozenset(name for _, names, _ in self.training for name in names)
        consumed = {"arch_idx"} | {a for names in TRAINING_ALIASES.values() for a in names}
        consumed |= {a for names in ARCH_ALIASES.values() for a in names}
        self.consumed = frozenset(consumed | spellings.configured())
        self.top_known = frozenset(_TOP_KNOWN | spellings.architecture())


def _plan(aliases: FieldAliases) -> _Plan:
    try:
        return _cached_plan(aliases)
    except TypeError:  # lists, not tuples, from a library caller: the same plan, not kept
        return _Plan(aliases)


@functools.lru_cache(maxsize=64)
def _cached_plan(aliases: FieldAliases) -> _Plan:
    return _Plan(aliases)


# a value clean_fields cannot vouch for: the careful path decides
_UNSURE: Any = object()
_EMPTY: dict[str, Any] = {}
# integers whose float() cannot overflow; larger ones take the careful path
_FLOAT_SAFE_BITS = 1000


def _clean_number(value: Any, integer: bool) -> Any:
    """``value`` as :meth:`_Collector.number` returns it when that gives no warning and the
    value is of the plain kind (an int, or a float where a float is expected); else
    :data:`_UNSURE`."""
    kind = type(value)
    if kind is int:
        if integer:
            return value
        return float(value) if value.bit_length() <= _FLOAT_SAFE_BITS else _UNSURE
    if kind is float and not integer:
        return value
    return None if value is None else _UNSURE


def _clean_first(
    sources: tuple[dict[str, Any], ...], spellings: tuple[str, ...], integer: bool
) -> Any:
    """:func:`_first_consistent` when it would warn of nothing: in each source the first
    spelling present, every such value clean and all of them equal; else :data:`_UNSURE`."""
    found = None
    for source in sources:
        for alias in spellings:
            value = source.get(alias)
            if value is not None:
                break
        else:
            continue
        value = _clean_number(value, integer)
        if value is _UNSURE:
            return _UNSURE
        if found is None:
            found = value
        elif found != value:
            return _UNSURE  # equal within tolerance, or a conflict: the careful path says
    return found


def _clean_group(
    sources: Sequence[dict[str, Any]], fields: tuple[tuple[str, tuple[str, ...], bool], ...]
) -> dict[str, Any] | None:
    """:func:`_clean_first` of each of ``fields`` (name, spellings, integer), in one call and
    with the number check written out: a dozen fields a trial, for every trial."""
    picked: dict[str, Any] = {}
    for name, spellings, integer in fields:
        found = None
        for source in sources:
            for alias in spellings:
                value = source.get(alias)
                if value is not None:
                    break
            else:
                continue
            kind = type(value)
            if kind is int:
                if not integer:
                    if value.bit_length() > _FLOAT_SAFE_BITS:
                        return None
                    value = float(value)
            elif kind is not float or integer:
                return None
            if found is None:
                found = value
            elif found != value:
                return None  # equal within tolerance, or a conflict: the careful path says
        picked[name] = found
    return picked


_FORCED_NAME = operator.methodcaller("startswith", FORCED_PREFIX)


def _clean_dicts(obj: dict[str, Any], keys: tuple[str, ...]) -> list[dict[str, Any]] | None:
    """``obj[key]`` for each of ``keys``: the object, or ``{}`` when absent or null; None when
    one is something else (the careful path warns of it)."""
    found = []
    for key in keys:
        value = obj.get(key)
        if value is None:
            found.append(_EMPTY)
        elif type(value) is dict:
            found.append(value)
        else:
            return None
    return found


_TOP_DICTS = ("user_attrs", "params", "architecture", "training_params")
_ATTRS_DICTS = ("architecture", "training_params")


def clean_fields(
    raw: dict[str, Any], fallback_number: int | None, aliases: FieldAliases = ()
) -> dict[str, Any] | None:
    """The Trial fields of a clean trial (and its raw ``curve``), or None when the careful
    path is needed: a warning is due, or a value is of a kind only it converts.

    Everything :func:`careful_trial` would compute is computed the same way, without the
    checks that only produce warnings; an object whose every check would pass gets the same
    fields and no problems. The learning curve is returned raw, for the caller's own clean
    form (:func:`_clean_curve`, or columns).

    >>> fields = clean_fields({"number": 2, "value": 0.5, "params": {"lr": 1e-3}}, None)
    >>> fields["trial_num"], fields["state"], fields["training"]["lr"], fields["problems"]
    (2, 'COMPLETE', 0.001, ())
    >>> clean_fields({"number": 2, "value": "0.5"}, None) is None  # number as text: a warning
    True
    """
    plan = _plan(aliases)
    get = raw.get
    found = _clean_dicts(raw, _TOP_DICTS)
    if found is None:
        return None
    attrs, params, architecture, training_params = found
    found = _clean_dicts(attrs, _ATTRS_DICTS) if attrs else [_EMPTY, _EMPTY]
    if found is None:
        return None
    attrs_architecture, attrs_training = found
    # most trials force nothing: a scan in C first
    forced = forced_params(attrs) if attrs and any(map(_FORCED_NAME, attrs)) else _EMPTY

    trial_num = get("trial_number", get("number"))
    if type(trial_num) is not int or (fallback_number is not None and trial_num != fallback_number):
        return None
    state_raw = get("state")
    if state_raw is None:
        state = "UNKNOWN"
    elif type(state_raw) is str and state_raw in STATES:
        state = state_raw
    else:
        state, message = normalize_state(state_raw)
        if message:
            return None
    value = get("value")
    if value is None and isinstance(get("values"), list) and raw["values"]:
        value = raw["values"][0]
    objective = _clean_number(value, False)
    if objective is _UNSURE:
        return None
    if state == "UNKNOWN" and state_raw is None and objective is not None:
        state = "COMPLETE"
    if objective is None and state == "COMPLETE":
        return None  # the careful path warns of it

    arch_names = plan.architecture_names
    arch_sources = [
        s
        for s in (architecture, attrs_architecture, params, forced, raw)
        if s and not arch_names.isdisjoint(s)
    ]
    arch = _clean_group(arch_sources, plan.architecture)
    if arch is None:
        return None
    if arch["d_ff"] is None and arch["d_model"] is not None:
        sources = (architecture, attrs_architecture, params, forced, raw)
        if any(
            s.get(alias) is not None
            for s in sources
            if not s.keys().isdisjoint(D_FF_RATIO_ALIASES)  # no spelling at all: none set
            for alias in D_FF_RATIO_ALIASES
        ):
            return None  # d_ff from a ratio: the careful path computes and checks it
    arch["arch_idx"] = found = _clean_first((params, attrs), plan.arch_idx, True)
    if found is _UNSURE:
        return None
    train_names = plan.training_names
    train_sources = [
        s
        for s in (params, attrs_training, training_params, forced)
        if s and not train_names.isdisjoint(s)
    ]
    training = _clean_group(train_sources, plan.training)
    if training is None:
        return None
    consumed = plan.consumed
    searched = {**forced, **params} if forced else params
    # the same as sorting the items and dropping the consumed ones (the keys are unique)
    extra_params = {k: searched[k] for k in sorted(searched.keys() - consumed)}

    duration = _clean_first_of(raw, attrs, DURATION_ALIASES, False)
    epochs_trained = _clean_first_of(raw, attrs, EPOCHS_TRAINED_ALIASES, True)
    if duration is _UNSURE or epochs_trained is _UNSURE:
        return None
    start, complete = get("datetime_start"), get("datetime_complete")
    if duration is None:
        duration = _seconds_between(start, complete)
    val_loss = _clean_number(attrs.get("val_loss", get("val_loss")), False)
    val_accuracy = _clean_number(attrs.get("val_accuracy", get("val_accuracy")), False)
    train_accuracy = _clean_number(attrs.get("train_accuracy", get("train_accuracy")), False)
    if val_loss is _UNSURE or val_accuracy is _UNSURE or train_accuracy is _UNSURE:
        return None
    curve = attrs.get("learning_curve", get("learning_curve"))
    if curve is not None and type(curve) is not list:
        return None

    top_known = plan.top_known
    # the usual case, every key a known one, checked in C
    extra: dict[str, Any] = (
        {} if raw.keys() <= top_known else {k: v for k, v in raw.items() if k not in top_known}
    )
    if not attrs.keys() <= _ATTRS_KNOWN:
        extra_attrs = {k: v for k, v in attrs.items() if k not in _ATTRS_KNOWN}
        if extra_attrs:
            extra["user_attrs"] = extra_attrs
    return {
        "trial_num": trial_num,
        "state": state,
        "objective": objective,
        "architecture": arch,
        "training": training,
        "results": {
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
            "train_accuracy": train_accuracy,
            "duration_sec": duration,
            "epochs_trained": epochs_trained,
            "datetime_start": _text_or_none(start),
            "datetime_complete": _text_or_none(complete),
        },
        "curve": curve,
        "extra_params": extra_params,
        "extra": extra,
        "problems": (),
    }


def _clean_first_of(
    raw: dict[str, Any], attrs: dict[str, Any], spellings: tuple[str, ...], integer: bool
) -> Any:
    """The first non-null of ``spellings`` at the top level, then in the user attributes,
    clean (see :func:`_clean_number`); the careful path tries the next one after a bad one."""
    for source in (raw, attrs):
        for key in spellings:
            value = source.get(key)
            if value is not None:
                return _clean_number(value, integer)
    return None


def careful_trial(
    raw: dict[str, Any],
    *,
    study: str,
    source_file: str,
    factors: dict[str, str | None] | None = None,
    fallback_number: int | None = None,
    aliases: FieldAliases = (),
) -> Trial | Problem:
    """:func:`normalize_trial` value by value, every check made and every oddity recorded."""
    spellings = _Spellings(aliases)
    col = _Collector()
    attrs = _dict_at(raw, "user_attrs", "user_attrs", col)
    params = _dict_at(raw, "params", "params", col)
    forced = forced_params(attrs)

    # -- identity ------------------------------------------------------------------------
    number_raw = raw.get("trial_number", raw.get("number"))
    trial_num = col.number(number_raw, "trial_number", integer=True)
    if trial_num is None:
        if fallback_number is None:
            return Problem(
                "no_trial_number",
                "no trial_number in the file and none in its name; cannot identify the trial",
                "rejected",
            )
        col.warn(
            "trial_number_from_name",
            f"no usable trial_number; using {fallback_number} from the file name",
        )
        trial_num = fallback_number
    elif fallback_number is not None and trial_num != fallback_number:
        col.warn(
            "trial_number_mismatch",
            f"trial_number {trial_num} differs from the file name's {fallback_number}; "
            f"using {trial_num}",
        )

    state, state_msg = normalize_state(raw.get("state"))
    if state_msg:
        col.warn("unknown_state", state_msg)

    # -- objective -----------------------------------------------------------------------
    value = raw.get("value")
    if value is None and isinstance(raw.get("values"), list) and raw["values"]:
        value = raw["values"][0]
    objective = col.number(value, "value")
    if state == "UNKNOWN" and raw.get("state") is None and objective is not None:
        state = "COMPLETE"
    if objective is None and state == "COMPLETE":
        col.warn("no_value", "no objective value for a COMPLETE trial; it is not ranked")

    # -- architecture --------------------------------------------------------------------
    arch_sources = [
        ("architecture", _dict_at(raw, "architecture", "architecture", col)),
        (
            "user_attrs.architecture",
            _dict_at(attrs, "architecture", "user_attrs.architecture", col),
        ),
        ("params", params),
        ("user_attrs.forced_*", forced),
        ("top level", raw),  # a study dump's flat d_model, n_layers, ... beside "value"
    ]
    architecture: dict[str, int | None] = {}
    for key in ARCH_KEYS:
        architecture[key] = _first_consistent(
            col, key, spellings.of(key, ARCH_ALIASES[key]), arch_sources, integer=True
        )
    if architecture["d_ff"] is None and architecture["d_model"] is not None:
        ratio = _first_consistent(col, "d_ff_ratio", D_FF_RATIO_ALIASES, arch_sources)
        if ratio is not None and math.isfinite(ratio) and ratio > 0:
            d_ff = architecture["d_model"] * ratio
            if d_ff == int(d_ff):
                architecture["d_ff"] = int(d_ff)
            else:
                col.warn("wrong_type", f"d_ff = d_model * d_ff_ratio = {d_ff!r} is not whole")
    architecture["arch_idx"] = _first_consistent(
        col,
        "arch_idx",
        spellings.of("arch_idx", ("arch_idx",)),
        [("params", params), ("user_attrs", attrs)],
        integer=True,
    )

    # -- training parameters -------------------------------------------------------------
    train_sources = [
        ("params", params),
        (
            "user_attrs.training_params",
            _dict_at(attrs, "training_params", "user_attrs.training_params", col),
        ),
        ("training_params", _dict_at(raw, "training_params", "training_params", col)),
        ("user_attrs.forced_*", forced),
    ]
    training: dict[str, Any] = {}
    for key, built_in in TRAINING_ALIASES.items():
        training[key] = _first_consistent(
            col, key, spellings.of(key, built_in), train_sources, integer=key in INT_TRAINING
        )
    consumed = {"arch_idx"} | {a for aliases in TRAINING_ALIASES.values() for a in aliases}
    consumed |= {a for aliases in ARCH_ALIASES.values() for a in aliases}
    consumed |= spellings.configured()
    searched = {**forced, **params}  # a forced trial's settings stand in for its params
    extra_params = {k: v for k, v in sorted(searched.items()) if k not in consumed}

    # -- results -------------------------------------------------------------------------
    duration = None
    for where, source in (("", raw), ("user_attrs.", attrs)):
        for key in DURATION_ALIASES:
            if duration is None and source.get(key) is not None:
                duration = col.number(source[key], where + key)
    epochs_trained = None
    for where, source in (("", raw), ("user_attrs.", attrs)):
        for key in EPOCHS_TRAINED_ALIASES:
            if epochs_trained is None and source.get(key) is not None:
                epochs_trained = col.number(source[key], where + key, integer=True)
    if duration is None:
        duration = _seconds_between(raw.get("datetime_start"), raw.get("datetime_complete"))
    results: dict[str, Any] = {
        # a final validation loss stored beside an objective that is something else (AUC, ...)
        "val_loss": col.number(attrs.get("val_loss", raw.get("val_loss")), "val_loss"),
        "val_accuracy": col.number(
            attrs.get("val_accuracy", raw.get("val_accuracy")), "val_accuracy"
        ),
        "train_accuracy": col.number(
            attrs.get("train_accuracy", raw.get("train_accuracy")), "train_accuracy"
        ),
        "duration_sec": duration,
        "epochs_trained": epochs_trained,
        "datetime_start": _text_or_none(raw.get("datetime_start")),
        "datetime_complete": _text_or_none(raw.get("datetime_complete")),
    }

    # -- learning curve ------------------------------------------------------------------
    curve_raw = attrs.get("learning_curve", raw.get("learning_curve"))
    curve = _normalize_curve(curve_raw, col)

    # -- everything else is kept, not dropped ---------------------------------------------
    unknown = [k for k in raw if k not in _TOP_KNOWN]
    if unknown:  # the spellings are built once per trial, not once per unknown key
        architecture_keys = spellings.architecture()
        unknown = [k for k in unknown if k not in architecture_keys]
    extra: dict[str, Any] = {k: raw[k] for k in unknown}
    extra_attrs = {k: v for k, v in attrs.items() if k not in _ATTRS_KNOWN}
    if extra_attrs:
        extra["user_attrs"] = extra_attrs

    return Trial(
        study=study,
        trial_num=trial_num,
        state=state,
        objective=objective,
        architecture=architecture,
        training=training,
        results=results,
        curve=curve,
        factors=dict(factors or {}),
        extra_params=extra_params,
        extra=extra,
        source_file=source_file,
        problems=tuple(col.problems),
    )


def forced_params(attrs: dict[str, Any]) -> dict[str, Any]:
    """The settings a runner forced, from ``forced_<param>`` user attributes.

    >>> forced_params({"forced_d_model": 64, "forced_extreme": True, "epochs_run": 50})
    {'d_model': 64}
    """
    return {
        key[len(FORCED_PREFIX) :]: value
        for key, value in attrs.items()
        if key.startswith(FORCED_PREFIX) and key not in FORCED_FLAGS and key != FORCED_PREFIX
    }


def _text_or_none(value: Any) -> str | None:
    """Text fields: empty text is missing (a CSV cannot tell the two apart)."""
    text = None if value is None else str(value)
    return text if text and text.strip() else None


def _first_consistent(
    col: _Collector,
    name: str,
    aliases: tuple[str, ...],
    sources: list[tuple[str, dict[str, Any]]],
    *,
    integer: bool = False,
) -> Any:
    """First value found for ``name``; warn when a later source disagrees with it."""
    found: Any = None
    found_where = ""
    for where, source in sources:
        for alias in aliases:
            if alias in source and source[alias] is not None:
                value = col.number(source[alias], f"{where}.{alias}", integer=integer)
                if value is None:
                    continue
                if found is None:
                    found, found_where = value, f"{where}.{alias}"
                elif not _same(found, value):
                    col.warn(
                        "conflicting_values",
                        f"{name}: {found_where}={found!r} but {where}.{alias}={value!r}; "
                        f"using {found!r}",
                    )
                break
    return found


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0)
    return bool(a == b)


_GET_EPOCH = itemgetter("epoch")


def _clean_curve(curve_raw: list[Any]) -> tuple[CurvePoint, ...] | None:
    """The curve of the common case without per-value coercion, or None when it is not that
    case: every entry an object with an integer ``epoch``, epochs strictly increasing and every
    other value a float. The general path below gives the same points for such a curve (and
    no problems); this one only skips its checks, which dominate the cost of a large run."""
    # whole-list checks run in C (map/set/all); a Python loop per epoch costs more than the
    # JSON parse of the file
    if not curve_raw or set(map(type, curve_raw)) != {dict}:
        return None if curve_raw else ()
    try:
        epochs = list(map(_GET_EPOCH, curve_raw))
    except KeyError:
        return None
    if set(map(type, epochs)) != {int} or epochs[0] < 0 or not all(map(lt, epochs, epochs[1:])):
        return None
    metrics = list(map(dict.copy, curve_raw))
    for entry in metrics:
        del entry["epoch"]
    if not set(map(type, chain.from_iterable(map(dict.values, metrics)))) <= {float}:
        return None
    return tuple(map(CurvePoint, epochs, metrics))


def _normalize_curve(curve_raw: Any, col: _Collector) -> tuple[CurvePoint, ...]:
    if curve_raw is None:
        return ()
    if not isinstance(curve_raw, list):
        col.warn("wrong_type", f"learning_curve: expected an array, found {_kind(curve_raw)}")
        return ()
    clean = _clean_curve(curve_raw)
    if clean is not None:
        return clean
    points: dict[int, CurvePoint] = {}
    order: list[int] = []
    skipped = duplicates = 0
    for index, entry in enumerate(curve_raw):
        if not isinstance(entry, dict):
            skipped += 1
            continue
        epoch = col.number(entry.get("epoch"), f"learning_curve[{index}].epoch", integer=True)
        if epoch is None:
            epoch = index
            col.warn(
                "curve_epoch_missing",
                f"learning_curve[{index}]: no epoch; using its position {index}",
            )
        metrics: dict[str, float | None] = {}
        for key, raw_value in entry.items():
            if key == "epoch":
                continue
            metrics[key] = col.number(raw_value, f"learning_curve[{index}].{key}")
        if epoch in points:
            duplicates += 1
            continue
        points[epoch] = CurvePoint(epoch, metrics)
        order.append(epoch)
    if skipped:
        col.warn(
            "curve_entry_invalid",
            f"learning_curve: {skipped} entr{'y is' if skipped == 1 else 'ies are'} "
            "not objects; skipped",
        )
    if duplicates:
        col.warn(
            "curve_duplicate_epoch",
            f"learning_curve: {duplicates} duplicate epoch(s); the first of each is kept",
        )
    if order != sorted(order):
        col.warn("curve_unsorted", "learning_curve: epochs out of order; sorted by epoch")
    return tuple(points[e] for e in sorted(points))


@dataclass(frozen=True)
class CurveColumns:
    """A learning curve of the runner's common shape, held as columns: every entry an object
    with the same keys, ``epoch`` first and an integer (from 0, strictly increasing), every
    other value a float. ``names`` are in the first entry's order.

    The per-trial reader's quick path keeps the curve so: the summary row's curve columns, the
    curve block and the JSON fragment are all computed from it, without a
    :class:`~hpo_analysis.model.CurvePoint` per epoch. :meth:`points` is the general form, the
    same points the careful path builds.

    >>> curve = curve_columns([{"epoch": 0, "val_loss": 0.7}, {"epoch": 1, "val_loss": 0.6}])
    >>> curve.epochs, curve.names, curve.columns
    ((0, 1), ('val_loss',), ((0.7, 0.6),))
    >>> curve_columns([{"epoch": 0, "val_loss": 1}]) is None  # an integer: the general path
    True
    """

    entries: list[dict[str, Any]]  # as read (the JSON fragment writes them as they are)
    epochs: tuple[int, ...]
    names: tuple[str, ...]
    columns: tuple[tuple[float, ...], ...]

    def points(self) -> tuple[CurvePoint, ...]:
        return tuple(
            CurvePoint(entry["epoch"], {k: v for k, v in entry.items() if k != "epoch"})
            for entry in self.entries
        )


def curve_columns(curve_raw: list[Any]) -> CurveColumns | None:
    """The columns of a curve of the common shape (see :class:`CurveColumns`), else None.

    Every check runs over whole lists in C (``map``, ``set``, ``zip``): a Python loop per
    epoch costs more than parsing the file."""
    if not curve_raw or set(map(type, curve_raw)) != {dict}:
        return None
    keys = tuple(curve_raw[0])
    # the same number of keys, each entry holding every key of the first (else KeyError):
    # the same keys; and "epoch" the first key of each, as the JSON fragment writes them
    if len(keys) < 2 or set(map(len, curve_raw)) != {len(keys)}:
        return None
    if set(map(next, map(iter, curve_raw))) != {"epoch"}:
        return None
    try:
        epochs, *columns = zip(*map(operator.itemgetter(*keys), curve_raw), strict=True)
    except KeyError:
        return None
    if set(map(type, epochs)) != {int} or epochs[0] < 0 or not all(map(lt, epochs, epochs[1:])):
        return None
    if set(map(type, chain.from_iterable(columns))) != {float}:
        return None
    return CurveColumns(curve_raw, epochs, keys[1:], tuple(columns))
