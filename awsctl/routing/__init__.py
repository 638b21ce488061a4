"""The traffic contract of a Canary: one interface of 7 methods, one file per provider (alb.py: ALB
listener rules and default actions; nlb.py: NLB listeners' default actions).

Every method is about one Canary's route; a Canary with several (spec.loadBalancer.routes) is served by
routes.py, which calls the same 7 methods on each route's provider and gives the reconciler one route's
answers: a weight verified only when every route shows it. A side is a list of target groups with their relative
shares (planning/weights.py's Backend) and weights are canary permille (0-1000); `serving` is, per
group, the healthy targets among those its bindings want. A provider keeps its own record in the
Canary's status through the `Ledger` (which also carries the Canary's uid and ownership tags), and
never reports a weight it has not read back.

    check(spec)                                        refuse, naming the field, what it cannot route (no AWS call)
    warm_up(spec, ledger, weights, shown) -> bool      groups health-checked at weight 0 until the route carries them
    hold(spec, ledger, primary, canary, permille, spec_changed, max_age) -> Held
                                                       read the route back: follow, adopt our own write, report drift
    set_weight(spec, ledger, primary, canary, permille, serving, may_take, write_ahead) -> WeightResult | None
                                                       write and verify; spec None: only back to 0 on the recorded route
    sync_ab(spec, ledger, canary, want, client_secret) -> bool
                                                       create, repair or remove the header/cookie routes
    release(spec, ledger, primary, canary, serving, restorable) -> str | None
                                                       deletion: back to the primary, the route given back; what is awaited
    show(status) -> Shown                              what the recorded route does now, for `awsctl status`

What is not a route's is not here: where new groups go is the load balancer's VPC (`Listeners.vpc_of`,
ALB and NLB alike); a vanished route is refused by the field its `RouteGone` names
(`controllers.errors.route_gone`); `pendingWeight` (the write-ahead) and `abRules` are status fields
every provider shares (`ab_active`).

`select()` gives the Router of every Canary: `Routes` over `ByListener`, which hands each call to the
provider of the route's listener by the kind its ARN names (`listener/app/...`, `listener/net/...`).
Adding a provider means a new file here, its entry in `select`, and the kind in the CRD's listener
pattern.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from awsctl.aws.errors import RouteGone as RouteGone  # re-exported: part of the Router contract
from awsctl.planning.naming import ROLE

if TYPE_CHECKING:
    from awsctl.api.canary import CanarySpec, CanaryStatus
    from awsctl.aws.clients import Clients
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
    """A provider's access to one Canary: read its status, record changes (one patch each, the
    crash-safe write-aheads included), tell people what happened (an event and a log line), and tag
    what it makes for the Canary."""

    status: Callable[[], Mapping[str, Any]]
    record: Callable[[CanaryStatus], object]
    announce: Callable[[str, str, str], None]  # (Normal|Warning, reason, message)
    # The Canary's ownership tags (awsctl.io/owner, awsctl.io/cluster): status is not an authority, so a
    # rule or group it names is written to only when AWS's own tags say it is this Canary's. Empty: not
    # checked (a provider's tests of one route alone).
    owner: Mapping[str, str] = field(default_factory=dict)
    uid: str = ""  # the Canary's uid: what a provider makes can be found by it without the spec

    def tags(self, role: str) -> dict[str, str]:
        """The tags of what a provider makes for this Canary in `role` (rule, warmup, ab)."""
        return {**self.owner, ROLE: role} if self.owner else {}


def ab_active(status: Mapping[str, Any]) -> bool:
    """The Canary has header or cookie routes (status.abRules, whichever provider made them)."""
    return bool(status.get("abRules"))


class Router(Protocol):
    def check(self, spec: CanarySpec) -> None: ...
    def warm_up(self, spec: CanarySpec, ledger: Ledger, weights: Weights, shown: Weights | None) -> bool: ...
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
        spec: CanarySpec | None,
        ledger: Ledger,
        primary: Sequence[Backend],
        canary: Sequence[Backend],
        permille: int,
        serving: Weights,
        may_take: Callable[[Weights], bool] | None = None,
        write_ahead: bool = False,
    ) -> WeightResult | None: ...
    def sync_ab(
        self,
        spec: CanarySpec,
        ledger: Ledger,
        canary: Sequence[Backend],
        want: bool,
        client_secret: Callable[[], str | None] = ...,
    ) -> bool: ...
    def release(
        self,
        spec: CanarySpec | None,
        ledger: Ledger,
        primary: Sequence[Backend],
        canary: Sequence[Backend],
        serving: Callable[[list[str]], Weights],
        restorable: Callable[[list[str]], str | None] | None = None,
    ) -> str | None: ...
    def show(self, status: Mapping[str, Any]) -> Shown: ...


class ByListener:
    """The Router of every Canary: each call goes to the provider of the Canary's listener (its spec's, or
    without a spec the route its status records), `listener/app/` or `listener/net/`."""

    def __init__(self, providers: Mapping[str, Router]):
        self.providers = providers

    def of(self, spec: CanarySpec | None, status: Mapping[str, Any] | None = None) -> Router:
        recorded = status or {}
        arn = (
            spec.load_balancer.listener_arn
            if spec is not None
            else (recorded.get("listenerRule") or {}).get("arn") or recorded.get("warmupRule") or ""
        )
        kind = arn.split(":listener/", 1)[-1].split(":listener-rule/", 1)[-1].split("/", 1)[0]
        return self.providers.get(kind) or self.providers["app"]

    def check(self, spec: CanarySpec) -> None:
        self.of(spec).check(spec)

    def warm_up(self, spec: CanarySpec, ledger: Ledger, weights: Weights, shown: Weights | None) -> bool:
        return self.of(spec).warm_up(spec, ledger, weights, shown)

    def hold(self, spec: CanarySpec, ledger: Ledger, *args: Any, **kwargs: Any) -> Held:
        return self.of(spec).hold(spec, ledger, *args, **kwargs)

    def set_weight(self, spec: CanarySpec | None, ledger: Ledger, *args: Any, **kwargs: Any) -> WeightResult | None:
        return self.of(spec, ledger.status()).set_weight(spec, ledger, *args, **kwargs)

    def sync_ab(self, spec: CanarySpec, ledger: Ledger, *args: Any, **kwargs: Any) -> bool:
        return self.of(spec).sync_ab(spec, ledger, *args, **kwargs)

    def release(self, spec: CanarySpec | None, ledger: Ledger, *args: Any, **kwargs: Any) -> str | None:
        """By the route status records when there is one: that is what must be given back."""
        status = ledger.status()
        recorded = (status.get("listenerRule") or {}).get("arn") or status.get("warmupRule")
        return self.of(None if recorded else spec, status).release(spec, ledger, *args, **kwargs)

    def show(self, status: Mapping[str, Any]) -> Shown:
        return self.of(None, status).show(status)


def select(clients: Clients) -> Router:
    """Every route of a Canary (routing/routes.py), each by its listener's provider: ALB listener rules and
    default actions (routing/alb.py), NLB listeners' default actions (routing/nlb.py), sharing one view of
    the listeners."""
    from awsctl.aws.listeners import Listeners
    from awsctl.routing.alb import AlbRouter
    from awsctl.routing.nlb import NlbRouter
    from awsctl.routing.routes import Routes

    listeners = Listeners(clients)
    return Routes(ByListener({"app": AlbRouter(listeners), "net": NlbRouter(listeners)}))
