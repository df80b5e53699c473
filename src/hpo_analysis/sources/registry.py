"""The explicit list of readers, and dispatch to the first one whose ``sniff`` claims a path.

A reader is a module with ``NAME``, ``FORMAT`` (the label written to the manifest),
``sniff(path) -> bool`` (cheap: looks at the name and at most the first bytes) and
``read(path, display, settings) -> ReadResult``. Order matters: the most specific first.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType


def _readers() -> list[ModuleType]:
    from . import trial_json

    return [trial_json]


def claim(path: Path) -> str | None:
    """Name of the first reader whose sniff claims ``path``, or None."""
    for reader in _readers():
        if reader.sniff(path):
            return str(reader.NAME)
    return None


def reader_named(name: str) -> ModuleType:
    for reader in _readers():
        if reader.NAME == name:
            return reader
    raise KeyError(name)
