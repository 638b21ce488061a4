"""TrafficGrant: what the cluster admin lets the Canaries and bindings of some namespaces reach in AWS.

awsctl's IAM role can rewire every load balancer it reaches; whoever may create a Canary or a
TargetGroupBinding must not steer all of that. A TrafficGrant is cluster-scoped (only the cluster admin
writes it, as with the LBC's IngressClassParams) and selects namespaces by name or label selector (as
Gateway API's `allowedRoutes.namespaces` and IngressClassParams' `namespaceSelector` do). For those
namespaces it grants:

- `listeners`: listener ARNs (glob patterns, `*` for any);
- `rulePriorities`: the rule priority ranges a Canary's rule, and its A/B rules just below it, may take;
- `defaultAction`: whether a Canary may take a granted listener's default action (every request no rule
  matches, so never by default);
- `targetGroups`: existing target groups (ARN or name patterns) a binding that names one may fill;
- `alarms`: CloudWatch alarm name patterns a Canary's analysis may read;
- `metricNamespaces`: CloudWatch namespaces a Canary's custom queries may read (`SEARCH()` and `SELECT`
  expressions read any namespace, so they need `*`);
- `alertProviders`: `namespace/name` patterns of other namespaces' AlertProviders a Canary may use
  (its own namespace's are always allowed).

Grants add up: a namespace may do what any grant that selects it allows. Without one, its Canaries and
bindings are refused (Ready=False, reason NotGranted, naming what is missing) and make no AWS write. One
grant with `namespaces: {selector: {}}` and `*` everywhere serves a single-team cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from awsctl.api.schema import Model, SpecError, cel, crd, object_schema, parse

KIND = "TrafficGrant"
PLURAL = "trafficgrants"
SHORT_NAMES = ["tgrant"]


class LabelRequirementFields(Model):
    key: str = Field(min_length=1)
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] = Field(default_factory=list)


class SelectorFields(Model):
    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: list[LabelRequirementFields] = Field(default_factory=list)


class NamespacesFields(Model):
    model_config = cel(
        (
            "has(self.names) || has(self.selector)",
            "set names or selector (selector: {} selects every namespace)",
        )
    )
    names: list[str] | None = Field(None, description="Namespaces by name.")
    selector: SelectorFields | None = Field(
        None, description="Namespaces by label (a Kubernetes label selector; {} selects every namespace)."
    )


class PriorityRangeFields(Model):
    model_config = cel(("self.from <= self.to", "from must not be above to"))
    start: int = Field(alias="from", ge=1, le=50000)
    end: int = Field(alias="to", ge=1, le=50000)


class TrafficGrantFields(Model):
    namespaces: NamespacesFields
    listeners: list[str] = Field(default_factory=list, description="Listener ARN patterns (* for any).")
    rule_priorities: list[PriorityRangeFields] = Field(
        default_factory=list, description="Rule priority ranges, inclusive (A/B rules sit just below the rule)."
    )
    default_action: bool = Field(False, description="May take over a granted listener's default action.")
    target_groups: list[str] = Field(
        default_factory=list, description="Existing target groups (ARN or name patterns) a binding may fill."
    )
    alarms: list[str] = Field(default_factory=list, description="CloudWatch alarm name patterns.")
    metric_namespaces: list[str] = Field(
        default_factory=list, description="CloudWatch namespaces custom metric queries may read (* for any)."
    )
    alert_providers: list[str] = Field(
        default_factory=list, description="namespace/name patterns of other namespaces' AlertProviders."
    )


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Grant:
    name: str
    names: tuple[str, ...] | None  # None: not selected by name
    match_labels: tuple[tuple[str, str], ...] | None  # None: no selector
    match_expressions: tuple[Requirement, ...] = ()
    listeners: tuple[str, ...] = ()
    priorities: tuple[tuple[int, int], ...] = ()
    default_action: bool = False
    target_groups: tuple[str, ...] = ()
    alarms: tuple[str, ...] = ()
    metric_namespaces: tuple[str, ...] = ()
    alert_providers: tuple[str, ...] = ()

    @classmethod
    def parse(cls, name: str, spec: Mapping[str, Any]) -> Grant:
        f = parse(TrafficGrantFields, spec)
        if f.namespaces.names is None and f.namespaces.selector is None:
            raise SpecError("spec.namespaces", "set names or selector (selector: {} selects every namespace)")
        for i, r in enumerate(f.rule_priorities):
            if r.start > r.end:
                raise SpecError(f"spec.rulePriorities[{i}]", f"from {r.start} is above to {r.end}")
        selector = f.namespaces.selector
        return cls(
            name=name,
            names=tuple(f.namespaces.names) if f.namespaces.names is not None else None,
            match_labels=tuple(sorted(selector.match_labels.items())) if selector is not None else None,
            match_expressions=tuple(
                Requirement(r.key, r.operator, tuple(r.values))
                for r in (selector.match_expressions if selector else ())
            ),
            listeners=tuple(f.listeners),
            priorities=tuple((r.start, r.end) for r in f.rule_priorities),
            default_action=f.default_action,
            target_groups=tuple(f.target_groups),
            alarms=tuple(f.alarms),
            metric_namespaces=tuple(f.metric_namespaces),
            alert_providers=tuple(f.alert_providers),
        )


def definition() -> dict[str, Any]:
    """Cluster-scoped, without status: only the cluster admin writes it, and awsctl only reads it."""
    return crd(
        kind=KIND,
        plural=PLURAL,
        short_names=SHORT_NAMES,
        schema=object_schema(TrafficGrantFields, None),
        columns=[
            {"name": "Listeners", "type": "string", "jsonPath": ".spec.listeners"},
            {"name": "Priorities", "type": "string", "jsonPath": ".spec.rulePriorities"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
        status=False,
        scope="Cluster",
    )


def everything(*, names: list[str] | None = None, unless_label: str | None = None) -> dict[str, Any]:
    """A grant's spec that allows everything, for a single-team cluster (and `awsctl dev`, the demo and
    the tests): to the namespaces `names`, or to every namespace (but those labelled `unless_label`)."""
    if names is not None:
        namespaces: dict[str, Any] = {"names": names}
    elif unless_label:
        namespaces = {"selector": {"matchExpressions": [{"key": unless_label, "operator": "DoesNotExist"}]}}
    else:
        namespaces = {"selector": {}}
    return {
        "namespaces": namespaces,
        "listeners": ["*"],
        "rulePriorities": [{"from": 1, "to": 50000}],
        "defaultAction": True,
        "targetGroups": ["*"],
        "alarms": ["*"],
        "metricNamespaces": ["*"],
        "alertProviders": ["*"],
    }
