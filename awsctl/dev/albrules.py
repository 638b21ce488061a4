"""How an Application Load Balancer routes one request, as AWS documents it: pure functions.

The data plane (`awsctl.dev.dataplane`) reads a listener's rules from moto and asks these
functions which action answers a request, and which target group a weighted forward picks.

- Rules are evaluated in priority order (lowest first), then the default action.
- A rule matches when every one of its conditions matches; a condition matches when any of its
  values does.
- Wildcards: `*` is any run of characters (none included), `?` exactly one.
- Case: host-header, http-header values and query-string keys and values are case-insensitive;
  path-pattern and http-request-method are case-sensitive. A path pattern is matched against the
  path only, never the query string. The host is matched without its port.
- source-ip: CIDR blocks, against the client's address (not X-Forwarded-For).
- A forward picks one group per request, in proportion to its weight (0-999). With group
  stickiness on, the `AWSALBTG` cookie names the group the client was given and sends it there
  again while the cookie lasts and the group is still in the forward, whatever its weight.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import quote, unquote_plus

STICKY_COOKIE = "AWSALBTG"


@dataclass(frozen=True)
class Request:
    method: str
    host: str  # the Host header, port included as sent
    path: str
    query: tuple[tuple[str, str], ...] = ()  # decoded key/value pairs, in order
    headers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # lower-case name -> values
    source_ip: str = "127.0.0.1"
    cookies: Mapping[str, str] = field(default_factory=dict)
    scheme: str = "http"
    port: int = 80  # the listener's

    @property
    def hostname(self) -> str:
        host = self.host
        if host.startswith("["):
            return host[1 : host.find("]")] if "]" in host else host
        return host.rsplit(":", 1)[0] if host.count(":") == 1 else host

    @property
    def query_string(self) -> str:
        return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" if v else quote(k, safe="") for k, v in self.query)


@lru_cache(maxsize=4096)
def _pattern(pattern: str, fold: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if fold else 0))


def wildcard(pattern: str, value: str, *, case_sensitive: bool) -> bool:
    return _pattern(pattern, not case_sensitive).fullmatch(value) is not None


def _values(condition: Mapping[str, Any], config: str) -> list[Any]:
    """A condition's values: from its *Config (the current shape) or the legacy `Values`."""
    inner = condition.get(config)
    if isinstance(inner, Mapping) and inner.get("Values") is not None:
        return list(inner["Values"])
    return list(condition.get("Values") or [])


def _source_ip(values: Iterable[str], address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for block in values:
        try:
            if ip in ipaddress.ip_network(block, strict=False):
                return True
        except ValueError:
            continue
    return False


def condition_matches(condition: Mapping[str, Any], request: Request) -> bool:
    kind = condition.get("Field")
    if kind == "host-header":
        return any(wildcard(v, request.hostname, case_sensitive=False) for v in _values(condition, "HostHeaderConfig"))
    if kind == "path-pattern":
        return any(wildcard(v, request.path, case_sensitive=True) for v in _values(condition, "PathPatternConfig"))
    if kind == "http-request-method":
        return request.method in _values(condition, "HttpRequestMethodConfig")
    if kind == "source-ip":
        return _source_ip(_values(condition, "SourceIpConfig"), request.source_ip)
    if kind == "http-header":
        config = condition.get("HttpHeaderConfig") or {}
        sent = request.headers.get(str(config.get("HttpHeaderName", "")).lower(), ())
        return any(wildcard(v, s, case_sensitive=False) for v in config.get("Values") or [] for s in sent)
    if kind == "query-string":
        for pair in _values(condition, "QueryStringConfig"):
            key, value = pair.get("Key"), pair.get("Value", "")
            for k, v in request.query:
                if (key is None or wildcard(key, k, case_sensitive=False)) and wildcard(value, v, case_sensitive=False):
                    return True
        return False
    return False  # a field this data plane does not know never matches, rather than matching everything


@dataclass(frozen=True)
class Rule:
    priority: int | None  # None: the default action
    conditions: tuple[Mapping[str, Any], ...]
    actions: tuple[Mapping[str, Any], ...]


def select(rules: Iterable[Rule], request: Request) -> Rule | None:
    """The rule that answers: the lowest-priority rule whose conditions all match, else the default."""
    ordered = sorted((r for r in rules if r.priority is not None), key=lambda r: r.priority or 0)
    for rule in ordered:
        if all(condition_matches(c, request) for c in rule.conditions):
            return rule
    return next((r for r in rules if r.priority is None), None)


def ordered_actions(actions: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(actions, key=lambda a: int(a.get("Order") or 0))


@dataclass(frozen=True)
class Forward:
    groups: tuple[tuple[str, int], ...]  # (target group ARN, weight)
    sticky_seconds: int | None  # None: group stickiness off


def forward_of(action: Mapping[str, Any]) -> Forward:
    config = action.get("ForwardConfig") or {}
    groups = tuple((g["TargetGroupArn"], int(g.get("Weight", 1))) for g in config.get("TargetGroups") or [])
    if not groups and action.get("TargetGroupArn"):
        groups = ((action["TargetGroupArn"], 1),)
    sticky = config.get("TargetGroupStickinessConfig") or {}
    enabled = str(sticky.get("Enabled", "false")).lower() == "true"
    return Forward(groups, int(sticky.get("DurationSeconds") or 3600) if enabled else None)


def sticky_value(group_arn: str, expires: float) -> str:
    return base64.urlsafe_b64encode(f"{group_arn}|{int(expires)}".encode()).decode()


def sticky_group(cookie: str | None, forward: Forward, now: float) -> str | None:
    """The group a valid stickiness cookie names, if it is still one of the forward's."""
    if not cookie or forward.sticky_seconds is None:
        return None
    try:
        arn, expires = base64.urlsafe_b64decode(cookie.encode()).decode().rsplit("|", 1)
        if float(expires) < now:
            return None
    except (ValueError, UnicodeDecodeError):
        return None
    return arn if any(arn == g for g, _ in forward.groups) else None


def pick_group(forward: Forward, draw: Callable[[], float]) -> str | None:
    """A weighted choice: `draw()` in [0, 1). None when every weight is 0."""
    total = sum(w for _, w in forward.groups)
    if total <= 0:
        return None
    point = draw() * total
    for arn, weight in forward.groups:
        if point < weight:
            return arn
        point -= weight
    return next(arn for arn, w in reversed(forward.groups) if w > 0)


def redirect_location(config: Mapping[str, Any], request: Request) -> str:
    """A redirect action's Location, its #{protocol}, #{host}, #{port}, #{path}, #{query} filled in."""
    keys = {
        "protocol": request.scheme,
        "host": request.hostname,
        "port": str(request.port),
        "path": request.path.lstrip("/"),
        "query": request.query_string,
    }

    def fill(text: str) -> str:
        for key, value in keys.items():
            text = text.replace("#{" + key + "}", value)
        return text

    protocol = fill(str(config.get("Protocol") or "#{protocol}")).lower()
    host = fill(str(config.get("Host") or "#{host}"))
    port = fill(str(config.get("Port") or "#{port}"))
    path = "/" + fill(str(config.get("Path") or "/#{path}")).lstrip("/")
    query = fill(str(config.get("Query") if config.get("Query") is not None else "#{query}"))
    default_port = {"http": "80", "https": "443"}.get(protocol)
    location = f"{protocol}://{host}" + ("" if port == default_port else f":{port}") + path
    return location + (f"?{query}" if query else "")


def redirect_status(config: Mapping[str, Any]) -> int:
    return 301 if str(config.get("StatusCode", "HTTP_302")) == "HTTP_301" else 302


def matcher_accepts(matcher: Mapping[str, Any] | None, status: int) -> bool:
    """A target group's success codes: "200", "200,202", "200-299"."""
    spec = str((matcher or {}).get("HttpCode") or "200")
    for part in spec.split(","):
        part = part.strip()
        if "-" in part:
            low, high = part.split("-", 1)
            if int(low) <= status <= int(high):
                return True
        elif part and int(part) == status:
            return True
    return False


def parse_query(raw: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in raw.split("&") if raw else ():
        key, _, value = item.partition("=")
        pairs.append((unquote_plus(key), unquote_plus(value)))
    return tuple(pairs)
