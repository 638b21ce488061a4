"""Canary: the progressive release of one Deployment behind an ALB listener rule.

Percentages have 0.1 resolution and are held as permille (0..1000) from here on, so a
0.5% step is the integer 5 and maps onto ALB's 0..999 weights without rounding.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

from awsctl.api import GROUP, VERSION
from awsctl.api.alert_provider import SEVERITIES
from awsctl.api.phases import Phase
from awsctl.api.schema import SpecError, condition_schema, crd

KIND = "Canary"
PLURAL = "canaries"
SHORT_NAMES = ["cnr"]

PHASES = tuple(p.value for p in Phase)  # plain strings: the CRD schema is YAML
NO_DATA_TOLERANCE = 2  # consecutive checks without data that hold; each further one is a failed check
WEBHOOK_TYPES = (
    "confirm-rollout",
    "pre-rollout",
    "rollout",
    "confirm-traffic-increase",
    "confirm-promotion",
    "post-rollout",
    "rollback",
    "event",
)
MAX_GROUPS_PER_ACTION = 5  # ALB: at most 5 target groups in one forward action
DURATION = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: Any, field_name: str) -> float:
    """Go-style durations ("30s", "1m30s", "500ms") or plain seconds, as Flagger users write them."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and re.fullmatch(DURATION, value):
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(value))
    elif isinstance(value, str) and re.fullmatch(r"[0-9]+(\.[0-9]+)?", value):
        seconds = float(value)
    else:
        raise SpecError(field_name, f"{value!r} is not a duration (e.g. 1s, 30s, 1m)")
    if seconds <= 0:
        raise SpecError(field_name, "must be above zero")
    return seconds


def permille(value: Any, field_name: str) -> int:
    """A percent with 0.1 resolution as an integer permille; finer values are refused, not rounded."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(field_name, f"{value!r} is not a number")
    scaled = float(value) * 10
    if abs(scaled - round(scaled)) > 1e-6:
        raise SpecError(field_name, f"{value} has a finer resolution than 0.1%")
    out = int(round(scaled))
    if not 0 < out <= 1000:
        raise SpecError(field_name, f"{value} is outside (0, 100]")
    return out


BUILT_IN = ("request-success-rate", "request-duration")  # ALB metrics awsctl queries by itself


@dataclass(frozen=True)
class Relative:
    """Judge the canary against the primary: at most `max_delta` worse, or `max_ratio` times worse."""

    max_delta: float | None = None
    max_ratio: float | None = None


@dataclass(frozen=True)
class MetricCheck:
    name: str
    interval_seconds: float
    min: float | None = None
    max: float | None = None
    query: tuple[Mapping[str, Any], ...] = ()  # custom MetricDataQueries; empty for the built-ins
    relative: Relative | None = None
    lookback_seconds: float | None = None  # None: LOOKBACK_PERIODS periods

    @property
    def built_in(self) -> bool:
        return self.name in BUILT_IN and not self.query

    @property
    def higher_is_better(self) -> bool:
        return self.name == "request-success-rate" if self.built_in else (self.min is not None and self.max is None)


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


@dataclass(frozen=True)
class BackendRef:
    name: str
    port: int | str
    weight: int = 1


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    port: int
    target_port: int | str
    headless: bool | None
    backend_refs: Mapping[str, tuple[BackendRef, ...]]  # "primary"/"canary" -> refs; missing = generated


@dataclass(frozen=True)
class TargetGroupSpec:
    protocol: str = "HTTP"
    port: int = 80
    vpc_id: str | None = None
    deregistration_delay: int = 30
    health_check: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RuleSpec:
    priority: int
    hosts: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoadBalancerSpec:
    listener_arn: str
    rule: RuleSpec | None
    target_type: str
    target_group: TargetGroupSpec
    stickiness: bool = False
    stickiness_seconds: int = 300
    readiness_gate: bool = True


@dataclass(frozen=True)
class Webhook:
    name: str
    type: str
    url: str
    timeout_seconds: float
    metadata: Mapping[str, str]


@dataclass(frozen=True)
class Bake:
    """After the steps and confirm-promotion: the canary at `weight` for `duration_seconds`, the
    primary warm at the rest, before the template is promoted."""

    weight: int  # permille
    duration_seconds: float


@dataclass(frozen=True)
class AnalysisSpec:
    interval_seconds: float
    threshold: int
    steps: tuple[int, ...]  # permille, ascending, last == max_weight
    max_weight: int
    step_promotion: int | None
    iterations: int | None
    webhooks: tuple[Webhook, ...]
    metrics: tuple[MetricCheck, ...] = ()
    match: tuple[Match, ...] = ()
    alarms: tuple[str, ...] = ()  # CloudWatch alarm names or ARNs
    no_data_tolerance: int = NO_DATA_TOLERANCE
    bake: Bake | None = None

    def blind_metrics(self) -> list[int]:
        """Built-in metrics of a blue/green analysis (iterations, no match): the canary gets no ALB
        traffic, so they can never judge it."""
        if self.iterations is None or self.match:
            return []
        return [i for i, m in enumerate(self.metrics) if m.built_in]

    def hooks(self, kind: str) -> tuple[Webhook, ...]:
        return tuple(h for h in self.webhooks if h.type == kind)


@dataclass(frozen=True)
class Alert:
    name: str
    severity: str  # info | warn | error: the least severe news this alert hears
    provider: str
    provider_namespace: str  # "" = the Canary's own


@dataclass(frozen=True)
class CanarySpec:
    target_name: str
    service: ServiceSpec
    load_balancer: LoadBalancerSpec
    analysis: AnalysisSpec
    progress_deadline_seconds: int
    skip_analysis: bool
    suspend: bool
    revert_on_deletion: bool
    alerts: tuple[Alert, ...] = ()

    @classmethod
    def parse(cls, spec: Mapping[str, Any]) -> CanarySpec:
        """Re-checks what the schema checks (and what CEL cannot), naming the field for the condition."""
        target = spec.get("targetRef") or {}
        if (target.get("kind") or "Deployment") != "Deployment":
            raise SpecError("spec.targetRef.kind", f"only Deployment is supported, not {target.get('kind')!r}")
        if not target.get("name"):
            raise SpecError("spec.targetRef.name", "is required")
        load_balancer = _load_balancer(spec.get("loadBalancer"))
        analysis = _analysis(spec.get("analysis") or {})
        _check_ab(analysis, load_balancer)
        return cls(
            target_name=target["name"],
            service=_service(spec.get("service") or {}, target["name"]),
            load_balancer=load_balancer,
            analysis=analysis,
            progress_deadline_seconds=int(spec.get("progressDeadlineSeconds") or 600),
            skip_analysis=bool(spec.get("skipAnalysis")),
            suspend=bool(spec.get("suspend")),
            revert_on_deletion=bool(spec.get("revertOnDeletion")),
            alerts=tuple(_alert(a, f"spec.alerts[{i}]") for i, a in enumerate(spec.get("alerts") or ())),
        )


def _alert(raw: Mapping[str, Any], where: str) -> Alert:
    ref = raw.get("providerRef") or {}
    if not ref.get("name"):
        raise SpecError(f"{where}.providerRef.name", "is required")
    severity = raw.get("severity") or "info"
    if severity not in SEVERITIES:
        raise SpecError(f"{where}.severity", f"{severity!r} is not one of {', '.join(SEVERITIES)}")
    return Alert(str(raw.get("name") or ref["name"]), severity, str(ref["name"]), str(ref.get("namespace") or ""))


def _port(value: Any, field_name: str) -> int | str:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536:
        return value
    if isinstance(value, str) and value:
        return value
    raise SpecError(field_name, f"{value!r} is not a port number or name")


def _service(raw: Mapping[str, Any], default_name: str) -> ServiceSpec:
    port = raw.get("port")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise SpecError("spec.service.port", f"{port!r} must be a port number (1-65535)")
    refs: dict[str, tuple[BackendRef, ...]] = {}
    for side, entries in (raw.get("backendRefs") or {}).items():
        if side not in ("primary", "canary"):
            raise SpecError(f"spec.service.backendRefs.{side}", "only primary and canary are allowed")
        parsed = []
        for i, entry in enumerate(entries or ()):
            where = f"spec.service.backendRefs.{side}[{i}]"
            if not entry.get("name"):
                raise SpecError(f"{where}.name", "is required")
            weight = entry.get("weight", 1)
            if not isinstance(weight, int) or isinstance(weight, bool) or not 0 < weight <= 999:
                raise SpecError(f"{where}.weight", f"{weight!r} must be 1-999")
            parsed.append(BackendRef(entry["name"], _port(entry.get("port"), f"{where}.port"), weight))
        if parsed:
            refs[side] = tuple(parsed)
    groups = sum(len(refs.get(side, ())) or 1 for side in ("primary", "canary"))
    if groups > MAX_GROUPS_PER_ACTION:
        raise SpecError(
            "spec.service.backendRefs",
            f"{groups} target groups in one forward action; ALB allows at most {MAX_GROUPS_PER_ACTION}",
        )
    headless = raw.get("headless")
    return ServiceSpec(
        name=raw.get("name") or default_name,
        port=port,
        target_port=_port(raw.get("targetPort", port), "spec.service.targetPort"),
        headless=None if headless is None else bool(headless),
        backend_refs=refs,
    )


def _load_balancer(raw: Mapping[str, Any] | None) -> LoadBalancerSpec:
    if not raw or not raw.get("listenerARN"):
        raise SpecError("spec.loadBalancer.listenerARN", "is required")
    rule = None
    if raw.get("rule"):
        r = raw["rule"]
        if not isinstance(r.get("priority"), int) or not 1 <= r["priority"] <= 50000:
            raise SpecError("spec.loadBalancer.rule.priority", f"{r.get('priority')!r} must be 1-50000")
        rule = RuleSpec(r["priority"], tuple(r.get("hosts") or ()), tuple(r.get("paths") or ()))
    target_type = raw.get("targetType") or "ip"
    if target_type not in ("ip", "instance"):
        raise SpecError("spec.loadBalancer.targetType", f"must be ip or instance, not {target_type!r}")
    tg = raw.get("targetGroup") or {}
    protocol = tg.get("protocol") or "HTTP"
    if protocol not in ("HTTP", "HTTPS"):
        raise SpecError("spec.loadBalancer.targetGroup.protocol", f"must be HTTP or HTTPS, not {protocol!r}")
    sticky = raw.get("stickiness") or {}
    return LoadBalancerSpec(
        listener_arn=raw["listenerARN"],
        rule=rule,
        target_type=target_type,
        target_group=TargetGroupSpec(
            protocol=protocol,
            port=int(tg.get("port") or 80),
            vpc_id=tg.get("vpcID"),
            deregistration_delay=int(tg.get("deregistrationDelaySeconds", 30)),
            health_check=dict(tg.get("healthCheck") or {}),
        ),
        stickiness=bool(sticky.get("enabled")),
        stickiness_seconds=int(sticky.get("durationSeconds") or 300),
        readiness_gate=bool(raw.get("readinessGate", True)),
    )


def _analysis(raw: Mapping[str, Any]) -> AnalysisSpec:
    if "stepWeight" in raw and "stepWeights" in raw:
        raise SpecError("spec.analysis.stepWeights", "set stepWeight or stepWeights, not both")
    max_weight = permille(raw["maxWeight"], "spec.analysis.maxWeight") if "maxWeight" in raw else None
    if "stepWeights" in raw:
        steps = tuple(permille(w, f"spec.analysis.stepWeights[{i}]") for i, w in enumerate(raw["stepWeights"]))
        if not steps or any(b <= a for a, b in zip(steps, steps[1:])):
            raise SpecError("spec.analysis.stepWeights", "must be a non-empty, strictly increasing list")
        if max_weight is None:
            max_weight = steps[-1]
        elif steps[-1] > max_weight:
            raise SpecError("spec.analysis.stepWeights", f"{steps[-1] / 10:g} is above maxWeight {max_weight / 10:g}")
        elif steps[-1] < max_weight:
            steps += (max_weight,)
    else:
        step = permille(raw.get("stepWeight", 10), "spec.analysis.stepWeight")
        max_weight = max_weight or 500
        steps = tuple(range(step, max_weight, step)) + (max_weight,)
    step_promotion = raw.get("stepWeightPromotion")
    iterations = raw.get("iterations")
    if iterations is not None and (not isinstance(iterations, int) or iterations < 1):
        raise SpecError("spec.analysis.iterations", f"{iterations!r} must be a positive integer")
    if iterations is not None and ({"stepWeight", "stepWeights", "maxWeight"} & set(raw)):
        raise SpecError("spec.analysis.iterations", "iterations (weight stays 0) excludes stepWeight(s)/maxWeight")
    threshold = raw.get("threshold", 5)
    if not isinstance(threshold, int) or threshold < 1:
        raise SpecError("spec.analysis.threshold", f"{threshold!r} must be a positive integer")
    hooks = []
    for i, hook in enumerate(raw.get("webhooks") or ()):
        where = f"spec.analysis.webhooks[{i}]"
        if hook.get("type", "rollout") not in WEBHOOK_TYPES:
            raise SpecError(f"{where}.type", f"{hook.get('type')!r} is not one of {', '.join(WEBHOOK_TYPES)}")
        if not str(hook.get("url", "")).startswith(("http://", "https://")):
            raise SpecError(f"{where}.url", f"{hook.get('url')!r} is not an http(s) URL")
        hooks.append(
            Webhook(
                hook.get("name") or f"webhook-{i}",
                hook.get("type", "rollout"),
                hook["url"],
                parse_duration(hook.get("timeout", "10s"), f"{where}.timeout"),
                {str(k): str(v) for k, v in (hook.get("metadata") or {}).items()},
            )
        )
    return AnalysisSpec(
        interval_seconds=parse_duration(raw.get("interval", "1m"), "spec.analysis.interval"),
        threshold=threshold,
        steps=steps,
        max_weight=max_weight,
        step_promotion=permille(step_promotion, "spec.analysis.stepWeightPromotion") if step_promotion else None,
        iterations=iterations,
        webhooks=tuple(hooks),
        metrics=tuple(_metric(m, f"spec.analysis.metrics[{i}]") for i, m in enumerate(raw.get("metrics") or ())),
        match=tuple(_match(m, f"spec.analysis.match[{i}]") for i, m in enumerate(raw.get("match") or ())),
        alarms=tuple(_alarm(a, f"spec.analysis.alarms[{i}]") for i, a in enumerate(raw.get("alarms") or ())),
        no_data_tolerance=_count(raw.get("noDataTolerance", NO_DATA_TOLERANCE), "spec.analysis.noDataTolerance"),
        bake=_bake(raw.get("bake"), "spec.analysis.bake"),
    )


def _count(value: Any, field_name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise SpecError(field_name, f"{value!r} must be a whole number, 0 or more")
    return value


def _alarm(raw: Any, where: str) -> str:
    name = raw.get("name") if isinstance(raw, Mapping) else None
    if not name:
        raise SpecError(f"{where}.name", "is required (an alarm name or ARN)")
    return str(name)


def _bake(raw: Any, where: str) -> Bake | None:
    if not raw:
        return None
    return Bake(
        permille(raw.get("weight", 100), f"{where}.weight"), parse_duration(raw.get("duration"), f"{where}.duration")
    )


def _number(value: Any, field_name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(field_name, f"{value!r} is not a number")
    return float(value)


def _metric(raw: Mapping[str, Any], where: str) -> MetricCheck:
    name = raw.get("name")
    if not name:
        raise SpecError(f"{where}.name", "is required")
    bounds = raw.get("thresholdRange") or {}
    low, high = (
        _number(bounds.get("min"), f"{where}.thresholdRange.min"),
        _number(bounds.get("max"), f"{where}.thresholdRange.max"),
    )
    delta, ratio = (
        _number(bounds.get("maxDelta"), f"{where}.thresholdRange.maxDelta"),
        _number(bounds.get("maxRatio"), f"{where}.thresholdRange.maxRatio"),
    )
    if low is None and high is None and delta is None and ratio is None:
        raise SpecError(f"{where}.thresholdRange", "set min and/or max, or maxDelta/maxRatio (relative to the primary)")
    query = tuple(dict(q) for q in raw.get("query") or ())
    relative = Relative(delta, ratio) if delta is not None or ratio is not None else None
    if relative is not None and (name not in BUILT_IN or query):
        raise SpecError(
            f"{where}.thresholdRange",
            f"maxDelta/maxRatio (relative to the primary) are for the built-in metrics ({', '.join(BUILT_IN)})",
        )
    if name not in BUILT_IN and not query:
        raise SpecError(
            f"{where}.query",
            f"{name!r} is not built in ({', '.join(BUILT_IN)}); "
            "a custom metric needs query (CloudWatch MetricDataQueries)",
        )
    for i, q in enumerate(query):
        if not re.fullmatch(r"[a-z][a-zA-Z0-9_]*", str(q.get("Id", ""))):
            raise SpecError(f"{where}.query[{i}].Id", "must start with a lowercase letter (CloudWatch query Id)")
    lookback = parse_duration(raw["lookback"], f"{where}.lookback") if raw.get("lookback") else None
    return MetricCheck(
        name, parse_duration(raw.get("interval", "1m"), f"{where}.interval"), low, high, query, relative, lookback
    )


def _match(raw: Mapping[str, Any], where: str) -> Match:
    headers = []
    for name, rule in (raw.get("headers") or {}).items():
        rule = rule or {}
        if ("exact" in rule) == ("wildcard" in rule):
            raise SpecError(f"{where}.headers.{name}", "set exactly one of exact and wildcard")
        headers.append(HeaderMatch(name, str(rule.get("exact", rule.get("wildcard"))), "wildcard" in rule))
    return Match(
        headers=tuple(headers),
        cookies=tuple((str(k), str(v)) for k, v in (raw.get("cookies") or {}).items()),
        query=tuple((str(k), str(v)) for k, v in (raw.get("queryStrings") or {}).items()),
        source_ips=tuple(raw.get("sourceIPs") or ()),
    )


def _check_ab(analysis: AnalysisSpec, lb: LoadBalancerSpec) -> None:
    """A/B rules sit just above the Canary's rule, so they need one, with room below its priority."""
    if not analysis.match:
        return
    if analysis.iterations is None:
        raise SpecError("spec.analysis.match", "A/B testing runs for a number of iterations: set iterations")
    if lb.rule is None:
        raise SpecError("spec.analysis.match", "A/B rules need loadBalancer.rule to sit above")
    if lb.rule.priority <= len(analysis.match):
        raise SpecError(
            "spec.loadBalancer.rule.priority",
            f"{lb.rule.priority} leaves no room for {len(analysis.match)} A/B rules above it",
        )
    for i, match in enumerate(analysis.match):  # ALB's own limits per rule: routing/alb_wire.py
        if not (match.headers or match.cookies or match.query or match.source_ips):
            raise SpecError(
                f"spec.analysis.match[{i}]", "set at least one of headers, cookies, queryStrings or sourceIPs"
            )


class CanaryStatus(TypedDict, total=False):
    """status: the Canary's only memory between ticks (and across restarts). `None` in a change
    removes the key (JSON merge patch)."""

    # the rollout (controllers/canary_reconciler.py)
    phase: str
    canaryWeight: float  # verified percent
    failedChecks: int
    iterations: int
    noDataChecks: int
    lastAppliedSpec: str
    lastPromotedSpec: str
    lastTransitionTime: str
    unavailableSince: str | None
    observedGeneration: int
    message: str
    conditions: list[dict[str, Any]]
    commands: dict[str, str]  # verb -> the annotation value it answered
    metrics: list[dict[str, Any]]
    alarms: list[dict[str, Any]]
    scaleDownAt: str | None
    # the groups and the user's objects (write-aheads for revertOnDeletion)
    targetGroups: dict[str, list[str]]
    backends: dict[str, list[str]]
    targetReplicas: int
    apexSelector: dict[str, str] | None
    # the traffic provider's record (routing/alb.py)
    listenerRule: dict[str, Any] | None
    retiringRule: dict[str, Any] | None
    abRules: list[str]
    pendingWeight: float | None  # percent written to AWS, not yet verified (a write-ahead)
    warmup: bool


# -- schema ---------------------------------------------------------------------------------
def _percent(description: str) -> dict[str, Any]:
    return {"type": "number", "minimum": 0.1, "maximum": 100, "description": description}


def _backend_refs() -> dict[str, Any]:
    side = {
        "type": "array",
        "maxItems": MAX_GROUPS_PER_ACTION,
        "items": {
            "type": "object",
            "required": ["name", "port"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 63},
                "port": {"x-kubernetes-int-or-string": True, "description": "Service port number or name."},
                "weight": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 999,
                    "default": 1,
                    "description": "Relative share of this side's weight.",
                },
            },
        },
    }
    return {
        "type": "object",
        "description": "Your own Services per side instead of the generated ones; each gets a target group.",
        "properties": {"primary": side, "canary": side},
        "x-kubernetes-validations": [
            {
                "rule": "(has(self.primary) && size(self.primary) > 0 ? size(self.primary) : 1) + "
                "(has(self.canary) && size(self.canary) > 0 ? size(self.canary) : 1) <= 5",
                "message": "ALB allows at most 5 target groups in one forward action (primary + canary)",
            }
        ],
    }


def _webhook() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["name", "url"],
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "type": {"type": "string", "enum": list(WEBHOOK_TYPES), "default": "rollout"},
            "url": {"type": "string", "pattern": "^https?://"},
            "timeout": {"type": "string", "pattern": DURATION, "default": "10s"},
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }


def _metric_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["name", "thresholdRange"],
        "properties": {
            "name": {
                "type": "string",
                "minLength": 1,
                "description": "request-success-rate, request-duration, or any name with a query.",
            },
            "interval": {
                "x-kubernetes-int-or-string": True,
                "default": "1m",
                "description": "The metric's period (at least 1m for ALB metrics).",
            },
            "lookback": {
                "x-kubernetes-int-or-string": True,
                "description": "How far back the query reads; the latest period with data counts. "
                "Default: ten periods, as Flagger.",
            },
            "thresholdRange": {
                "type": "object",
                "properties": {
                    "min": {"type": "number"},
                    "max": {"type": "number"},
                    "maxDelta": {
                        "type": "number",
                        "minimum": 0,
                        "description": "Relative: the canary may be at most this much worse than the primary "
                        "over the same window (percentage points for request-success-rate).",
                    },
                    "maxRatio": {
                        "type": "number",
                        "minimum": 1,
                        "description": "Relative: canary/primary may be at most this (e.g. 1.2 for latency).",
                    },
                },
            },
            "query": {
                "type": "array",
                "description": "CloudWatch MetricDataQueries; {{ target_group }} and "
                "{{ load_balancer }} are replaced by dimension values.",
                "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
        },
    }


def _match_schema() -> dict[str, Any]:
    header = {
        "type": "object",
        "properties": {"exact": {"type": "string"}, "wildcard": {"type": "string"}},
        "x-kubernetes-validations": [
            {"rule": "has(self.exact) != has(self.wildcard)", "message": "set exactly one of exact and wildcard"}
        ],
    }
    strings = {"type": "object", "additionalProperties": {"type": "string"}}
    return {
        "type": "object",
        "properties": {
            "headers": {"type": "object", "additionalProperties": header},
            "cookies": strings,
            "queryStrings": strings,
            "sourceIPs": {"type": "array", "items": {"type": "string"}},
        },
    }


def schema() -> dict[str, Any]:
    spec = {
        "type": "object",
        "required": ["targetRef", "service", "loadBalancer"],
        "x-kubernetes-validations": [
            {
                "rule": "!(has(self.service.headless) && self.service.headless && has(self.loadBalancer.targetType)"
                " && self.loadBalancer.targetType == 'instance')",
                "message": "a headless Service has no NodePort: loadBalancer.targetType must be ip",
            }
        ],
        "properties": {
            "targetRef": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "apiVersion": {"type": "string", "default": "apps/v1"},
                    "kind": {"type": "string", "enum": ["Deployment"], "default": "Deployment"},
                    "name": {"type": "string", "minLength": 1, "maxLength": 63},
                },
            },
            "service": {
                "type": "object",
                "required": ["port"],
                "properties": {
                    "name": {"type": "string", "maxLength": 55, "description": "Defaults to the target's name."},
                    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                    "targetPort": {"x-kubernetes-int-or-string": True, "description": "Defaults to port."},
                    "headless": {
                        "type": "boolean",
                        "description": "Defaults to the headless state of your existing apex Service.",
                    },
                    "backendRefs": _backend_refs(),
                },
            },
            "loadBalancer": {
                "type": "object",
                "required": ["listenerARN"],
                "properties": {
                    "listenerARN": {
                        "type": "string",
                        "pattern": "^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:listener/app/.+",
                    },
                    "rule": {
                        "type": "object",
                        "required": ["priority"],
                        "description": "Without it awsctl drives the listener's default action.",
                        "x-kubernetes-validations": [
                            {
                                "rule": "(has(self.hosts) ? size(self.hosts) : 0) + (has(self.paths) ? size(self.paths) : 0)"
                                " <= 5",
                                "message": "ALB allows at most 5 condition values per rule (hosts + paths)",
                            }
                        ],
                        "properties": {
                            "priority": {"type": "integer", "minimum": 1, "maximum": 50000},
                            "hosts": {"type": "array", "maxItems": 5, "items": {"type": "string", "minLength": 1}},
                            "paths": {"type": "array", "maxItems": 5, "items": {"type": "string", "minLength": 1}},
                        },
                    },
                    "targetType": {
                        "type": "string",
                        "enum": ["ip", "instance"],
                        "default": "ip",
                        "description": "A headless Service forces ip.",
                    },
                    "targetGroup": {
                        "type": "object",
                        "properties": {
                            "protocol": {"type": "string", "enum": ["HTTP", "HTTPS"], "default": "HTTP"},
                            "port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 80},
                            "vpcID": {"type": "string", "pattern": "^vpc-[0-9a-f]+$"},
                            "deregistrationDelaySeconds": {
                                "type": "integer",
                                "minimum": 0,
                                "maximum": 3600,
                                "default": 30,
                            },
                            "healthCheck": {
                                "type": "object",
                                "properties": {
                                    "path": {"type": "string", "pattern": "^/"},
                                    "port": {"type": "string"},
                                    "intervalSeconds": {"type": "integer", "minimum": 5, "maximum": 300},
                                    "timeoutSeconds": {"type": "integer", "minimum": 2, "maximum": 120},
                                    "healthyThresholdCount": {"type": "integer", "minimum": 2, "maximum": 10},
                                    "unhealthyThresholdCount": {"type": "integer", "minimum": 2, "maximum": 10},
                                    "matcher": {"type": "string"},
                                },
                            },
                        },
                    },
                    "stickiness": {
                        "type": "object",
                        "properties": {
                            "enabled": {"type": "boolean", "default": False},
                            "durationSeconds": {"type": "integer", "minimum": 1, "maximum": 604800, "default": 300},
                        },
                    },
                    "readinessGate": {
                        "type": "boolean",
                        "default": True,
                        "description": "Give the generated primary's pods the readiness gate "
                        "target-health.awsctl.io/<name>-primary: a pod is Ready only once its "
                        "target is healthy in AWS, so a rolling update cannot outrun the ALB.",
                    },
                },
            },
            "analysis": {
                "type": "object",
                "x-kubernetes-validations": [
                    {
                        "rule": "!(has(self.stepWeight) && has(self.stepWeights))",
                        "message": "set stepWeight or stepWeights, not both",
                    },
                    {
                        "rule": "!has(self.iterations) || !(has(self.stepWeight) || has(self.stepWeights) || "
                        "has(self.maxWeight))",
                        "message": "iterations (analysis at weight 0) excludes stepWeight, stepWeights and maxWeight",
                    },
                    {
                        "rule": "!has(self.match) || has(self.iterations)",
                        "message": "A/B testing (match) runs for a number of iterations: set iterations",
                    },
                    {
                        "rule": "!has(self.stepWeights) || !has(self.maxWeight) || "
                        "self.stepWeights.all(w, w <= self.maxWeight)",
                        "message": "every stepWeights entry must be at most maxWeight",
                    },
                ],
                "properties": {
                    "interval": {
                        "x-kubernetes-int-or-string": True,
                        "default": "1m",
                        "description": "Time between steps: seconds or a duration (1s, 30s, 1m).",
                    },
                    "threshold": {
                        "type": "integer",
                        "minimum": 1,
                        "default": 5,
                        "description": "Failed checks before rollback.",
                    },
                    "stepWeight": _percent("Percent added per step (0.1 resolution)."),
                    "stepWeights": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 100,
                        "items": _percent("Percent at this step (0.1 resolution)."),
                    },
                    "maxWeight": _percent("Canary percent at which promotion starts."),
                    "stepWeightPromotion": _percent("Percent moved back to the primary per step after promotion."),
                    "iterations": {
                        "type": "integer",
                        "minimum": 1,
                        "description": "Analysis runs at weight 0 before promotion (blue/green).",
                    },
                    "webhooks": {"type": "array", "items": _webhook()},
                    "metrics": {"type": "array", "items": _metric_schema()},
                    "match": {
                        "type": "array",
                        "maxItems": 5,
                        "items": _match_schema(),
                        "description": "A/B: each entry is an ALB rule sending matching requests to the "
                        "canary (entries ORed, fields ANDed); needs iterations.",
                    },
                    "alarms": {
                        "type": "array",
                        "maxItems": 100,
                        "description": "CloudWatch alarms as gates: ALARM "
                        "is a failed check, INSUFFICIENT_DATA follows the no-data rule.",
                        "items": {
                            "type": "object",
                            "required": ["name"],
                            "properties": {"name": {"type": "string", "minLength": 1, "description": "Name or ARN."}},
                        },
                    },
                    "noDataTolerance": {
                        "type": "integer",
                        "minimum": 0,
                        "default": NO_DATA_TOLERANCE,
                        "description": "Consecutive checks without data that hold the step; each "
                        "further one counts as a failed check.",
                    },
                    "bake": {
                        "type": "object",
                        "required": ["duration"],
                        "description": "After the steps and "
                        "confirm-promotion, the canary at weight for duration with the primary warm; any "
                        "failed check moves the weight back in one verified write.",
                        "properties": {
                            "weight": {**_percent("Canary percent during the bake."), "default": 100},
                            "duration": {
                                "x-kubernetes-int-or-string": True,
                                "description": "How long to bake (e.g. 10m).",
                            },
                        },
                    },
                },
            },
            "progressDeadlineSeconds": {"type": "integer", "minimum": 1, "default": 600},
            "skipAnalysis": {"type": "boolean", "default": False},
            "suspend": {"type": "boolean", "default": False},
            "revertOnDeletion": {"type": "boolean", "default": False},
            "alerts": {
                "type": "array",
                "description": "Where phase changes are announced (AlertProviders).",
                "items": {
                    "type": "object",
                    "required": ["providerRef"],
                    "properties": {
                        "name": {"type": "string"},
                        "severity": {
                            "type": "string",
                            "enum": list(SEVERITIES),
                            "default": "info",
                            "description": "info: every phase change; warn: warnings and failures; "
                            "error: failures only.",
                        },
                        "providerRef": {
                            "type": "object",
                            "required": ["name"],
                            "properties": {
                                "name": {"type": "string"},
                                "namespace": {"type": "string", "description": "Defaults to the Canary's."},
                            },
                        },
                    },
                },
            },
        },
    }
    arns = {"type": "array", "items": {"type": "string"}}

    def route_record(description: str) -> dict[str, Any]:
        return {
            "type": "object",
            "description": description,
            "properties": {
                "arn": {"type": "string"},
                "created": {"type": "boolean"},
                "previousActions": {"type": "string"},
                "listener": {"type": "string"},
                "priority": {"type": "integer", "nullable": True},
            },
        }

    status = {
        "type": "object",
        "properties": {
            "phase": {"type": "string", "enum": list(PHASES)},
            "canaryWeight": {"type": "number", "description": "Verified canary percent, as read back from AWS."},
            "failedChecks": {"type": "integer"},
            "iterations": {"type": "integer"},
            "lastAppliedSpec": {"type": "string"},
            "lastPromotedSpec": {"type": "string"},
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "observedGeneration": {"type": "integer", "format": "int64"},
            "message": {"type": "string"},
            "conditions": condition_schema(),
            "targetGroups": {"type": "object", "properties": {"primary": arns, "canary": arns}},
            "backends": {
                "type": "object",
                "description": "Service:port per side, in forward-action order.",
                "properties": {"primary": arns, "canary": arns},
            },
            "listenerRule": route_record("The rule awsctl drives; previousActions (JSON) are restored on deletion."),
            "retiringRule": route_record("The route the spec named before; restored once the new one is verified."),
            "warmup": {
                "type": "boolean",
                "description": "A warm-up rule makes AWS health-check groups the live route does not forward to yet.",
            },
            "scaleDownAt": {
                "type": "string",
                "nullable": True,
                "description": "When the canary, at weight 0 "
                "and with its A/B rules gone, scales to 0 (after the stickiness duration).",
            },
            "metrics": {
                "type": "array",
                "description": "Last value of each metric check.",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "value": {"type": "number"},
                        "min": {"type": "number"},
                        "max": {"type": "number"},
                        "primary": {"type": "number", "description": "Relative mode: the primary's value."},
                        "relative": {
                            "type": "object",
                            "properties": {"maxDelta": {"type": "number"}, "maxRatio": {"type": "number"}},
                        },
                        "verdict": {"type": "string", "enum": ["pass", "fail", "wait"]},
                        "message": {"type": "string"},
                    },
                },
            },
            "alarms": {
                "type": "array",
                "description": "State of each analysis alarm at the last check.",
                "items": {"type": "object", "properties": {"name": {"type": "string"}, "state": {"type": "string"}}},
            },
            "noDataChecks": {"type": "integer", "description": "Consecutive checks that had no data."},
            "unavailableSince": {
                "type": "string",
                "nullable": True,
                "description": "When the canary stopped being ready (the progress deadline counts from here).",
            },
            "abRules": {
                "type": "array",
                "items": {"type": "string"},
                "description": "A/B rules awsctl created for this analysis.",
            },
            "pendingWeight": {
                "type": "number",
                "nullable": True,
                "description": "Written before a weight change; adopted if AWS shows it after a crash.",
            },
            "targetReplicas": {
                "type": "integer",
                "description": "Replicas of your Deployment before awsctl scaled it.",
            },
            "commands": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "The awsctl.io/<verb> annotation values (awsctl promote, abort, retry) "
                "already carried out.",
            },
            "apexSelector": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Selector of your apex Service before awsctl pointed it at the primary.",
            },
        },
    }
    return {"type": "object", "required": ["spec"], "properties": {"spec": spec, "status": status}}


def definition() -> dict[str, Any]:
    return crd(
        group=GROUP,
        version=VERSION,
        kind=KIND,
        plural=PLURAL,
        short_names=SHORT_NAMES,
        schema=schema(),
        columns=[
            {"name": "Status", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Weight", "type": "number", "jsonPath": ".status.canaryWeight"},
            {"name": "FailedChecks", "type": "integer", "jsonPath": ".status.failedChecks"},
            {"name": "LastTransitionTime", "type": "string", "jsonPath": ".status.lastTransitionTime"},
            {"name": "Message", "type": "string", "priority": 1, "jsonPath": ".status.message"},
        ],
    )
