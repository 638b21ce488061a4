"""A/B routing: each `analysis.match` entry becomes one ALB rule above the Canary's rule that sends
matching requests 100% to the canary while the analysis runs (Flagger's A/B testing, natively).

Entries are ORed (one rule each); inside an entry everything is ANDed (one condition per header,
cookie and query pair). The main rule's hosts and paths are added to every A/B rule, so A/B only
ever catches traffic the Canary's rule would have caught.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from awsctl.planning.phases import Phase

MAX_VALUES_PER_RULE = 5  # ALB: match evaluations per rule
MAX_WILDCARDS_PER_RULE = 5


@dataclass(frozen=True)
class HeaderMatch:
    name: str
    value: str
    wildcard: bool = False


@dataclass(frozen=True)
class Match:
    headers: tuple[HeaderMatch, ...] = ()
    cookies: tuple[tuple[str, str], ...] = ()
    query: tuple[tuple[str, str], ...] = ()
    source_ips: tuple[str, ...] = ()


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
    for name, value in match.cookies:
        out.append(
            {
                "Field": "http-header",
                "HttpHeaderConfig": {"HttpHeaderName": "Cookie", "Values": [f"*{_escape(name)}={_escape(value)}*"]},
            }
        )
    for key, value in match.query:
        out.append(
            {"Field": "query-string", "QueryStringConfig": {"Values": [{"Key": _escape(key), "Value": _escape(value)}]}}
        )
    if match.source_ips:
        out.append({"Field": "source-ip", "SourceIpConfig": {"Values": list(match.source_ips)}})
    return out


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
    if not any(c["Field"] not in ("host-header", "path-pattern") for c in conds):
        raise MatchError(f"{where}: set at least one of headers, cookies, queryStrings or sourceIPs")
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


def priorities(rule_priority: int, count: int) -> list[int]:
    """Just above the Canary's rule: priority-1, priority-2, ... (a lower number wins in ALB)."""
    return [rule_priority - 1 - i for i in range(count)]


def wanted(phase: str, has_match: bool, canary_healthy: bool) -> bool:
    """A/B rules exist only while the analysis runs, and never towards an unhealthy canary."""
    return has_match and phase == Phase.PROGRESSING and canary_healthy
