"""NLB provider of the traffic contract (awsctl/routing/__init__.py): a Network Load Balancer listener's
default action, a weighted forward (weights 0-999, TCP, TLS, UDP and TCP_UDP listeners; no stickiness on
TLS), as AWS released it in November 2025.

What differs from ALB (routing/alb.py, whose read-back, write-ahead, trust and restore this reuses):
- **The listener is the route.** An NLB's listener rules match only the source address family, so a
  Canary drives the default action; the spec refuses `rule` and `analysis.match` (api/canary.py).
- **Warm-up without a rule.** A group is health-checked once a listener forwards to it, whatever its
  weight, so the groups are put into the listener's own forward at weight 0, beside the groups it
  forwards to (which keep their weights), until the route is taken; at weight 0 a group gets no new
  connection. What was there before awsctl is what the route goes back to: the warm-up's own groups
  are not part of it.
- **Only new connections follow the weights.** NLB routes a flow once, when it opens; a connection
  opened before a change stays on its target until it closes or the target's deregistration delay
  ends. The analysis judges the new connections (`connection-success-rate`, AWS/NetworkELB), and a
  side that lost its weight keeps its pods for `loadBalancer.propagationSeconds` plus the group's
  deregistration delay before they go (the termination gap, planning/objects.py), which is when AWS
  closes what is still open on them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from awsctl.api.canary import CanarySpec, RouteRecord
from awsctl.aws.listeners import Route
from awsctl.controllers.errors import NotReady
from awsctl.planning import weights as w
from awsctl.routing import Ledger, RouteGone
from awsctl.routing import alb_wire as wire
from awsctl.routing.alb import WARMUP_ROLE, AlbRouter, route_identity

FIELD = "spec.loadBalancer.listenerARN"


def with_weights(actions: Sequence[Mapping[str, Any]], weights: Mapping[str, int]) -> list[dict[str, Any]]:
    """The listener's actions with its forward at `weights`, the forward's stickiness kept."""
    _, sticky = wire.forward_of(actions)
    forward = wire.forward_action(weights, sticky[1] if sticky[0] else None)
    return [forward if a.get("Type") == "forward" else dict(a) for a in actions] or [forward]


class NlbRouter(AlbRouter):
    @staticmethod
    def check(spec: CanarySpec) -> None:
        """The spec parser refuses a rule and A/B routes on an NLB; nothing else to check before AWS."""

    def _may_write(self, listener: str, sticky: bool) -> None:
        """Before the first write on a listener: neither it nor its load balancer is the LBC's, and a TLS
        listener takes no stickiness (AWS refuses it on a weighted forward there)."""
        self._not_on_lbc_listener(listener)
        if sticky and self.listeners.protocol(listener) == "TLS":
            raise NotReady(
                "UnsupportedStickiness",
                "spec.loadBalancer.stickiness: an NLB's TLS listener takes no target group stickiness on a "
                "weighted forward; turn it off",
                "spec.loadBalancer.stickiness.enabled",
            )

    # -- warm-up: the groups in the listener's forward at weight 0 ------------------------------------------
    def warm_up(
        self, spec: CanarySpec, ledger: Ledger, weights: Mapping[str, int], shown: Mapping[str, int] | None
    ) -> bool:
        """Until the route carries every group, the groups it lacks sit in the listener's forward at
        weight 0: AWS health-checks them, and sends them no connection. Returns whether AWS changed."""
        status = ledger.status()
        if shown is not None and set(weights) <= set(shown):
            if status.get("warmup"):
                ledger.record({"warmup": False, "warmupRule": None})
            return False
        left = status.get("warmupRule")
        if left and left != spec.load_balancer.listener_arn:  # the spec moved to another listener
            self._unwarm(ledger, left)
            ledger.record({"warmupRule": None})
        arn, changed = self.attach(spec, ledger.uid, weights, ledger.tags(WARMUP_ROLE))
        if not status.get("warmup") or status.get("warmupRule") != arn:
            ledger.record({"warmup": True, "warmupRule": arn})
        return changed

    def attach(
        self,
        spec: CanarySpec,
        uid: str,
        weights: Mapping[str, int],
        tags: Mapping[str, str],
        listener: str | None = None,
    ) -> tuple[str, bool]:
        """Puts the groups of `weights` the listener's forward lacks into it at weight 0; returns the
        listener's ARN and whether AWS changed. Looks at the listener's snapshot first, unless the listener
        is given (a deletion: read afresh)."""
        fresh = listener is not None
        listener = listener or spec.load_balancer.listener_arn
        route = Route(listener, True)
        seen = (
            self.listeners.actions(route)
            if fresh
            else self.listeners.recent_actions(route, spec.analysis.interval_seconds)
        )
        if set(weights) <= set(wire.weights_of(seen)):
            return listener, False
        self._may_write(listener, spec.load_balancer.stickiness)
        actions = self.listeners.actions(route)  # about to write: AWS's word, never a snapshot's
        self._not_driven_by_another(actions, tags, "the listener's default action", FIELD)
        current = wire.weights_of(actions)
        self.listeners.set_actions(
            route, with_weights(actions, {**current, **{g: 0 for g in weights if g not in current}})
        )
        return listener, True

    def _unwarm(self, ledger: Ledger, listener: str) -> None:
        """Takes out of the listener's forward the groups at weight 0 that AWS tags as this Canary's (the
        warm-up's), whatever the spec says now."""
        route = Route(listener, True)
        try:
            actions = self.listeners.actions(route)
        except RouteGone:  # a listener gone has nothing of ours to take out
            return
        current = wire.weights_of(actions)
        idle = [g for g, weight in current.items() if weight == 0]
        ours = self._vouched(ledger, idle)
        keep = {g: weight for g, weight in current.items() if g not in ours}
        if len(keep) < len(current) and keep:
            self.listeners.set_actions(route, with_weights(actions, keep))

    # -- the route -----------------------------------------------------------------------------------------
    def take_route(
        self,
        spec: CanarySpec,
        tags: Mapping[str, str],
        weights: Mapping[str, int],
        record: Callable[[RouteRecord], object],
    ) -> Route:
        """The listener's default action, recorded (write-ahead) as it was before the warm-up put the
        Canary's groups in it at weight 0: that is what a deletion gives back."""
        lb = spec.load_balancer
        self._may_write(lb.listener_arn, lb.stickiness)
        actions = self.listeners.actions(Route(lb.listener_arn, True))
        self._not_driven_by_another(actions, tags, "the listener's default action", FIELD)
        current = wire.weights_of(actions)
        before = {g: weight for g, weight in current.items() if not (g in weights and weight == 0)}
        previous = with_weights(actions, before) if before else list(actions)
        record(
            {
                "arn": lb.listener_arn,
                "created": False,
                "previousActions": json.dumps(previous),
                **route_identity(spec),
            }
        )
        return Route(lb.listener_arn, True)

    # -- A/B: none on an NLB -------------------------------------------------------------------------------
    def sync_ab(
        self,
        spec: CanarySpec,
        ledger: Ledger,
        canary: Sequence[w.Backend],
        want: bool,
        client_secret: Callable[[], str | None] = lambda: None,
    ) -> bool:
        """An NLB has no header or cookie routes (the spec refuses them); whatever status names goes."""
        self._drop_ab(ledger)
        return False

    # -- deletion ------------------------------------------------------------------------------------------
    def release(
        self,
        spec: CanarySpec | None,
        ledger: Ledger,
        primary: Sequence[w.Backend],
        canary: Sequence[w.Backend],
        serving: Callable[[list[str]], Mapping[str, int]],
        restorable: Callable[[list[str]], str | None] | None = None,
    ) -> str | None:
        """As ALB's, and a warm-up that never became the route leaves the listener's forward: the
        Canary's groups at weight 0 come out of it, so that they can be deleted."""
        status = ledger.status()
        if self.recorded_route(status) is None and status.get("warmupRule"):
            self._unwarm(ledger, status["warmupRule"])
        return super().release(spec, ledger, primary, canary, serving, restorable)

    def detach(self, *listeners: str, uid: str, recorded: str | None = None) -> bool:
        """No warm-up rule to delete on an NLB: `release` took the warm-up's groups out already."""
        return bool(recorded)
