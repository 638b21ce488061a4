"""Gives freed heap memory back to the operating system after a burst of work.

A sync of hundreds of bindings parses and drops many megabytes of JSON (watch events, lists,
AWS responses) across many threads; glibc keeps the freed pages mapped, so RSS stays at the
burst's peak long after the live objects are gone (measured: ~0.35 MiB a binding that was never
in use). `malloc_trim(0)` returns them; it runs once the work queue is idle, at most every 30 s.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
import time

log = logging.getLogger("awsctl")
MIN_GAP = 30.0


class Trimmer:
    def __init__(self) -> None:
        self._trim = None
        self._last = float("-inf")
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                self._trim = libc.malloc_trim
                self._trim.argtypes = [ctypes.c_size_t]
            except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to give back this way
                self._trim = None

    def __call__(self) -> None:
        now = time.monotonic()
        if self._trim is None or now - self._last < MIN_GAP:
            return
        self._last = now
        self._trim(0)
