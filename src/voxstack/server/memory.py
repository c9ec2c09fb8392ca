"""Giving the heap's free memory back to the system.

glibc keeps what a process freed in its heaps (one per thread that
allocated) for reuse, and a thread pool running model inference frees
buffers of every size: the process keeps the high-water mark of all of
them. ``malloc_trim`` returns the free pages at once, in a millisecond or
two. Where the C library has none (musl), nothing is done.
"""

from __future__ import annotations

import ctypes


def release_free_memory() -> None:
    """Return the heap's free pages to the system (blocking: call it off the event loop)."""
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)  # the process's own symbols: its C library's
    if trim is not None:
        trim(0)
