"""The one way a Canary's status is written, by a tick and by its removal alike.

Within a tick (`with writer.tick(body):`) changes are gathered and sent as one PATCH when the tick
ends, however it ends. The exceptions are the write-aheads crash safety needs (`now=True`, and
every `writer(body)` and routing Ledger record): what awsctl is about to change in AWS or in the
user's objects is on the API server before the change is made, so a restarted operator finds it.
Outside a tick every write is sent at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from awsctl.api import canary as api
from awsctl.api.canary import CanaryStatus
from awsctl.kube.client import Kube


class CanaryStatusWriter:
    def __init__(self, kube: Kube):
        self.kube = kube
        self._lock = threading.Lock()
        self._drafts: dict[int, dict[str, Any]] = {}  # id(body) -> changes not sent yet, per running tick

    @contextmanager
    def tick(self, body: dict) -> Iterator[None]:
        """Gathers this tick's changes to `body`'s status and sends them once, at the end."""
        with self._lock:
            self._drafts[id(body)] = {}
        try:
            yield
        finally:
            with self._lock:
                draft = self._drafts.pop(id(body))
            self._patch(body, draft)

    def write(self, body: dict, status: Mapping[str, Any], changes: CanaryStatus, now: bool = False) -> dict:
        """Keeps `body` current at once, so later steps of the tick see the change; sends only what
        changed. `now`: a write-ahead, sent before the caller goes on (with whatever was gathered)."""
        changed = {k: v for k, v in changes.items() if status.get(k) != v}
        body["status"] = {**status, **changes}
        with self._lock:
            draft = self._drafts.get(id(body))
            nested = draft is not None and any(_nested(draft, k, v) for k, v in changed.items())
            if draft is not None and not now and not nested:
                draft.update(changed)
                return body["status"]
            gathered = dict(draft or {})
            if draft is not None:
                draft.clear()
        if nested:  # in turn, as they were made
            self._patch(body, gathered)
            self._patch(body, changed)
        else:
            self._patch(body, {**gathered, **changed})
        return body["status"]

    def writer(self, body: dict) -> Callable[[CanaryStatus], dict]:
        """A write-ahead bound to `body`'s current status: for helpers that record before they change."""
        return lambda changes: self.write(body, body.get("status") or {}, changes, now=True)

    def _patch(self, body: dict, changes: dict[str, Any]) -> None:
        if changes:
            meta = body["metadata"]
            self.kube.patch_status(api.PLURAL, meta["namespace"], meta["name"], changes)


def _nested(draft: Mapping[str, Any], key: str, value: Any) -> bool:
    """A second change to an object-valued key in one tick: a merge patch of the two in turn is not
    one patch of the last, so the gathered changes go first."""
    return key in draft and (isinstance(value, dict) or isinstance(draft[key], dict))
