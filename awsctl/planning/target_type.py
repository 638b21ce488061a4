"""Which target type a binding uses, or why it cannot work at all."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TARGET_TYPE_ANNOTATION = "alb.ingress.kubernetes.io/target-type"
VALID_TYPES = ("ip", "instance")


@dataclass(frozen=True)
class TargetTypeDecision:
    target_type: str | None
    reason: str = ""
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.target_type is not None


def is_headless(service: Mapping[str, Any]) -> bool:
    return (service.get("spec") or {}).get("clusterIP") == "None"


def decide_target_type(
    service: Mapping[str, Any], requested: str | None, target_group_type: str | None
) -> TargetTypeDecision:
    """Headless forces ip (no NodePort exists); then spec, then the Service annotation, then the group."""
    annotation = ((service.get("metadata") or {}).get("annotations") or {}).get(TARGET_TYPE_ANNOTATION)
    if is_headless(service):
        if requested == "instance":
            return TargetTypeDecision(
                None,
                "InstanceModeOnHeadlessService",
                "spec.targetType is instance, but the Service is headless (clusterIP: None): "
                "instance mode sends traffic to a NodePort, which a headless Service cannot have. "
                "Use targetType: ip (pod IPs are registered directly).",
            )
        return TargetTypeDecision("ip")
    choice = requested or annotation or (target_group_type or "").lower() or None
    if choice not in VALID_TYPES:
        source = (
            "spec.targetType"
            if requested
            else (f"annotation {TARGET_TYPE_ANNOTATION}" if annotation else "the target group's TargetType")
        )
        return TargetTypeDecision(None, "UnsupportedTargetType", f"{source} is {choice!r}; supported: ip, instance")
    if target_group_type and choice != target_group_type.lower():
        return TargetTypeDecision(
            None,
            "TargetTypeMismatch",
            f"target type {choice!r} was asked for, but the target group's TargetType is "
            f"{target_group_type!r}; AWS cannot change it in place",
        )
    return TargetTypeDecision(choice)
