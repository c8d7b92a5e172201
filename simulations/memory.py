"""Give memory that ended runs freed back to the operating system.

A run's engine, frames and viewers are freed when it ends, but glibc's allocator
keeps freed memory for reuse instead of returning it: after a class of runs has
come and gone a process would stay at its peak size. ``malloc_trim`` hands the
free pages back. It walks the heap, so it runs at most every few seconds, and
only after something was freed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time

TRIM_EVERY_S = 5.0

_libc_name = ctypes.util.find_library("c")
try:
    _malloc_trim = ctypes.CDLL(_libc_name).malloc_trim if _libc_name else None
except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to do
    _malloc_trim = None

_lock = threading.Lock()
_last = 0.0


def release_freed_memory(*, force: bool = False) -> bool:
    """Return freed memory to the OS, at most every few seconds; True if it did."""
    global _last
    if _malloc_trim is None:
        return False
    now = time.monotonic()
    with _lock:
        if not force and now - _last < TRIM_EVERY_S:
            return False
        _last = now
    _malloc_trim(0)
    return True
