"""Deleting a Canary: when the route may go back to the target groups it forwarded to before awsctl.

The route is restored onto groups only once they can serve (invariant 9: AWS never shows weight on
a group without healthy targets, and deletion is no exception). With revertOnDeletion the user's
Deployment is back and the apex Service selects it again, so the user's own group (filled from that
Service) is swapping the primary's pods for the user's: it is ready once the user's pods are healthy
there and the primary's are gone (draining or deregistered), so that the primary can stop without a
request reaching it. Waiting is bounded by the progress deadline: after it, the route goes back as it
was, with a warning.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from awsctl.planning import naming

PENDING = ("initial", "unused")  # registered, not health-checked to a verdict yet
SERVING = ("healthy", "unavailable")  # unavailable: health checks off (a Lambda group), traffic goes


@dataclass(frozen=True)
class GiveBack:
    go: bool
    message: str = ""
    overdue: bool = False  # the deadline passed with the groups not ready: a warning


def give_back(
    groups: Mapping[str, Sequence[tuple[str, str]]],
    leaving: Collection[str],
    reverted: bool,
    waited: float,
    deadline: float,
) -> GiveBack:
    """`groups`: each group the restored route forwards to with weight, and its targets as (target id,
    state) as AWS shows them. `leaving`: the target ids of the primary's pods, which are stopping.
    `reverted`: the user's Deployment was restored, so its pods are coming to these groups."""
    waits = []
    for arn, targets in groups.items():
        live = [(ident, state) for ident, state in targets if state != "draining"]
        theirs = [state for ident, state in live if ident not in leaving]
        ours = len(live) - len(theirs)
        pending = sum(state in PENDING for state in theirs)
        name = naming.group_of(arn)
        if pending:
            waits.append(f"{name} has {pending} target(s) not health-checked yet")
        elif reverted and not any(state in SERVING for state in theirs):
            waits.append(f"{name} has no healthy target of your Deployment yet")
        elif reverted and ours:
            waits.append(f"{name} still forwards to {ours} of the primary's pods")
    if not waits:
        return GiveBack(True)
    said = "; ".join(waits)
    if waited >= deadline:
        return GiveBack(True, f"route given back after {deadline:g}s although {said}", overdue=True)
    return GiveBack(False, f"waiting to give the route back: {said}")


def settling(released_at: float | None, now: float, seconds: float) -> str | None:
    """After the route is verified given back, the groups it no longer forwards to keep their targets (and
    the primary its pods) for `seconds`, while the load balancer's nodes still route by the old rules
    (invariant 17). None once that is over; else why the deletion waits. `released_at` None: just given
    back (the caller records now)."""
    left = seconds - (now - (now if released_at is None else released_at))
    if left <= 0:
        return None
    return f"waiting {left:.0f}s more for the load balancer's nodes to apply the route change before the groups go"
