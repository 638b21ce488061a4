"""The traffic contract of a Canary: one interface, one file per provider (ALB listener rules first).

Every method is about one Canary's route. Weights are canary permille (0-1000); `sides` are the
primary and canary target groups with their relative shares. A provider never reports a weight
it has not read back.

    attach(spec, owner, sides)                  make the provider health-check every group before
                                                it carries traffic (ALB: a warm-up rule at weight 0)
    detach(spec, owner)                         drop that warm-up once the live route holds every group
    route(status) -> Route | None               the route recorded in status, if any
    moved(spec, status) -> bool                 the spec now names another route than the recorded one
    take_route(spec, tags, weights, record)     find, adopt or create the route (write-ahead via record)
    shown(route) -> Forward                     what the provider routes now (read back)
    matches(shown, spec, weights) -> bool       is that exactly what we want
    set_weight(route, spec, sides, permille, serving) -> WeightResult
                                                write the weights, read back, verified or not
    sync_ab(spec, status, tags, canary, want, record)
                                                create, repair or remove header/cookie routes
    restore(status)                             give the route back as it was found

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


def select(clients: "Clients") -> "AlbRouter":
    """The only provider today: ALB listener rules and default actions."""
    from awsctl.aws.listeners import Listeners
    from awsctl.routing.alb import AlbRouter

    return AlbRouter(Listeners(clients))
