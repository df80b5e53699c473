"""Reader for Optuna RDB storages: SQLite files and any storage URL Optuna accepts, read-only.

Sources: a URL (``sqlite:///runs/optuna.db``, ``postgresql://user@host/db``,
``mysql+pymysql://...``) or a SQLite file (``*.db``, ``*.sqlite``, ``*.sqlite3``, ``*.db3``
starting with the SQLite header) given directly or found in a tree. Every study is read
unless ``--study`` selects some.

Nothing is written: the storage is opened with ``RDBStorage(url, skip_table_creation=True,
skip_compatibility_check=True)`` and a SQLite file through a read-only URI
(``sqlite:///file:PATH?mode=ro&uri=true``), so even a mistaken write would fail. Needs the
``optuna`` extra (``pip install 'hpo-analysis[optuna]'``); without it the source is refused
with that hint.

Example::

    >>> is_storage_url("sqlite:///runs/optuna.db"), is_storage_url("runs/optuna.db")
    (True, False)
    >>> mask_url("postgresql://ana:s3cret@db.lab/optuna")
    'postgresql://ana:***@db.lab/optuna'
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

from ..errors import MissingExtra, install_hint, require  # noqa: F401  (MissingExtra re-exported)
from ..model import Problem, Settings
from ..normalize import parse_study_factors
from .base import ReadResult, head_bytes
from .optuna_common import (
    build_trial,
    direction_name,
    iso,
    not_selected,
    objective_spec,
)

NAME = "optuna_storage"
FORMAT = "Optuna storage"
INSTALL_HINT = install_hint("optuna")
SQLITE_SUFFIXES = {".db", ".sqlite", ".sqlite3", ".db3"}
SQLITE_MAGIC = b"SQLite format 3\x00"
METRIC_NAMES_ATTR = "study:metric_names"
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_PASSWORD = re.compile(r"^(?P<head>[^:/]+://[^:/@]*:)(?P<password>[^@/]*)(?P<tail>@.*)$")


def require_optuna() -> ModuleType:
    """Import optuna, or raise :class:`~hpo_analysis.errors.MissingExtra` naming the extra."""
    return require("optuna", "optuna", "reading Optuna storages")


def is_storage_url(text: str) -> bool:
    return bool(_URL.match(text))


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (for the manifest and messages)."""
    match = _PASSWORD.match(url)
    if not match or not match.group("password"):
        return url
    return match.group("head") + "***" + match.group("tail")


def sqlite_file(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL (None for other URLs and ``:memory:``).

    >>> sqlite_file("sqlite:///runs/a.db"), sqlite_file("sqlite:////abs/a.db?timeout=5")
    (PosixPath('runs/a.db'), PosixPath('/abs/a.db'))
    """
    if not url.lower().startswith("sqlite:///"):
        return None
    rest = url[len("sqlite:///") :].split("?", 1)[0]
    if not rest or rest == ":memory:" or rest.startswith("file:"):
        return None
    return Path(rest)


def readonly_url(path: Path) -> str:
    """A SQLAlchemy URL opening ``path`` read-only (SQLite URI ``mode=ro``)."""
    return f"sqlite:///file:{quote(str(path.resolve()))}?mode=ro&uri=true"


def readonly_connector(path: Path) -> Callable[[], sqlite3.Connection]:
    """Connects to ``path`` read-only; given to SQLAlchemy as ``creator`` so that no URL
    re-quoting can change the file name (``#``, ``?``, ``%`` are legal in file names).

    A database in WAL mode with no write-ahead log beside it (every commit checkpointed into
    the file, no connection open) is opened ``immutable``: a read-only connection would
    otherwise create ``-wal`` and ``-shm`` files beside it, and inputs are not to be written.
    With a log beside it, the log holds commits the file does not, and it is read with it.
    """
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    if _wal_without_log(path):
        uri += "&immutable=1"

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, check_same_thread=False)

    return connect


def _wal_without_log(path: Path) -> bool:
    """The file's header says WAL mode (its read and write versions, bytes 18 and 19, are 2)
    and there is no ``-wal`` file beside it."""
    header = head_bytes(path, 20) or b""
    return header[18:20] == b"\x02\x02" and not Path(f"{path}-wal").exists()


def sniff(path: Path) -> bool:
    """Claims SQLite files by extension and header (first 16 bytes)."""
    if path.suffix.lower() not in SQLITE_SUFFIXES:
        return False
    return head_bytes(path, len(SQLITE_MAGIC)) == SQLITE_MAGIC


def _fingerprint(path: Path, result: ReadResult) -> bool:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            size = 0
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
    except OSError as err:
        result.problems.append(
            Problem("unreadable", f"cannot read: {err.strerror or err}", "rejected")
        )
        return False
    result.size_bytes, result.sha256 = size, digest.hexdigest()
    return True


def cacheable(path: Path) -> bool:
    """Whether the database file alone holds what a reading of it sees: no write-ahead log
    (``<db>-wal``, kept by a study that writes in WAL mode, its commits not yet in the file)
    or rollback journal beside it. Otherwise its results are not kept across runs, since
    the file's stat does not change with the log."""
    return not any(Path(f"{path}{suffix}").exists() for suffix in ("-wal", "-journal"))


def read(source: Path | str, display: str, settings: Settings) -> ReadResult:
    """Read every selected study of the storage at ``source`` (a path or a URL)."""
    result = ReadResult()
    file = source if isinstance(source, Path) else sqlite_file(source)
    url = readonly_url(file) if file is not None else str(source)
    engine_kwargs = {"creator": readonly_connector(file)} if file is not None else None
    if file is not None and not _fingerprint(file, result):
        return result
    try:
        optuna = require_optuna()
    except MissingExtra as err:
        result.problems.append(Problem("missing_extra", str(err), "rejected"))
        return result
    try:
        storage = optuna.storages.RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            skip_table_creation=True,
            skip_compatibility_check=True,
        )
    except Exception as err:  # driver missing, server unreachable, not a database
        result.problems.append(
            Problem("storage_unusable", f"cannot open the storage: {_brief(err, url)}", "rejected")
        )
        return result
    try:
        _read_studies(storage, display, settings, result)
    except Exception as err:  # e.g. a SQLite file without Optuna's tables
        result.trials.clear()
        result.problems.append(
            Problem(
                "not_optuna_storage",
                f"not a readable Optuna storage: {_brief(err, url)}",
                "rejected",
            )
        )
    finally:
        storage.engine.dispose()
    return result


def _brief(err: Exception, url: str) -> str:
    """The root cause in one line (SQLAlchemy wraps the driver's message), password masked."""
    cause: BaseException = err
    while cause.__cause__ is not None:
        cause = cause.__cause__
    text = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
    match = _PASSWORD.match(url)
    if match and match.group("password"):
        text = text.replace(match.group("password"), "***")
    if "no such table" in text:
        return f"{text} (a SQLite database, but not one written by Optuna)"
    return text


def _read_studies(storage: Any, display: str, settings: Settings, result: ReadResult) -> None:
    skipped = []
    studies = sorted(storage.get_all_studies(), key=lambda s: s._study_id)
    for study in studies:
        if not settings.study_selected(study.study_name):
            skipped.append(study.study_name)
            continue
        directions = [direction_name(d.name) for d in study.directions]
        names = study.system_attrs.get(METRIC_NAMES_ATTR)
        spec = objective_spec(
            len(directions),
            [str(n) for n in names] if isinstance(names, list) else None,
            directions,
            settings.rank_by,
        )
        if spec.problem is not None:
            result.problems.append(spec.problem)
        factors = parse_study_factors(study.study_name, settings.compiled_pattern())
        for trial in storage.get_all_trials(study._study_id, deepcopy=False):
            raw = {
                "number": trial.number,
                "state": trial.state.name,
                "values": list(trial.values) if trial.values is not None else None,
                "params": dict(trial.params),
                "user_attrs": dict(trial.user_attrs),
                "datetime_start": iso(trial.datetime_start),
                "datetime_complete": iso(trial.datetime_complete),
            }
            built = build_trial(
                raw,
                study=study.study_name,
                source_file=display,
                factors=factors,
                spec=spec,
                intermediate_values=trial.intermediate_values,
                aliases=settings.field_aliases,
            )
            result.add(built)
    if skipped:
        result.problems.append(not_selected(skipped))
    if not studies:
        result.problems.append(Problem("no_studies", "storage holds no study"))
