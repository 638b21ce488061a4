"""Pod readiness gates, as the LBC has them: a pod behind a bound Service is Ready only once AWS
shows its target healthy, so a rolling update cannot take old pods away before new ones serve."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from awsctl.planning.naming import readiness_gate

NAMESPACE_LABEL = "awsctl.io/readiness-gate-injection"  # = "enabled" opts a namespace in


def selector_matches(selector: Mapping[str, str] | None, labels: Mapping[str, str] | None) -> bool:
    """Service selectors are plain equality maps; an empty selector selects no pods."""
    if not selector:
        return False
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


def readiness_gates(
    labels: Mapping[str, str] | None,
    services: Iterable[tuple[str, Mapping[str, str]]],
    bindings_of: Callable[[str], Iterable[str]],
    existing: Sequence[Mapping[str, Any]] | None,
) -> list[dict[str, Any]] | None:
    """The pod's readinessGates with one gate per binding whose Service selects it; None when
    nothing is missing (the pod is left untouched)."""
    wanted = sorted(
        {
            readiness_gate(b)
            for service, selector in services
            if selector_matches(selector, labels)
            for b in bindings_of(service)
        }
    )
    have = {g.get("conditionType") for g in existing or ()}
    missing = [g for g in wanted if g not in have]
    if not missing:
        return None
    return [*(dict(g) for g in existing or ()), *({"conditionType": g} for g in missing)]
