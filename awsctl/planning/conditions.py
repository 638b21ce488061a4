"""Kubernetes-style status conditions, merged so that lastTransitionTime only moves on a real change."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, cast

from awsctl.api.schema import Condition


def set_condition(
    conditions: Sequence[Mapping[str, Any]] | None,
    *,
    type: str,
    status: bool,
    reason: str,
    message: str,
    now: str,
    generation: int | None,
) -> list[Condition]:
    status_text: Literal["True", "False"] = "True" if status else "False"
    merged: list[Condition] = []
    found = False
    for cond in conditions or ():
        if cond.get("type") != type:
            merged.append(cast(Condition, dict(cond)))
            continue
        found = True
        moved = cond.get("status") != status_text
        merged.append(
            {
                "type": type,
                "status": status_text,
                "reason": reason,
                "message": message,
                "lastTransitionTime": now if moved else cond.get("lastTransitionTime", now),
                "observedGeneration": generation,
            }
        )
    if not found:
        merged.append(
            {
                "type": type,
                "status": status_text,
                "reason": reason,
                "message": message,
                "lastTransitionTime": now,
                "observedGeneration": generation,
            }
        )
    return merged


def refused(
    conditions: Sequence[Mapping[str, Any]] | None, *, reason: str, message: str, now: str, generation: int | None
) -> tuple[list[Condition], bool]:
    """Ready=False for bad or missing input, and whether it is news (a new reason or message), so the
    shell posts one event per refusal rather than one per resync."""
    previous = find_condition(conditions, "Ready") or {}
    news = previous.get("reason") != reason or previous.get("message") != message
    return set_condition(
        conditions, type="Ready", status=False, reason=reason, message=message, now=now, generation=generation
    ), news


def flagged(
    conditions: Sequence[Mapping[str, Any]] | None,
    *,
    type: str,
    problem: tuple[str, str] | None,
    fine: tuple[str, str],
    now: str,
    generation: int | None,
) -> tuple[list[Condition], bool]:
    """A condition that is True while all is `fine` and False with a `problem` (reason, message), and
    whether the problem is news: it was not there, or its reason changed. A message that only updates a
    figure (a count each period) is no news, so the shell warns once per problem, not once per period."""
    previous = find_condition(conditions, type) or {}
    reason, message = problem or fine
    news = problem is not None and (previous.get("status") != "False" or previous.get("reason") != reason)
    return set_condition(
        conditions, type=type, status=problem is None, reason=reason, message=message, now=now, generation=generation
    ), news


def find_condition(conditions: Sequence[Mapping[str, Any]] | None, type: str) -> Mapping[str, Any] | None:
    return next((c for c in conditions or () if c.get("type") == type), None)


def is_true(conditions: Sequence[Mapping[str, Any]] | None, type: str) -> bool:
    """The condition of this type is there and says True (a Node's or a binding's Ready)."""
    return (find_condition(conditions, type) or {}).get("status") == "True"
