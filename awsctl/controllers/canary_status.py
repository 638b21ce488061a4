"""The one way a Canary's status is written, by a tick and by its removal alike."""

from __future__ import annotations

from collections.abc import Mapping

from awsctl.api import canary as api
from awsctl.kube.client import Kube


class CanaryStatusWriter:
    def __init__(self, kube: Kube):
        self.kube = kube

    def write(self, body: dict, status: Mapping, changes: Mapping) -> dict:
        """Patches only what changed and keeps `body` current, so later steps of the tick see it."""
        merged = {**status, **changes}
        if any(status.get(k) != v for k, v in changes.items()):
            meta = body["metadata"]
            self.kube.patch_status(api.PLURAL, meta["namespace"], meta["name"], dict(changes))
        body["status"] = merged
        return merged

    def writer(self, body: dict):
        """`write` bound to `body`'s current status: for helpers that record one thing (write-aheads)."""
        return lambda changes: self.write(body, body.get("status") or {}, changes)
