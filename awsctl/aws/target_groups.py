"""Target groups awsctl owns: create or adopt by name and tags, update in place, find by tags, delete.

A group is adopted only when its tags name the same owner; anything else is a conflict, never
taken over (DESIGN: awsctl never changes a target group it does not own). Settings that AWS
can change in place (health check, deregistration delay) are updated, not recreated
(aws-load-balancer-controller #4810).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from botocore.exceptions import ClientError

from awsctl.aws.clients import Clients
from awsctl.aws.errors import describe_tags, error_code, not_found
from awsctl.aws.listeners import Listeners
from awsctl.planning.naming import CLUSTER, MANAGED_BY, OWNER

_HEALTH_CHECK_FIELDS = {  # spec key -> CreateTargetGroup/ModifyTargetGroup argument
    "path": "HealthCheckPath",
    "port": "HealthCheckPort",
    "intervalSeconds": "HealthCheckIntervalSeconds",
    "timeoutSeconds": "HealthCheckTimeoutSeconds",
    "healthyThresholdCount": "HealthyThresholdCount",
    "unhealthyThresholdCount": "UnhealthyThresholdCount",
}


class TargetGroupConflict(Exception):
    """A group with our deterministic name exists but is not ours."""


class TargetGroupInUse(Exception):
    """Still referenced by a listener or rule; retried after the rule is restored."""


@dataclass(frozen=True)
class DesiredGroup:
    name: str
    protocol: str
    port: int
    vpc_id: str
    target_type: str
    health_check: Mapping[str, object]
    deregistration_delay: int
    tags: Mapping[str, str]
    ip_address_type: str = "ipv4"  # an ip group's family: the Service's (ipv6 on an IPv6 cluster)


# AWS's defaults for an HTTP(S) target group's health check: a field the spec leaves out (or no longer
# names) is set to these, so removing it from the spec resets it in AWS.
HEALTH_CHECK_DEFAULTS: Mapping[str, object] = {
    "path": "/",
    "port": "traffic-port",
    "intervalSeconds": 30,
    "timeoutSeconds": 5,
    "healthyThresholdCount": 5,
    "unhealthyThresholdCount": 2,
    "matcher": "200",
}


# An NLB group's (TCP, TLS, UDP, TCP_UDP) health check is TCP by default, with a 10 s timeout, and an HTTP
# check there matches 200-399 (AWS's "Health checks for Network Load Balancer target groups").
NLB_HEALTH_CHECK_DEFAULTS: Mapping[str, object] = {
    "port": "traffic-port",
    "intervalSeconds": 30,
    "timeoutSeconds": 10,
    "healthyThresholdCount": 5,
    "unhealthyThresholdCount": 2,
}
NLB_HTTP_CHECK_DEFAULTS: Mapping[str, object] = {"path": "/", "matcher": "200-399"}


def check_protocol(health_check: Mapping[str, object], group_protocol: str) -> str:
    """The health check's protocol: the spec's, else the group's on an ALB and TCP on an NLB, as AWS does."""
    if health_check.get("protocol"):
        return str(health_check["protocol"])
    return group_protocol if group_protocol in ("HTTP", "HTTPS") else "TCP"


def with_defaults(health_check: Mapping[str, object], group_protocol: str = "HTTP") -> dict[str, object]:
    """The spec's health check with AWS's defaults for what it leaves out (per kind of group); the
    default timeout stays below a shorter interval, as AWS requires."""
    protocol = check_protocol(health_check, group_protocol)
    if group_protocol in ("HTTP", "HTTPS"):
        defaults: Mapping[str, object] = HEALTH_CHECK_DEFAULTS
    elif protocol == "TCP":
        defaults = NLB_HEALTH_CHECK_DEFAULTS
    else:
        defaults = {**NLB_HEALTH_CHECK_DEFAULTS, **NLB_HTTP_CHECK_DEFAULTS}
    full = {**defaults, **health_check, "protocol": protocol}
    if "timeoutSeconds" not in health_check:
        full["timeoutSeconds"] = min(int(str(full["timeoutSeconds"])), int(str(full["intervalSeconds"])) - 1)
    return full


def _health_check_args(health_check: Mapping[str, object], group_protocol: str) -> dict:
    full = with_defaults(health_check, group_protocol)
    out = {arg: full[key] for key, arg in _HEALTH_CHECK_FIELDS.items() if key in full}
    out["HealthCheckProtocol"] = full["protocol"]
    if "matcher" in full:
        out["Matcher"] = {"HttpCode": str(full["matcher"])}
    return out


class OwnedTargetGroups:
    def __init__(self, clients: Clients):
        self._clients = clients
        self._listeners = Listeners(clients)

    def vpc_of(self, listener_arn: str) -> str:
        """Where a group for this listener must live: its load balancer's VPC (cached; ALB and NLB alike)."""
        return self._listeners.vpc_of(listener_arn)

    @property
    def _elb(self):
        return self._clients.elbv2

    def tags(self, arns: list[str]) -> dict[str, dict[str, str]]:
        return describe_tags(self._elb, arns)

    def ensure(self, want: DesiredGroup) -> tuple[str, bool]:
        """Returns (arn, changed): created, adopted as is, or updated in place."""
        existing = self._by_name(want.name)
        if existing is None:
            try:
                created = self._elb.create_target_group(
                    Name=want.name,
                    Protocol=want.protocol,
                    Port=want.port,
                    VpcId=want.vpc_id,
                    TargetType=want.target_type,
                    **({"IpAddressType": want.ip_address_type} if want.target_type == "ip" else {}),
                    Tags=[{"Key": k, "Value": v} for k, v in want.tags.items()],
                    **_health_check_args(want.health_check, want.protocol),
                )["TargetGroups"][0]
            except ClientError as err:
                if error_code(err) != "DuplicateTargetGroupName":
                    raise
                existing = self._by_name(want.name)  # created concurrently: adopt below
                if existing is None:
                    raise TargetGroupConflict(f"target group {want.name} was created and deleted concurrently") from err
            else:
                self._set_delay(created["TargetGroupArn"], want.deregistration_delay)
                return created["TargetGroupArn"], True
        arn = existing["TargetGroupArn"]
        tags = self.tags([arn]).get(arn, {})
        if tags.get(OWNER) != want.tags[OWNER] or tags.get(CLUSTER) != want.tags[CLUSTER]:
            raise TargetGroupConflict(
                f"target group {want.name} exists and is owned by {tags.get(OWNER) or 'someone else'}"
            )
        immutable = {"TargetType": want.target_type, "Protocol": want.protocol, "Port": want.port, "VpcId": want.vpc_id}
        if want.target_type == "ip":
            immutable["IpAddressType"] = want.ip_address_type
        shown = {**existing, "IpAddressType": existing.get("IpAddressType") or "ipv4"}
        differs = {k: shown.get(k) for k, v in immutable.items() if shown.get(k) != v}
        if differs:
            raise TargetGroupConflict(
                f"target group {want.name} has {differs}, which AWS cannot change in place; "
                "delete the Canary to recreate its groups"
            )
        changed = False
        health = _health_check_args(want.health_check, want.protocol)
        if any(existing.get(k) != v for k, v in health.items()):  # what the spec left out goes back to AWS's default
            self._elb.modify_target_group(TargetGroupArn=arn, **health)
            changed = True
        return arn, self._set_delay(arn, want.deregistration_delay) or changed

    def _by_name(self, name: str) -> dict | None:
        try:
            return self._elb.describe_target_groups(Names=[name])["TargetGroups"][0]
        except ClientError as err:
            if not_found(err, "TargetGroup"):
                return None
            raise

    def _set_delay(self, arn: str, seconds: int) -> bool:
        attrs = self._elb.describe_target_group_attributes(TargetGroupArn=arn)["Attributes"]
        current = next((a["Value"] for a in attrs if a["Key"] == "deregistration_delay.timeout_seconds"), None)
        if current == str(seconds):
            return False
        self._elb.modify_target_group_attributes(
            TargetGroupArn=arn, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": str(seconds)}]
        )
        return True

    def owned(self, owner: str, cluster: str) -> list[str]:
        """Every group tagged for this owner in this cluster, also ones a crash left unrecorded."""
        arns = [
            tg["TargetGroupArn"]
            for page in self._elb.get_paginator("describe_target_groups").paginate()
            for tg in page["TargetGroups"]
        ]
        return [
            arn
            for arn, tags in self.tags(arns).items()
            if tags.get(MANAGED_BY) == "awsctl" and tags.get(OWNER) == owner and tags.get(CLUSTER) == cluster
        ]

    def owned_among(self, owner: str, cluster: str, arns: Iterable[str], names: Iterable[str]) -> list[str]:
        """The groups tagged for this owner in this cluster among these ARNs and names (a Canary's are
        known: recorded in status, or named from its spec, also one a crash left unrecorded), each looked
        up alone (one unknown name or ARN fails a batch), with one DescribeTags for all that exist."""
        found: dict[str, None] = {}
        for kind, value in [("TargetGroupArns", a) for a in dict.fromkeys(arns)] + [
            ("Names", n) for n in dict.fromkeys(names)
        ]:
            try:
                for tg in self._elb.describe_target_groups(**{kind: [value]})["TargetGroups"]:
                    found[tg["TargetGroupArn"]] = None
            except ClientError as err:
                if not not_found(err, "TargetGroup"):
                    raise
        return [
            arn
            for arn, tags in (self.tags(list(found)) if found else {}).items()
            if tags.get(MANAGED_BY) == "awsctl" and tags.get(OWNER) == owner and tags.get(CLUSTER) == cluster
        ]

    def delete(self, arn: str) -> None:
        try:
            self._elb.delete_target_group(TargetGroupArn=arn)
        except ClientError as err:
            if error_code(err) == "ResourceInUse":
                raise TargetGroupInUse(arn) from err
            if not not_found(err, "TargetGroup"):
                raise
