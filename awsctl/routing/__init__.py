"""The traffic contract of a Canary: one interface, one file per provider (ALB listener rules first).

Every method is about one Canary's route. Weights are canary permille (0-1000); `primary` and
`canary` are a side's target groups with their relative shares; `serving` is, per group, the healthy
targets among those its bindings want. A provider never reports a weight it has not read back.

    attach(spec, uid, weights, tags) -> (id, changed)
                                                make the provider health-check every group before it
                                                carries traffic (ALB: a warm-up rule at weight 0)
    detach(spec, uid)                           drop that once the live route holds every group
    route(status) -> Route | None               the route recorded in status, if any
    moved(spec, status) -> bool                 the spec now names another route than the recorded one
    take_route(spec, tags, weights, record)     find, adopt or create the route (write-ahead via record)
    shown(route, max_age=None) -> (weights, stickiness)
                                                what the provider routes now (read back); with
                                                max_age, a routine look that may be shared that old
    matches(shown, spec, weights) -> bool       is that exactly what is wanted
    set_weight(route, spec, primary, canary, permille, serving, owned_route) -> WeightResult
                                                refuse traffic into the void, write, read back, verify
    sync_conditions(spec, status)               hosts/paths of a route awsctl created follow the spec
    sync_ab(spec, status, tags, canary, want, record)
                                                create, repair or remove the header/cookie routes
    restore(status, rule=None)                  give a route back as it was found (or delete ours)

`select()` picks the provider; adding one means a new file here, a branch in `select`, and the
CRD field that names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from awsctl.aws.clients import Clients
    from awsctl.routing.alb import AlbRouter


@dataclass(frozen=True)
class WeightResult:
    verified: bool
    shown: int | None  # canary permille the provider routes now
    message: str


def select(clients: Clients) -> AlbRouter:
    """The only provider today: ALB listener rules and default actions."""
    from awsctl.aws.listeners import Listeners
    from awsctl.routing.alb import AlbRouter

    return AlbRouter(Listeners(clients))
