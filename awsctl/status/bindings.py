"""TargetGroupBindings in `awsctl status`: one line per binding with AWS's target health."""

from __future__ import annotations

from awsctl.api import binding as api
from awsctl.aws.targets import TargetGroupNotFound, TargetGroups
from awsctl.kube.client import Kube
from awsctl.planning.conditions import find_condition


def collect(kube: Kube, groups: TargetGroups, name: str | None, namespace: str | None) -> list[dict]:
    rows = []
    for item in kube.list_custom(api.PLURAL, namespace):
        meta, spec, status = item["metadata"], item.get("spec") or {}, item.get("status") or {}
        if name and meta["name"] != name:
            continue
        ready = find_condition(status.get("conditions"), "Ready") or {}
        row = {
            "namespace": meta["namespace"],
            "name": meta["name"],
            "service": (spec.get("serviceRef") or {}).get("name"),
            "targetType": status.get("targetType"),
            "ready": ready.get("status", "Unknown"),
            "reason": ready.get("reason", ""),
            "message": ready.get("message", ""),
            "targetGroup": spec.get("targetGroupName") or spec.get("targetGroupARN"),
            "aws": None,
        }
        ref = status.get("targetGroupARN") or row["targetGroup"]
        try:
            info = groups.describe(ref)
            states: dict[str, int] = {}
            for health in groups.health(info.arn):
                states[health.state] = states.get(health.state, 0) + 1
            row["aws"] = {
                "targetGroup": info.name,
                "targetType": info.target_type,
                "registered": sum(states.values()),
                "states": states,
            }
        except TargetGroupNotFound:
            row["aws"] = {"error": "target group not found"}
        rows.append(row)
    return rows


def render(rows: list[dict]) -> str:
    """Fits 80 columns: one line per binding, one indented line for AWS's view or the reason it is not Ready."""
    if not rows:
        return "No TargetGroupBindings found."
    lines = [f"{'NAMESPACE/NAME':<28} {'SERVICE':<16} {'TYPE':<8} {'READY':<6} {'AWS TARGETS':<18}"]
    for row in rows:
        aws = row["aws"] or {}
        if "error" in aws:
            targets = aws["error"]
        else:
            healthy = aws.get("states", {}).get("healthy", 0)
            targets = f"{healthy}/{aws.get('registered', 0)} healthy"
        lines.append(
            f"{(row['namespace'] + '/' + row['name'])[:28]:<28} {str(row['service'])[:16]:<16} "
            f"{str(row['targetType'] or '-'):<8} {row['ready']:<6} {targets[:18]:<18}"
        )
        detail = (
            f"  tg {aws['targetGroup']}: " + ", ".join(f"{n} {s}" for s, n in sorted(aws["states"].items()))
            if aws.get("states")
            else ""
        )
        if row["ready"] != "True":
            detail = f"  {row['reason']}: {row['message']}"
        if detail:
            lines.append(detail[:80])
    return "\n".join(lines)
