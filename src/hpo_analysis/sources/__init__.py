"""Readers of HPO results: one module per input format, listed in :mod:`.registry`."""

from __future__ import annotations

from .base import ReadResult, read_bytes_checked
from .discover import Found, discover
from .registry import claim, reader_named

__all__ = ["Found", "ReadResult", "claim", "discover", "read_bytes_checked", "reader_named"]
