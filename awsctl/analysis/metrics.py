"""CloudWatch metric checks, as pure functions: queries to send, and a verdict from what came back.

Built-in metrics read a side's target groups in the AWS/ApplicationELB namespace:
- request-success-rate: 100 * answered / RequestCount, summed over every group of the side, where
  answered = HTTPCode_Target_2XX_Count + 3XX + 4XX. AWS's definitions make that exact: RequestCount
  counts every request the load balancer chose a target for, and HTTPCode_Target_*XX every response a
  target sent. So RequestCount - (2XX + 3XX + 4XX) is the targets' own 5XX plus every request the load
  balancer answered itself after choosing the target: a connection refused or reset (502), a target
  that did not answer within the idle timeout (504), a request cut at the end of the deregistration
  delay. ALB publishes its own HTTPCode_ELB_* codes per load balancer only, so counting the targets'
  5XX and TargetConnectionErrorCount alone would promote a canary that hangs (504) or resets mid-answer
  (502) at 100%;
- request-duration: TargetResponseTime p99 in milliseconds, the worst group.

On an NLB (AWS/NetworkELB), which sees connections and not requests:
- connection-success-rate: 100 * (NewFlowCount - TCP_Target_Reset_Count) / NewFlowCount, summed over
  the side's groups (TargetGroup + LoadBalancer dimensions): the share of new connections that a target
  did not reset. A target that refuses or resets a connection sends the RST that TCP_Target_Reset_Count
  counts (AWS's NLB CloudWatch metrics page); an answer at layer 7 (an HTTP 500) is invisible to an NLB,
  so check those with your own query or a webhook.
A custom metric is a list of raw MetricDataQueries; `{{ target_group }}` and `{{ load_balancer }}`
in it are replaced by the dimension values, and the query ids (prefixed so results map back)
are rewritten inside metric-math expressions too. When it names the target group it runs once per
group and the worst value counts.

ALB metrics are published per minute, so built-in periods are at least 60 s. The query looks back
`lookback` (ten periods by default, as Flagger does) and the latest period with data counts: the
current minute is mostly unpublished, and an empty window says nothing.

No data is never a pass: the verdict is "hold" (ok=None); the rollout counts consecutive holds
and turns them into failed checks past a bound (planning/rollout.py).

Relative mode judges the canary against the primary over the same window with the same query:
`maxDelta` (how much worse, in the metric's unit: percentage points for the success rate) or
`maxRatio` (canary / primary, for latency).
"""

from __future__ import annotations

import datetime
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from awsctl.api.canary import (
    PUBLICATION_PERIODS,
    SUCCESS_RATES,
    MetricCheck,
    MetricStatus,
    Relative,
    RelativeStatus,
)

NAMESPACE = "AWS/ApplicationELB"
NLB_NAMESPACE = "AWS/NetworkELB"
ALB_MIN_PERIOD = 60  # ALB publishes its metrics at 60-second resolution
LOOKBACK_PERIODS = 10  # Flagger looks back ten metric intervals
# The answers a side's own targets sent that count as served (TargetGroup + LoadBalancer dimensions). The
# ALB's own codes (HTTPCode_ELB_502/503/504_Count) are published per load balancer (and zone) only: asked
# for per target group they return nothing; they show as RequestCount that no target answered.
ANSWERED_METRICS = (
    "HTTPCode_Target_2XX_Count",
    "HTTPCode_Target_3XX_Count",
    "HTTPCode_Target_4XX_Count",
)
_TEMPLATE = re.compile(r"\{\{\s*(target_group|load_balancer)\s*\}\}")
_PERIODS = (1, 5, 10, 30, 60)  # below a minute only for high-resolution custom metrics

Series = Sequence[tuple[str, float]]  # (ISO timestamp, value), newest first


@dataclass(frozen=True)
class MetricResult:
    name: str
    value: float | None
    ok: bool | None  # None: no data yet, hold the step
    message: str
    primary: float | None = None  # relative mode: the primary's value over the same window
    cut: bool = False  # no data only because every period with data started before the anchor
    thin: str = ""  # the counted period held too few requests to judge (see `too_few`), "" when enough

    def to_status(self, check: MetricCheck) -> MetricStatus:
        # "wait", not null, for no data: a null would vanish in a merge patch
        verdict: Literal["pass", "fail", "wait"] = "wait" if self.ok is None else "pass" if self.ok else "fail"
        out: MetricStatus = {"name": self.name, "verdict": verdict, "message": self.message}
        if self.value is not None:
            out["value"] = round(self.value, 3)
        if self.primary is not None:
            out["primary"] = round(self.primary, 3)
        if check.min is not None:
            out["min"] = check.min
        if check.max is not None:
            out["max"] = check.max
        if check.relative is not None:
            relative: RelativeStatus = {}
            if check.relative.max_delta is not None:
                relative["maxDelta"] = check.relative.max_delta
            if check.relative.max_ratio is not None:
                relative["maxRatio"] = check.relative.max_ratio
            out["relative"] = relative
        return out


def target_group_dimension(arn: str) -> str:
    """arn:...:targetgroup/name/id -> targetgroup/name/id (the CloudWatch dimension value)."""
    return arn.split(":", 5)[-1]


def load_balancer_dimension(listener_arn: str) -> str:
    """arn:...:listener/app/name/lbid/listenerid -> app/name/lbid."""
    parts = listener_arn.split(":", 5)[-1].split("/")
    return "/".join(parts[1:4])


def period(interval_seconds: float, namespace: str | None = NAMESPACE) -> int:
    """A period CloudWatch allows for the interval; never below a minute for ALB metrics."""
    seconds = max(1, int(math.ceil(interval_seconds)))
    if namespace == NAMESPACE:
        seconds = max(seconds, ALB_MIN_PERIOD)
    if seconds >= 60:
        return int(math.ceil(seconds / 60) * 60)
    return next(p for p in _PERIODS if p >= seconds)


def lookback(check: MetricCheck) -> float:
    """How far back the query reads: the spec's `lookback`, or ten periods of the longest query."""
    if check.lookback_seconds:
        return check.lookback_seconds
    periods = [int(q.get("MetricStat", {}).get("Period") or 0) for q in check.query] or [0]
    return LOOKBACK_PERIODS * max(period(check.interval_seconds), *periods)


def _stat(
    qid: str, metric: str, stat: str, group: str, lb: str, seconds: int, data: bool = True, namespace: str = NAMESPACE
) -> dict:
    dims = [{"Name": "TargetGroup", "Value": group}, {"Name": "LoadBalancer", "Value": lb}]
    return {
        "Id": qid,
        "ReturnData": data,
        "MetricStat": {
            "Metric": {"Namespace": namespace, "MetricName": metric, "Dimensions": dims},
            "Period": seconds,
            "Stat": stat,
        },
    }


def _render(query: Mapping[str, Any], values: Mapping[str, str], prefix: str, ids: Iterable[str]) -> dict:
    """One custom query for one group: dimensions filled in, its id and every id an expression
    refers to prefixed, so several checks and groups can share one GetMetricData call."""
    out = json.loads(_TEMPLATE.sub(lambda m: values[m.group(1)], json.dumps(query)))
    out["Id"] = f"{prefix}{out['Id']}"
    if "Expression" in out:
        names = sorted(set(ids), key=len, reverse=True)
        if names:
            pattern = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")
            out["Expression"] = pattern.sub(lambda m: f"{prefix}{m.group(1)}", out["Expression"])
    return out


def _per_group(check: MetricCheck) -> bool:
    return any("target_group" in m.group(0) for q in check.query for m in _TEMPLATE.finditer(json.dumps(q)))


def queries(check: MetricCheck, index: int, groups: Sequence[str], listener_arn: str, side: str = "") -> list[dict]:
    """GetMetricData queries for one check and one side; ids are `m<index><side>g<group>_...`
    (`side` is "" for the canary, "p" for the primary in relative mode) so results map back."""
    lb = load_balancer_dimension(listener_arn)
    dims = [target_group_dimension(g) for g in groups]
    seconds = period(check.interval_seconds)
    tag = f"m{index}{side}"
    out = []
    if check.name == "request-success-rate" and check.built_in:
        for g, dim in enumerate(dims):
            out.append(_stat(f"{tag}g{g}_req", "RequestCount", "Sum", dim, lb, seconds))
            for e, metric in enumerate(ANSWERED_METRICS):
                out.append(_stat(f"{tag}g{g}_ok{e}", metric, "Sum", dim, lb, seconds))
    elif check.name == "request-duration" and check.built_in:
        for g, dim in enumerate(dims):
            out.append(_stat(f"{tag}g{g}_p99", "TargetResponseTime", "p99", dim, lb, seconds))
    elif check.name == "connection-success-rate" and check.built_in:
        for g, dim in enumerate(dims):
            out.append(_stat(f"{tag}g{g}_req", "NewFlowCount", "Sum", dim, lb, seconds, namespace=NLB_NAMESPACE))
            out.append(
                _stat(f"{tag}g{g}_rst", "TCP_Target_Reset_Count", "Sum", dim, lb, seconds, namespace=NLB_NAMESPACE)
            )
    else:
        ids = [str(q["Id"]) for q in check.query]
        targets = dims if _per_group(check) else dims[:1]
        for g, dim in enumerate(targets):
            for q in check.query:
                out.append(_render(q, {"target_group": dim, "load_balancer": lb}, f"{tag}g{g}_", ids))
    return out


def series_of(pages: Iterable[Mapping[str, Any]]) -> dict[str, list[tuple[str, float]]]:
    """GetMetricData responses (all pages) as {query id: [(timestamp, value), ...]}, newest first."""
    out: dict[str, list[tuple[str, float]]] = {}
    for page in pages:
        for result in page.get("MetricDataResults") or ():
            stamps = [str(t) for t in result.get("Timestamps") or ()]
            out.setdefault(result["Id"], []).extend(
                (t, float(v)) for t, v in zip(stamps, result.get("Values") or ()) if v is not None and not math.isnan(v)
            )
    for points in out.values():
        points.sort(key=lambda p: p[0], reverse=True)
    return out


def judge(check: MetricCheck, value: float | None, no_data: str) -> MetricResult:
    if value is None or math.isnan(value):
        return MetricResult(check.name, None, None, f"{check.name}: {no_data}")
    text = f"{check.name} {value:.2f}"
    if check.min is not None and value < check.min:
        return MetricResult(check.name, value, False, f"{text} is below the minimum {check.min:g}")
    if check.max is not None and value > check.max:
        return MetricResult(check.name, value, False, f"{text} is above the maximum {check.max:g}")
    bounds = " ".join(
        filter(
            None,
            (
                f">= {check.min:g}" if check.min is not None else "",
                f"<= {check.max:g}" if check.max is not None else "",
            ),
        )
    )
    return MetricResult(check.name, value, True, f"{text} ({bounds})")


def judge_relative(check: MetricCheck, canary: float | None, primary: float | None) -> MetricResult:
    """Passes when the canary is no worse than the primary by more than the spec allows."""
    rel = check.relative or Relative()
    if canary is None or primary is None:
        side = "the canary" if canary is None else "the primary"
        return MetricResult(check.name, canary, None, f"{check.name}: no data for {side} in the window", primary)
    worse = (primary - canary) if check.higher_is_better else (canary - primary)
    text = f"{check.name} canary {canary:.2f} vs primary {primary:.2f}"
    if rel.max_delta is not None and worse > rel.max_delta:
        return MetricResult(
            check.name, canary, False, f"{text}: {worse:.2f} worse, more than {rel.max_delta:g}", primary
        )
    if rel.max_ratio is not None:
        ratio = (
            (primary / canary if canary else math.inf)
            if check.higher_is_better
            else (canary / primary if primary else (1.0 if canary == 0 else math.inf))
        )
        if ratio > rel.max_ratio:
            return MetricResult(
                check.name, canary, False, f"{text}: {ratio:.2f}x, more than {rel.max_ratio:g}x", primary
            )
    return MetricResult(check.name, canary, True, f"{text} (within the primary's)", primary)


def _latest(results: Mapping[str, Series], qid: str) -> tuple[str, float] | None:
    points = results.get(qid) or ()
    return points[0] if points else None


def value_of(
    check: MetricCheck, index: int, groups: Sequence[str], results: Mapping[str, Series], side: str = ""
) -> tuple[float | None, str]:
    """The check's value for one side from the latest period with data, or (None, why not)."""
    tag = f"m{index}{side}"
    if check.name == "request-success-rate" and check.built_in:
        latest = max((p[0] for g in range(len(groups)) if (p := _latest(results, f"{tag}g{g}_req"))), default=None)
        if latest is None:
            return None, "no requests reached it in the look-back window"
        requests = answered = 0.0
        for g in range(len(groups)):
            requests += sum(v for t, v in results.get(f"{tag}g{g}_req") or () if t == latest)
            for e in range(len(ANSWERED_METRICS)):  # a count is published only when it is non-zero
                answered += sum(v for t, v in results.get(f"{tag}g{g}_ok{e}") or () if t == latest)
        if requests <= 0:
            return None, "no requests reached it in the latest period"
        return 100.0 * min(answered, requests) / requests, ""
    if check.name == "connection-success-rate" and check.built_in:
        latest = max((p[0] for g in range(len(groups)) if (p := _latest(results, f"{tag}g{g}_req"))), default=None)
        if latest is None:
            return None, "no new connections reached it in the look-back window"
        flows = sum(v for g in range(len(groups)) for t, v in results.get(f"{tag}g{g}_req") or () if t == latest)
        resets = sum(v for g in range(len(groups)) for t, v in results.get(f"{tag}g{g}_rst") or () if t == latest)
        if flows <= 0:
            return None, "no new connections reached it in the latest period"
        return 100.0 * max(0.0, flows - resets) / flows, ""
    if check.name == "request-duration" and check.built_in:
        worst = [p[1] for g in range(len(groups)) if (p := _latest(results, f"{tag}g{g}_p99"))]
        return (max(worst) * 1000.0, "") if worst else (None, "no response times in the look-back window")
    returned = [q["Id"] for q in check.query if q.get("ReturnData", True)] or [check.query[-1]["Id"]]
    count = len(groups) if _per_group(check) else 1
    values = [p[1] for g in range(count) if (p := _latest(results, f"{tag}g{g}_{returned[-1]}"))]
    if not values:
        return None, "the query returned no data"
    return (min(values) if check.higher_is_better else max(values)), ""


def fewest_requests(check: MetricCheck) -> int | None:
    """The fewest requests a period needs before a success-rate check can judge it: with fewer, a single
    failed request takes the rate below `min`, so one unlucky request fails the step and a healthy canary
    can pass or fail by chance. None when the check has no such floor (no `min`, or a `min` of 100, where
    any failure fails by design)."""
    if check.name not in SUCCESS_RATES or not check.built_in or check.min is None or check.min >= 100:
        return None
    return math.ceil(100.0 / (100.0 - check.min) - 1e-9)


def too_few(check: MetricCheck, index: int, groups: Sequence[str], results: Mapping[str, Series]) -> str:
    """Why the period the check counted is too thin to judge, or "": its requests (RequestCount over the
    side's groups) against `fewest_requests`. ALB publishes no zero counts, so a period without requests
    is no data (held, then failed past the tolerance), never a thin one."""
    floor = fewest_requests(check)
    tag = f"m{index}"
    latest = max((p[0] for g in range(len(groups)) if (p := _latest(results, f"{tag}g{g}_req"))), default=None)
    if floor is None or latest is None:
        return ""
    requests = sum(v for g in range(len(groups)) for t, v in results.get(f"{tag}g{g}_req") or () if t == latest)
    if requests >= floor:
        return ""
    return (
        f"{check.name}: {requests:g} requests in the period of {latest}, fewer than the {floor} at which one "
        f"failed request keeps the rate above its min {check.min:g}"
    )


def _epoch(stamp: str) -> float:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def since(results: Mapping[str, Series], anchor: float | None) -> dict[str, list[tuple[str, float]]]:
    """Only the periods that start at or after `anchor`, the last moment the canary's target groups were
    verified without traffic (weight 0, no A/B rule) before this revision took traffic: the groups are
    reused across revisions, and an earlier period may hold another revision's requests, which must count
    neither for nor against this one."""
    if anchor is None:
        return {qid: list(points) for qid, points in results.items()}
    return {qid: [p for p in points if _epoch(p[0]) >= anchor] for qid, points in results.items()}


def same_period(results: Mapping[str, Series], index: int) -> dict[str, list[tuple[str, float]]]:
    """Relative mode: both sides from the newest period that both have data for, never the canary's
    newest minute against an older one of the primary's."""
    canary, primary = f"m{index}g", f"m{index}pg"
    stamps = [
        {t for qid, points in results.items() if qid.startswith(prefix) for t, _ in points}
        for prefix in (canary, primary)
    ]
    common = max(stamps[0] & stamps[1], default=None)
    return {
        qid: [p for p in points if p[0] == common] if qid.startswith((canary, primary)) else list(points)
        for qid, points in results.items()
    }


def pending_window(check: MetricCheck) -> float:
    """How long after the anchor the first period wholly after it may take to show: up to a period until
    it starts, the period itself, and CloudWatch's publication (up to two periods for ALB's metrics:
    api.canary.PUBLICATION_PERIODS in all)."""
    periods = [int(q.get("MetricStat", {}).get("Period") or 0) for q in check.query] or [0]
    return float(PUBLICATION_PERIODS * max(period(check.interval_seconds), *periods))


def evaluate(
    check: MetricCheck,
    index: int,
    groups: Sequence[str],
    results: Mapping[str, Series],
    primary_groups: Sequence[str] = (),
    anchor: float | None = None,
) -> MetricResult:
    """`results` maps query id to (timestamp, value) points, newest first (see `series_of`); only the
    periods from `anchor` on count. A result without data because of the anchor alone says so (`cut`)."""
    counted = since(results, anchor)
    if check.relative is not None:
        counted = same_period(counted, index)
    canary, why = value_of(check, index, groups, counted)
    if check.relative is not None:
        primary, _ = value_of(check, index, primary_groups, counted, side="p")
        result = judge_relative(check, canary, primary)
    else:
        result = judge(check, canary, why)
    if result.ok is not None and check.relative is None:
        result = replace(result, thin=too_few(check, index, groups, counted))
    if anchor is None or result.ok is not None:
        return result
    if any(_epoch(t) < anchor for points in results.values() for t, _ in points):
        stamp = datetime.datetime.fromtimestamp(anchor, datetime.UTC).strftime("%H:%M:%S")
        return replace(result, cut=True, message=f"{check.name}: no period since {stamp} UTC is published yet")
    return result


def verdict(results: Sequence[MetricResult]) -> tuple[bool | None, str]:
    """Any failure fails the check; otherwise any missing data holds it; otherwise it passes."""
    failed = [r.message for r in results if r.ok is False]
    if failed:
        return False, "; ".join(failed)
    waiting = [r.message for r in results if r.ok is None]
    if waiting:
        return None, "; ".join(waiting)
    return True, "; ".join(r.message for r in results)


ALARM_VERDICTS = {"OK": True, "ALARM": False, "INSUFFICIENT_DATA": None}


def alarm_results(states: Mapping[str, str], names: Sequence[str]) -> list[MetricResult]:
    """CloudWatch alarms as gates: ALARM fails, INSUFFICIENT_DATA (or a missing alarm) is no data."""
    out = []
    for name in names:
        state = states.get(name)
        ok = ALARM_VERDICTS.get(state or "", None)
        text = f"alarm {name} is {state}" if state else f"alarm {name} does not exist"
        out.append(MetricResult(f"alarm/{name}", None, ok, text))
    return out
