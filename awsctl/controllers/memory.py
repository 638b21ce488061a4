"""Gives freed heap memory back to the operating system after a burst of work.

A sync of hundreds of bindings parses and drops many megabytes of JSON (watch events, lists,
AWS responses) across many threads; glibc keeps freed pages mapped, so RSS stays near the burst's
peak. `malloc_trim(0)` returns them; it runs once the work queue is idle, at most every 30 s.
Measured at 300 bindings: 6 MiB. The large costs were elsewhere: kopf's unbounded connection pool
and the official Kubernetes client's import (see benchmarks/RESULTS.md).
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
