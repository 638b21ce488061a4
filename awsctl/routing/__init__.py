"""The traffic contract of a Canary: one interface, one file per provider (ALB listener rules first).

Every method is about one Canary's route. A side is a list of target groups with their relative
shares (planning/weights.py's Backend) and weights are canary permille (0-1000); `serving` is, per
group, the healthy targets among those its bindings want. A provider keeps its own record in the
Canary's status through a `Ledger`, and never reports a weight it has not read back.

    check(spec)                  refuse, naming the field, what the provider cannot route
    refusal(spec, err)           what a RouteGone means for the spec (e.g. its listener does not exist)
    vpc_of(spec)                 where the load balancer is: new target groups go there
    warm_up(spec, uid, ledger, weights, tags, shown) -> bool
                                 until the live route forwards to every group, have them health-checked
                                 anyway (ALB: a rule at weight 0 no request matches); True: just attached
    hold(spec, ledger, primary, canary, permille, spec_changed) -> Held
                                 read the live route back: follow a spec that names another route,
                                 adopt our own write from before a restart, report drift
    set_weight(spec, ledger, primary, canary, permille, serving, may_take, tags, write_ahead)
                                 take the route if none is recorded (once may_take), refuse traffic into
                                 the void, write, read back, verify -> WeightResult (None: no route yet)
    back_to_primary(ledger, primary, canary, serving) -> WeightResult | None
                                 every canary group to 0 on the recorded route, verified, without the
                                 spec (a refused tick must not freeze traffic); None: no route
    settled(ledger) -> changes   status changes once the step's weight is recorded
    sync_ab(spec, ledger, tags, canary, want, client_secret) -> bool
                                 create, repair or remove the header/cookie routes (True: changed),
                                 behind the route's own authentication (client_secret: its OIDC one)
    ab_active(status) -> bool    A/B routes exist
    release(spec, uid, ledger, primary, canary, serving) -> str | None
                                 deletion: weight back to the primary, the route given back as found
                                 (or deleted); returns what is still awaited
    show(status) -> Shown        what the recorded route does now, for `awsctl status`

`select()` picks the provider; adding one means a new file here, a branch in `select`, and the
CRD field that names it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from awsctl.aws.errors import RouteGone as RouteGone  # re-exported: part of the Router contract

if TYPE_CHECKING:
    from awsctl.api.canary import CanarySpec, CanaryStatus
    from awsctl.aws.clients import Clients
    from awsctl.controllers.errors import NotReady
    from awsctl.planning.weights import Backend

Weights = Mapping[str, int]


@dataclass(frozen=True)
class WeightResult:
    verified: bool
    shown: int | None  # canary permille the provider routes now
    message: str


@dataclass(frozen=True)
class Held:
    """What `hold` found on the live route."""

    shown: dict[str, int] | None  # the weights it shows when they are the verified (or adopted) ones
    adopted: int | None = None  # permille of our own write from before a restart, now verified
    drift: str = ""  # what changed outside awsctl (set_weight must restore it), for the event
    write: bool = False  # set_weight should run this tick (no route yet, drift, or the groups changed)


@dataclass(frozen=True)
class Shown:
    """The recorded route as the provider shows it now, for people."""

    route: str  # e.g. "rule 3f2a..." or "listener default action"; "" when there is none
    id: str = ""  # the provider's name for it (ALB: the rule's or listener's ARN)
    weights: dict[str, int] = field(default_factory=dict)
    sticky: tuple[bool, int | None] = (False, None)
    ab_routes: int = 0
    error: str = ""


@dataclass
class Ledger:
    """A provider's access to one Canary's status: read it, record changes (one patch each, the
    crash-safe write-aheads included), and tell people what happened (an event and a log line)."""

    status: Callable[[], Mapping[str, Any]]
    record: Callable[[CanaryStatus], object]
    announce: Callable[[str, str, str], None]  # (Normal|Warning, reason, message)
    # The Canary's ownership tags (awsctl.io/owner, awsctl.io/cluster): status is not an authority, so a
    # rule or group it names is written to only when AWS's own tags say it is this Canary's. Empty: not
    # checked (a provider's tests of one route alone).
    owner: Mapping[str, str] = field(default_factory=dict)


class Router(Protocol):
    def check(self, spec: CanarySpec) -> None: ...
    def refusal(self, spec: CanarySpec, err: RouteGone) -> NotReady: ...
    def vpc_of(self, spec: CanarySpec) -> str: ...
    def warm_up(
        self,
        spec: CanarySpec,
        uid: str,
        ledger: Ledger,
        weights: Weights,
        tags: Mapping[str, str],
        shown: Weights | None,
    ) -> bool: ...
    def hold(
        self,
        spec: CanarySpec,
        ledger: Ledger,
        primary: Sequence[Backend],
        canary: Sequence[Backend],
        permille: int,
        spec_changed: bool,
        max_age: float | None = None,
    ) -> Held: ...
    def set_weight(
        self,
        spec: CanarySpec,
        ledger: Ledger,
        primary: Sequence[Backend],
        canary: Sequence[Backend],
        permille: int,
        serving: Weights,
        may_take: Callable[[Weights], bool],
        tags: Mapping[str, str],
        write_ahead: bool,
    ) -> WeightResult | None: ...
    def back_to_primary(
        self, ledger: Ledger, primary: Sequence[str], canary: Sequence[str], serving: Weights
    ) -> WeightResult | None: ...
    def settled(self, ledger: Ledger) -> CanaryStatus: ...
    def sync_ab(
        self,
        spec: CanarySpec,
        ledger: Ledger,
        tags: Mapping[str, str],
        canary: Sequence[Backend],
        want: bool,
        client_secret: Callable[[], str | None] = ...,
    ) -> bool: ...
    def ab_active(self, status: Mapping[str, Any]) -> bool: ...
    def release(
        self,
        spec: CanarySpec | None,
        uid: str,
        ledger: Ledger,
        primary: Sequence[Backend],
        canary: Sequence[Backend],
        serving: Callable[[list[str]], Weights],
        restorable: Callable[[list[str]], str | None] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str | None: ...
    def show(self, status: Mapping[str, Any]) -> Shown: ...


def select(clients: Clients) -> Router:
    """The only provider today: ALB listener rules and default actions."""
    from awsctl.aws.listeners import Listeners
    from awsctl.routing.alb import AlbRouter

    return AlbRouter(Listeners(clients))
