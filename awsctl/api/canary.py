"""Canary: the progressive release of one Deployment behind an ALB listener rule.

Each field of the CRD is declared once, in the `*Fields` models below: type, default, limits and
description. The parser, the defaults and the CRD schema (`make crds`) are generated from them;
CEL rules stay explicit. `CanarySpec.parse` then turns the fields into the domain's frozen
dataclasses, checking what the schema cannot (0.1% resolution, ascending steps, ALB's A/B room).

Percentages have 0.1 resolution and are held as permille (0..1000) from here on, so a
0.5% step is the integer 5 and maps onto ALB's 0..999 weights without rounding.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal, get_args

from pydantic import Field
from typing_extensions import TypedDict  # pydantic reads typing's TypedDict only from 3.12

from awsctl.api.alert_provider import Severity
from awsctl.api.phases import Phase
from awsctl.api.schema import Conditions, Int64, IntOrString, Model, SpecError, cel, crd, object_schema, parse
from awsctl.planning.naming import load_balancer_arn

KIND = "Canary"
PLURAL = "canaries"
SHORT_NAMES = ["cnr"]

PROGRESS_DEADLINE_SECONDS = 600  # a rollout that stops making progress this long rolls back
# How long a primary pod keeps serving once deleted (a preStop sleep): measured under load, without it a
# deleted pod stopped before its target was deregistered and requests sent to it failed (502).
# How long an ALB's nodes may still route by a change after its API shows it (see README, "the test ground"):
# aws-load-balancer-controller#1064 measured a 5 s preStop sleep too short and 25 s enough; Argo Rollouts
# waits 30 s (abortScaleDownDelaySeconds). The primary's termination delay defaults to the same.
PROPAGATION_SECONDS = 30
TERMINATION_DELAY_SECONDS = PROPAGATION_SECONDS
# A side that lost its weight keeps its pods for the whole stickiness duration, so that no sticky client is sent
# to a group without live targets: longer durations are refused (AWS allows up to 7 days).
MAX_STICKY_SECONDS = 3600
NO_DATA_TOLERANCE = 2  # the least no-data tolerance: consecutive checks without data that hold
# How long a metric period's datapoints may take to show, in periods: up to one until a period starts, the
# period itself, and up to two for CloudWatch to publish it (ALB's lag is not documented; users see one to two
# minutes). The default no-data tolerance is the checks that fit in it; analysis.metrics holds a check cut by
# its anchor as "not yet" for as long.
PUBLICATION_PERIODS = 4
ALB_PERIOD_SECONDS = 60  # ALB publishes its metrics per minute
STEP_WEIGHT = 10.0  # percent per step when neither stepWeight nor stepWeights is set
MAX_WEIGHT = 50.0  # percent at which promotion starts when maxWeight is not set
WebhookType = Literal[
    "confirm-rollout",
    "pre-rollout",
    "rollout",
    "confirm-traffic-increase",
    "confirm-promotion",
    "post-rollout",
    "rollback",
    "event",
]
WEBHOOK_TYPES: tuple[str, ...] = get_args(WebhookType)
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


# -- the fields, as written in a Canary ------------------------------------------------------------
def _percent(description: str) -> Any:
    """An optional percent (0.1 resolution, checked when it becomes permille)."""
    return Field(None, ge=0.1, le=100, description=description)


Percent = Annotated[float, Field(ge=0.1, le=100)]
Duration = Annotated[IntOrString, Field(description="Seconds, or a duration such as 1s, 30s, 1m.")]
Name = Annotated[str, Field(min_length=1, max_length=63)]
NonEmpty = Annotated[str, Field(min_length=1)]


class TargetRefFields(Model):
    api_version: str = "apps/v1"
    kind: Literal["Deployment"] = "Deployment"
    name: Name


class AutoscalerRefFields(Model):
    api_version: Literal["autoscaling/v2"] = "autoscaling/v2"
    kind: Literal["HorizontalPodAutoscaler"] = "HorizontalPodAutoscaler"
    name: Name


class BackendRefFields(Model):
    name: Name
    port: IntOrString = Field(description="Service port number or name.")
    weight: int = Field(1, ge=1, le=999, description="Relative share of this side's weight.")


class BackendRefsFields(Model):
    model_config = cel(
        (
            "(has(self.primary) && size(self.primary) > 0 ? size(self.primary) : 1) + "
            "(has(self.canary) && size(self.canary) > 0 ? size(self.canary) : 1) <= 5",
            "ALB allows at most 5 target groups in one forward action (primary + canary)",
        )
    )
    # maxItems for the apiserver only: the parser names the whole forward action (see _service)
    primary: list[BackendRefFields] = Field(default_factory=list, json_schema_extra={"maxItems": MAX_GROUPS_PER_ACTION})
    canary: list[BackendRefFields] = Field(default_factory=list, json_schema_extra={"maxItems": MAX_GROUPS_PER_ACTION})


class ServiceFields(Model):
    name: str | None = Field(None, max_length=55, description="Defaults to the target's name.")
    port: int = Field(ge=1, le=65535)
    target_port: IntOrString | None = Field(None, description="Defaults to port.")
    headless: bool | None = Field(None, description="Defaults to the headless state of your existing apex Service.")
    backend_refs: BackendRefsFields = Field(
        default_factory=BackendRefsFields,
        description="Your own Services per side instead of the generated ones; each gets a target group.",
    )


class RuleFields(Model):
    model_config = cel(
        (
            "(has(self.hosts) ? size(self.hosts) : 0) + (has(self.paths) ? size(self.paths) : 0) <= 5",
            "ALB allows at most 5 condition values per rule (hosts + paths)",
        )
    )
    priority: int = Field(ge=1, le=50000)
    # ALB: at most 3 values in one condition, and 5 in the whole rule (the CEL rule above)
    hosts: list[NonEmpty] = Field(default_factory=list, max_length=3)
    paths: list[NonEmpty] = Field(default_factory=list, max_length=3)
    arn: str | None = Field(
        None,
        pattern="^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:listener-rule/app/.+",
        description="The existing rule at this priority to take over when its host and path conditions differ "
        "from hosts and paths: naming it says you mean that route. Without it, a rule whose conditions differ "
        "is refused (RouteMismatch), so a priority typo never takes another app's traffic.",
    )


class HealthCheckFields(Model):
    protocol: Literal["HTTP", "HTTPS", "TCP"] | None = Field(
        None,
        description="Defaults to the group's protocol on an ALB, TCP on an NLB (as AWS does); path and "
        "matcher need HTTP or HTTPS.",
    )
    path: str | None = Field(None, pattern="^/")
    port: str | None = None
    interval_seconds: int | None = Field(None, ge=5, le=300)
    timeout_seconds: int | None = Field(None, ge=2, le=120)
    healthy_threshold_count: int | None = Field(None, ge=2, le=10)
    unhealthy_threshold_count: int | None = Field(None, ge=2, le=10)
    matcher: str | None = Field(
        None,
        pattern=r"^[1-5][0-9]{2}(-[1-5][0-9]{2})?(,[1-5][0-9]{2}(-[1-5][0-9]{2})?)*$",
        description='HTTP codes a healthy target answers: "200", "200,202" or "200-299" (ALB allows 200-499).',
    )


class TargetGroupFields(Model):
    protocol: Literal["HTTP", "HTTPS", "TCP", "TLS", "UDP", "TCP_UDP"] | None = Field(
        None,
        description="Defaults to HTTP on an ALB and TCP on an NLB. An NLB's TCP listener forwards to TCP or "
        "TCP_UDP groups, TLS to TCP or TLS, UDP to UDP or TCP_UDP.",
    )
    port: int = Field(80, ge=1, le=65535)
    vpc_id: str | None = Field(None, alias="vpcID", pattern="^vpc-[0-9a-f]+$")
    deregistration_delay_seconds: int = Field(30, ge=0, le=3600)
    health_check: HealthCheckFields = Field(default_factory=HealthCheckFields)


class StickinessFields(Model):
    enabled: bool = False
    duration_seconds: int = Field(
        300,
        ge=1,
        le=MAX_STICKY_SECONDS,
        description="How long a client stays on the side it was given. A side that loses its last weight keeps "
        "its pods this long (plus loadBalancer.propagationSeconds), so a sticky client never reaches a group "
        "without live targets; hence at most an hour.",
    )


class SecretKeyRefFields(Model):
    name: Name
    key: str = Field("clientSecret", min_length=1, description="The key in the Secret's data.")


LISTENER_ARN = "^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:listener/(app|net)/.+"
MAX_ROUTES = 4  # further routes per Canary: every step is one verified write per route


class RouteFields(Model):
    listener_arn: str = Field(alias="listenerARN", pattern=LISTENER_ARN)
    rule: RuleFields | None = Field(None, description="Without it awsctl drives the listener's default action.")


class LoadBalancerFields(Model):
    listener_arn: str = Field(
        alias="listenerARN",
        pattern=LISTENER_ARN,
        description="An ALB listener (listener/app/...), or an NLB's (listener/net/...), whose default action "
        "carries the weights: NLB rules route only by source address family, so the listener is an NLB "
        "canary's unit.",
    )
    rule: RuleFields | None = Field(
        None, description="Without it awsctl drives the listener's default action (always so on an NLB)."
    )
    routes: list[RouteFields] = Field(
        default_factory=list,
        max_length=MAX_ROUTES,
        description="Further routes to the same groups, on listeners of the same load balancer (a target group "
        "serves one load balancer): every step is written and verified on each, and counts only when all show "
        "it; a rollback or a refusal takes them all back together.",
    )
    target_type: Literal["ip", "instance"] = Field("ip", description="A headless Service forces ip.")
    target_group: TargetGroupFields = Field(default_factory=TargetGroupFields)
    stickiness: StickinessFields = Field(default_factory=StickinessFields)
    propagation_seconds: int = Field(
        PROPAGATION_SECONDS,
        ge=0,
        le=3600,
        description="How long a side that lost its last weight keeps its pods and its registered targets after "
        "AWS shows the weight 0: the load balancer's nodes apply a change some time after its API shows it. "
        "Rollback, abort, a failed bake, promotion and deletion all wait this long (plus the stickiness "
        "duration when stickiness is on) before the canary scales to 0 or the groups go.",
    )
    oidc_client_secret_ref: SecretKeyRefFields | None = Field(
        None,
        alias="oidcClientSecretRef",
        description="A Secret in this namespace with the OIDC client secret of a taken-over rule that "
        "authenticates with authenticate-oidc. The A/B rules awsctl puts in front of it carry the same "
        "authentication, and a new rule needs the secret, which AWS never returns.",
    )
    readiness_gate: bool = Field(
        True,
        description="Give the generated primary's pods the readiness gate "
        "target-health.awsctl.io/<name>-primary: a pod is Ready only once its "
        "target is healthy in AWS, so a rolling update cannot outrun the ALB.",
    )


class WebhookFields(Model):
    name: NonEmpty
    type: WebhookType = "rollout"
    url: str = Field(pattern=r"^https?://[^\s/?#]+([/?#]\S*)?$", description="http(s) with a host, no spaces.")
    timeout: str = Field("10s", pattern=DURATION)
    metadata: dict[str, str] = Field(default_factory=dict)


class ThresholdRangeFields(Model):
    model_config = cel(("!has(self.min) || !has(self.max) || self.min <= self.max", "min must not be above max"))
    min: float | None = None
    max: float | None = None
    max_delta: float | None = Field(
        None,
        ge=0,
        description="Relative: the canary may be at most this much worse than the primary "
        "over the same window (percentage points for request-success-rate).",
    )
    max_ratio: float | None = Field(
        None, ge=1, description="Relative: canary/primary may be at most this (e.g. 1.2 for latency)."
    )


class MetricFields(Model):
    name: str = Field(
        min_length=1,
        description="request-success-rate or request-duration (ALB), connection-success-rate (NLB), or any "
        "name with a query.",
    )
    interval: Duration = Field("1m", description="The metric's period (at least 1m for ALB metrics).")
    lookback: Duration | None = Field(
        None,
        description="How far back the query reads; the latest period with data counts. "
        "Default: ten periods, as Flagger.",
    )
    threshold_range: ThresholdRangeFields
    query: list[dict[str, Any]] = Field(
        default_factory=list,
        description="CloudWatch MetricDataQueries; {{ target_group }} and "
        "{{ load_balancer }} are replaced by dimension values.",
    )


class HeaderFields(Model):
    model_config = cel(("has(self.exact) != has(self.wildcard)", "set exactly one of exact and wildcard"))
    exact: str | None = None
    wildcard: str | None = None


class MatchFields(Model):
    headers: dict[str, HeaderFields] = Field(default_factory=dict)
    cookies: dict[str, str] = Field(default_factory=dict)
    query_strings: dict[str, str] = Field(default_factory=dict)
    source_ips: list[str] = Field(default_factory=list, alias="sourceIPs", max_length=3)


class AlarmFields(Model):
    name: str = Field(min_length=1, description="Name or ARN.")


class BakeFields(Model):
    weight: Percent = Field(100, description="Canary percent during the bake.")
    duration: Duration = Field(description="How long to bake (e.g. 10m).")


class AnalysisFields(Model):
    model_config = cel(
        ("!(has(self.stepWeight) && has(self.stepWeights))", "set stepWeight or stepWeights, not both"),
        (
            "!has(self.iterations) || !(has(self.stepWeight) || has(self.stepWeights) || has(self.maxWeight))",
            "iterations (analysis at weight 0) excludes stepWeight, stepWeights and maxWeight",
        ),
        (
            "!has(self.match) || has(self.iterations)",
            "A/B testing (match) runs for a number of iterations: set iterations",
        ),
        (
            "!has(self.stepWeights) || !has(self.maxWeight) || self.stepWeights.all(w, w <= self.maxWeight)",
            "every stepWeights entry must be at most maxWeight",
        ),
    )
    interval: Duration = Field("1m", description="Time between steps: seconds or a duration (1s, 30s, 1m).")
    threshold: int = Field(5, ge=1, description="Failed checks before rollback.")
    step_weight: float | None = _percent(f"Percent added per step (0.1 resolution); default {STEP_WEIGHT:g}.")
    step_weights: list[Percent] | None = Field(
        None, min_length=1, max_length=100, description="Percent at each step (0.1 resolution)."
    )
    max_weight: float | None = _percent(f"Canary percent at which promotion starts; default {MAX_WEIGHT:g}.")
    step_weight_promotion: float | None = _percent("Percent moved back to the primary per step after promotion.")
    iterations: int | None = Field(None, ge=1, description="Analysis runs at weight 0 before promotion (blue/green).")
    webhooks: list[WebhookFields] = Field(default_factory=list)
    metrics: list[MetricFields] = Field(default_factory=list)
    match: list[MatchFields] = Field(
        default_factory=list,
        max_length=5,
        description="A/B: each entry is an ALB rule sending matching requests to the "
        "canary (entries ORed, fields ANDed); needs iterations.",
    )
    alarms: list[AlarmFields] = Field(
        default_factory=list,
        max_length=100,
        description="CloudWatch alarms as gates: ALARM is a failed check, INSUFFICIENT_DATA follows the no-data rule.",
    )
    no_data_tolerance: int | None = Field(
        None,
        ge=0,
        description="Consecutive checks without data that hold the step; each further one counts as a failed check. "
        "Default: the checks that fit in the time ALB takes to publish a metric period (4 periods of the longest "
        "metric, at least 2): ALB publishes per minute, a minute late, and publishes no zero counts.",
    )
    bake: BakeFields | None = Field(
        None,
        description="After the steps and confirm-promotion, the canary at weight for duration with the primary "
        "warm; any failed check moves the weight back in one verified write.",
    )


class ProviderRefFields(Model):
    name: str
    namespace: str | None = Field(None, description="Defaults to the Canary's.")


class AlertFields(Model):
    name: str | None = None
    severity: Severity = Field(
        "info", description="info: every phase change; warn: warnings and failures; error: failures only."
    )
    provider_ref: ProviderRefFields


class CanarySpecFields(Model):
    model_config = cel(
        (
            "!(has(self.service.headless) && self.service.headless && has(self.loadBalancer.targetType)"
            " && self.loadBalancer.targetType == 'instance')",
            "a headless Service has no NodePort: loadBalancer.targetType must be ip",
        )
    )
    target_ref: TargetRefFields
    autoscaler_ref: AutoscalerRefFields | None = Field(
        None,
        description="The HorizontalPodAutoscaler of targetRef's Deployment (Flagger's autoscalerRef): the primary "
        "gets its own copy, <name>-primary. Without it, a target that an HPA scales is refused.",
    )
    service: ServiceFields
    load_balancer: LoadBalancerFields
    analysis: AnalysisFields = Field(default_factory=AnalysisFields)
    progress_deadline_seconds: int = Field(PROGRESS_DEADLINE_SECONDS, ge=1)
    termination_delay_seconds: int | None = Field(
        None,
        ge=0,
        le=3600,
        description="How long a primary pod keeps serving after it is deleted, before its containers are stopped: "
        "a preStop sleep added to every container of the primary that has no preStop hook of its own, and the "
        "same added to its terminationGracePeriodSeconds. It covers the time awsctl takes to deregister the "
        "target and the ALB's nodes to stop sending it requests. Default: loadBalancer.propagationSeconds. "
        "0: none.",
    )
    skip_analysis: bool = False
    suspend: bool = False
    revert_on_deletion: bool = False
    alerts: list[AlertFields] = Field(
        default_factory=list, description="Where phase changes are announced (AlertProviders)."
    )


# -- the domain: what the rollout works with -------------------------------------------------------
BUILT_IN = ("request-success-rate", "request-duration")  # ALB metrics awsctl queries by itself
NLB_BUILT_IN = ("connection-success-rate",)  # NLB metrics (AWS/NetworkELB) awsctl queries by itself
SUCCESS_RATES = ("request-success-rate", "connection-success-rate")


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
        return self.name in (*BUILT_IN, *NLB_BUILT_IN) and not self.query

    @property
    def higher_is_better(self) -> bool:
        return self.name in SUCCESS_RATES if self.built_in else (self.min is not None and self.max is None)


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
    weight: int


@dataclass(frozen=True)
class SideBackend:
    """One Service on one side of the forward action, as the spec declares it."""

    role: str  # "primary" or "canary"
    service: str
    port: int | str
    share: int
    generated: bool  # the Service awsctl generates for the side (no backendRefs for it)
    field: str = ""  # where a user's ref is in the spec, for refusals

    @property
    def key(self) -> str:
        """How status and target group names tell a side's Services apart."""
        return f"{self.service}:{self.port}"


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    port: int
    target_port: int | str
    headless: bool | None
    backend_refs: Mapping[str, tuple[BackendRef, ...]]  # "primary"/"canary" -> refs; missing = generated

    def backends(self) -> list[SideBackend]:
        """Every Service of both sides: the user's backendRefs, else the generated `<name>-<role>`."""
        out = []
        for role in ("primary", "canary"):
            refs = self.backend_refs.get(role)
            if not refs:
                out.append(SideBackend(role, f"{self.name}-{role}", self.port, 1, True))
                continue
            out += [
                SideBackend(role, ref.name, ref.port, ref.weight, False, f"spec.service.backendRefs.{role}[{i}].name")
                for i, ref in enumerate(refs)
            ]
        return out


@dataclass(frozen=True)
class TargetGroupSpec:
    protocol: str
    port: int
    vpc_id: str | None
    deregistration_delay: int
    health_check: Mapping[str, Any]  # as written (camelCase), unset keys left out


@dataclass(frozen=True)
class RuleSpec:
    priority: int
    hosts: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    arn: str | None = None  # the existing rule the user names for a take-over whatever its conditions


@dataclass(frozen=True)
class RouteSpec:
    listener_arn: str
    rule: RuleSpec | None


@dataclass(frozen=True)
class LoadBalancerSpec:
    listener_arn: str
    rule: RuleSpec | None
    target_type: str
    target_group: TargetGroupSpec
    stickiness: bool
    stickiness_seconds: int
    readiness_gate: bool
    oidc_client_secret: tuple[str, str] | None = None  # (Secret name, key)
    propagation_seconds: int = PROPAGATION_SECONDS
    routes: tuple[RouteSpec, ...] = ()  # further routes (spec.loadBalancer.routes), same load balancer

    def on_route(self, index: int) -> LoadBalancerSpec:
        """This load balancer spec as route `index` of spec.loadBalancer.routes sees it (one route, no more)."""
        route = self.routes[index]
        return replace(self, listener_arn=route.listener_arn, rule=route.rule, routes=())

    @property
    def network(self) -> bool:
        """The listener is an NLB's: weights on its default action, per new connection."""
        return is_network(self.listener_arn)

    @property
    def release_seconds(self) -> float:
        """How long a side that lost its last weight keeps its pods and targets: the nodes' propagation, and
        with stickiness the whole duration of the cookies already given out (at most MAX_STICKY_SECONDS)."""
        sticky = float(self.stickiness_seconds) if self.stickiness else 0.0
        return float(self.propagation_seconds) + sticky


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
    metrics: tuple[MetricCheck, ...]
    match: tuple[Match, ...]
    alarms: tuple[str, ...]  # CloudWatch alarm names or ARNs
    no_data_tolerance: int
    bake: Bake | None

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
    alerts: tuple[Alert, ...]
    autoscaler: str | None = None  # the target's HPA (spec.autoscalerRef.name); the primary gets a copy
    termination_delay_seconds: int = TERMINATION_DELAY_SECONDS

    @classmethod
    def parse(cls, spec: Mapping[str, Any]) -> CanarySpec:
        """Re-checks what the schema checks (a Canary stored under an older schema still fails
        clearly) and what it cannot, naming the field for the condition."""
        fields = parse(CanarySpecFields, spec)
        load_balancer = _load_balancer(fields.load_balancer)
        analysis = _analysis(fields.analysis)
        _check_ab(analysis, load_balancer)
        _check_built_ins(analysis, load_balancer)
        name = fields.target_ref.name
        return cls(
            target_name=name,
            autoscaler=fields.autoscaler_ref.name if fields.autoscaler_ref else None,
            service=_service(fields.service, name),
            load_balancer=load_balancer,
            analysis=analysis,
            progress_deadline_seconds=fields.progress_deadline_seconds,
            skip_analysis=fields.skip_analysis,
            suspend=fields.suspend,
            revert_on_deletion=fields.revert_on_deletion,
            termination_delay_seconds=load_balancer.propagation_seconds
            if fields.termination_delay_seconds is None
            else fields.termination_delay_seconds,
            alerts=tuple(
                Alert(a.name or a.provider_ref.name, a.severity, a.provider_ref.name, a.provider_ref.namespace or "")
                for a in fields.alerts
            ),
        )


def _port(value: int | str, field_name: str) -> int | str:
    """A port number (digits in a string count) or a port name."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int) and 0 < value < 65536:
        return value
    if isinstance(value, str) and value:
        return value
    raise SpecError(field_name, f"{value!r} is not a port number or name")


def _service(fields: ServiceFields, default_name: str) -> ServiceSpec:
    refs: dict[str, tuple[BackendRef, ...]] = {}
    for side, entries in (("primary", fields.backend_refs.primary), ("canary", fields.backend_refs.canary)):
        if entries:
            refs[side] = tuple(
                BackendRef(e.name, _port(e.port, f"spec.service.backendRefs.{side}[{i}].port"), e.weight)
                for i, e in enumerate(entries)
            )
    groups = sum(len(refs.get(side, ())) or 1 for side in ("primary", "canary"))
    if groups > MAX_GROUPS_PER_ACTION:
        raise SpecError(
            "spec.service.backendRefs",
            f"{groups} target groups in one forward action; ALB allows at most {MAX_GROUPS_PER_ACTION}",
        )
    target_port = fields.target_port if fields.target_port is not None else fields.port
    return ServiceSpec(
        name=fields.name or default_name,
        port=fields.port,
        target_port=_port(target_port, "spec.service.targetPort"),
        headless=fields.headless,
        backend_refs=refs,
    )


def is_network(listener_arn: str) -> bool:
    """arn:...:listener/net/... (an NLB's) rather than listener/app/... (an ALB's)."""
    return ":listener/net/" in listener_arn


ALB_PROTOCOLS = ("HTTP", "HTTPS")
NLB_PROTOCOLS = ("TCP", "TLS", "UDP", "TCP_UDP")


def _load_balancer(fields: LoadBalancerFields) -> LoadBalancerSpec:
    rule = fields.rule
    tg = fields.target_group
    network = is_network(fields.listener_arn)
    where = "spec.loadBalancer"
    kind, allowed = ("an NLB", NLB_PROTOCOLS) if network else ("an ALB", ALB_PROTOCOLS)
    protocol = tg.protocol or allowed[0]
    if protocol not in allowed:
        raise SpecError(
            f"{where}.targetGroup.protocol", f"{protocol} on {kind}'s listener: use one of {', '.join(allowed)}"
        )
    routes = _routes(fields)
    check = tg.health_check.protocol or ("TCP" if network else protocol)
    if check == "TCP" and (tg.health_check.path or tg.health_check.matcher):
        raise SpecError(
            f"{where}.targetGroup.healthCheck.protocol",
            "a TCP health check has no path or matcher: set protocol HTTP or HTTPS, or drop them",
        )
    if check == "TCP" and not network:
        raise SpecError(f"{where}.targetGroup.healthCheck.protocol", "ALB health checks are HTTP or HTTPS")
    return LoadBalancerSpec(
        listener_arn=fields.listener_arn,
        rule=_rule(rule) if rule else None,
        target_type=fields.target_type,
        target_group=TargetGroupSpec(
            protocol=protocol,
            port=tg.port,
            vpc_id=tg.vpc_id,
            deregistration_delay=tg.deregistration_delay_seconds,
            health_check=tg.health_check.model_dump(by_alias=True, exclude_none=True),
        ),
        stickiness=fields.stickiness.enabled,
        stickiness_seconds=fields.stickiness.duration_seconds,
        readiness_gate=fields.readiness_gate,
        propagation_seconds=fields.propagation_seconds,
        oidc_client_secret=(fields.oidc_client_secret_ref.name, fields.oidc_client_secret_ref.key)
        if fields.oidc_client_secret_ref
        else None,
        routes=routes,
    )


def _routes(fields: LoadBalancerFields) -> tuple[RouteSpec, ...]:
    """The further routes, each checked as the first one is: on an NLB no rule; every route on the first
    one's load balancer (a target group serves one load balancer: TargetGroupAssociationLimit); no two
    alike (one listener's default action, or one priority, is one route)."""
    where = "spec.loadBalancer"
    out: list[RouteSpec] = []
    seen = {(fields.listener_arn, fields.rule.priority if fields.rule else None)}
    for i, route in enumerate([None, *fields.routes]):
        at = where if route is None else f"{where}.routes[{i - 1}]"
        listener, rule = (fields.listener_arn, fields.rule) if route is None else (route.listener_arn, route.rule)
        if is_network(listener) and rule is not None:
            raise SpecError(
                f"{at}.rule",
                "an NLB's listener rules route only by source address family: an NLB canary drives the "
                "listener's default action; drop rule",
            )
        if route is None:
            continue
        if load_balancer_arn(listener) != load_balancer_arn(fields.listener_arn):
            raise SpecError(
                f"{at}.listenerARN",
                "on another load balancer than spec.loadBalancer.listenerARN: a target group serves one load "
                "balancer (AWS refuses the rest, TargetGroupAssociationLimit), so every route of a Canary is on "
                "the first one's",
            )
        key = (listener, rule.priority if rule else None)
        if key in seen:
            raise SpecError(f"{at}", "the same route as another: one listener's default action, or one priority")
        seen.add(key)
        out.append(RouteSpec(listener, _rule(rule) if rule else None))
    return tuple(out)


def _rule(rule: RuleFields) -> RuleSpec:
    return RuleSpec(rule.priority, tuple(rule.hosts), tuple(rule.paths), rule.arn)


def _steps(fields: AnalysisFields) -> tuple[tuple[int, ...], int]:
    """The permille steps, ascending and ending at the max weight, and that max weight."""
    where = "spec.analysis"
    if fields.step_weight is not None and fields.step_weights is not None:
        raise SpecError(f"{where}.stepWeights", "set stepWeight or stepWeights, not both")
    max_weight = permille(fields.max_weight, f"{where}.maxWeight") if fields.max_weight is not None else None
    if fields.step_weights is not None:
        steps = tuple(permille(w, f"{where}.stepWeights[{i}]") for i, w in enumerate(fields.step_weights))
        if not steps or any(b <= a for a, b in zip(steps, steps[1:])):
            raise SpecError(f"{where}.stepWeights", "must be a non-empty, strictly increasing list")
        if max_weight is None:
            return steps, steps[-1]
        if steps[-1] > max_weight:
            raise SpecError(f"{where}.stepWeights", f"{steps[-1] / 10:g} is above maxWeight {max_weight / 10:g}")
        return (steps + (max_weight,) if steps[-1] < max_weight else steps), max_weight
    step = permille(STEP_WEIGHT if fields.step_weight is None else fields.step_weight, f"{where}.stepWeight")
    max_weight = max_weight or permille(MAX_WEIGHT, f"{where}.maxWeight")
    return tuple(range(step, max_weight, step)) + (max_weight,), max_weight


def _analysis(fields: AnalysisFields) -> AnalysisSpec:
    steps, max_weight = _steps(fields)
    weights_set = {"step_weight", "step_weights", "max_weight"} & fields.model_fields_set
    if fields.iterations is not None and weights_set:
        raise SpecError("spec.analysis.iterations", "iterations (weight stays 0) excludes stepWeight(s)/maxWeight")
    promotion = fields.step_weight_promotion
    bake = fields.bake
    if bake is not None and bake.weight >= 100:
        relative = [
            m.name
            for m in fields.metrics
            if m.threshold_range.max_delta is not None or m.threshold_range.max_ratio is not None
        ]
        if relative:
            raise SpecError(
                "spec.analysis.bake.weight",
                f"at 100% the primary gets no requests and ALB publishes nothing for it, so {', '.join(relative)} "
                "(relative to the primary) would roll back a healthy canary once its last datapoint ages out; "
                "bake below 100, or give those metrics an absolute min/max",
            )
    interval = parse_duration(fields.interval, "spec.analysis.interval")
    metrics = tuple(_metric(m, f"spec.analysis.metrics[{i}]") for i, m in enumerate(fields.metrics))
    return AnalysisSpec(
        interval_seconds=interval,
        threshold=fields.threshold,
        steps=steps,
        max_weight=max_weight,
        step_promotion=permille(promotion, "spec.analysis.stepWeightPromotion") if promotion else None,
        iterations=fields.iterations,
        webhooks=tuple(
            Webhook(
                h.name, h.type, h.url, parse_duration(h.timeout, f"spec.analysis.webhooks[{i}].timeout"), h.metadata
            )
            for i, h in enumerate(fields.webhooks)
        ),
        metrics=metrics,
        match=tuple(_match(m, f"spec.analysis.match[{i}]") for i, m in enumerate(fields.match)),
        alarms=tuple(a.name for a in fields.alarms),
        no_data_tolerance=fields.no_data_tolerance
        if fields.no_data_tolerance is not None
        else no_data_default(interval, [m.interval_seconds for m in metrics]),
        bake=Bake(
            permille(bake.weight, "spec.analysis.bake.weight"),
            parse_duration(bake.duration, "spec.analysis.bake.duration"),
        )
        if bake
        else None,
    )


def publication_seconds(metric_intervals: Sequence[float]) -> float:
    """How long the first period after a moment may take to show in CloudWatch (PUBLICATION_PERIODS periods
    of the longest metric; ALB's periods are whole minutes)."""
    period = max(
        [ALB_PERIOD_SECONDS, *(math.ceil(s / ALB_PERIOD_SECONDS) * ALB_PERIOD_SECONDS for s in metric_intervals)]
    )
    return float(PUBLICATION_PERIODS * period)


def no_data_default(interval: float, metric_intervals: Sequence[float]) -> int:
    """The no-data tolerance derived from the metric periods and the analysis interval: every check that
    fits in the time a period takes to show, so a healthy canary is never failed for ALB's lag."""
    if not metric_intervals:
        return NO_DATA_TOLERANCE
    return max(NO_DATA_TOLERANCE, math.ceil(publication_seconds(metric_intervals) / max(interval, 0.001)))


def _metric(fields: MetricFields, where: str) -> MetricCheck:
    name, bounds, query = fields.name, fields.threshold_range, tuple(fields.query)
    low, high, delta, ratio = bounds.min, bounds.max, bounds.max_delta, bounds.max_ratio
    if low is None and high is None and delta is None and ratio is None:
        raise SpecError(f"{where}.thresholdRange", "set min and/or max, or maxDelta/maxRatio (relative to the primary)")
    if low is not None and high is not None and low > high:
        raise SpecError(f"{where}.thresholdRange.min", f"{low:g} is above max {high:g}: no value could pass")
    relative = Relative(delta, ratio) if delta is not None or ratio is not None else None
    built_in = (*BUILT_IN, *NLB_BUILT_IN)
    if relative is not None and (name not in built_in or query):
        raise SpecError(
            f"{where}.thresholdRange",
            f"maxDelta/maxRatio (relative to the primary) are for the built-in metrics ({', '.join(built_in)})",
        )
    if name not in built_in and not query:
        raise SpecError(
            f"{where}.query",
            f"{name!r} is not built in ({', '.join(built_in)}); "
            "a custom metric needs query (CloudWatch MetricDataQueries)",
        )
    for i, q in enumerate(query):
        if not re.fullmatch(r"[a-z][a-zA-Z0-9_]*", str(q.get("Id", ""))):
            raise SpecError(f"{where}.query[{i}].Id", "must start with a lowercase letter (CloudWatch query Id)")
    lookback = parse_duration(fields.lookback, f"{where}.lookback") if fields.lookback else None
    interval = parse_duration(fields.interval, f"{where}.interval")
    return MetricCheck(name, interval, low, high, query, relative, lookback)


def _match(fields: MatchFields, where: str) -> Match:
    headers = []
    for name, rule in fields.headers.items():
        if (rule.exact is None) == (rule.wildcard is None):
            raise SpecError(f"{where}.headers.{name}", "set exactly one of exact and wildcard")
        headers.append(
            HeaderMatch(name, rule.exact if rule.exact is not None else str(rule.wildcard), rule.exact is None)
        )
    return Match(
        headers=tuple(headers),
        cookies=tuple(fields.cookies.items()),
        query=tuple(fields.query_strings.items()),
        source_ips=tuple(fields.source_ips),
    )


def _check_built_ins(analysis: AnalysisSpec, lb: LoadBalancerSpec) -> None:
    """ALB's metrics count requests and NLB's count connections: a built-in check of the other kind would
    find no data and hold every step until it failed."""
    mine, theirs = (NLB_BUILT_IN, BUILT_IN) if lb.network else (BUILT_IN, NLB_BUILT_IN)
    for i, check in enumerate(analysis.metrics):
        if check.built_in and check.name in theirs:
            raise SpecError(
                f"spec.analysis.metrics[{i}].name",
                f"{check.name} is {'an ALB' if lb.network else 'an NLB'} metric; on this listener the built-in "
                f"checks are {', '.join(mine)} (or give a query)",
            )


def _check_ab(analysis: AnalysisSpec, lb: LoadBalancerSpec) -> None:
    """A/B rules sit just above the Canary's rule, so they need one, with room below its priority."""
    if not analysis.match:
        return
    if analysis.iterations is None:
        raise SpecError("spec.analysis.match", "A/B testing runs for a number of iterations: set iterations")
    if lb.network:
        raise SpecError(
            "spec.analysis.match", "an NLB routes connections, not requests: it has no header or cookie routes"
        )
    if lb.routes:
        raise SpecError(
            "spec.analysis.match",
            "A/B routes sit above one rule: with spec.loadBalancer.routes, test the canary by weight instead",
        )
    if lb.rule is None:
        raise SpecError("spec.analysis.match", "A/B rules need loadBalancer.rule to sit above")
    for i, match in enumerate(analysis.match):  # ALB's own limits per rule: routing/alb_wire.py
        if not (match.headers or match.cookies or match.query or match.source_ips):
            raise SpecError(
                f"spec.analysis.match[{i}]", "set at least one of headers, cookies, queryStrings or sourceIPs"
            )
        if len(match.cookies) > 1:
            raise SpecError(
                f"spec.analysis.match[{i}].cookies",
                "one cookie per entry: ALB matches a cookie exactly only with two rules of anchored patterns, "
                "and two cookies ANDed would take four",
            )
    rules = sum(2 if m.cookies else 1 for m in analysis.match)  # a cookie takes two rules (alb_wire.rules)
    if lb.rule.priority <= rules:
        raise SpecError(
            "spec.loadBalancer.rule.priority",
            f"{lb.rule.priority} leaves no room for {rules} A/B rules above it",
        )


# -- status ----------------------------------------------------------------------------------------
def _described(description: str, **extra: Any) -> Any:
    return Field(description=description, json_schema_extra=extra or None)


class RouteRecord(TypedDict, total=False):
    """A route awsctl drives (routing/alb.py): enough to give it back as it was."""

    arn: str
    created: bool
    previousActions: str  # JSON
    listener: str
    priority: int | None


class RouteStatus(TypedDict, total=False):
    """One further route's record (spec.loadBalancer.routes[i]): the same fields as the first route's, which
    sit at the top of status."""

    listenerRule: RouteRecord | None
    retiringRule: RouteRecord | None
    pendingWeight: float | None
    warmup: bool
    warmupRule: str | None


class Sides(TypedDict, total=False):
    primary: list[str]
    canary: list[str]


class GroupsAt(TypedDict, total=False):
    """The load balancer the Canary's target groups serve (a target group serves one)."""

    loadBalancer: str
    key: str  # in the groups' and bindings' names once the Canary has moved ("" for the first ones)


class RetiringGroups(TypedDict, total=False):
    """The groups a move to another load balancer left behind."""

    loadBalancer: str
    arns: list[str]
    since: str | None  # when the old route was found given back; they go propagationSeconds later


class RelativeStatus(TypedDict, total=False):
    maxDelta: float
    maxRatio: float


class MetricStatus(TypedDict, total=False):
    name: str
    value: float
    min: float
    max: float
    primary: Annotated[float, _described("Relative mode: the primary's value.")]
    relative: RelativeStatus
    verdict: Literal["pass", "fail", "wait"]
    message: str


class AlarmStatus(TypedDict, total=False):
    name: str
    state: str


class CanaryStatus(TypedDict, total=False):
    """What awsctl has verified and decided: the Canary's only memory between ticks and across restarts."""

    # Also the CRD's status schema. `None` in a change removes the key (JSON merge patch).

    # the rollout (controllers/canary_reconciler.py)
    phase: Phase
    canaryWeight: Annotated[float, _described("Verified canary percent, as read back from AWS.")]
    failedChecks: int
    iterations: int
    noDataChecks: Annotated[int, _described("Consecutive checks that had no data.")]
    lastAppliedSpec: str
    lastPromotedSpec: str
    lastTransitionTime: Annotated[str, _described("When the phase last changed.", format="date-time")]
    unavailableSince: Annotated[
        str | None, _described("When the canary stopped being ready (the progress deadline counts from here).")
    ]
    analysisSince: Annotated[
        str | None,
        _described(
            "When the canary's target groups last went quiet (weight verified back at 0, A/B rules removed): "
            "metric periods that start earlier never count, for or against the revision that follows."
        ),
    ]
    stepSince: Annotated[
        str | None,
        _described(
            "When the canary's current weight (above 0) was verified in AWS: each step is judged only on metric "
            "periods that began at or after it and have since been published."
        ),
    ]
    observedGeneration: Int64
    message: str
    conditions: Conditions
    commands: Annotated[
        dict[str, str],
        _described("The awsctl.io/<verb> annotation values (awsctl promote, abort, retry) already carried out."),
    ]
    metrics: Annotated[list[MetricStatus], _described("Last value of each metric check.")]
    alarms: Annotated[list[AlarmStatus], _described("State of each analysis alarm at the last check.")]
    scaleDownAt: Annotated[
        str | None,
        _described(
            "When the canary, at weight 0 and with its A/B rules gone, scales to 0 (after "
            "loadBalancer.propagationSeconds, and the stickiness duration)."
        ),
    ]
    apexAt: Annotated[
        str | None,
        _described(
            "When your apex Service is pointed at the primary: loadBalancer.propagationSeconds after awsctl took "
            "the route over, once every load-balancer node routes by it."
        ),
    ]
    releasedAt: Annotated[
        str | None,
        _described(
            "Deletion: when the route was verified given back; the groups go loadBalancer.propagationSeconds later."
        ),
    ]
    # the groups and the user's objects (write-aheads for revertOnDeletion)
    targetGroups: Annotated[Sides, _described("Target group ARNs per side, in forward-action order.")]
    backends: Annotated[Sides, _described("Service:port per side, in forward-action order.")]
    groupsAt: Annotated[GroupsAt, _described("The load balancer the target groups serve, and their names' key.")]
    retiringGroups: Annotated[
        RetiringGroups | None,
        _described("After a move to another load balancer: the old groups, deleted once the move is verified."),
    ]
    targetReplicas: Annotated[int, _described("Replicas of your Deployment before awsctl scaled it.")]
    apexSelector: Annotated[
        dict[str, str] | None, _described("Selector of your apex Service before awsctl pointed it at the primary.")
    ]
    # the traffic provider's record (routing/alb.py)
    listenerRule: Annotated[
        RouteRecord | None, _described("The rule awsctl drives; previousActions (JSON) are restored on deletion.")
    ]
    retiringRule: Annotated[
        RouteRecord | None, _described("The route the spec named before; restored once the new one is verified.")
    ]
    abRules: Annotated[list[str], _described("A/B rules awsctl created for this analysis.")]
    pendingWeight: Annotated[
        float | None, _described("Written before a weight change (percent); adopted if AWS shows it after a crash.")
    ]
    warmup: Annotated[
        bool, _described("A warm-up rule makes AWS health-check groups the live route does not forward to yet.")
    ]
    warmupRule: Annotated[
        str | None,
        _described("The warm-up rule's ARN, so that deletion removes it even when the spec no longer parses."),
    ]
    routes: Annotated[
        list[RouteStatus] | None,
        _described("The further routes' records, in the order of spec.loadBalancer.routes."),
    ]


def schema() -> dict[str, Any]:
    return object_schema(CanarySpecFields, CanaryStatus)


def definition() -> dict[str, Any]:
    return crd(
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
