"""From Kubernetes endpoints to ALB targets, and from a target diff to ordered, batched calls."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from awsctl.planning.conditions import is_true

MAX_TARGETS_PER_CALL = 200  # ELBv2 RegisterTargets/DeregisterTargets accept at most this many


@dataclass(frozen=True, order=True)
class Target:
    """One ALB target: a pod IP or an instance ID, at the port traffic really reaches."""

    id: str
    port: int
    availability_zone: str | None = None
    # The endpoint's own zone (its node's), for an IP outside the VPC whose group turns cross-zone off.
    zone_hint: str | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        return f"{self.id}:{self.port}"

    def to_aws(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Id": self.id, "Port": self.port}
        if self.availability_zone:
            out["AvailabilityZone"] = self.availability_zone
        return out

    @classmethod
    def parse(cls, key: str) -> Target:
        ident, _, port = key.rpartition(":")
        return cls(ident, int(port))


@dataclass(frozen=True)
class ServicePort:
    """The Service port a binding selected; `name` is what EndpointSlice ports are keyed by."""

    name: str
    port: int
    node_port: int | None


class PortNotFound(ValueError):
    pass


def select_service_port(service_ports: Sequence[Mapping[str, Any]], wanted: int | str) -> ServicePort:
    """serviceRef.port may be the Service port number or its name, as in Ingress backends."""
    for entry in service_ports:
        if (isinstance(wanted, int) and entry.get("port") == wanted) or (
            isinstance(wanted, str) and entry.get("name") == wanted
        ):
            return ServicePort(entry.get("name") or "", int(entry["port"]), entry.get("nodePort"))
    available = ", ".join(f"{p.get('name') or '<unnamed>'}={p.get('port')}" for p in service_ports) or "none"
    raise PortNotFound(f"spec.serviceRef.port {wanted!r} matches no Service port (has {available})")


def endpoint_port_of(slice_ports: Sequence[Mapping[str, Any]] | None, port_name: str) -> int | None:
    """The port the pods of one slice listen on for the Service port `port_name`.

    Named targetPorts resolve per pod, so slices with different numbers for the same
    name exist side by side; the number lives in each slice, never in the Service.
    """
    for entry in slice_ports or ():
        if (entry.get("name") or "") == port_name and entry.get("port") is not None:
            return int(entry["port"])
    return None


def endpoint_is_serving(endpoint: Mapping[str, Any], gated_pods: frozenset[str] = frozenset()) -> bool:
    """Should this endpoint be a target? Not when it is terminating (deregistered at once, so the
    ALB drains it: the EndpointSlice says so as soon as the pod has a deletionTimestamp, so no Pod
    watch is needed). Otherwise when it is `serving` (the pod is Ready): `ready` alone is not enough,
    because a Service with publishNotReadyAddresses reports every endpoint ready. A pod held back
    only by awsctl's own readiness gate (`gated_pods`) is registered too: its gate turns True when
    AWS shows the target healthy, which needs the target registered first (as the LBC does)."""
    conditions = endpoint.get("conditions") or {}
    ref = endpoint.get("targetRef") or {}
    pod = ref.get("name") if ref.get("kind") == "Pod" else None
    if conditions.get("terminating"):
        return False
    serving = conditions.get("serving")
    if serving is None:  # older API servers: fall back to ready; per the API a nil ready means ready
        serving = conditions.get("ready") is not False
    return bool(serving) or bool(pod and pod in gated_pods)


def unserved_pods(slices: Iterable[Mapping[str, Any]]) -> set[str]:
    """Pods behind endpoints that are neither serving nor terminating: the ones a readiness gate may hold."""
    out: set[str] = set()
    for slc in slices:
        for endpoint in slc.get("endpoints") or ():
            conditions = endpoint.get("conditions") or {}
            ref: Mapping[str, str] = endpoint.get("targetRef") or {}
            if ref.get("kind") == "Pod" and not conditions.get("terminating") and conditions.get("serving") is False:
                out.add(ref["name"])  # a Pod reference always names the pod
    return out


def endpoint_pods(slices: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(IP, pod name) for every endpoint backed by a pod."""
    out: list[tuple[str, str]] = []
    for slc in slices:
        for endpoint in slc.get("endpoints") or ():
            ref: Mapping[str, str] = endpoint.get("targetRef") or {}
            if ref.get("kind") == "Pod":
                out.extend((ip, ref["name"]) for ip in endpoint.get("addresses") or ())
    return out


def serving_pods(slices: Iterable[Mapping[str, Any]]) -> set[str]:
    """The pods a Service's EndpointSlices send traffic to: serving, not terminating."""
    out: set[str] = set()
    for slc in slices:
        for endpoint in slc.get("endpoints") or ():
            ref: Mapping[str, str] = endpoint.get("targetRef") or {}
            if ref.get("kind") == "Pod" and endpoint_is_serving(endpoint):
                out.add(ref["name"])
    return out


def serves_only(slices: Iterable[Mapping[str, Any]], within: Iterable[Mapping[str, Any]]) -> bool:
    """Does a Service serve at least one pod, and only pods that another Service (`within`) serves?
    The apex, once its selector names the primary: your Deployment may go to 0 only when the apex's
    EndpointSlices no longer send anyone to its pods (Flagger points the apex first, then scales)."""
    pods = serving_pods(slices)
    return bool(pods) and pods <= serving_pods(within)


def in_networks(ip: str, networks: Sequence[str]) -> bool:
    addr = ipaddress.ip_address(ip)
    return any(addr in ipaddress.ip_network(cidr, strict=False) for cidr in networks)


SLICE_FAMILY = {"ipv4": "IPv4", "ipv6": "IPv6"}  # a target group's IpAddressType -> EndpointSlice addressType


def desired_ip_targets(
    slices: Iterable[Mapping[str, Any]],
    port_name: str,
    vpc_cidrs: Sequence[str],
    ip_address_type: str = "ipv4",
    gated_pods: frozenset[str] = frozenset(),
    zonal: bool = False,
) -> set[Target]:
    """Every serving, non-terminating endpoint at its own resolved port (never the Service port), of
    the group's address family only: one IPv6 target would fail a whole RegisterTargets call on an
    IPv4 group.

    IPs outside the target group's VPC must be registered with an AvailabilityZone: `all`, or, when the
    group turns cross-zone load balancing off (`zonal`), the endpoint's own zone (its node's, which the
    EndpointSlice carries), as the LBC does.
    """
    family = SLICE_FAMILY.get((ip_address_type or "ipv4").lower(), "IPv4")
    targets: set[Target] = set()
    for slc in slices:
        if slc.get("addressType", "IPv4") != family:
            continue
        port = endpoint_port_of(slc.get("ports"), port_name)
        if port is None:
            continue
        for endpoint in slc.get("endpoints") or ():
            if not endpoint_is_serving(endpoint, gated_pods):
                continue
            hint = endpoint.get("zone")
            outside = (hint if zonal else None) or "all"
            for ip in endpoint.get("addresses") or ():
                inside = not vpc_cidrs or in_networks(ip, vpc_cidrs)
                targets.add(Target(ip, port, None if inside else outside, None if inside else hint))
    return targets


def instance_id_from_provider_id(provider_id: str | None) -> str | None:
    """`aws:///us-east-1a/i-0abc` -> `i-0abc`; anything else is not an EC2 instance."""
    if not provider_id or not provider_id.startswith("aws://"):
        return None
    last = provider_id.rstrip("/").rsplit("/", 1)[-1]
    return last if last.startswith("i-") else None


def node_is_ready(node: Mapping[str, Any]) -> bool:
    spec = node.get("spec") or {}
    if spec.get("unschedulable"):
        return False
    return is_true((node.get("status") or {}).get("conditions"), "Ready")


def desired_instance_targets(nodes: Iterable[Mapping[str, Any]], node_port: int) -> set[Target]:
    targets = set()
    for node in nodes:
        if not node_is_ready(node):
            continue
        instance = instance_id_from_provider_id((node.get("spec") or {}).get("providerID"))
        if instance:
            targets.add(Target(instance, node_port))
    return targets


@dataclass(frozen=True)
class TargetPlan:
    """What to write, in the order it must be written: all registrations before any deregistration."""

    register: tuple[tuple[Target, ...], ...] = ()
    deregister: tuple[tuple[Target, ...], ...] = ()
    managed_during: frozenset[str] = field(default_factory=frozenset)
    managed_after: frozenset[str] = field(default_factory=frozenset)

    @property
    def writes(self) -> int:
        return len(self.register) + len(self.deregister)

    @property
    def changed(self) -> int:
        return sum(map(len, self.register)) + sum(map(len, self.deregister))


def batches(targets: Iterable[Target], size: int = MAX_TARGETS_PER_CALL) -> tuple[tuple[Target, ...], ...]:
    ordered = sorted(targets)
    return tuple(tuple(ordered[i : i + size]) for i in range(0, len(ordered), size))


def plan_targets(
    desired: set[Target],
    current: set[Target],
    managed: frozenset[str],
) -> TargetPlan:
    """The smallest set of writes that makes the group hold `desired`.

    Only targets this binding registered earlier (`managed`) are ever deregistered, so a
    target group shared with targets a user registered by hand keeps those targets.
    """
    current_keys = {t.key for t in current}
    desired_keys = {t.key for t in desired}
    to_register = [t for t in desired if t.key not in current_keys]
    to_deregister = [t for t in current if t.key in managed and t.key not in desired_keys]
    return TargetPlan(
        register=batches(to_register),
        deregister=batches(to_deregister),
        # Written before any AWS call so that a crash mid-apply never orphans a target.
        managed_during=frozenset(managed | desired_keys),
        managed_after=frozenset(desired_keys),
    )


def plan_removal(current: set[Target], managed: frozenset[str]) -> tuple[tuple[Target, ...], ...]:
    """On deletion: exactly the targets this binding registered, nothing else."""
    return batches(t for t in current if t.key in managed)


# TargetHealth reasons of targets AWS never checks while their group is in use: a zone the load balancer
# does not enable (Target.NotInUse, when other targets of the group are checked), an IP AWS cannot use,
# an instance that is stopped or terminated.
NEVER_CHECKED_IN_USE = "Target.NotInUse"
NEVER_CHECKED = frozenset({"Target.IpUnusable", "Target.InvalidState"})


def never_checked(health: Sequence[Any]) -> list[Any]:
    """The targets (TargetHealth-like: .state, .reason) AWS will never check or route to. `Target.NotInUse`
    means that only in a group that is in use (some other target is checked); in a group no rule forwards
    to, every target is NotInUse and is checked as soon as one does."""
    in_use = any(h.state != "unused" for h in health)  # draining too: AWS drains only what it routed to
    return [
        h
        for h in health
        if h.state == "unused" and (h.reason in NEVER_CHECKED or (in_use and h.reason == NEVER_CHECKED_IN_USE))
    ]


MAX_HEALTH_WAIT = 10.0  # seconds between health reads while targets are on their way to healthy
UNHEALTHY_RECHECK = 60.0  # an unhealthy target changes only when the app does: look less often


def next_health_read(states: Mapping[str, int], registered_now: bool, interval: int, threshold: int) -> float | None:
    """Seconds until a binding should read target health again, or None when only a change (a
    write, a rule that starts using the group) can alter it. AWS health changes raise no
    Kubernetes event, so a binding with targets on their way to healthy must look; but a target
    just registered cannot pass before `threshold` checks `interval` apart, and an `unused` one
    is never checked at all until a rule forwards to its group."""
    waiting = {state for state, n in states.items() if n and state != "healthy"}
    if not waiting or waiting <= {"unused"}:
        return None
    if registered_now:
        return float(max(1, interval) * max(1, threshold))
    if waiting <= {"unhealthy", "unused"}:
        return UNHEALTHY_RECHECK
    return min(MAX_HEALTH_WAIT, float(max(1, interval)))
