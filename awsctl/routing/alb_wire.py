"""ALB's wire format: weighted forward actions and A/B rule conditions, built and read back.

Pure functions of the ELBv2 API's shapes, used by routing/alb.py (and by `awsctl status`, the demo
and the tests, to read what AWS shows). planning/ never sees these dicts.
"""

from __future__ import annotations

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


def ab_rules(spec: CanarySpec) -> list[list[dict[str, Any]]]:
    """Every A/B rule's conditions, in priority order, with the main rule's hosts and paths added."""
    rule = spec.load_balancer.rule
    hosts, paths = (rule.hosts, rule.paths) if rule else ((), ())
    return [conds for match in spec.analysis.match for conds in rules(match, hosts, paths)]


def _values(condition: dict[str, Any]) -> list[str]:
    config = next(v for k, v in condition.items() if k.endswith("Config"))
    return [v if isinstance(v, str) else f"{v.get('Key', '')}={v['Value']}" for v in config["Values"]]


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
