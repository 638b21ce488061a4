"""Deleting a Canary (invariant 9): traffic back to the primary and verified, the route restored,
bindings drained, owned target groups deleted, and with revertOnDeletion the user's objects restored.

Each stage is idempotent; a stage that has to wait raises `Retry`, and the finalizer runs
again from the top, so a restart in the middle of a deletion finishes it.
"""

from __future__ import annotations

import logging

from awsctl.api import canary as api
from awsctl.api.binding import PLURAL as BINDINGS
from awsctl.api.phases import Phase
from awsctl.api.schema import SpecError
from awsctl.aws.target_groups import TargetGroupInUse
from awsctl.controllers.canary_reconciler import CanaryReconciler, deployment_ready
from awsctl.kube.client import epoch, rfc3339
from awsctl.planning import naming, objects, removal
from awsctl.planning import weights as w

log = logging.getLogger("awsctl.canary")
DRAIN_RETRY_SECONDS = 1.0  # kopf runs the finalizer again this much later, holding no thread meanwhile


class Retry(Exception):
    def __init__(self, message: str, delay: float = 1.0):
        super().__init__(message)
        self.delay = delay


class CanaryRemoval:
    def __init__(self, reconciler: CanaryReconciler):
        self.r = reconciler

    def remove(self, body: dict) -> None:
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        self.r.locks.exclusive(key, lambda: self._remove(body))
        self.r.locks.forget(key)

    def _remove(self, body: dict) -> None:
        meta, status = body["metadata"], dict(body.get("status") or {})
        ns, name = meta["namespace"], meta["name"]
        changes: api.CanaryStatus = {"phase": Phase.TERMINATING}
        if status.get("phase") != Phase.TERMINATING:  # the give-back's deadline counts from here
            changes["message"] = "restoring traffic and cleaning up"
            changes["lastTransitionTime"] = rfc3339(self.r.clock())
        status = self.r.status.write(body, status, changes)
        try:
            spec = api.CanarySpec.parse(body.get("spec") or {})
        except SpecError:
            spec = None
        self._restore_traffic(body, spec, status)
        self._settle(body, spec)
        self._drain_bindings(body)
        deleted = 0
        for arn in self._owned_groups(body, spec):
            try:
                self.r.owned.delete(arn)
                self.r.groups.forget(arn)
                deleted += 1
            except TargetGroupInUse:
                raise Retry(f"target group {arn} is still in use by a listener or rule", 2.0) from None
        if spec is not None and spec.revert_on_deletion:
            self._revert(body, spec, status)
        message = f"traffic restored, {deleted} target groups deleted"
        self.r.status.write(body, status, {"phase": Phase.TERMINATED, "message": message})
        self.r.kube.event(body, type="Normal", reason=Phase.TERMINATED, message=message)
        log.info("canary removed", extra={"canary": f"{ns}/{name}", "targetGroupsDeleted": deleted})

    def _settle(self, body: dict, spec: api.CanarySpec | None) -> None:
        """The route is given back: the groups keep their targets for the nodes' propagation first."""
        status = body.get("status") or {}
        released = status.get("releasedAt")
        now = self.r.clock()
        if released is None:
            self.r.status.write(body, status, {"releasedAt": rfc3339(now)})
        seconds = spec.load_balancer.propagation_seconds if spec is not None else api.PROPAGATION_SECONDS
        waiting = removal.settling(None if released is None else epoch(released), now, seconds)
        if waiting:
            self.r.status.write(body, body.get("status") or {}, {"message": waiting})
            raise Retry(waiting, min(5.0, seconds))

    def _owned_groups(self, body: dict, spec: api.CanarySpec | None) -> list[str]:
        """The Canary's own groups, looked up by what is known of them: the ARNs status recorded, and the
        names its backends give (recorded in status, or from the spec: a group a crash left unrecorded
        has one of these names). Only a Canary with neither lists every group of the region."""
        meta, status = body["metadata"], body.get("status") or {}
        ns, name = meta["namespace"], meta["name"]
        owner = naming.owner(api.KIND, ns, name)
        arns = [arn for role in ("primary", "canary") for arn in (status.get("targetGroups") or {}).get(role) or ()]
        arns += (status.get("retiringGroups") or {}).get("arns") or ()  # a move's old groups, not yet deleted
        keys = [(role, key) for role in ("primary", "canary") for key in (status.get("backends") or {}).get(role) or ()]
        if spec is not None:
            keys += [(side.role, side.key) for side in spec.service.backends()]
        if not arns and not keys:
            return self.r.owned.owned(owner, self.r.cluster)
        names = [naming.target_group_name(self.r.cluster, ns, name, role, key) for role, key in keys]
        return self.r.owned.owned_among(owner, self.r.cluster, arns, names)

    def _bindings(self, body: dict) -> list[dict]:
        meta = body["metadata"]
        return [
            b
            for b in self.r.kube.list_custom(BINDINGS, meta["namespace"], f"{objects.CANARY_LABEL}={meta['name']}")
            if objects.owned_by(b, meta["uid"])
        ]

    def _drain_bindings(self, body: dict) -> None:
        """Deletes the child bindings; while their finalizers deregister the targets, the deletion goes
        back to kopf as a retry (an asynchronous wait), never a sleep on the pool every Canary's tick
        shares."""
        bindings = self._bindings(body)
        for binding in bindings:
            if not binding["metadata"].get("deletionTimestamp"):
                self.r.kube.delete_custom(BINDINGS, body["metadata"]["namespace"], binding["metadata"]["name"])
        if bindings:
            raise Retry(f"waiting for {len(bindings)} bindings to deregister their targets", DRAIN_RETRY_SECONDS)

    def _restore_traffic(self, body: dict, spec: api.CanarySpec | None, status: dict) -> None:
        recorded = self.r.canary_groups.recorded(body)
        primary = [w.Backend(arn) for (role, _), arn in recorded.items() if role == "primary"]
        canary = [w.Backend(arn) for (role, _), arn in recorded.items() if role == "canary"]
        restorable = None
        if spec is not None:
            restorable = lambda groups: self._restorable(body, spec, status, groups, [b.arn for b in primary])  # noqa: E731
        awaited = self.r.traffic.release(
            spec, self.r.ledger(body), primary, canary, self.r.canary_groups.healthy_arns, restorable=restorable
        )
        if awaited:
            self.r.status.write(body, body.get("status") or {}, {"message": awaited})
            raise Retry(awaited)
        self.r.status.write(body, body.get("status") or {}, {"canaryWeight": 0})

    def _restorable(
        self, body: dict, spec: api.CanarySpec, status: dict, groups: list[str], primary: list[str]
    ) -> str | None:
        """Whether the route may go back to the user's `groups` (planning/removal.py). With
        revertOnDeletion the user's Deployment and apex Service come back first, while the traffic is
        still on the primary's group, so that the user's group holds the user's pods when it gets
        the traffic back."""
        reverted = spec.revert_on_deletion and self._revert(body, spec, status)
        leaving = {h.target.id for arn in primary for h in self.r.canary_groups.health_of(arn)} if reverted else set()
        decision = removal.give_back(
            {arn: [(h.target.id, h.state) for h in self.r.canary_groups.health_of(arn)] for arn in groups},
            leaving,
            reverted,
            self.r.clock() - epoch(status.get("lastTransitionTime")),
            spec.progress_deadline_seconds,
        )
        if decision.overdue:
            meta = body["metadata"]
            self.r.kube.event(body, type="Warning", reason="RouteGivenBackUnready", message=decision.message)
            log.warning(decision.message, extra={"canary": f"{meta['namespace']}/{meta['name']}"})
        return None if decision.go else decision.message

    def _revert(self, body: dict, spec: api.CanarySpec, status: dict) -> bool:
        """Your Deployment scaled back and ready, then your apex Service's selector back; raises Retry
        while waiting. Returns whether your Deployment is there (its pods are coming to your groups)."""
        ns = body["metadata"]["namespace"]
        target = self.r.kube.get_deployment(ns, spec.target_name)
        replicas = int(status.get("targetReplicas") or 1)
        if target is not None:
            if int((target.get("spec") or {}).get("replicas", 0)) != replicas:
                self.r.kube.scale(ns, spec.target_name, replicas)
                raise Retry(f"waiting for Deployment {spec.target_name} to scale back to {replicas}")
            if not deployment_ready(target):
                raise Retry(f"waiting for Deployment {spec.target_name} to become ready")
        selector = status.get("apexSelector")
        apex = self.r.kube.get_service(ns, spec.service.name) if selector else None
        if selector and apex is not None and (apex.get("spec") or {}).get("selector") != selector:
            self.r.kube.set_service_selector(ns, spec.service.name, selector)
        return target is not None
