"""The package version, in a module of its own so that any stage can record it (the cache
header, the output metadata) without importing the package's public face; and the digest of
the code that makes the outputs, for what the cache keeps across runs."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import sys
from pathlib import Path

__version__ = "0.1.0"


@functools.cache
def source_digest() -> str:
    """sha256 of this package's source files (names and bytes): a changed line of code may
    give other outputs, whatever the version says."""
    source = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        source.update(path.relative_to(package).as_posix().encode("utf-8") + b"\0")
        source.update(path.read_bytes() + b"\0")
    return source.hexdigest()


def library_versions(names: tuple[str, ...]) -> tuple[tuple[str, str | None], ...]:
    """The installed versions of the distributions ``names`` (None when absent), and
    Python's."""
    versions: list[tuple[str, str | None]] = []
    for name in names:
        try:
            versions.append((name, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            versions.append((name, None))
    versions.append(("python", sys.version))
    return tuple(versions)
