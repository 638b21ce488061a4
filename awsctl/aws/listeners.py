"""The listener rule (or default action) whose forward action awsctl drives, and its read-back."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from awsctl.aws.clients import Clients
from awsctl.aws.errors import RouteGone, describe_tags, not_found


class ListenerNotFound(RouteGone):
    reason = "ListenerNotFound"
    field = "spec.loadBalancer.listenerARN"

    def explain(self) -> str:
        return f"listener {self} does not exist"


class RuleNotFound(RouteGone):
    """The rule awsctl drove was deleted outside awsctl."""

    field = "spec.loadBalancer.rule"


@dataclass(frozen=True)
class Route:
    """Where the weights live: a rule (by ARN) or a listener's default action."""

    arn: str
    is_default: bool

    @classmethod
    def parse(cls, arn: str) -> Route:
        return cls(arn, ":listener/" in arn)

    @property
    def listener_arn(self) -> str:
        """The listener a rule belongs to: its ARN is the listener's with `-rule` and one more segment."""
        if self.is_default:
            return self.arn
        return self.arn.replace(":listener-rule/", ":listener/", 1).rsplit("/", 1)[0]


@dataclass(frozen=True)
class Rule:
    arn: str
    priority: str
    actions: list
    conditions: list
    tags: dict


def rule_conditions(hosts: tuple[str, ...], paths: tuple[str, ...]) -> list[dict]:
    """ALB needs at least one condition on a non-default rule; no hosts and no paths means every path."""
    out = []
    if hosts:
        out.append({"Field": "host-header", "HostHeaderConfig": {"Values": list(hosts)}})
    if paths or not hosts:
        out.append({"Field": "path-pattern", "PathPatternConfig": {"Values": list(paths or ("/*",))}})
    return out


def condition_values(conditions: list) -> dict[str, tuple[str, ...]]:
    """Field -> values, whether AWS answered with the legacy `Values` or the typed `...Config`."""
    out = {}
    for cond in conditions or ():
        config = next((v for k, v in cond.items() if k.endswith("Config") and isinstance(v, dict)), {})
        out[cond.get("Field", "")] = tuple(sorted(config.get("Values") or cond.get("Values") or ()))
    return out


@dataclass
class _Snapshot:
    """One listener's rules as one paginated DescribeRules showed them, the default one included."""

    fetched: float = float("-inf")
    rules: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


SNAPSHOT_KEPT = 600.0  # seconds an unread listener snapshot is kept


class Listeners:
    """Reads and writes of listener rules. Routine reads (is the weight still what we verified?)
    are served from one shared snapshot per listener, so Canaries that share a listener share one
    DescribeRules per interval; a read-back after a write always asks AWS."""

    def __init__(self, clients: Clients, clock: Callable[[], float] = time.monotonic):
        self._clients = clients
        self._lock = threading.Lock()
        self._vpcs: dict[str, str] = {}
        self._snapshots: dict[str, _Snapshot] = {}
        self._written: dict[str, float] = {}  # listener ARN -> when awsctl last changed one of its rules
        self.clock = clock

    @property
    def _elb(self):
        return self._clients.elbv2

    def vpc_of(self, listener_arn: str) -> str:
        """The VPC of the listener's load balancer: where target groups must live (cached, immutable)."""
        with self._lock:
            if listener_arn in self._vpcs:
                return self._vpcs[listener_arn]
        lb_arn = self._listener(listener_arn)["LoadBalancerArn"]
        vpc = self._elb.describe_load_balancers(LoadBalancerArns=[lb_arn])["LoadBalancers"][0]["VpcId"]
        with self._lock:
            self._vpcs[listener_arn] = vpc
        return vpc

    def protocol(self, listener_arn: str) -> str:
        """HTTP, HTTPS (ALB), TCP, TLS, UDP or TCP_UDP (NLB)."""
        return str(self._listener(listener_arn).get("Protocol") or "")

    def _listener(self, listener_arn: str) -> dict:
        try:
            listeners = self._elb.describe_listeners(ListenerArns=[listener_arn])["Listeners"]
        except ClientError as err:
            if not_found(err, "Listener"):
                raise ListenerNotFound(listener_arn) from err
            raise
        if not listeners:
            raise ListenerNotFound(listener_arn)
        return listeners[0]

    def rules(self, listener_arn: str) -> list[dict]:
        """Every rule of a listener, the default one included (paginated DescribeRules)."""
        try:
            return [
                r
                for page in self._elb.get_paginator("describe_rules").paginate(ListenerArn=listener_arn)
                for r in page["Rules"]
            ]
        except ClientError as err:
            if not_found(err, "Listener"):
                raise ListenerNotFound(listener_arn) from err
            raise

    def rule_at(self, listener_arn: str, priority: int) -> Rule | None:
        rules = self.rules(listener_arn)
        found = next((r for r in rules if r.get("Priority") == str(priority)), None)
        if found is None:
            return None
        return Rule(
            found["RuleArn"],
            found["Priority"],
            found.get("Actions") or [],
            found.get("Conditions") or [],
            self.tags([found["RuleArn"]]).get(found["RuleArn"], {}),
        )

    def tags(self, arns: list[str], missing_ok: bool = False) -> dict[str, dict[str, str]]:
        """`missing_ok`: a resource that is gone is left out of the answer, not an error."""
        return describe_tags(self._elb, arns, missing_ok)

    def create_rule(
        self,
        listener_arn: str,
        priority: int,
        conditions: list,
        actions: list,
        tags: dict[str, str],
        transforms: list | None = None,
    ) -> str:
        """`transforms`: the rule's URL and host-header rewrites (sent only when there are any)."""
        arn = self._elb.create_rule(
            ListenerArn=listener_arn,
            Priority=priority,
            Conditions=conditions,
            Actions=actions,
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
            **({"Transforms": transforms} if transforms else {}),
        )["Rules"][0]["RuleArn"]
        self._wrote(arn)
        return arn

    def set_conditions(self, rule_arn: str, conditions: list) -> None:
        self._wrote(rule_arn)
        try:
            self._elb.modify_rule(RuleArn=rule_arn, Conditions=conditions)
        except ClientError as err:
            if not_found(err, "Rule"):
                raise RuleNotFound(rule_arn) from err
            raise

    def _rule(self, rule_arn: str) -> dict:
        try:
            rules = self._elb.describe_rules(RuleArns=[rule_arn])["Rules"]
        except ClientError as err:
            if not_found(err, "Rule"):
                return {}
            raise
        return rules[0] if rules else {}

    def recent_rules(self, listener_arn: str, max_age: float) -> list[dict]:
        """The listener's rules as AWS showed them at most `max_age` seconds ago, from one snapshot
        shared by every Canary on the listener; a snapshot older than awsctl's own last change to
        the listener is never used."""
        with self._lock:
            snap = self._snapshots.get(listener_arn)
            if snap is None:  # a listener no Canary reads any more keeps no snapshot
                now = self.clock()
                self._snapshots = {
                    arn: s for arn, s in self._snapshots.items() if now - s.fetched < SNAPSHOT_KEPT or s.lock.locked()
                }
                snap = self._snapshots[listener_arn] = _Snapshot()
        with snap.lock:  # one fetch per listener, however many Canaries ask at once
            written = self._written.get(listener_arn, float("-inf"))
            if self.clock() - snap.fetched > max_age or snap.fetched <= written:
                started = self.clock()
                snap.rules = self.rules(listener_arn)
                snap.fetched = started
            return snap.rules

    def recent_actions(self, route: Route, max_age: float) -> list:
        """A route's actions from the listener's shared snapshot (see recent_rules)."""
        rules = self.recent_rules(route.listener_arn, max_age)
        found = next(
            (r for r in rules if (r.get("IsDefault") and route.is_default) or r.get("RuleArn") == route.arn), None
        )
        if found is None:
            raise RuleNotFound(route.arn)
        return found.get("Actions") or []

    def _wrote(self, arn: str) -> None:
        with self._lock:
            self._written[Route.parse(arn).listener_arn] = self.clock()

    def actions(self, route: Route) -> list:
        """Read-back: what AWS routes now (not what we asked for)."""
        if route.is_default:
            return self._listener(route.arn).get("DefaultActions") or []
        rule = self._rule(route.arn)
        if not rule:
            raise RuleNotFound(route.arn)
        return rule.get("Actions") or []

    def transforms(self, route: Route) -> list:
        """A rule's transforms (URL and host-header rewrites) as AWS shows them; none on a default action."""
        if route.is_default:
            return []
        rule = self._rule(route.arn)
        if not rule:
            raise RuleNotFound(route.arn)
        return rule.get("Transforms") or []

    def conditions(self, route: Route) -> list:
        if route.is_default:
            return []
        rule = self._rule(route.arn)
        if not rule:
            raise RuleNotFound(route.arn)  # deleted outside awsctl: the caller re-takes the route
        return rule.get("Conditions") or []

    def set_actions(self, route: Route, actions: list) -> None:
        self._wrote(route.arn)
        try:
            if route.is_default:
                self._elb.modify_listener(ListenerArn=route.arn, DefaultActions=actions)
            else:
                self._elb.modify_rule(RuleArn=route.arn, Actions=actions)
        except ClientError as err:
            if not_found(err, "Rule"):
                raise RuleNotFound(route.arn) from err
            if not_found(err, "Listener"):
                raise ListenerNotFound(route.arn) from err
            raise

    def delete_rule(self, rule_arn: str) -> None:
        self._wrote(rule_arn)
        try:
            self._elb.delete_rule(RuleArn=rule_arn)
        except ClientError as err:
            if not not_found(err, "Rule"):
                raise
