"""CloudWatch metric checks, as pure functions: queries to send, and a verdict from what came back.

Built-in metrics read the canary side's target groups in the AWS/ApplicationELB namespace:
- request-success-rate: 100 * (1 - HTTPCode_Target_5XX_Count / RequestCount), counts summed
  over every canary group (the rate of the whole canary side);
- request-duration: TargetResponseTime p99 in milliseconds, the worst canary group.
A custom metric is a list of raw MetricDataQueries; `{{ target_group }}` and
`{{ load_balancer }}` in it are replaced by the dimension values. When it names the target
group it runs once per canary group and the worst value counts.

No data is never a pass: the verdict is "hold" (ok=None) and the step waits.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

NAMESPACE = "AWS/ApplicationELB"
BUILT_IN = ("request-success-rate", "request-duration")
_TEMPLATE = re.compile(r"\{\{\s*(target_group|load_balancer)\s*\}\}")
_PERIODS = (1, 5, 10, 30, 60)  # CloudWatch periods below a minute need high-resolution data


@dataclass(frozen=True)
class MetricCheck:
    name: str
    interval_seconds: float
    min: float | None = None
    max: float | None = None
    query: tuple[Mapping[str, Any], ...] = ()  # custom MetricDataQueries; empty for the built-ins


@dataclass(frozen=True)
class MetricResult:
    name: str
    value: float | None
    ok: bool | None  # None: no data yet, hold the step
    message: str

    def to_status(self, check: MetricCheck) -> dict:
        verdict = {True: "pass", False: "fail", None: "wait"}[self.ok]  # a null would vanish in a merge patch
        out: dict[str, Any] = {"name": self.name, "verdict": verdict, "message": self.message}
        if self.value is not None:
            out["value"] = round(self.value, 3)
        if check.min is not None:
            out["min"] = check.min
        if check.max is not None:
            out["max"] = check.max
        return out


def target_group_dimension(arn: str) -> str:
    """arn:...:targetgroup/name/id -> targetgroup/name/id (the CloudWatch dimension value)."""
    return arn.split(":", 5)[-1]


def load_balancer_dimension(listener_arn: str) -> str:
    """arn:...:listener/app/name/lbid/listenerid -> app/name/lbid."""
    parts = listener_arn.split(":", 5)[-1].split("/")
    return "/".join(parts[1:4])


def period(interval_seconds: float) -> int:
    seconds = max(1, int(math.ceil(interval_seconds)))
    if seconds >= 60:
        return int(math.ceil(seconds / 60) * 60)
    return next(p for p in _PERIODS if p >= seconds)


def _stat(qid: str, metric: str, stat: str, group: str, lb: str, seconds: int) -> dict:
    dims = [{"Name": "TargetGroup", "Value": group}, {"Name": "LoadBalancer", "Value": lb}]
    return {"Id": qid, "ReturnData": True, "MetricStat": {
        "Metric": {"Namespace": NAMESPACE, "MetricName": metric, "Dimensions": dims},
        "Period": seconds, "Stat": stat}}


def _render(query: Mapping[str, Any], values: Mapping[str, str], prefix: str) -> dict:
    text = _TEMPLATE.sub(lambda m: values[m.group(1)], json.dumps(query))
    out = json.loads(text)
    out["Id"] = f"{prefix}{out['Id']}"
    return out


def _per_group(check: MetricCheck) -> bool:
    return any("target_group" in m.group(0) for q in check.query for m in _TEMPLATE.finditer(json.dumps(q)))


def queries(check: MetricCheck, index: int, groups: Sequence[str], listener_arn: str) -> list[dict]:
    """GetMetricData queries for one check; ids are `m<index>g<group>_...` so results map back."""
    lb = load_balancer_dimension(listener_arn)
    dims = [target_group_dimension(g) for g in groups]
    seconds = period(check.interval_seconds)
    out = []
    if check.name == "request-success-rate" and not check.query:
        for g, dim in enumerate(dims):
            out.append(_stat(f"m{index}g{g}_req", "RequestCount", "Sum", dim, lb, seconds))
            out.append(_stat(f"m{index}g{g}_err", "HTTPCode_Target_5XX_Count", "Sum", dim, lb, seconds))
    elif check.name == "request-duration" and not check.query:
        for g, dim in enumerate(dims):
            out.append(_stat(f"m{index}g{g}_p99", "TargetResponseTime", "p99", dim, lb, seconds))
    else:
        targets = dims if _per_group(check) else dims[:1]
        for g, dim in enumerate(targets):
            for q in check.query:
                out.append(_render(q, {"target_group": dim, "load_balancer": lb}, f"m{index}g{g}_"))
    return out


def judge(check: MetricCheck, value: float | None, no_data: str) -> MetricResult:
    if value is None or math.isnan(value):
        return MetricResult(check.name, None, None, f"{check.name}: {no_data}")
    text = f"{check.name} {value:.2f}"
    if check.min is not None and value < check.min:
        return MetricResult(check.name, value, False, f"{text} is below the minimum {check.min:g}")
    if check.max is not None and value > check.max:
        return MetricResult(check.name, value, False, f"{text} is above the maximum {check.max:g}")
    bounds = " ".join(filter(None, (f">= {check.min:g}" if check.min is not None else "",
                                    f"<= {check.max:g}" if check.max is not None else "")))
    return MetricResult(check.name, value, True, f"{text} ({bounds})")


def _series(results: Mapping[str, Sequence[float]], qid: str) -> list[float]:
    return [v for v in results.get(qid) or () if v is not None and not math.isnan(v)]


def evaluate(check: MetricCheck, index: int, groups: Sequence[str],
             results: Mapping[str, Sequence[float]]) -> MetricResult:
    """`results` maps query id to the values CloudWatch returned (any number of period buckets)."""
    if check.name == "request-success-rate" and not check.query:
        requests = sum(sum(_series(results, f"m{index}g{g}_req")) for g in range(len(groups)))
        errors = sum(sum(_series(results, f"m{index}g{g}_err")) for g in range(len(groups)))
        if requests <= 0:
            return judge(check, None, "no requests reached the canary in the last interval")
        return judge(check, 100.0 * (1.0 - errors / requests), "")
    if check.name == "request-duration" and not check.query:
        worst = [max(s) for g in range(len(groups)) if (s := _series(results, f"m{index}g{g}_p99"))]
        return judge(check, max(worst) * 1000.0 if worst else None, "no response times in the last interval")
    returned = [q["Id"] for q in check.query if q.get("ReturnData", True)] or [check.query[-1]["Id"]]
    count = len(groups) if _per_group(check) else 1
    values = [s[0] for g in range(count) if (s := _series(results, f"m{index}g{g}_{returned[-1]}"))]
    if not values:
        return judge(check, None, "the query returned no data")
    worst = min(values) if check.min is not None and check.max is None else max(values)
    return judge(check, worst, "")


def verdict(results: Sequence[MetricResult]) -> tuple[bool | None, str]:
    """Any failure fails the check; otherwise any missing data holds it; otherwise it passes."""
    failed = [r.message for r in results if r.ok is False]
    if failed:
        return False, "; ".join(failed)
    waiting = [r.message for r in results if r.ok is None]
    if waiting:
        return None, "; ".join(waiting)
    return True, "; ".join(r.message for r in results)
