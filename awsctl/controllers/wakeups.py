"""Early wake-ups for Canary loops that wait on readiness.

A Canary that is Initializing or Promoting waits for its target groups to have healthy targets.
Its child bindings know first: when their counts change they wake the Canary's loop at once, so a
Canary with a 1m interval does not sit a minute on a primary that is already serving. Analysis
steps are never hurried: only waiting phases accept a wake-up.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Hashable

from awsctl.api.phases import Phase

WAITING_PHASES = frozenset({Phase.INITIALIZING, Phase.PROMOTING})


class Wakeups:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loops: dict[Hashable, tuple[asyncio.AbstractEventLoop, asyncio.Event]] = {}
        self._waiting: set[Hashable] = set()

    def register(self, key: Hashable) -> asyncio.Event:
        """Called by the Canary's daemon, on its event loop."""
        event = asyncio.Event()
        with self._lock:
            self._loops[key] = (asyncio.get_running_loop(), event)
        return event

    def unregister(self, key: Hashable) -> None:
        with self._lock:
            self._loops.pop(key, None)
            self._waiting.discard(key)

    def phase(self, key: Hashable, phase: Phase) -> None:
        """The reconciler reports each tick's phase; only waiting phases can be woken."""
        with self._lock:
            (self._waiting.add if phase in WAITING_PHASES else self._waiting.discard)(key)

    def wake(self, key: Hashable, any_phase: bool = False) -> bool:
        """From any thread; returns whether a loop was woken. `any_phase`: a person asked (awsctl promote,
        abort, retry), so the loop wakes whatever it waits for."""
        with self._lock:
            entry = self._loops.get(key) if any_phase or key in self._waiting else None
        if entry is None:
            return False
        loop, event = entry
        loop.call_soon_threadsafe(event.set)
        return True
