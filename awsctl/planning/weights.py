"""Canary percent (as permille) to a weight per target group, and back.

Weights are 0..999 per group and relative (ALB's range, which the routing provider writes as is).
A side's permille is split over its groups by their relative shares with largest remainders, so
the weights sum to 1000 and a 0.5% step is the exact integer 5, never rounded away. 1000 on one
group becomes 999: the only group with weight, so the ratio is unchanged. The ALB wire format
(forward actions) is routing/alb_wire.py's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from awsctl.planning.naming import group_of

ALB_MAX_WEIGHT = 999
FULL = 1000  # permille


@dataclass(frozen=True)
class Backend:
    """One target group in the forward action, with its relative share within its side."""

    arn: str
    share: int = 1


def split(total: int, shares: Sequence[int]) -> list[int]:
    """Largest-remainder split of `total` by `shares`; deterministic (ties go to the earlier entry)."""
    whole = sum(shares)
    if not shares or whole <= 0:
        return [0] * len(shares)
    exact = [total * s / whole for s in shares]
    parts = [int(x) for x in exact]
    by_remainder = sorted(range(len(shares)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in by_remainder[: total - sum(parts)]:
        parts[i] += 1
    return parts


def target_weights(primary: Sequence[Backend], canary: Sequence[Backend], canary_permille: int) -> dict[str, int]:
    canary_permille = max(0, min(FULL, canary_permille))
    weights: dict[str, int] = {}
    for side, total in ((primary, FULL - canary_permille), (canary, canary_permille)):
        for backend, weight in zip(side, split(total, [b.share for b in side])):
            weights[backend.arn] = min(weight, ALB_MAX_WEIGHT)
    return weights


def describe(weights: Mapping[str, int]) -> str:
    """`name=weight, ...` with target group names, for events and logs; `no forward action` when empty."""
    if not weights:
        return "no forward action"
    return ", ".join(f"{group_of(arn)}={v}" for arn, v in weights.items())


def canary_share(weights: Mapping[str, int], canary_arns: Iterable[str]) -> int | None:
    """Canary permille as AWS routes it; None when nothing has weight (the action sends no traffic)."""
    total = sum(weights.values())
    if total <= 0:
        return None
    return round(FULL * sum(weights.get(a, 0) for a in canary_arns) / total)


def unserved(weights: Mapping[str, int], healthy: Mapping[str, int]) -> list[str]:
    """Groups that would get traffic with no healthy target behind them (invariant 5)."""
    return [arn for arn, w in weights.items() if w > 0 and healthy.get(arn, 0) <= 0]


def raised(before: Mapping[str, int] | None, after: Mapping[str, int]) -> list[str]:
    """Groups whose weight goes up (every group above 0 when `before` is unknown): their health must be
    read from AWS for the write, not taken from a count that can be minutes old."""
    return [arn for arn, weight in after.items() if weight > (before or {}).get(arn, 0)]


def next_step(current: int, steps: Sequence[int]) -> int:
    return next((s for s in steps if s > current), steps[-1] if steps else current)


def promotion_step(current: int, step: int | None) -> int:
    """Traffic back to the primary: at once, or `stepWeightPromotion` at a time."""
    return 0 if not step else max(0, current - step)


def percent(permille: int) -> float:
    return permille / 10


def from_percent(value: float | int | None) -> int:
    """Back from a percent written to status (always 0.1-aligned: it came from `percent`)."""
    return round(float(value or 0) * 10)
