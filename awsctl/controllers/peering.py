"""Whether this replica may write: kopf's peering decision, extended to what kopf does not pause.

With kopf peering, a replica pauses when a live peer has a higher priority (or the same one). kopf then
freezes its own watches, daemons and timers, but not awsctl's binding queue or its resync sweep: a
paused replica would go on registering targets and writing `managedTargets` beside the active one. The
gate follows kopf's own decision, as kopf announces it (the peering engine's log records, at the moment
it flips its toggle), so the queue stops and starts at the same instant as kopf, with no API call of
its own. Every binding write also carries the resourceVersion it read (binding_reconciler), so even a
write already in flight at the hand-over cannot drop what the other replica registered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger("awsctl.peering")
KOPF_PEERING_LOGGER = "kopf._core.engines.peering"
# kopf's words when it pauses (a peer of higher priority, or of the same one) and when it resumes.
PAUSING = ("Pausing operations", "Pausing all operators")
RESUMING = ("Resuming operations",)


def verdict(message: str) -> bool | None:
    """True: kopf resumes this replica; False: it pauses it; None: the record says neither."""
    if message.startswith(PAUSING):
        return False
    if message.startswith(RESUMING):
        return True
    return None


class PeeringGate:
    """Open while this replica is the active one (always, without peering). Mandatory peering starts
    paused, as kopf does, until kopf resumes it."""

    def __init__(self, peering: bool):
        self._open = not peering
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self._on_open: list[Callable[[], object]] = []

    def is_open(self) -> bool:
        return self._open

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The event loop the queue runs on (the gate's waiters live there)."""
        self._loop = loop
        self._event = asyncio.Event()
        if self._open:
            self._event.set()

    def when_open(self, callback: Callable[[], object]) -> None:
        """Called on the event loop each time the gate opens (e.g. to wake waiting workers)."""
        self._on_open.append(callback)

    async def opened(self) -> None:
        if self._event is not None:
            await self._event.wait()

    def set(self, open_: bool) -> None:
        if open_ == self._open:
            return
        self._open = open_
        log.info(
            "binding writes resumed: this replica is the active one"
            if open_
            else "binding writes paused: another replica is the active one"
        )
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._flip, open_)

    def _flip(self, open_: bool) -> None:
        if self._event is None:
            return
        if open_:
            self._event.set()
            for callback in self._on_open:
                callback()
        else:
            self._event.clear()

    def follow_kopf(self) -> logging.Handler:
        """Installs (and returns) the handler that hears kopf's peering decisions."""
        gate = self

        class Heard(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                said = verdict(record.getMessage())
                if said is not None:
                    gate.set(said)

        handler = Heard(logging.INFO)
        peering_log = logging.getLogger(KOPF_PEERING_LOGGER)
        peering_log.addHandler(handler)
        if peering_log.getEffectiveLevel() > logging.INFO:  # the records must be made to be heard
            peering_log.setLevel(logging.INFO)
        return handler
