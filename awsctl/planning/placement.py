"""Which load balancer a Canary's target groups serve, and what a move to another one retires.

AWS: a target group of an Application Load Balancer is used by one load balancer; a listener of
another is refused it (`TargetGroupAssociationLimit`, ELBv2 API reference, CreateRule/ModifyRule).
So a Canary whose spec names a listener on another load balancer needs new groups there. Until the
new route verifies, the old route keeps forwarding to the old groups, and their bindings keep them
filled. The old groups go once the old route has been given back and every node has stopped routing
by it (`loadBalancer.propagationSeconds` later), their bindings first, so their targets drain.

The first groups' names carry no key, so Canaries made before moves existed keep theirs; groups made
after a move carry the new load balancer's key (naming.load_balancer_key).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from awsctl.planning import naming


@dataclass(frozen=True)
class Placement:
    load_balancer: str  # the load balancer the groups are (to be) on: the spec listener's
    key: str  # "" for the first groups; the load balancer's key for groups made after a move
    retiring: Mapping[str, Any] | None = None  # set when this tick starts a move: what to record as retiring


def route_load_balancer(status: Mapping[str, Any]) -> str | None:
    """The load balancer of the route the groups were made for (status from before `groupsAt`)."""
    for record in (status.get("listenerRule"), status.get("retiringRule")):
        if record and (record.get("listener") or record.get("arn")):
            return naming.load_balancer_arn(record.get("listener") or record["arn"])
    warmup = status.get("warmupRule")
    return naming.load_balancer_arn(warmup) if warmup else None


def placement(status: Mapping[str, Any], listener_arn: str) -> Placement:
    """Where this tick's groups go. A move starts when status records groups on another load balancer
    than the spec's listener is on: the new groups get that load balancer's key, and the recorded ones
    are added to `retiringGroups`."""
    spec_lb = naming.load_balancer_arn(listener_arn)
    at = status.get("groupsAt") or {}
    recorded = [arn for side in ("primary", "canary") for arn in (status.get("targetGroups") or {}).get(side) or ()]
    if not recorded:
        return Placement(spec_lb, "")
    groups_lb = at.get("loadBalancer") or route_load_balancer(status) or spec_lb
    key = at.get("key") or ""
    if groups_lb == spec_lb:
        return Placement(spec_lb, key)
    before = dict(status.get("retiringGroups") or {})
    retiring = {
        "loadBalancer": groups_lb,
        "arns": list(dict.fromkeys([*(before.get("arns") or ()), *recorded])),
        "since": None,  # set once the old route is given back
    }
    return Placement(spec_lb, naming.load_balancer_key(spec_lb), retiring)


Retirement = Literal["none", "wait", "start", "remove"]


def retirement(status: Mapping[str, Any], now: float, seconds: float, since: float | None) -> Retirement:
    """What to do with the groups a move left behind: nothing while the move is under way (the old route
    still carries traffic), start the propagation wait once the new route is verified and the old one
    given back, remove them `seconds` after that. `since`: status.retiringGroups.since, as epoch."""
    retiring = status.get("retiringGroups") or {}
    if not retiring.get("arns"):
        return "none"
    further = status.get("routes") or ()
    if status.get("retiringRule") or not status.get("listenerRule") or any(r.get("retiringRule") for r in further):
        return "wait"  # some route still forwards to the old groups (or none is taken yet)
    if since is None:
        return "start"
    return "remove" if now - since >= seconds else "wait"
