"""A Canary's target groups (created or adopted by name and tags, updated in place) and the child
TargetGroupBindings that fill them, one per Service on each side."""

from __future__ import annotations

from dataclasses import dataclass, replace

from awsctl.api import canary as api
from awsctl.api.binding import PLURAL as BINDINGS
from awsctl.aws.target_groups import DesiredGroup, OwnedTargetGroups, TargetGroupInUse
from awsctl.aws.targets import TargetGroupNotFound, TargetGroups, TargetHealth
from awsctl.controllers.generated import owned_or_absent
from awsctl.kube.client import Kube
from awsctl.planning import naming, objects
from awsctl.planning.placement import Placement


@dataclass(frozen=True)
class Backend(api.SideBackend):
    """One Service on one side of the forward action, with its target group and child binding."""

    arn: str = ""


class CanaryGroups:
    def __init__(self, kube: Kube, groups: TargetGroups, owned: OwnedTargetGroups, cluster: str):
        self.kube = kube
        self.groups = groups
        self.owned = owned
        self.cluster = cluster

    def ensure(
        self,
        body: dict,
        spec: api.CanarySpec,
        backends: list[Backend],
        target_type: str,
        family: str = "ipv4",
        place: Placement | None = None,
    ) -> list[Backend]:
        """`family`: the Services' IP family; ip groups are created in it (an IPv4 group on an IPv6 cluster
        would never get a target). `place`: the load balancer's key the names carry, and whether a move
        starts (then the recorded groups are the old ones, left to their bindings until retired)."""
        meta = body["metadata"]
        lb = spec.load_balancer
        key = place.key if place else ""
        vpc = lb.target_group.vpc_id or self.owned.vpc_of(lb.listener_arn)
        known = {} if place is not None and place.retiring is not None else self.recorded(body)
        spec_changed = objects.spec_changed(body)
        out = []
        for b in backends:
            arn = known.get((b.role, b.key))
            if not arn or spec_changed or not self._group_exists(arn):  # create, adopt, or update in place
                arn, changed = self.owned.ensure(
                    DesiredGroup(
                        name=naming.target_group_name(
                            self.cluster, meta["namespace"], meta["name"], b.role, b.key, key
                        ),
                        protocol=lb.target_group.protocol,
                        port=lb.target_group.port,
                        vpc_id=vpc,
                        target_type=target_type,
                        health_check=lb.target_group.health_check,
                        deregistration_delay=lb.target_group.deregistration_delay,
                        tags=naming.owner_tags(self.cluster, api.KIND, meta["namespace"], meta["name"], b.role),
                        ip_address_type=family,
                    )
                )
                if changed:  # its health-check settings (which pace health reads) are read afresh
                    self.groups.forget(arn)
            out.append(replace(b, arn=arn))
            binding = objects.child_binding(
                naming.binding_name(meta["name"], b.role, b.service, b.generated, key),
                body,
                b.role,
                b.service,
                b.port,
                arn,
                target_type,
                gate=naming.binding_name(meta["name"], b.role, b.service, b.generated),  # what pods carry
            )
            existing = self.kube.get_custom(BINDINGS, meta["namespace"], binding["metadata"]["name"])
            owned_or_absent(existing, body, "TargetGroupBinding", binding["metadata"]["name"])
            if existing is None or existing.get("spec") != binding["spec"]:
                self.kube.apply(binding)
        return out

    def retire(self, body: dict, arns: list[str]) -> str:
        """Removes the groups a move left behind, a step a tick: their bindings first (whose finalizers
        deregister the targets), then the groups this Canary's tags vouch for. Returns what it waits
        for, or "" once they are gone."""
        meta = body["metadata"]
        left = [
            b
            for b in self.kube.list_custom(BINDINGS, meta["namespace"], f"{objects.CANARY_LABEL}={meta['name']}")
            if objects.owned_by(b, meta["uid"]) and (b.get("spec") or {}).get("targetGroupARN") in arns
        ]
        for binding in left:
            if not binding["metadata"].get("deletionTimestamp"):
                self.kube.delete_custom(BINDINGS, meta["namespace"], binding["metadata"]["name"])
        if left:
            return f"{len(left)} binding(s) of the old groups deregistering their targets"
        owner = naming.owner(api.KIND, meta["namespace"], meta["name"])
        for arn in self.owned.owned_among(owner, self.cluster, arns, ()):
            try:
                self.owned.delete(arn)
            except TargetGroupInUse:
                return f"target group {naming.group_of(arn)} still in use by a listener or rule"
            self.groups.forget(arn)
        return ""

    @staticmethod
    def recorded(body: dict) -> dict[tuple[str, str], str]:
        """(role, service:port) -> target group ARN, as the last tick wrote them to status."""
        status = body.get("status") or {}
        keys, arns = status.get("backends") or {}, status.get("targetGroups") or {}
        return {
            (role, key): arn
            for role in ("primary", "canary")
            for key, arn in zip(keys.get(role) or (), arns.get(role) or ())
        }

    def _group_exists(self, arn: str) -> bool:
        try:
            self.groups.describe(arn)
            return True
        except TargetGroupNotFound:
            return False

    def healthy_arns(self, arns: list[str]) -> dict[str, int]:
        return {arn: sum(1 for h in self.health_of(arn) if h.state == "healthy") for arn in arns}

    def health_of(self, arn: str) -> list[TargetHealth]:
        """The group's targets as AWS shows them; none for a group that is gone."""
        try:
            return self.groups.health(arn)
        except TargetGroupNotFound:
            return []
