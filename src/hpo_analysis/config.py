"""The project config file, ``hpo-analysis.toml``: settings a lab sets once, not every run.

Found in the working directory, or given with ``--config FILE``. Options given on the command
line win over the file; the file wins over the built-in defaults. Every key is checked: an
unknown key or a wrong type is a usage error naming the file and the key.

Example ``hpo-analysis.toml``::

    [extract]
    sources = ["outputs/hpo"]
    out = "outputs/analysis"
    diverge_threshold = 10.0          # absolute; leave out for the scale-aware rule
    study_pattern = '(?P<budget>\\d+[mMbB])_(?P<horizon>h?\\d+)(?:_(?P<tier>a\\d+))?'
    arch_thresholds = [0.15, 0.5]
    direction = "maximize"            # or a table: { "hpo_*" = "maximize" }
    top_k = 20
    max_file_size_mib = 64

    [fields]                          # extra spellings of the standard columns
    lr = ["base_lr"]
    d_model = ["emb_dim"]

    [table]                           # a runs table in your own layout (CSV/TSV/Parquet)
    objective = "val_auc"
    params = ["lr", "width"]
    study = "sweep"

    [validate]
    expect_trials = 600
    expect_studies = 12
    expect_diverged = 14

>>> cfg = parse_config({"extract": {"top_k": 5}, "fields": {"lr": ["base_lr"]}}, "x.toml")
>>> cfg.extract["top_k"], cfg.fields
(5, (('lr', ('base_lr',)),))
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import UsageProblem
from .model import Settings
from .normalize import CONFIGURABLE_FIELDS

DEFAULT_CONFIG = "hpo-analysis.toml"
DEFAULT_SOURCES: tuple[str, ...] = ("outputs/hpo",)
DEFAULT_OUT = "outputs/analysis"

_EXTRACT_KEYS: dict[str, tuple[type, ...]] = {
    "sources": (list,),
    "out": (str,),
    "diverge_threshold": (int, float),
    "study_pattern": (str,),
    "arch_thresholds": (list,),
    "direction": (str, dict),
    "study": (list,),
    "rank_by": (str, int),
    "top_k": (int,),
    "max_file_size_mib": (int, float),
}
_VALIDATE_KEYS = ("expect_trials", "expect_studies", "expect_diverged")


class ConfigError(UsageProblem, ValueError):
    """The config file cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Config:
    path: str | None = None
    extract: dict[str, Any] = field(default_factory=dict)
    fields: tuple[tuple[str, tuple[str, ...]], ...] = ()
    validate: dict[str, int] = field(default_factory=dict)
    table: dict[str, Any] = field(default_factory=dict)


def load_config(explicit: str | None) -> Config:
    """``--config FILE`` (must exist), else ./hpo-analysis.toml when present, else empty."""
    path = Path(explicit) if explicit else Path(DEFAULT_CONFIG)
    if not path.is_file():
        if explicit:
            raise ConfigError(f"{path}: no such config file")
        return Config()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from None
    return parse_config(data, str(path))


def parse_config(data: dict[str, Any], where: str) -> Config:
    unknown = set(data) - {"extract", "fields", "validate", "table"}
    if unknown:
        raise ConfigError(
            f"{where}: unknown section(s) {', '.join(sorted(unknown))}; "
            "expected [extract], [fields], [table], [validate]"
        )
    extract = dict(data.get("extract", {}))
    for key, value in extract.items():
        if key not in _EXTRACT_KEYS:
            raise ConfigError(
                f"{where}: [extract] unknown key {key!r}; known: {', '.join(_EXTRACT_KEYS)}"
            )
        if not isinstance(value, _EXTRACT_KEYS[key]) or isinstance(value, bool):
            raise ConfigError(
                f"{where}: [extract] {key} has the wrong type ({type(value).__name__})"
            )
    if "study_pattern" in extract:
        try:
            if not re.compile(extract["study_pattern"]).groupindex:
                raise ConfigError(f"{where}: [extract] study_pattern needs named groups")
        except re.error as err:
            raise ConfigError(f"{where}: [extract] study_pattern: {err}") from None
    for key in ("diverge_threshold", "max_file_size_mib"):
        value = extract.get(key)
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise ConfigError(f"{where}: [extract] {key} must be a finite positive number")
    if "arch_thresholds" in extract:
        pair = extract["arch_thresholds"]
        if (
            len(pair) != 2
            or not all(isinstance(v, (int, float)) for v in pair)
            or not 0 <= pair[0] <= pair[1]
        ):
            raise ConfigError(
                f"{where}: [extract] arch_thresholds must be [LOW, HIGH] with 0 <= LOW <= HIGH"
            )
        extract["arch_thresholds"] = (float(pair[0]), float(pair[1]))
    direction = extract.get("direction")
    rules = {"*": direction} if isinstance(direction, str) else dict(direction or {})
    for glob, value in rules.items():
        if value not in ("minimize", "maximize"):
            raise ConfigError(
                f"{where}: [extract] direction for {glob!r} must be minimize "
                f"or maximize, not {value!r}"
            )
    if direction is not None:
        extract["direction"] = [(glob, value) for glob, value in rules.items()]
    fields = []
    for name, spellings in data.get("fields", {}).items():
        if name not in CONFIGURABLE_FIELDS:
            raise ConfigError(
                f"{where}: [fields] {name!r} is not a standard column that can "
                f"be mapped; known: {', '.join(CONFIGURABLE_FIELDS)}"
            )
        if isinstance(spellings, str):
            spellings = [spellings]
        if not isinstance(spellings, list) or not all(isinstance(s, str) for s in spellings):
            raise ConfigError(f"{where}: [fields] {name} must be a name or a list of names")
        fields.append((name, tuple(spellings)))
    validate = dict(data.get("validate", {}))
    for key, value in validate.items():
        if key not in _VALIDATE_KEYS or not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(
                f"{where}: [validate] {key} must be one of "
                f"{', '.join(_VALIDATE_KEYS)} with a whole number"
            )
    return Config(where, extract, tuple(fields), validate, _table(data.get("table", {}), where))


def _table(table: Any, where: str) -> dict[str, Any]:
    """``[table]``: ``objective`` and ``study`` are column names, ``params`` a list of them."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [table] must be a table")
    for key, value in table.items():
        if key in ("objective", "study"):
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{where}: [table] {key} must be a column name")
        elif key == "params":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where}: [table] params must be a list of column names")
        else:
            raise ConfigError(
                f"{where}: [table] unknown key {key!r}; known: objective, params, study"
            )
    if ("params" in table or "study" in table) and "objective" not in table:
        raise ConfigError(f"{where}: [table] needs objective = COLUMN")
    return dict(table)


@dataclass(frozen=True)
class ExtractOptions:
    """What one ``extract`` reads, where it writes, and the settings it computes with."""

    sources: tuple[str, ...]
    out: str
    settings: Settings


# [extract] keys that are Settings fields under another name or in another unit.
_SETTING_OF_KEY: dict[str, str] = {
    "study": "studies",
    "direction": "directions",
    "max_file_size_mib": "max_file_bytes",
}


def _as_setting(name: str, value: Any) -> Any:
    """A config or command-line value in the type its Settings field holds."""
    if name == "max_file_bytes":
        return int(value * 2**20)
    if name == "rank_by":
        return None if value is None else str(value)
    if name in ("studies", "directions", "table_params"):
        return tuple(value)
    return value


def extract_options(given: Mapping[str, Any], config: Config) -> ExtractOptions:
    """Built-in defaults (:class:`Settings`), then the config file, then the command line.

    ``given`` holds only the options the user typed, keyed by their Settings field (plus
    ``sources``, ``out`` and ``max_file_size_mib``), so an option left out never hides the
    file's value. ``--direction`` rules add to the file's: the last matching rule wins, and the
    command line's come last.

    >>> cfg = parse_config({"extract": {"top_k": 5, "direction": "maximize"}}, "x.toml")
    >>> opts = extract_options({"top_k": 3, "directions": [("a*", "minimize")]}, cfg)
    >>> opts.settings.top_k, opts.settings.directions, opts.out
    (3, (('*', 'maximize'), ('a*', 'minimize')), 'outputs/analysis')
    """
    values: dict[str, Any] = {}
    for key, value in config.extract.items():
        if key not in ("sources", "out"):
            name = _SETTING_OF_KEY.get(key, key)
            values[name] = _as_setting(name, value)
    for key, value in given.items():
        if key in ("sources", "out"):
            continue
        name = _SETTING_OF_KEY.get(key, key)
        value = _as_setting(name, value)
        if name == "directions":
            value = (*values.get("directions", ()), *value)
        values[name] = value
    values["field_aliases"] = config.fields
    values["table_objective"] = config.table.get("objective")
    values["table_params"] = tuple(config.table.get("params", ()))
    values["table_study"] = config.table.get("study")
    sources = given.get("sources") or config.extract.get("sources") or DEFAULT_SOURCES
    out = given.get("out", config.extract.get("out", DEFAULT_OUT))
    return ExtractOptions(tuple(str(s) for s in sources), str(out), replace(Settings(), **values))
