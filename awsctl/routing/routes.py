"""One Canary on several routes with one weight (spec.loadBalancer.routes): the Router a Canary sees,
which fans every call out to the provider of each route.

- The first route is spec.loadBalancer's own, its record at the top of status (the single-route form is
  unchanged); route i+1 is spec.loadBalancer.routes[i], its record in status.routes[i], in the same
  fields, so a provider sees each route as if it were the only one.
- **A step counts only when every route shows it.** The weight is written and read back on each route in
  turn; the result is verified only when all are, and otherwise reports the largest canary share any
  route shows (what the canary may be carrying: draining waits for that).
- **A rollback takes every route back**, and so does a refusal (`set_weight` without a spec, invariant
  15): every route goes back to the primary, none left at the canary's weight.
- **A refusal on one route holds them all**: a route that refuses (a `NotReady` or a `RouteGone`)
  refuses the tick, and the reconciler holds the verified weight on every route.
- A route dropped from the spec is given back (restored as it was, or its rule deleted) at the next
  tick, and its record goes.
- A/B routes sit above one rule: the spec refuses `analysis.match` with further routes; `sync_ab` is the
  first route's alone.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

from awsctl.aws.listeners import Route
from awsctl.controllers.errors import NotReady
from awsctl.planning import weights as w
from awsctl.routing import ByListener, Held, Ledger, RouteGone, Shown, WeightResult, Weights

if TYPE_CHECKING:
    from awsctl.api.canary import CanarySpec, CanaryStatus, RouteStatus

FIRST = "spec.loadBalancer"
ROUTE_FIELDS = ("listenerRule", "retiringRule", "pendingWeight", "warmup", "warmupRule")


def route_ledger(ledger: Ledger, index: int) -> Ledger:
    """Route `index` (0-based among spec.loadBalancer.routes)'s view of the Canary: its record in
    status.routes[index], with the fields a provider keeps at the top of status for the first route."""

    def status() -> Mapping[str, Any]:
        recorded = list(ledger.status().get("routes") or ())
        return recorded[index] if index < len(recorded) else {}

    def record(changes: Mapping[str, Any]) -> object:
        recorded: list[dict[str, Any]] = [dict(r) for r in ledger.status().get("routes") or ()]
        recorded += [{} for _ in range(index + 1 - len(recorded))]
        merged = {**recorded[index], **changes}
        recorded[index] = {k: v for k, v in merged.items() if v is not None and k in ROUTE_FIELDS}
        return ledger.record({"routes": cast("list[RouteStatus]", recorded)})

    def announce(kind: str, reason: str, message: str) -> None:
        ledger.announce(kind, reason, f"spec.loadBalancer.routes[{index}]: {message}")

    return Ledger(status, record, announce, owner=ledger.owner, uid=ledger.uid)


@contextlib.contextmanager
def naming_route(index: int) -> Iterator[None]:
    """A refusal on route `index` (0: the first) names that route's fields: spec.loadBalancer.routes[i-1]
    rather than spec.loadBalancer, in its field and its message."""
    try:
        yield
    except (RouteGone, NotReady) as err:
        if index > 0 and err.field.startswith(FIRST):
            where = f"{FIRST}.routes[{index - 1}]"
            err.field = where + err.field[len(FIRST) :]
            if isinstance(err, NotReady):
                err.message = err.message.replace(FIRST, where, 1)
                err.args = (err.message,)
        raise


class Routes:
    """The Router of every Canary, on each of its routes (see the module's docstring)."""

    def __init__(self, providers: ByListener):
        self.providers = providers
        self._held: dict[tuple[str, int], Held] = {}  # (Canary uid, route) -> this tick's hold, for warm_up
        self._lock = threading.Lock()

    def _routes(self, spec: CanarySpec | None, ledger: Ledger) -> list[tuple[CanarySpec | None, Ledger, bool]]:
        """(the route's spec, its ledger, whether the spec dropped it), first route first. A dropped route's
        spec is the Canary's on the listener its record names, so that it is given back as a deletion
        would; None without a spec."""
        out: list[tuple[CanarySpec | None, Ledger, bool]] = [(spec, ledger, False)]
        further = spec.load_balancer.routes if spec is not None else ()
        recorded = ledger.status().get("routes") or ()
        for i in range(max(len(further), len(recorded))):
            book = route_ledger(ledger, i)
            if spec is None:
                out.append((None, book, False))
            elif i < len(further):
                out.append((replace(spec, load_balancer=spec.load_balancer.on_route(i)), book, False))
            else:
                out.append((self._dropped(spec, book.status()), book, True))
        return out

    @staticmethod
    def _dropped(spec: CanarySpec, record: Mapping[str, Any]) -> CanarySpec | None:
        rule = record.get("listenerRule") or {}
        listener = rule.get("listener") or (Route.parse(rule["arn"]).listener_arn if rule.get("arn") else None)
        listener = listener or record.get("warmupRule") and Route.parse(record["warmupRule"]).listener_arn
        if not listener:
            return None
        lb = replace(spec.load_balancer, listener_arn=listener, rule=None, routes=())
        return replace(spec, load_balancer=lb)

    def check(self, spec: CanarySpec) -> None:
        for i, (sub, _, dropped) in enumerate(self._routes(spec, Ledger(dict, lambda _: None, lambda *_: None))):
            if sub is not None and not dropped:
                with naming_route(i):
                    self.providers.check(sub)

    def warm_up(self, spec: CanarySpec, ledger: Ledger, weights: Weights, shown: Weights | None) -> bool:
        changed = False
        for i, (sub, book, dropped) in enumerate(self._routes(spec, ledger)):
            if sub is None or dropped:
                continue
            with self._lock:
                held = self._held.get((ledger.uid, i))
            seen = shown if i == 0 else (held.shown if held is not None else None)
            with naming_route(i):
                changed = self.providers.warm_up(sub, book, weights, seen) or changed
        return changed

    def hold(
        self,
        spec: CanarySpec,
        ledger: Ledger,
        primary: Sequence[w.Backend],
        canary: Sequence[w.Backend],
        permille: int,
        spec_changed: bool,
        max_age: float | None = None,
    ) -> Held:
        """Each route held; the verified weight only when every route shows it. A route the spec no longer
        names is given back here (as a deletion gives a route back), then forgotten."""
        helds: list[Held] = []
        for i, (sub, book, dropped) in enumerate(self._routes(spec, ledger)):
            if dropped:
                # no group counted as serving: the route is given back at once, as it was before the Canary
                if self.providers.release(sub, book, primary, canary, lambda arns: {}) is None:
                    book.record(cast("CanaryStatus", dict.fromkeys(ROUTE_FIELDS)))
                continue
            assert sub is not None  # a route the spec names
            with naming_route(i):
                held = self.providers.hold(sub, book, primary, canary, permille, spec_changed, max_age)
            with self._lock:
                self._held[(ledger.uid, i)] = held
            helds.append(held)
        self._trim(ledger, len(spec.load_balancer.routes))
        first = helds[0]
        every = all(h.shown is not None for h in helds)
        return Held(
            first.shown if every else None,
            adopted=first.adopted if every and all(h.adopted == first.adopted for h in helds) else None,
            drift="; ".join(h.drift for h in helds if h.drift),
            write=any(h.write for h in helds),
        )

    @staticmethod
    def _trim(ledger: Ledger, wanted: int) -> None:
        """Forgets the records past the spec's routes once they are given back (empty)."""
        recorded = list(ledger.status().get("routes") or ())
        keep = len(recorded)
        while keep > wanted and not recorded[keep - 1]:
            keep -= 1
        if keep < len(recorded):
            ledger.record({"routes": recorded[:keep] or None})

    def set_weight(
        self,
        spec: CanarySpec | None,
        ledger: Ledger,
        primary: Sequence[w.Backend],
        canary: Sequence[w.Backend],
        permille: int,
        serving: Weights,
        may_take: Callable[[Weights], bool] | None = None,
        write_ahead: bool = False,
    ) -> WeightResult | None:
        """The weight on every route in turn; verified only when every route verified it. Without a spec,
        every recorded route back to the primary."""
        results: list[WeightResult] = []
        for i, (sub, book, dropped) in enumerate(self._routes(spec, ledger)):
            if dropped:
                continue  # given back by `hold`
            try:
                with naming_route(i):
                    result = self.providers.set_weight(
                        sub, book, primary, canary, permille, serving, may_take, write_ahead
                    )
            except RouteGone:
                if spec is not None:
                    raise  # the tick is refused: every route holds its verified weight
                result = None  # going back to the primary: a route that is gone carries nothing
            if result is None and spec is not None:
                return None  # a route not taken yet: `may_take` said its groups cannot serve
            if result is not None:
                results.append(result)
        if not results:
            return None
        if all(r.verified for r in results):
            return results[0]
        shares = [r.shown for r in results if r.shown is not None]
        failed = "; ".join(r.message for r in results if not r.verified)
        return WeightResult(False, max(shares) if shares else None, failed)

    def sync_ab(self, spec: CanarySpec, ledger: Ledger, *args: Any, **kwargs: Any) -> bool:
        return self.providers.sync_ab(spec, ledger, *args, **kwargs)

    def release(
        self,
        spec: CanarySpec | None,
        ledger: Ledger,
        primary: Sequence[w.Backend],
        canary: Sequence[w.Backend],
        serving: Callable[[list[str]], Weights],
        restorable: Callable[[list[str]], str | None] | None = None,
    ) -> str | None:
        """Every route given back, further ones first; what is still awaited on any of them, or None."""
        routes = self._routes(spec, ledger)
        awaited = []
        for sub, book, _ in [*routes[1:], routes[0]]:
            left = self.providers.release(sub, book, primary, canary, serving, restorable)
            if left:
                awaited.append(left)
        if not awaited and ledger.status().get("routes"):
            ledger.record({"routes": None})
        with self._lock:
            for key in [k for k in self._held if k[0] == ledger.uid]:
                del self._held[key]
        return "; ".join(awaited) or None

    def show(self, status: Mapping[str, Any]) -> Shown:
        shown = self.providers.show(status)
        further = [r for r in status.get("routes") or () if (r.get("listenerRule") or {}).get("arn")]
        if not further or not shown.route:
            return shown
        return replace(shown, route=f"{shown.route} and {len(further)} more route(s)")
