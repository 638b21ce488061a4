"""Canaries in `awsctl status`: phase, a weight bar per target group with the exact ALB weights that
AWS shows (not what status says), target health, metrics against thresholds, failed checks and the
last event."""

from __future__ import annotations

from awsctl.api import canary as api
from awsctl.aws.targets import TargetGroupNotFound, TargetGroups
from awsctl.kube.client import Kube, epoch
from awsctl.planning import naming
from awsctl.routing import Router

WIDTH = 80
BAR = 20


def _last_event(kube: Kube, namespace: str, name: str) -> dict | None:
    events = kube.events(namespace, f"involvedObject.kind=Canary,involvedObject.name={name}")
    if not events:
        return None

    def stamp(event: dict) -> float:
        text = event.get("lastTimestamp") or event.get("eventTime") or event["metadata"].get("creationTimestamp")
        return epoch(text[:19] + "Z") if text else 0.0

    latest = max(events, key=stamp)
    return {
        "type": latest.get("type"),
        "reason": latest.get("reason"),
        "message": latest.get("message"),
        "time": stamp(latest),
    }


def _groups(groups: TargetGroups, status: dict, shown: dict[str, int]) -> list[dict]:
    out = []
    total = sum(shown.values())
    for role in ("primary", "canary"):
        backends = (status.get("backends") or {}).get(role) or []
        for arn, backend in zip((status.get("targetGroups") or {}).get(role) or [], backends):
            row = {
                "role": role,
                "backend": backend,
                "targetGroup": naming.group_of(arn),
                "arn": arn,
                "weight": shown.get(arn),
                "share": (100.0 * shown.get(arn, 0) / total) if total else None,
            }
            try:
                states = [h.state for h in groups.health(arn)]
                row.update(registered=len(states), healthy=states.count("healthy"))
            except TargetGroupNotFound:
                row.update(registered=None, healthy=None)
            out.append(row)
    return out


def collect(kube: Kube, groups: TargetGroups, traffic: Router, name: str | None, namespace: str | None) -> list[dict]:
    rows = []
    for item in kube.list_custom(api.PLURAL, namespace):
        meta, spec, status = item["metadata"], item.get("spec") or {}, item.get("status") or {}
        if name and meta["name"] != name:
            continue
        shown = traffic.show(status)
        rows.append(
            {
                "namespace": meta["namespace"],
                "name": meta["name"],
                "phase": status.get("phase") or "Pending",
                "canaryWeight": status.get("canaryWeight"),
                "paused": bool(spec.get("suspend")),
                "failedChecks": status.get("failedChecks", 0),
                "threshold": (spec.get("analysis") or {}).get("threshold", 5),
                "revision": status.get("lastAppliedSpec"),
                "promoted": status.get("lastPromotedSpec"),
                "message": status.get("message", ""),
                "route": {
                    "id": shown.id or None,
                    "description": shown.route,
                    "stickiness": {"enabled": shown.sticky[0], "durationSeconds": shown.sticky[1]},
                    "error": shown.error or None,
                },
                "groups": _groups(groups, status, shown.weights),
                "abRules": shown.ab_routes,
                "metrics": status.get("metrics") or [],
                "alarms": status.get("alarms") or [],
                "lastEvent": _last_event(kube, meta["namespace"], meta["name"]),
            }
        )
    return rows


def bar(share: float | None, width: int = BAR) -> str:
    if share is None:
        return "[" + "?" * width + "]"
    filled = round(width * share / 100)
    if share > 0 and filled == 0:
        filled = 1  # a 0.5% canary is still visibly on
    return "[" + "#" * filled + "." * (width - filled) + "]"


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


def _fit(text: str, width: int = WIDTH) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _metric_line(metric: dict) -> str:
    """Absolute: value and bounds. Relative: canary beside primary, and how much worse it may be."""
    rel = metric.get("relative") or {}
    bounds = " ".join(
        filter(
            None,
            (
                f">={metric['min']:g}" if "min" in metric else "",
                f"<={metric['max']:g}" if "max" in metric else "",
                f"d<={rel['maxDelta']:g}" if "maxDelta" in rel else "",
                f"x<={rel['maxRatio']:g}" if "maxRatio" in rel else "",
            ),
        )
    )
    value = f"{metric['value']:.2f}" if "value" in metric else "no data"
    if rel:
        primary = f"{metric['primary']:.2f}" if "primary" in metric else "no data"
        value = f"{value} vs {primary}"
    verdict = {"pass": "ok", "fail": "FAIL"}.get(str(metric.get("verdict")), "wait")
    return f"  metric  {metric['name'][:22]:<22} {value:>18}  {bounds:<11} {verdict}"


def _alarm_line(alarm: dict) -> str:
    verdict = {"OK": "ok", "ALARM": "FAIL"}.get(str(alarm.get("state")), "wait")
    return f"  alarm   {alarm['name'][:40]:<40} {alarm.get('state', '?'):<17} {verdict}"


def render(rows: list[dict], now: float) -> str:
    """80 columns: a header line per Canary, a bar per target group, then metrics and the last event."""
    if not rows:
        return "No Canaries found."
    out = []
    for row in rows:
        head = f"{row['namespace']}/{row['name']}  {row['phase']}" + ("  PAUSED" if row.get("paused") else "")
        if row["canaryWeight"] is not None:
            head += f"  canary {row['canaryWeight']:g}%"
        head += f"  checks {row['failedChecks']}/{row['threshold']}"
        if row["revision"]:
            head += f"  rev {row['revision'][:8]}"
        out.append(_fit(head))
        route = row["route"]
        if route["error"]:
            out.append(_fit(f"  route   {route['error']}"))
        elif route["id"]:
            kind = route["description"]
            sticky = route["stickiness"]
            extra = f", sticky {sticky['durationSeconds']}s" if sticky["enabled"] else ""
            ab = f", {row['abRules']} A/B rule(s)" if row["abRules"] else ""
            out.append(_fit(f"  route   {kind}{extra}{ab}"))
        for g in row["groups"]:
            share = "   -  " if g["share"] is None else f"{g['share']:5.1f}%"
            alb = "w=-" if g["weight"] is None else f"w={g['weight']}"
            health = "tg missing" if g["registered"] is None else f"{g['healthy']}/{g['registered']} ok"
            out.append(_fit(f"  {g['role']:<7} {bar(g['share'])} {share} {alb:<5} {g['backend'][:20]:<20} {health}"))
        out.extend(_fit(_metric_line(m)) for m in row["metrics"])
        out.extend(_fit(_alarm_line(a)) for a in row.get("alarms") or ())
        event = row["lastEvent"]
        if event:
            out.append(_fit(f"  event   {_age(now - event['time'])} ago {event['reason']}: {event['message']}"))
        elif row["message"]:
            out.append(_fit(f"  status  {row['message']}"))
    return "\n".join(out)
