"""Memory of a large run: the cyclic garbage collector held off where it finds nothing, and
freed memory handed back to the system between the stages.

Reading, replaying a journal and writing allocate millions of small dicts and lists that form
no reference cycles (reference counting frees them), while each full collection walks every
row kept so far; a cost that grows with the dataset and frees nothing. Pages freed by a stage
stay with the allocators (Arrow's, glibc's) unless handed back, and a later stage's peak then
sits on top of them.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector paused meanwhile, and afterwards as it was before."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def release_memory() -> None:
    """Hand the memory Arrow's allocator and the C library keep for reuse back to the
    system: a large run's peak is otherwise the sum of every table it has built. (glibc keeps
    the free pages between the rows a run has let go; ``malloc_trim`` returns them.)"""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, or None on another C library or system."""
    import ctypes

    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
