"""One family of errors: everything hpo-analysis raises on purpose derives from
:class:`HpoAnalysisError`, and carries the exit code the command line gives it.

Exit codes: 0 success, 1 a data or validation failure, 2 a usage error (a bad option, a
missing source, an optional extra that is not installed). The command line maps the base class
in one place; a library caller catches ``HpoAnalysisError`` (or one subclass).

The built-in base each class had before (``ValueError``, ``ImportError``) is kept beside it,
so ``except ValueError`` keeps working.

Example::

    >>> err = MissingExtra("report")
    >>> isinstance(err, HpoAnalysisError), isinstance(err, ImportError), err.exit_code
    (True, True, 2)
    >>> print(install_hint("report"))
    pip install 'hpo-analysis[report]' (from a clone: pip install '.[report]')
"""

from __future__ import annotations

import importlib
import sys
import threading
from types import ModuleType
from typing import Any


class HpoAnalysisError(Exception):
    """Base of every error hpo-analysis raises on purpose; ``exit_code`` for the CLI."""

    exit_code = 1
    label = "error"  # the word the command line puts before the message


class UsageProblem(HpoAnalysisError):
    """The call itself cannot work (bad option, missing source, missing extra): exit 2."""

    exit_code = 2


def install_hint(extra: str) -> str:
    """The one way the project says how to install an optional extra."""
    return f"pip install 'hpo-analysis[{extra}]' (from a clone: pip install '.[{extra}]')"


class MissingExtra(UsageProblem, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, extra: str, what: str = "this") -> None:
        self.extra = extra
        super().__init__(f"{what} needs the optional {extra!r} extra: {install_hint(extra)}")


def require(module: str, extra: str, what: str = "this") -> ModuleType:
    """Import ``module`` (with :func:`import_detached`) or raise :class:`MissingExtra` naming
    ``extra``.

    >>> require("json", "core").__name__
    'json'
    """
    try:
        return import_detached(module)
    except ImportError:
        raise MissingExtra(extra, what) from None


def import_detached(module: str) -> ModuleType:
    """``importlib.import_module(module)``, run on a thread of its own the first time.

    Some libraries keep the exception of each optional import they tried, with its traceback
    (Optuna does, for redis, grpc, ...). A traceback's frames lead back through the stack of
    whoever imported the library, and a frame keeps its locals: imported from inside a run, the
    library would keep that run's tables alive for the rest of the process (the trial frame and
    every finding of the analysis, hundreds of MB at 100,000 trials). Imported on a thread, the
    frames lead back only to the thread's start.

    >>> import_detached("json").__name__
    'json'
    """
    loaded = sys.modules.get(module)
    if loaded is not None:
        return loaded
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(importlib.import_module(module))
        except BaseException as err:  # handed to the caller below
            outcome.append(err)

    thread = threading.Thread(target=run, name=f"import {module}", daemon=True)
    thread.start()
    thread.join()
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]
