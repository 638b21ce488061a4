"""Whether this replica is the active one, read from kopf's peering objects, not from kopf's log.

kopf's peers each keep a record in the peering object's status: `{identity: {priority, lifetime,
lastseen}}`. A record is live until `lastseen + lifetime`. kopf pauses a replica when a live peer
has a higher priority, or the same one (then all of them pause). These functions apply that rule to
the records as read, so the write fence (controllers/peering.py) needs no word of kopf's logging.

Two differences make the fence stricter than kopf:
- A replica is active only while its own record is live. A replica whose keep-alives stopped
  reaching the API server is, for its peers, dead; it must not keep writing.
- A replica opens only after it has been found active for `settle` seconds. The replica it
  outranks polls the same object at the same period, so by then it has seen the new record and
  closed. Without that wait, both would write for up to one poll period.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    active: bool
    why: str  # for the log line that says why this replica paused or resumed


def deadline(record: Mapping[str, object]) -> float:
    """When a peer's record stops being live (epoch seconds); 0 when it cannot be read."""
    try:
        seen = datetime.datetime.fromisoformat(str(record["lastseen"]))
        if seen.tzinfo is None:
            seen = seen.replace(tzinfo=datetime.UTC)
        return seen.timestamp() + float(str(record.get("lifetime", 60)))
    except (KeyError, TypeError, ValueError):
        return 0.0


def verdict(
    own: str, priority: int, statuses: Iterable[Mapping[str, Mapping[str, object]] | None], now: float
) -> Verdict:
    """Active when, in every peering object this replica belongs to, its own record is live and no
    other live record has a priority as high as its own. `None` stands for an object not found."""
    for status in statuses:
        if status is None:
            return Verdict(False, "the peering object is missing")
        mine = status.get(own)
        if not isinstance(mine, Mapping) or deadline(mine) <= now:
            return Verdict(False, "this replica's own keep-alive is not live in the peering object")
        rivals = sorted(
            peer
            for peer, record in status.items()
            if peer != own
            and isinstance(record, Mapping)
            and deadline(record) > now
            and int(str(record.get("priority", 0))) >= priority
        )
        if rivals:
            return Verdict(False, f"a live peer has a priority as high as {priority}: {', '.join(rivals)}")
    return Verdict(True, "no live peer has a priority as high as this replica's")


def may_write(active_since: float | None, now: float, settle: float) -> bool:
    """Open once the replica has been found active for `settle` seconds without a break."""
    return active_since is not None and now - active_since >= settle
