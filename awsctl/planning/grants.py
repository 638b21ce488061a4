"""The trust boundary, as pure functions: which TrafficGrants select a namespace, and the first thing a
Canary or a binding asks for that none of them grants (awsctl/api/grant.py says what each field grants).

Checked before any AWS write for the object, on every tick: a grant taken back stops the next write. A
refusal names the field, what it asked for, and the grants that select the namespace (or that none does).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from awsctl.api.canary import CanarySpec
from awsctl.api.grant import KIND, Grant, Requirement
from awsctl.planning.naming import alarm_name, group_of

NOT_GRANTED = "NotGranted"
# Metric-math expressions that read metrics by themselves, not by the query's other ids: SEARCH() and
# Metrics Insights' SELECT can read any namespace, so they need every namespace granted.
_READS_ANY = re.compile(r"\b(SEARCH|SELECT)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Asks:
    """What one Canary or binding would make awsctl touch in AWS, each with the field that asks for it."""

    listeners: tuple[tuple[str, str], ...] = ()  # (ARN, field)
    priorities: tuple[tuple[int, str], ...] = ()  # (rule priority, field)
    default_action: str = ""  # the field, when the route is a listener's default action
    target_groups: tuple[tuple[str, str], ...] = ()  # (ARN or name, field)
    alarms: tuple[tuple[str, str], ...] = ()  # (alarm name, field)
    metric_namespaces: tuple[tuple[str, str], ...] = ()  # (CloudWatch namespace, or "*" for SEARCH/SELECT, field)
    alert_providers: tuple[tuple[str, str], ...] = ()  # ("namespace/name", field) of another namespace's


@dataclass(frozen=True)
class Refusal:
    field: str
    message: str
    reason: str = NOT_GRANTED


def _selects(requirement: Requirement, labels: Mapping[str, str]) -> bool:
    present = requirement.key in labels
    if requirement.operator == "Exists":
        return present
    if requirement.operator == "DoesNotExist":
        return not present
    if requirement.operator == "In":
        return present and labels[requirement.key] in requirement.values
    return not present or labels[requirement.key] not in requirement.values  # NotIn


def selects(grant: Grant, namespace: str, labels: Mapping[str, str]) -> bool:
    """By name, or by a label selector as Kubernetes reads one (an empty selector selects everything)."""
    if grant.names is not None and namespace in grant.names:
        return True
    if grant.match_labels is None:
        return False
    return all(labels.get(k) == v for k, v in grant.match_labels) and all(
        _selects(r, labels) for r in grant.match_expressions
    )


def selecting(grants: Iterable[Grant], namespace: str, labels: Mapping[str, str]) -> list[Grant]:
    return sorted((g for g in grants if selects(g, namespace, labels)), key=lambda g: g.name)


def matches(patterns: Iterable[str], value: str) -> bool:
    """Glob patterns (`*` any run of characters, `?` one), matched whole and with case."""
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


def metric_namespaces(queries: Iterable[Mapping[str, object]]) -> list[str]:
    """The CloudWatch namespaces custom MetricDataQueries read; "*" for an expression that searches."""
    out: list[str] = []
    for q in queries:
        stat = q.get("MetricStat")
        if isinstance(stat, Mapping):
            metric = stat.get("Metric")
            if isinstance(metric, Mapping) and isinstance(metric.get("Namespace"), str):
                out.append(str(metric["Namespace"]))
        expression = q.get("Expression")
        if isinstance(expression, str) and _READS_ANY.search(expression):
            out.append("*")
    return out


@dataclass(frozen=True)
class _Kind:
    what: str  # how a refusal names the thing asked for
    granted: str  # the grant field that would allow it


_KINDS = {
    "listeners": _Kind("listener", "listeners"),
    "target_groups": _Kind("target group", "targetGroups"),
    "alarms": _Kind("alarm", "alarms"),
    "metric_namespaces": _Kind("CloudWatch namespace", "metricNamespaces"),
    "alert_providers": _Kind("AlertProvider", "alertProviders"),
}


@dataclass(frozen=True)
class _Scope:
    namespace: str
    grants: Sequence[Grant] = field(default_factory=tuple)

    def names(self) -> str:
        return ", ".join(g.name for g in self.grants)

    def refuse(self, where: str, asked: str, granted: str) -> Refusal:
        return Refusal(
            where,
            f"{where}: {asked} is not granted to namespace {self.namespace}: no {KIND} that selects it "
            f"({self.names()}) lists it in {granted}. A cluster admin grants it (kubectl get trafficgrants)",
        )


def refusal(grants: Iterable[Grant], namespace: str, labels: Mapping[str, str], asks: Asks) -> Refusal | None:
    """The first ask no grant that selects the namespace allows, or None when all are granted."""
    mine = selecting(grants, namespace, labels)
    where = next(
        (
            f
            for f in (
                *(f for _, f in asks.listeners),
                asks.default_action,
                *(f for _, f in asks.target_groups),
                *(f for _, f in asks.priorities),
                *(f for _, f in asks.alarms),
                *(f for _, f in asks.metric_namespaces),
                *(f for _, f in asks.alert_providers),
            )
            if f
        ),
        "",
    )
    if not where:
        return None  # asks for nothing in AWS
    if not mine:
        return Refusal(
            where,
            f"{where}: no {KIND} selects namespace {namespace}, so awsctl touches nothing in AWS for it. A cluster "
            f"admin grants listeners, rule priorities and target groups to namespaces with a {KIND} "
            "(kubectl get trafficgrants)",
        )
    scope = _Scope(namespace, mine)
    for attr, kind in _KINDS.items():
        for value, where in getattr(asks, attr):
            patterns = [p for g in mine for p in getattr(g, attr)]
            if attr == "metric_namespaces" and value == "*":
                if "*" not in patterns:
                    return scope.refuse(
                        where, "a SEARCH() or SELECT expression (it reads any namespace)", "metricNamespaces as *"
                    )
                continue
            named = group_of(value) if attr == "target_groups" and value.startswith("arn:") else value
            if not (matches(patterns, value) or matches(patterns, named)):
                return scope.refuse(where, f"{kind.what} {value}", kind.granted)
    if asks.default_action and not any(g.default_action for g in mine):
        return scope.refuse(asks.default_action, "the listener's default action", "defaultAction")
    for priority, where in asks.priorities:
        if not any(lo <= priority <= hi for g in mine for lo, hi in g.priorities):
            return scope.refuse(where, f"rule priority {priority}", "rulePriorities")
    return None


def canary_asks(spec: CanarySpec, namespace: str) -> Asks:
    """Everything a Canary reaches in AWS: its listener; its rule's priority and its A/B rules' just below
    (or the listener's default action); its alarms, its custom queries' namespaces, and any other
    namespace's AlertProvider. Built-in metrics read only its own groups and load balancer, and the
    groups it creates are its own: neither needs a grant."""
    lb = spec.load_balancer
    priorities: list[tuple[int, str]] = []
    if lb.rule is not None:
        priorities.append((lb.rule.priority, "spec.loadBalancer.rule.priority"))
        count = sum(2 if m.cookies else 1 for m in spec.analysis.match)  # a cookie takes two rules
        priorities += [(lb.rule.priority - 1 - i, "spec.analysis.match") for i in range(count)]
    # every further route asks as much as the first (spec.loadBalancer.routes)
    listeners = [(lb.listener_arn, "spec.loadBalancer.listenerARN")]
    default_action = "spec.loadBalancer.listenerARN" if lb.rule is None else ""
    for i, route in enumerate(lb.routes):
        at = f"spec.loadBalancer.routes[{i}]"
        listeners.append((route.listener_arn, f"{at}.listenerARN"))
        if route.rule is not None:
            priorities.append((route.rule.priority, f"{at}.rule.priority"))
        else:
            default_action = default_action or f"{at}.listenerARN"
    metrics = [
        (ns, f"spec.analysis.metrics[{i}].query")
        for i, m in enumerate(spec.analysis.metrics)
        for ns in metric_namespaces(m.query)
    ]
    return Asks(
        listeners=tuple(listeners),
        priorities=tuple(priorities),
        default_action=default_action,
        alarms=tuple((alarm_name(a), f"spec.analysis.alarms[{i}].name") for i, a in enumerate(spec.analysis.alarms)),
        metric_namespaces=tuple(metrics),
        alert_providers=tuple(
            (f"{a.provider_namespace}/{a.provider}", f"spec.alerts[{i}].providerRef")
            for i, a in enumerate(spec.alerts)
            if a.provider_namespace and a.provider_namespace != namespace
        ),
    )


def binding_asks(target_group: str, field: str, own_canarys: bool) -> Asks:
    """A binding fills one target group: a grant must name it, unless it is a group awsctl created for a
    Canary of the binding's own namespace (the Canary's grant covers it)."""
    return Asks() if own_canarys else Asks(target_groups=((target_group, field),))
