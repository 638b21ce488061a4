"""The write fence: a paused or standby replica makes no AWS write and no Kubernetes write.

kopf pauses an outranked replica's watches and stops its daemons, but a Canary tick already running
in a thread goes on, and awsctl's binding queue and resync sweep are not kopf's to pause. So every
write awsctl makes passes this gate first: `Rest.call` for any method but GET, and a botocore
`before-send` hook for every AWS write (each HTTP attempt, after the API budget's wait). A closed gate raises `Fenced`, which ends the tick or the
reconcile where it stands; the active replica does the work.

The gate reads kopf's peering objects itself, every `poll` seconds, and applies kopf's rule to the
records (planning.peering): it does not depend on kopf's log text. It opens only after this replica
has been found active for `settle` seconds (more than two polls), so the replica it outranks has
closed first. It closes when a read is older than half the peering lifetime, because by then the
peers may count this replica as dead. Both replicas' reads of the same object, each at most one
poll apart, are what keep their writes from overlapping.

Not fenced: the readiness-gate webhook's serving Secret and webhook configuration (every replica
serves the webhook, and writes the same bytes), and outbound rollout webhooks and alerts, which are
not AWS or Kubernetes writes.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence

from awsctl import metrics
from awsctl.planning.peering import Verdict, may_write, verdict

log = logging.getLogger("awsctl.peering")


class Fenced(BaseException):
    """A write this replica may not make: another replica is the active one. A BaseException, so that
    no `except Exception` on the way (an AWS refusal's handling, say) mistakes it for a refusal and
    goes on; the tick's and the queue's loops catch it by name."""


class PeeringGate:
    """Open while this replica is the active one (always, without peering). With peering it starts
    closed, as kopf's mandatory peering starts paused, until the peering objects say otherwise."""

    def __init__(
        self,
        peering: bool,
        *,
        identity: str = "",
        priority: int = 0,
        lifetime: float = 10.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.peering = peering
        self.identity, self.priority = identity, priority
        self.poll = max(0.2, min(2.0, lifetime / 5))
        self.settle = 2 * self.poll + 1.0
        self.stale_after = lifetime / 2
        self._clock, self._monotonic = clock, monotonic
        self._open = not peering
        self._active_since: float | None = None
        self._read_at = float("-inf")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self._on_open: list[Callable[[], object]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        metrics.active_replica.set(1 if self._open else 0)

    def is_open(self) -> bool:
        if not self.peering:
            return True
        return self._open and self._monotonic() - self._read_at < self.stale_after

    def fence(self, write: str) -> None:
        """Raises Fenced unless this replica may write now; `write` names it for the log."""
        if not self.is_open():
            metrics.fenced_writes.inc()
            log.info("write fenced: another replica is the active one", extra={"write": write})
            raise Fenced(f"{write}: this replica is paused; another replica is the active one")

    # -- what the peering objects say ------------------------------------------------------
    def observe(self, statuses: Sequence[dict | None]) -> Verdict:
        """One read of every peering object this replica belongs to."""
        now = self._monotonic()
        said = verdict(self.identity, self.priority, statuses, self._clock())
        if now - self._read_at >= self.stale_after:  # unread that long: closed meanwhile; settle again
            self._active_since = None
        self._read_at = now
        if not said.active:
            self._active_since = None
        elif self._active_since is None:
            self._active_since = now
        self.set(may_write(self._active_since, now, self.settle), said.why)
        return said

    def unread(self, error: BaseException) -> None:
        """A read failed: after `stale_after` without one, is_open() says closed by itself."""
        log.warning("could not read the peering object", extra={"error": str(error)})

    def watch(self, read: Callable[[], Sequence[dict | None]]) -> None:
        """Polls `read` (every peering object's status) in a thread until `stop()`."""

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.observe(read())
                except Exception as err:  # noqa: BLE001 - an API hiccup must not end the fence's reads
                    self.unread(err)
                    if not self.is_open():
                        self.set(False, "the peering object could not be read")
                self._stop.wait(self.poll)

        self._thread = threading.Thread(target=loop, name="peering-gate", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    # -- who waits on the gate -------------------------------------------------------------
    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The event loop the binding queue runs on (the gate's waiters live there)."""
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

    def set(self, open_: bool, why: str = "") -> None:
        if open_ == self._open:
            return
        self._open = open_
        metrics.active_replica.set(1 if open_ else 0)
        log.info(
            "writes resumed: this replica is the active one"
            if open_
            else "writes paused: another replica may be active",
            extra={"why": why},
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
