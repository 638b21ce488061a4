"""ALB's wire format: weighted forward actions and A/B rule conditions, built and read back.

Pure functions of the ELBv2 API's shapes, used by routing/alb.py (and by `awsctl status`, the demo
and the tests, to read what AWS shows). planning/ never sees these dicts.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from awsctl.api.canary import CanarySpec, Match
from awsctl.api.schema import SpecError

MAX_VALUES_PER_RULE = 5  # ALB: match evaluations per rule
MAX_VALUES_PER_CONDITION = 3  # ALB: match evaluations per condition
MAX_WILDCARDS_PER_RULE = 5


class MatchError(ValueError):
    pass


def _escape(value: str) -> str:
    """An exact value must not act as a wildcard: ALB takes a backslash before * and ?."""
    return value.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")


def conditions(match: Match, hosts: tuple[str, ...] = (), paths: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if hosts:
        out.append({"Field": "host-header", "HostHeaderConfig": {"Values": list(hosts)}})
    if paths:
        out.append({"Field": "path-pattern", "PathPatternConfig": {"Values": list(paths)}})
    for header in match.headers:
        value = header.value if header.wildcard else _escape(header.value)
        out.append({"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": header.name, "Values": [value]}})
    for key, value in match.query:
        out.append(
            {"Field": "query-string", "QueryStringConfig": {"Values": [{"Key": _escape(key), "Value": _escape(value)}]}}
        )
    if match.source_ips:
        out.append({"Field": "source-ip", "SourceIpConfig": {"Values": list(match.source_ips)}})
    return out


def cookie_patterns(name: str, value: str) -> tuple[list[str], list[str]]:
    """The Cookie header holds `name=value` exactly: as the whole header, first, last, or between two
    others ("; " separates cookies). `*name=value*` would also match `notname=value` and
    `name=valuex`. The four anchored patterns are more than one condition holds (3): two rules."""
    cookie = f"{_escape(name)}={_escape(value)}"
    return [cookie, f"{cookie};*", f"*; {cookie}"], [f"*; {cookie};*"]


def rules(match: Match, hosts: tuple[str, ...] = (), paths: tuple[str, ...] = ()) -> list[list[dict[str, Any]]]:
    """The conditions of each ALB rule one match entry takes: one rule, or two with a cookie (the
    parser allows one cookie per entry: two ANDed would take four rules)."""
    base = conditions(match, hosts, paths)
    if not match.cookies:
        return [base]
    name, value = match.cookies[0]
    return [
        [*base, {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "Cookie", "Values": values}}]
        for values in cookie_patterns(name, value)
    ]


# ALB takes at most one condition of each of these per rule; http-header and query-string may repeat, and
# every condition of a rule must match (the "Condition types for listener rules" page, "Condition basics").
ONCE_PER_RULE = ("host-header", "http-request-method", "path-pattern", "source-ip")


def _within_both(route: Iterable[str], match: Iterable[str]) -> list[str]:
    """The source CIDRs within both lists: for each overlapping pair, the narrower (two CIDR blocks either
    nest or are disjoint)."""
    out: list[str] = []
    for a in map(ipaddress.ip_network, route):
        for b in map(ipaddress.ip_network, match):
            if a.version == b.version and a.overlaps(b):
                narrower = str(a if a.prefixlen >= b.prefixlen else b)
                if narrower not in out:
                    out.append(narrower)
    return out


def on_route(route: Iterable[Mapping[str, Any]], match: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An A/B rule's conditions in front of a rule awsctl took over: every condition of the live route
    (host, path, source-ip, method, query string, header), as found, and the match's. A request reaches
    the canary only if the route would have sent it to this app: an A/B rule built from the spec alone
    matched `x-canary: always` on every host and path of the listener, from any address. Where both
    carry a field ALB takes once per rule (only source-ip can be in both), the rule matches what is
    within both."""
    out = [dict(c) for c in route]
    for cond in match:
        field = cond["Field"]
        if field not in ONCE_PER_RULE:
            out.append(cond)
            continue
        mine = next((c for c in out if c.get("Field") == field), None)
        if mine is None:
            out.append(cond)
            continue
        if field != "source-ip":
            raise MatchError(f"the route already has a {field} condition, and ALB takes one per rule")
        both = _within_both(field_values([mine], field), field_values([cond], field))
        if not both:
            raise MatchError(
                f"sourceIPs {', '.join(field_values([cond], field))} are outside the route's source-ip condition "
                f"({', '.join(field_values([mine], field))}): no request could match"
            )
        out[out.index(mine)] = {"Field": field, "SourceIpConfig": {"Values": both}}
    return out


def ab_rules(spec: CanarySpec, route: list[dict[str, Any]] | None = None) -> list[list[dict[str, Any]]]:
    """Every A/B rule's conditions, in priority order: the match's, with the conditions of the live
    `route` when it is a rule awsctl took over (`on_route`), or else the spec's hosts and paths."""
    if route is not None:
        return [on_route(route, conds) for match in spec.analysis.match for conds in rules(match)]
    rule = spec.load_balancer.rule
    hosts, paths = (rule.hosts, rule.paths) if rule else ((), ())
    return [conds for match in spec.analysis.match for conds in rules(match, hosts, paths)]


def _values(condition: dict[str, Any]) -> list[str]:
    config = next(v for k, v in condition.items() if k.endswith("Config"))
    return [v if isinstance(v, str) else f"{v.get('Key', '')}={v['Value']}" for v in config["Values"]]


def field_values(conditions: Iterable[Mapping[str, Any]], name: str) -> tuple[str, ...]:
    """The values of a rule's conditions on one field, from the typed `...Config` or the legacy `Values`."""
    out: list[str] = []
    for cond in conditions or ():
        if cond.get("Field") == name:
            typed = any(k.endswith("Config") and isinstance(v, dict) for k, v in cond.items())
            out.extend(_values(dict(cond)) if typed else cond.get("Values") or ())
    return tuple(out)


def route_key(hosts: Iterable[str], paths: Iterable[str]) -> tuple[frozenset[str], frozenset[str]]:
    """What a route's host and path conditions match, comparable: hosts without case (ALB matches the
    host header case-insensitively), and `/*` alone as no path condition (every path)."""
    path_set = frozenset(paths)
    return frozenset(h.lower() for h in hosts), frozenset() if path_set <= {"/*"} else path_set


def describe_route(hosts: Iterable[str], paths: Iterable[str]) -> str:
    host_set, path_set = route_key(hosts, paths)
    return (
        ", ".join(
            filter(
                None,
                (
                    f"host {' or '.join(sorted(host_set))}" if host_set else "",
                    f"path {' or '.join(sorted(path_set))}" if path_set else "",
                ),
            )
        )
        or "every host and path"
    )


def same_route(conditions: Iterable[Mapping[str, Any]], hosts: Iterable[str], paths: Iterable[str]) -> bool:
    """A live rule's host and path conditions match what the spec's hosts and paths say. Conditions the
    spec has no field for (source-ip, http-header, query-string, http-request-method) are not compared:
    they stay on the rule as found."""
    conds = list(conditions or ())
    return route_key(field_values(conds, "host-header"), field_values(conds, "path-pattern")) == route_key(hosts, paths)


def _wildcards(value: str) -> int:
    count, escaped = 0, False
    for ch in value:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in "*?":
            count += 1
    return count


def check_limits(conds: list[dict[str, Any]], where: str) -> None:
    """ALB's per-rule limits, checked before any AWS call so the message can name the field."""
    for cond in conds:
        if len(_values(cond)) > MAX_VALUES_PER_CONDITION:
            raise MatchError(
                f"{where}: {len(_values(cond))} values in one {cond['Field']} condition; "
                f"ALB allows {MAX_VALUES_PER_CONDITION} per condition"
            )
    values = [v for c in conds for v in _values(c)]
    if len(values) > MAX_VALUES_PER_RULE:
        raise MatchError(
            f"{where}: {len(values)} condition values with the rule's hosts and paths; "
            f"ALB allows {MAX_VALUES_PER_RULE} per rule"
        )
    wildcards = sum(_wildcards(v) for v in values)
    if wildcards > MAX_WILDCARDS_PER_RULE:
        raise MatchError(
            f"{where}: {wildcards} wildcards (each cookie uses 2); ALB allows {MAX_WILDCARDS_PER_RULE} per rule"
        )


def check_ab_limits(spec: CanarySpec) -> None:
    """Each A/B rule within ALB's limits, with the main rule's hosts and paths added to it."""
    rule = spec.load_balancer.rule
    hosts, paths = (rule.hosts, rule.paths) if rule else ((), ())
    for i, match in enumerate(spec.analysis.match):
        try:
            for conds in rules(match, hosts, paths):
                check_limits(conds, f"spec.analysis.match[{i}]")
        except MatchError as err:
            raise SpecError(f"spec.analysis.match[{i}]", str(err).split(": ", 1)[1]) from err


def priorities(rule_priority: int, count: int) -> list[int]:
    """Just above the Canary's rule: priority-1, priority-2, ... (a lower number wins in ALB)."""
    return [rule_priority - 1 - i for i in range(count)]


def forward_action(weights: Mapping[str, int], stickiness_seconds: int | None = None) -> dict[str, Any]:
    """A forward action at these weights; group stickiness for `stickiness_seconds` when given."""
    sticky: dict[str, Any] = {"Enabled": stickiness_seconds is not None}
    if stickiness_seconds is not None:
        sticky["DurationSeconds"] = stickiness_seconds
    return {
        "Type": "forward",
        "ForwardConfig": {
            "TargetGroups": [{"TargetGroupArn": arn, "Weight": w} for arn, w in weights.items()],
            "TargetGroupStickinessConfig": sticky,
        },
    }


def weights_of(actions: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """The weights AWS shows; a plain `TargetGroupArn` forward counts as weight 1 on that one group."""
    for action in actions or ():
        if action.get("Type") != "forward":
            continue
        groups = (action.get("ForwardConfig") or {}).get("TargetGroups")
        if groups:
            return {g["TargetGroupArn"]: int(g.get("Weight", 1)) for g in groups}
        if action.get("TargetGroupArn"):
            return {action["TargetGroupArn"]: 1}
    return {}


def stickiness_of(actions: Iterable[Mapping[str, Any]]) -> tuple[bool, int | None]:
    """(enabled, duration) of the forward action; the duration only matters when enabled."""
    for action in actions or ():
        if action.get("Type") == "forward":
            sticky = (action.get("ForwardConfig") or {}).get("TargetGroupStickinessConfig") or {}
            enabled = bool(sticky.get("Enabled"))
            return enabled, int(sticky["DurationSeconds"]) if enabled and "DurationSeconds" in sticky else None
    return False, None


def forward_of(actions: Iterable[Mapping[str, Any]]) -> tuple[dict[str, int], tuple[bool, int | None]]:
    """What a route does with traffic: the weights and the stickiness of its forward action."""
    return weights_of(actions), stickiness_of(actions)
