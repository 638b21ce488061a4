"""TargetGroupBinding: keeps one target group's targets equal to one Service's ready endpoints."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from awsctl.api import GROUP, VERSION
from awsctl.api.schema import SpecError, condition_schema, crd

__all__ = ["BindingSpec", "SpecError", "definition", "schema"]

KIND = "TargetGroupBinding"
PLURAL = "targetgroupbindings"
SHORT_NAMES = ["tgb"]


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
        ref = spec.get("serviceRef") or {}
        name = ref.get("name")
        if not name:
            raise SpecError("spec.serviceRef.name", "is required")
        port = ref.get("port")
        if port is None or port == "":
            raise SpecError("spec.serviceRef.port", "is required (a Service port number or name)")
        if isinstance(port, str) and port.isdigit():
            port = int(port)
        arn, tg_name = spec.get("targetGroupARN"), spec.get("targetGroupName")
        if bool(arn) == bool(tg_name):
            raise SpecError("spec.targetGroupARN", "set exactly one of targetGroupARN and targetGroupName")
        target_type = spec.get("targetType")
        if target_type not in (None, "ip", "instance"):
            raise SpecError("spec.targetType", f"must be ip or instance, not {target_type!r}")
        return cls(name, port, arn, tg_name, target_type)


def schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "spec": {
                "type": "object",
                "required": ["serviceRef"],
                "x-kubernetes-validations": [
                    {
                        "rule": "has(self.targetGroupARN) != has(self.targetGroupName)",
                        "message": "set exactly one of targetGroupARN and targetGroupName",
                    }
                ],
                "properties": {
                    "serviceRef": {
                        "type": "object",
                        "required": ["name", "port"],
                        "properties": {
                            "name": {"type": "string", "minLength": 1, "maxLength": 63},
                            "port": {
                                "x-kubernetes-int-or-string": True,
                                "description": "Service port number or name (not the targetPort).",
                            },
                        },
                    },
                    "targetGroupARN": {
                        "type": "string",
                        "pattern": "^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:targetgroup/.+",
                    },
                    "targetGroupName": {"type": "string", "minLength": 1, "maxLength": 32},
                    "targetType": {
                        "type": "string",
                        "enum": ["ip", "instance"],
                        "description": "Forced to ip for headless Services; instance on a headless Service is refused.",
                    },
                },
            },
            "status": {
                "type": "object",
                "properties": {
                    "observedGeneration": {"type": "integer", "format": "int64"},
                    "targetType": {"type": "string"},
                    "targetGroupARN": {"type": "string"},
                    "desiredTargets": {
                        "type": "integer",
                        "description": "Endpoints the binding wants registered (ready or gated).",
                    },
                    "registeredTargets": {"type": "integer"},
                    "healthyTargets": {"type": "integer", "description": "Desired targets that AWS shows healthy."},
                    "targetHealth": {
                        "type": "object",
                        "additionalProperties": {"type": "integer"},
                        "description": "Desired targets by the state AWS shows (unused, initial, healthy, ...).",
                    },
                    "managedTargets": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "id:port of every target this binding registered; only these are ever deregistered.",
                    },
                    "conditions": condition_schema(),
                },
            },
        },
    }


def definition() -> dict[str, Any]:
    return crd(
        group=GROUP,
        version=VERSION,
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
