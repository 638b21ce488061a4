"""TargetGroupBinding: keeps one target group's targets equal to one Service's ready endpoints."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field
from typing_extensions import TypedDict  # pydantic reads typing's TypedDict only from 3.12

from awsctl.api.schema import Conditions, Int64, IntOrString, Model, SpecError, crd, object_schema, parse

__all__ = ["BindingSpec", "BindingStatus", "SpecError", "definition", "schema"]

KIND = "TargetGroupBinding"
PLURAL = "targetgroupbindings"
SHORT_NAMES = ["tgb"]


class ServiceRefFields(Model):
    name: str = Field(min_length=1, max_length=63)
    port: IntOrString = Field(description="Service port number or name (not the targetPort).")


class BindingSpecFields(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.targetGroupARN) != has(self.targetGroupName)",
                    "message": "set exactly one of targetGroupARN and targetGroupName",
                }
            ]
        }
    )
    service_ref: ServiceRefFields
    target_group_arn: str | None = Field(
        None,
        alias="targetGroupARN",
        pattern="^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:targetgroup/.+",
    )
    target_group_name: str | None = Field(None, min_length=1, max_length=32)
    target_type: Literal["ip", "instance"] | None = Field(
        None, description="Forced to ip for headless Services; instance on a headless Service is refused."
    )


@dataclass(frozen=True)
class BindingSpec:
    service_name: str
    service_port: int | str
    target_group_arn: str | None
    target_group_name: str | None
    target_type: str | None

    @property
    def target_group_ref(self) -> str:
        return self.target_group_arn or self.target_group_name or ""

    @classmethod
    def parse(cls, spec: Mapping[str, Any]) -> BindingSpec:
        """Re-checks what the schema checks, so a binding written before a schema change still fails clearly."""
        fields = parse(BindingSpecFields, spec)
        port = fields.service_ref.port
        if isinstance(port, str) and port.isdigit():
            port = int(port)
        if port == "":
            raise SpecError("spec.serviceRef.port", "is required (a Service port number or name)")
        arn, tg_name = fields.target_group_arn, fields.target_group_name
        if bool(arn) == bool(tg_name):
            raise SpecError("spec.targetGroupARN", "set exactly one of targetGroupARN and targetGroupName")
        return cls(fields.service_ref.name, port, arn, tg_name, fields.target_type)


class BindingStatus(TypedDict, total=False):
    """What awsctl registered in the target group, and what AWS shows of it."""

    # Written by controllers/binding_reconciler.py; also the CRD's status schema.

    observedGeneration: Int64
    targetType: str
    targetGroupARN: str
    desiredTargets: Annotated[int, Field(description="Endpoints the binding wants registered (ready or gated).")]
    registeredTargets: int
    healthyTargets: Annotated[int, Field(description="Desired targets that AWS shows healthy.")]
    unroutableTargets: Annotated[
        int,
        Field(
            description="Desired targets AWS will never check or route to, while the group is in use: in a zone the "
            "load balancer does not enable (Target.NotInUse), Target.IpUnusable or Target.InvalidState. "
            "They do not count against readiness; the Routable condition names them."
        ),
    ]
    targetHealth: Annotated[
        dict[str, int], Field(description="Desired targets by the state AWS shows (unused, initial, healthy, ...).")
    ]
    managedTargets: Annotated[
        list[str],
        Field(description="id:port of every target this binding registered; only these are ever deregistered."),
    ]
    conditions: Conditions


def schema() -> dict[str, Any]:
    return object_schema(BindingSpecFields, BindingStatus)


def definition() -> dict[str, Any]:
    return crd(
        kind=KIND,
        plural=PLURAL,
        short_names=SHORT_NAMES,
        schema=schema(),
        columns=[
            {"name": "Service", "type": "string", "jsonPath": ".spec.serviceRef.name"},
            {"name": "Type", "type": "string", "jsonPath": ".status.targetType"},
            {"name": "Desired", "type": "integer", "jsonPath": ".status.desiredTargets"},
            {"name": "Registered", "type": "integer", "jsonPath": ".status.registeredTargets"},
            {"name": "Healthy", "type": "integer", "jsonPath": ".status.healthyTargets"},
            {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Ready')].status"},
            {
                "name": "Reason",
                "type": "string",
                "priority": 1,
                "jsonPath": ".status.conditions[?(@.type=='Ready')].reason",
            },
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    )
