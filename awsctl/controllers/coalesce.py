"""Runs at most one reconcile per object at a time and folds bursts of triggers into one rerun.

An EndpointSlice burst (a rollout of 300 pods) must not queue 300 reconciles of the same
binding: whoever holds the key reruns once for everything that arrived meanwhile.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")


class _Slot:
    __slots__ = ("lock", "pending")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending = False


class Coalescer:
    def __init__(self) -> None:
        self._slots: dict[Hashable, _Slot] = defaultdict(_Slot)
        self._guard = threading.Lock()

    def _slot(self, key: Hashable) -> _Slot:
        with self._guard:
            return self._slots[key]

    def trigger(self, key: Hashable, fn: Callable[[], T]) -> T | None:
        """Runs `fn` now, or asks the running holder to run it once more; returns None in that case."""
        slot = self._slot(key)
        slot.pending = True
        result = None
        while True:
            if not slot.lock.acquire(blocking=False):
                return result
            try:
                while slot.pending:
                    slot.pending = False
                    result = fn()
            finally:
                slot.lock.release()
            if not slot.pending:
                return result

    def exclusive(self, key: Hashable, fn: Callable[[], T]) -> T:
        """Waits for any running reconcile of `key`, then runs `fn` (deletion must not be skipped)."""
        slot = self._slot(key)
        with slot.lock:
            return fn()

    def forget(self, key: Hashable) -> None:
        with self._guard:
            self._slots.pop(key, None)
