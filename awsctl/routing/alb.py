"""ALB provider of the traffic contract (awsctl/routing/__init__.py): a listener rule's, or a
listener default action's, weighted forward action.

Invariants 5, 6 and 11 live here:
- a group is health-checked before it carries traffic: until the live route forwards to every
  group of the Canary, a *warm-up rule* does (weight 1 on the primary, 0 on the canary), under a
  condition no request matches
  (a header whose value is the Canary's uid). AWS reports the targets of a group no rule uses as
  `unused` and never checks them, so without this a new route could never become healthy;
- a weight above 0 never goes to a group with no serving target;
- a weight counts only once AWS shows it when read back;
- on a route awsctl took over, only the forward action is awsctl's: authenticate-oidc/cognito
  and every other action stay as found, in their order.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from awsctl import metrics
from awsctl.api.canary import CanarySpec, RouteRecord, RuleSpec
from awsctl.aws.budget import Priority, urgency
from awsctl.aws.listeners import (
    ListenerNotFound,
    Listeners,
    Route,
    Rule,
    RuleNotFound,
    condition_values,
    rule_conditions,
)
from awsctl.controllers.errors import NotReady
from awsctl.planning import weights as w
from awsctl.planning.naming import CLUSTER, OWNER, ROLE, group_of, lbc_tag, load_balancer_arn, rule_id
from awsctl.routing import Held, Ledger, Shown, WeightResult
from awsctl.routing import alb_wire as wire

log = logging.getLogger("awsctl.canary")
READ_BACK_ATTEMPTS = 5
READ_BACK_PAUSE = 0.2
WARMUP_HEADER = "X-Awsctl-Warmup"
WARMUP_ROLE = "warmup"  # the awsctl.io/role tag of a warm-up rule
MAX_PRIORITY = 50000  # ALB rule priorities are 1-50000; warm-up rules take the highest free ones
TERMINAL_ACTIONS = ("forward", "fixed-response", "redirect")


# No TCP connection comes from the limited-broadcast address: a rule that needs it matches no request.
UNREACHABLE_SOURCE = "255.255.255.255/32"


def warmup_conditions(uid: str) -> list[dict[str, Any]]:
    """Conditions no real request meets, even from someone who knows the Canary's uid (the header
    alone could be sent): the warm-up rule makes AWS health-check the groups, and never routes."""
    return [
        {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": WARMUP_HEADER, "Values": [uid]}},
        {"Field": "source-ip", "SourceIpConfig": {"Values": [UNREACHABLE_SOURCE]}},
    ]


def warmup_weights(weights: Mapping[str, int]) -> dict[str, int]:
    """The warm-up rule's forward: weight 1 on the primary's groups, 0 on the rest. AWS's documentation
    does not say that a forward whose weights are all 0 is accepted and its groups health-checked; a
    weight of 1 is, and the rule's conditions match no real request, so it routes nothing either way."""
    out = {arn: min(1, weight) for arn, weight in weights.items()}
    if not any(out.values()) and out:
        out[next(iter(out))] = 1
    return out


def is_warmup(rule: Mapping[str, Any], uid: str) -> bool:
    for cond in rule.get("Conditions") or ():
        config = cond.get("HttpHeaderConfig") or {}
        if config.get("HttpHeaderName", "").lower() == WARMUP_HEADER.lower() and uid in (config.get("Values") or ()):
            return True
    return False


def with_forward(actions: Sequence[Mapping[str, Any]], forward: Mapping[str, Any]) -> list[dict[str, Any]]:
    """`actions` with their terminal action (forward, fixed-response or redirect) replaced by ours;
    authenticate actions and every other field stay as AWS showed them (invariant 11)."""
    ordered = sorted(actions, key=lambda a: a.get("Order") or 0)
    out: list[dict[str, Any]] = []
    placed = False
    for action in ordered:
        if action.get("Type") in TERMINAL_ACTIONS:
            if not placed:
                out.append(_ordered(forward, action.get("Order")))
                placed = True
            continue
        out.append(_resendable(action))
    if not placed:
        out.append(_ordered(forward, max((a.get("Order") or 0 for a in ordered), default=0) + 1 if ordered else None))
    return out


def _ordered(action: Mapping[str, Any], order: int | None) -> dict[str, Any]:
    return {**action, "Order": order} if order else dict(action)


SECRET_FIELD = "spec.loadBalancer.oidcClientSecretRef"


def front_actions(
    route_actions: Sequence[Mapping[str, Any]], forward: Mapping[str, Any], client_secret: str | None
) -> list[dict[str, Any]]:
    """The actions of a rule awsctl puts in front of a route (an A/B rule): every action the route runs
    before its terminal one (authenticate-oidc, authenticate-cognito, jwt-validation), as it is, then
    our forward. Otherwise a request that matches the A/B rule would reach the canary unauthenticated.
    A new rule with authenticate-oidc needs the client secret, which AWS never returns: it comes from
    spec.loadBalancer.oidcClientSecretRef, and without it the A/B rules are refused."""
    out: list[dict[str, Any]] = []
    for action in sorted(route_actions, key=lambda a: a.get("Order") or 0):
        if action.get("Type") in TERMINAL_ACTIONS:
            break
        copied = dict(action)
        oidc = copied.get("AuthenticateOidcConfig")
        if oidc is not None:
            if not client_secret:
                raise NotReady(
                    "OidcClientSecretRequired",
                    f"{SECRET_FIELD}: the route authenticates with authenticate-oidc, so the A/B rules in front "
                    "of it must too, and a new rule needs the client secret, which AWS never returns; name the "
                    "Secret that holds it",
                    SECRET_FIELD,
                )
            copied["AuthenticateOidcConfig"] = {
                **{k: v for k, v in oidc.items() if k != "UseExistingClientSecret"},
                "ClientSecret": client_secret,
            }
        out.append(copied)
    last = max((a.get("Order") or 0 for a in out), default=0)
    out.append(_ordered(forward, last + 1 if out else None))
    return out


def _resendable(action: Mapping[str, Any]) -> dict[str, Any]:
    """AWS never shows an OIDC client secret; sending the action back must say to keep it."""
    out = dict(action)
    oidc = out.get("AuthenticateOidcConfig")
    if oidc and "ClientSecret" not in oidc:
        out["AuthenticateOidcConfig"] = {**oidc, "UseExistingClientSecret": True}
    return out


def free_priority(rules: Sequence[Mapping[str, Any]], spare: int | None = None) -> int:
    """The highest priority no rule has, never `spare` (the spec's own: the route will want it)."""
    taken = {int(r["Priority"]) for r in rules if str(r.get("Priority", "")).isdigit()}
    return next(p for p in range(MAX_PRIORITY, 0, -1) if p not in taken and p != spare)


def route_identity(spec: CanarySpec) -> RouteRecord:
    """Where the spec says the weights live: the listener, and the rule priority (None: default action)."""
    lb = spec.load_balancer
    return {"listener": lb.listener_arn, "priority": lb.rule.priority if lb.rule else None}


STATUS_NOT_TRUSTED = "StatusNotTrusted"  # status named a rule or group AWS does not tag as this Canary's
LISTENER_TAGS_MAX_AGE = (
    300.0  # seconds a listener's LBC verdict is trusted: tags change rarely, Canaries share listeners
)


def ours(found: Mapping[str, str], tags: Mapping[str, str]) -> bool:
    """A rule or group is this Canary's only when both its owner and its cluster are: a Canary of the same
    namespace and name in another cluster sharing the account is another Canary."""
    return found.get(OWNER) == tags[OWNER] and found.get(CLUSTER) == tags.get(CLUSTER)


def holder(found: Mapping[str, str]) -> str:
    cluster = found.get(CLUSTER)
    return f"{found.get(OWNER)}{f' of cluster {cluster}' if cluster else ''}"


class AlbRouter:
    def __init__(
        self,
        listeners: Listeners,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.listeners = listeners
        self.sleep = sleep
        self.clock = clock
        # listener -> (read at, {listener: tags, its load balancer: tags})
        self._listener_tags: dict[str, tuple[float, dict[str, dict[str, str]]]] = {}
        # (owner, route ARN): routes this process took, or found to be the Canary's, so a rollout checks a
        # route status names once, not every tick
        self._routes_vouched: set[tuple[str, str]] = set()
        self._vouch_lock = threading.Lock()

    # -- the route --------------------------------------------------------------------------
    @staticmethod
    def check(spec: CanarySpec) -> None:
        """ALB's limits on what the spec asks of a rule (A/B conditions), before any AWS call."""
        wire.check_ab_limits(spec)

    @staticmethod
    def recorded_route(status: Mapping[str, Any]) -> Route | None:
        arn = (status.get("listenerRule") or {}).get("arn")
        return Route.parse(arn) if arn else None

    @staticmethod
    def moved(spec: CanarySpec, status: Mapping[str, Any]) -> bool:
        """The spec names another listener or priority (or drops or adds `rule`) than the recorded route."""
        rule = status.get("listenerRule") or {}
        if not rule.get("arn"):
            return False
        want = route_identity(spec)
        route = Route.parse(rule["arn"])
        if rule.get("listener", route.listener_arn) != want["listener"]:
            return True
        if route.is_default != (want["priority"] is None):
            return True
        return "priority" in rule and rule["priority"] != want["priority"]

    # -- warm-up: every group in use (health-checked) before it carries traffic ----------------------
    def warm_up(
        self, spec: CanarySpec, ledger: Ledger, weights: Mapping[str, int], shown: Mapping[str, int] | None
    ) -> bool:
        """Until the live route forwards to every group, a warm-up rule does (matching no
        request), so that AWS health-checks the targets; it goes once the route carries them all.
        Returns whether groups were just attached (their `unused` targets turn `initial` then, with
        no Kubernetes event)."""
        status, uid = ledger.status(), ledger.uid
        if shown is None or not set(weights) <= set(shown):
            left = status.get("warmupRule")
            if left and Route.parse(left).listener_arn != spec.load_balancer.listener_arn:
                # the spec moved to another listener: the old warm-up rule would hold the old groups
                if left in self._vouched(ledger, [left]):
                    self.detach(recorded=left, uid=uid)
                ledger.record({"warmupRule": None})
            # matching no request: only the groups count
            arn, changed = self.attach(spec, uid, weights, ledger.tags(WARMUP_ROLE))
            if not status.get("warmup") or status.get("warmupRule") != arn:
                ledger.record({"warmup": True, "warmupRule": arn})  # deletion finds it without the spec
            return changed
        if status.get("warmup"):
            self.detach(spec.load_balancer.listener_arn, uid=uid)
            ledger.record({"warmup": False, "warmupRule": None})
        return False

    def attach(
        self,
        spec: CanarySpec,
        uid: str,
        weights: Mapping[str, int],
        tags: Mapping[str, str],
        listener: str | None = None,
    ) -> tuple[str, bool]:
        """Ensures the warm-up rule forwards to exactly `weights`' groups; returns its ARN and whether
        AWS was changed (the groups' targets then start health checks). Looks in the listener's
        shared snapshot first (a Canary waiting to warm up costs no read of its own), unless the
        listener is given: then the rules are read, as during a deletion, whose earlier steps
        change them."""
        fresh = listener is not None
        listener = listener or spec.load_balancer.listener_arn
        action = wire.forward_action(warmup_weights(weights))
        snapshot = () if fresh else self.listeners.recent_rules(listener, spec.analysis.interval_seconds)
        found = next((r for r in snapshot if is_warmup(r, uid)), None)
        rules: list[dict[str, Any]] = []
        if found is None:  # about to create: ask AWS now, never on a snapshot's word
            self._not_on_lbc_listener(listener)
            rules = self.listeners.rules(listener)
            found = next((r for r in rules if is_warmup(r, uid)), None)
        if found is not None:
            if set(wire.weights_of(found.get("Actions") or [])) == set(weights):
                return found["RuleArn"], False
            self.listeners.set_actions(Route(found["RuleArn"], False), [action])
            return found["RuleArn"], True
        arn = self.listeners.create_rule(
            listener,
            free_priority(rules, spare=spec.load_balancer.rule.priority if spec.load_balancer.rule else None),
            warmup_conditions(uid),
            [action],
            {**tags, ROLE: WARMUP_ROLE},
        )
        log.info(
            "warm-up rule created: AWS health-checks the groups before they carry traffic",
            extra={"rule": arn, "groups": [group_of(a) for a in weights]},
        )
        return arn, True

    def detach(self, *listeners: str, uid: str, recorded: str | None = None) -> bool:
        """Deletes the warm-up rule(s) of this Canary (by its uid) on these listeners, and the one
        status recorded (by ARN: no spec needed); returns whether one existed."""
        found = False
        if recorded:
            try:
                self.listeners.delete_rule(recorded)  # a rule already gone is not an error
                found = True
            except ListenerNotFound:
                pass
        for listener in dict.fromkeys(listeners):
            try:
                rules = self.listeners.rules(listener)
            except ListenerNotFound:
                continue
            for rule in rules:
                if is_warmup(rule, uid):
                    self.listeners.delete_rule(rule["RuleArn"])
                    found = True
        return found

    def take_route(
        self,
        spec: CanarySpec,
        tags: Mapping[str, str],
        weights: Mapping[str, int],
        record: Callable[[RouteRecord], object],
    ) -> Route:
        """Finds or creates the rule; `record` writes status.listenerRule before any AWS change (write-ahead)."""
        lb = spec.load_balancer
        self._not_on_lbc_listener(lb.listener_arn)
        if lb.rule is None:
            previous = self.listeners.actions(Route(lb.listener_arn, True))
            self._not_driven_by_another(
                previous, tags, "the listener's default action", "spec.loadBalancer.listenerARN"
            )
            record(
                {
                    "arn": lb.listener_arn,
                    "created": False,
                    "previousActions": json.dumps(previous),
                    **route_identity(spec),
                }
            )
            return Route(lb.listener_arn, True)
        rule = self.listeners.rule_at(lb.listener_arn, lb.rule.priority)
        if rule is not None and ours(rule.tags, tags) and rule.tags.get(ROLE) == WARMUP_ROLE:
            # Our own warm-up rule holds the priority (taken before the spec named it): it is never the
            # route. It goes, and the route is created in its place.
            self.listeners.delete_rule(rule.arn)
            rule = None
        if rule is None and lb.rule.arn:
            raise NotReady(
                "RouteMismatch",
                f"spec.loadBalancer.rule.arn: rule {rule_id(lb.rule.arn)} is not at priority {lb.rule.priority} "
                "(no rule is): name the priority the rule has, or drop the arn to have awsctl create the rule",
                "spec.loadBalancer.rule.arn",
            )
        if rule is None:
            arn = self.listeners.create_rule(
                lb.listener_arn,
                lb.rule.priority,
                rule_conditions(lb.rule.hosts, lb.rule.paths),
                [self.action(spec, weights)],
                dict(tags),
            )
            record({"arn": arn, "created": True, **route_identity(spec)})
            log.info("listener rule created", extra={"rule": arn, "priority": lb.rule.priority})
            return Route(arn, False)
        if ours(rule.tags, tags):
            record({"arn": rule.arn, "created": True, **route_identity(spec)})  # ours from before a restart
            return Route(rule.arn, False)
        if rule.tags.get(OWNER):  # another Canary's, maybe one of the same name in another cluster: never adopted
            raise NotReady(
                "RuleConflict",
                f"spec.loadBalancer.rule.priority: rule {lb.rule.priority} belongs to {holder(rule.tags)}",
                "spec.loadBalancer.rule.priority",
            )
        self._not_managed_by_lbc(rule.arn, rule.tags, f"rule {lb.rule.priority}", "spec.loadBalancer.rule.priority")
        self._not_driven_by_another(rule.actions, tags, f"rule {lb.rule.priority}", "spec.loadBalancer.rule.priority")
        self._this_apps_route(lb.rule, rule)
        record({"arn": rule.arn, "created": False, "previousActions": json.dumps(rule.actions), **route_identity(spec)})
        log.info("taking over an existing listener rule", extra={"rule": rule.arn})
        return Route(rule.arn, False)

    def _not_on_lbc_listener(self, listener: str) -> None:
        """Neither the listener nor its load balancer may be the LBC's. On a listener it manages, the LBC
        deletes every rule it did not create, and on a load balancer it manages it deletes every listener
        it does not model and reverts changed weights and default actions, at its next reconcile
        (listener_rule_synthesizer.go, listener_synthesizer.go, since v2.0; aws-load-balancer-controller
        #3311, #3782). Checking the listener alone accepted a listener added beside an Ingress, which the
        LBC then deleted under awsctl. One DescribeTags for both, every few minutes per listener, however
        many Canaries take routes on it."""
        lb_arn = load_balancer_arn(listener)
        now = self.clock()
        read_at, tags = self._listener_tags.get(listener, (float("-inf"), {}))
        if now - read_at > LISTENER_TAGS_MAX_AGE:
            tags = self.listeners.tags([listener, lb_arn])
            self._listener_tags[listener] = (now, tags)
        field = "spec.loadBalancer.listenerARN"
        self._not_managed_by_lbc(listener, tags.get(listener) or {}, "listener", field)
        self._not_managed_by_lbc(lb_arn, tags.get(lb_arn) or {}, "load balancer", field)

    @staticmethod
    def _this_apps_route(want: RuleSpec, rule: Rule) -> None:
        """A rule awsctl did not create is taken over only when its host and path conditions are the spec's
        hosts and paths, or when the spec names the rule's ARN: a priority typo would otherwise send
        another app's host to this Canary's pods. Its other conditions (source-ip, headers, query strings,
        methods) stay on the rule as found, and never block."""
        if want.arn:
            if want.arn != rule.arn:
                raise NotReady(
                    "RouteMismatch",
                    f"spec.loadBalancer.rule.arn: rule {rule_id(want.arn)} is not at priority {want.priority}: rule "
                    f"{rule_id(rule.arn)} is. Name the priority the rule has",
                    "spec.loadBalancer.rule.arn",
                )
            return
        if wire.same_route(rule.conditions, want.hosts, want.paths):
            return
        live = wire.describe_route(
            wire.field_values(rule.conditions, "host-header"), wire.field_values(rule.conditions, "path-pattern")
        )
        raise NotReady(
            "RouteMismatch",
            f"spec.loadBalancer.rule.priority: rule {want.priority} ({rule_id(rule.arn)}) matches {live}, but "
            f"spec.loadBalancer.rule says {wire.describe_route(want.hosts, want.paths)}: not taken over. Fix the "
            f"priority or the hosts and paths, or set spec.loadBalancer.rule.arn: {rule.arn} to take that route over "
            "as it is",
            "spec.loadBalancer.rule.priority",
        )

    @staticmethod
    def _not_managed_by_lbc(arn: str, tags: Mapping[str, str], what: str, field: str) -> None:
        """The LBC reconciles the listeners of its Ingresses and Gateways: it would revert awsctl's weights
        or delete awsctl's rule. Refused, with what to do instead."""
        tag = lbc_tag(dict(tags))
        if tag:
            raise NotReady(
                "ManagedByLoadBalancerController",
                f"{field}: the {what} {rule_id(arn)} is managed by "
                f"the AWS Load Balancer Controller (tag {tag}), which would undo or delete what awsctl "
                "writes there. Give awsctl a listener on a load balancer the LBC does not manage (e.g. from "
                "terraform/), "
                "or let the LBC shift this traffic (Ingress or Gateway weights)",
                field,
            )

    def _not_driven_by_another(self, actions: list[Any], tags: Mapping[str, str], what: str, field: str) -> None:
        """Two Canaries on one default action (or one pre-existing rule) would fight over its weights:
        a route that already forwards to another Canary's groups is refused, not taken over."""
        groups = list(wire.weights_of(actions))
        tagged = self.listeners.tags(groups).values() if groups else ()
        owners = {holder(t) for t in tagged if t.get(OWNER) and not ours(t, tags)}
        if owners:
            raise NotReady("RuleConflict", f"{field}: {what} is already driven by {', '.join(sorted(owners))}", field)

    def sync_conditions(self, spec: CanarySpec, status: Mapping[str, Any]) -> bool:
        """Hosts and paths are applied to rules awsctl created; a taken-over rule keeps its conditions."""
        rule = status.get("listenerRule") or {}
        spec_rule = spec.load_balancer.rule
        if not rule.get("created") or spec_rule is None or Route.parse(rule["arn"]).is_default:
            return False
        want = rule_conditions(spec_rule.hosts, spec_rule.paths)
        if condition_values(self.listeners.conditions(Route(rule["arn"], False))) == condition_values(want):
            return False
        self.listeners.set_conditions(rule["arn"], want)
        return True

    @staticmethod
    def action(spec: CanarySpec, weights: Mapping[str, int]) -> dict[str, Any]:
        lb = spec.load_balancer
        return wire.forward_action(weights, lb.stickiness_seconds if lb.stickiness else None)

    # -- weights ----------------------------------------------------------------------------
    def shown(self, route: Route, max_age: float | None = None) -> tuple[dict[str, int], tuple[bool, int | None]]:
        """What AWS routes: the weights and the stickiness of the forward action. With `max_age`, a
        routine look that may come from the listener's shared snapshot (not older than that, and
        never older than our own last write); without, a read-back that asks AWS now."""
        if max_age is None:
            return wire.forward_of(self.listeners.actions(route))
        return wire.forward_of(self.listeners.recent_actions(route, max_age))

    def matches(
        self, shown: tuple[dict[str, int], tuple[bool, int | None]], spec: CanarySpec, weights: Mapping[str, int]
    ) -> bool:
        return shown == wire.forward_of([self.action(spec, weights)])

    # -- holding the verified weight ---------------------------------------------------------------
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
        """Keeps AWS on the last verified weight: follows a spec that names another route (the old
        one is given back once the new one verifies), re-takes a rule deleted outside awsctl, adopts
        a weight we wrote just before a restart, and reports drift for set_weight to restore. The
        route is looked at in the listener's snapshot, at most `max_age` seconds old (default: one
        analysis interval)."""
        status = ledger.status()
        if self.moved(spec, status):
            self._retire(spec, ledger, canary)
            status = ledger.status()
        wanted = w.target_weights(primary, canary, permille)
        route = self.recorded_route(status)
        if route is None:
            return Held(None, write=True)
        if self._doubted(spec, ledger, route, [*wanted]):
            return Held(None, write=False)
        try:
            if spec_changed:
                self.sync_conditions(spec, status)  # hosts/paths only change with the spec
            shown = self.shown(route, max_age=spec.analysis.interval_seconds if max_age is None else max_age)
        except RuleNotFound:
            ledger.record({"listenerRule": None})
            ledger.announce(
                "Warning",
                "RouteDrifted",
                f"listener rule {rule_id(route.arn)} was deleted outside awsctl; recreating it",
            )
            return Held(None, write=False)  # the groups are unused now: warm up again before re-taking
        if self.matches(shown, spec, wanted):
            if status.get("pendingWeight") is not None:
                ledger.record({"pendingWeight": None})
            self._finish_move(ledger)
            return Held(shown[0])
        pending = status.get("pendingWeight")
        if pending is not None:
            adopted = w.from_percent(pending)
            if self.matches(shown, spec, w.target_weights(primary, canary, adopted)):
                return Held(shown[0], adopted=adopted)  # our own write: AWS shows it, so it counts
        drift = ""
        if set(wanted) == set(shown[0]):  # otherwise the spec changed the groups: no drift to report
            drift = (
                f"{'listener default action' if route.is_default else 'listener rule'} showed "
                f"{w.describe(shown[0])} (stickiness {shown[1][0]}) instead of the verified "
                f"{w.describe(wanted)}"
            )
        return Held(None, drift=drift, write=True)

    def _retire(self, spec: CanarySpec, ledger: Ledger, canary: Sequence[w.Backend]) -> None:
        """The spec names another route: keep the old one recorded as retiring (it still carries the
        traffic), drop the A/B rules (their priorities follow the route), and let the tick take the
        new route; the old one is restored or deleted once the new one shows the verified weight."""
        status = ledger.status()
        old = status["listenerRule"]
        if status.get("abRules"):
            self.sync_ab(spec, ledger, canary, False)
        ledger.announce(
            "Normal",
            "RouteMoving",
            f"the spec names another route than "
            f"{'the default action' if Route.parse(old['arn']).is_default else rule_id(old['arn'])}"
            "; taking the new one, then restoring the old one",
        )
        ledger.record({"retiringRule": old, "listenerRule": None})

    def _finish_move(self, ledger: Ledger) -> None:
        retiring = self._give_back_retiring(ledger)
        if retiring is None:
            return
        ledger.announce(
            "Normal",
            "RouteMoved",
            "traffic moved to the route the spec names; the old route "
            f"{'was deleted' if retiring.get('created') else 'was restored'}",
        )

    def _give_back_retiring(self, ledger: Ledger) -> Mapping[str, Any] | None:
        """Restores (or deletes) the route a move left behind and forgets it; returns it, if any."""
        retiring: Mapping[str, Any] | None = ledger.status().get("retiringRule")
        if not retiring:
            return None
        doubt = self._route_doubt(ledger, Route.parse(retiring["arn"]), [], retiring) if retiring.get("arn") else ""
        if doubt:
            self._distrust(ledger, "the retiring route", [retiring["arn"]])
        try:
            if not doubt:
                self.restore(ledger.status(), rule=retiring)
        except (RuleNotFound, ListenerNotFound):
            pass  # already gone
        ledger.record({"retiringRule": None})
        return retiring

    @staticmethod
    def _owned(status: Mapping[str, Any]) -> bool:
        """The recorded route is a rule awsctl created: its only action is ours."""
        return bool((status.get("listenerRule") or {}).get("created"))

    # -- weights ----------------------------------------------------------------------------------
    def set_weight(
        self,
        spec: CanarySpec | None,
        ledger: Ledger,
        primary: Sequence[w.Backend],
        canary: Sequence[w.Backend],
        permille: int,
        serving: Mapping[str, int],
        may_take: Callable[[Mapping[str, int]], bool] | None = None,
        write_ahead: bool = False,
    ) -> WeightResult | None:
        """Takes the route first if none is recorded, once `may_take` says no group would get traffic
        into the void (None until then). `write_ahead`: record the weight as pending before writing
        it, so a restart can tell our write from drift. Without a spec (it no longer parses, or the
        tick was refused), only back to 0 on the recorded route (`_back_to_primary`)."""
        if spec is None:
            return self._back_to_primary(ledger, [b.arn for b in primary], [b.arn for b in canary], serving)
        route = self.recorded_route(ledger.status())
        if route is None:
            weights = w.target_weights(primary, canary, permille)
            if may_take is None or not may_take(weights):
                return None
            route = self.take_route(
                spec, ledger.tags("rule"), weights, lambda rule: ledger.record({"listenerRule": rule})
            )
            self._vouch(ledger, route)
        elif self._doubted(spec, ledger, route, [b.arn for b in (*primary, *canary)]):
            return WeightResult(False, None, f"status names route {rule_id(route.arn)}, which is not this Canary's")
        if write_ahead:
            ledger.record({"pendingWeight": w.percent(permille)})
        owned = self._owned(ledger.status())
        result = self.set_route_weight(route, spec, primary, canary, permille, serving, owned_route=owned)
        if result.verified:
            self._finish_move(ledger)
        return result

    def set_route_weight(
        self,
        route: Route,
        spec: CanarySpec,
        primary: Sequence[w.Backend],
        canary: Sequence[w.Backend],
        permille: int,
        serving: Mapping[str, int],
        owned_route: bool = True,
    ) -> WeightResult:
        """`serving`: healthy targets per group among those its bindings want. `owned_route`: the rule
        is awsctl's own (its only action is the forward); otherwise the other actions are kept.
        A weight back to the primary (0) goes first in the API budget; a step after rollbacks and
        deregistrations, before registrations and routine reads."""
        with urgency(Priority.ROLLBACK if permille == 0 else Priority.STEP):
            wanted = w.target_weights(primary, canary, permille)
            canary_arns = [b.arn for b in canary]
            void = w.unserved(wanted, serving)
            if void:
                return WeightResult(
                    False,
                    w.canary_share(self.shown(route)[0], canary_arns),
                    f"refused {w.percent(permille):g}%: no healthy targets in {', '.join(map(group_of, void))}",
                )
            forward = self.action(spec, wanted)
            started = time.monotonic()
            self.listeners.set_actions(
                route, [forward] if owned_route else with_forward(self.listeners.actions(route), forward)
            )
            verified, actual = self._read_back(route, lambda shown: self.matches(shown, spec, wanted))
            if verified:
                metrics.weight_verification.observe(time.monotonic() - started)
                return WeightResult(True, permille, f"canary weight {w.percent(permille):g}% verified")
            return WeightResult(
                False,
                w.canary_share(actual, canary_arns),
                f"asked for {w.describe(wanted)}, AWS shows {w.describe(actual)}; the step is not counted",
            )

    def _vouched(self, ledger: Ledger, arns: Sequence[str]) -> set[str]:
        """The rules or groups among `arns` whose own tags in AWS say they are this Canary's (owner and
        cluster). Status is not an authority: whoever may edit it could point awsctl at any rule or group
        its IAM role reaches. Without the Canary's tags (a provider test of one route alone) all count."""
        arns = [a for a in dict.fromkeys(arns) if a]
        if not ledger.owner or not arns:
            return set(arns)
        found = self.listeners.tags(arns, missing_ok=True)
        return {a for a in arns if a not in found or ours(found[a], ledger.owner)}  # a gone one: nothing to write

    def _distrust(self, ledger: Ledger, what: str, arns: Sequence[str]) -> None:
        ledger.announce(
            "Warning",
            STATUS_NOT_TRUSTED,
            f"status names {what} {', '.join(map(rule_id, arns))} that AWS does not tag as this Canary's: left "
            "untouched, and dropped from status",
        )

    def _route_doubt(
        self, ledger: Ledger, route: Route, groups: Sequence[str], rule: Mapping[str, Any] | None = None
    ) -> str:
        """Why a route status records (`rule`, by default status.listenerRule) is not this Canary's to write,
        or "": a rule awsctl created carries this Canary's tags; a route it took over forwards, by now,
        only to this Canary's groups (as do the groups it is about to be given)."""
        if not ledger.owner:
            return ""
        rule = (ledger.status().get("listenerRule") or {}) if rule is None else rule
        if rule.get("created"):
            return "" if self._vouched(ledger, [route.arn]) else f"rule {rule_id(route.arn)}"
        try:
            current = list(wire.weights_of(self.listeners.actions(route)))
        except (RuleNotFound, ListenerNotFound):
            return ""  # gone: nothing will be written to it
        if not current:  # taken over, it forwards to this Canary's groups until given back
            return f"route {rule_id(route.arn)}, which forwards to no target group"
        named = [*current, *groups]
        vouched = self._vouched(ledger, named)
        strangers = [a for a in named if a not in vouched]
        return f"route {rule_id(route.arn)} forwarding to {', '.join(map(group_of, strangers))}" if strangers else ""

    def _vouch(self, ledger: Ledger, route: Route) -> None:
        with self._vouch_lock:
            self._routes_vouched.add((ledger.owner.get(OWNER, ""), route.arn))

    def _doubted(self, spec: CanarySpec, ledger: Ledger, route: Route, groups: Sequence[str]) -> bool:
        """While a rollout runs: True (with a warning) when the route status names is not this Canary's,
        so no weight is written to it. Checked once per route and process: a route this process took, or
        found to be the Canary's, is not asked again. A taken-over route that still forwards as it did
        before awsctl took it (the operator stopped between the write-ahead and the write) counts as this
        Canary's only if the spec would take it over now."""
        if not ledger.owner:
            return False
        key = (ledger.owner.get(OWNER, ""), route.arn)
        with self._vouch_lock:
            if key in self._routes_vouched:
                return False
        doubt = self._route_doubt(ledger, route, groups)
        if not doubt or self._takeable(spec, ledger, route):
            self._vouch(ledger, route)
            return False
        ledger.announce(
            "Warning",
            STATUS_NOT_TRUSTED,
            f"status names the {doubt}, which AWS does not show as this Canary's: no weight is written to it. "
            "Correct status.listenerRule, or delete the Canary",
        )
        return True

    def _takeable(self, spec: CanarySpec, ledger: Ledger, route: Route) -> bool:
        """The route is the one the spec names, and take_route's checks would take it over as it is."""
        lb, field = spec.load_balancer, "spec.loadBalancer.rule"
        if (ledger.status().get("listenerRule") or {}).get("created"):
            return False  # a rule awsctl created is vouched for by its tags alone
        try:
            if route.is_default:
                if lb.rule is not None or route.arn != lb.listener_arn:
                    return False
                self._not_driven_by_another(self.listeners.actions(route), ledger.owner, "the route", field)
                return True
            rule = self.listeners.rule_at(lb.listener_arn, lb.rule.priority) if lb.rule else None
            if rule is None or lb.rule is None or rule.arn != route.arn or rule.tags.get(OWNER):
                return False
            self._not_managed_by_lbc(rule.arn, rule.tags, "the route", field)
            self._not_driven_by_another(rule.actions, ledger.owner, "the route", field)
            self._this_apps_route(lb.rule, rule)
            return True
        except (NotReady, RuleNotFound, ListenerNotFound):
            return False

    def _trusted_route(self, ledger: Ledger, route: Route, groups: Sequence[str]) -> bool:
        doubt = self._route_doubt(ledger, route, groups)
        if not doubt:
            return True
        ledger.announce(
            "Warning",
            STATUS_NOT_TRUSTED,
            f"status names the {doubt}, which AWS does not show as this Canary's: left untouched, and dropped "
            "from status",
        )
        ledger.record({"listenerRule": None})
        return False

    def _drop_ab(self, ledger: Ledger) -> None:
        """Deletes the A/B rules: matching requests go to the canary whatever the weights, so they go
        first when the canary stops serving. Only those AWS tags as this Canary's."""
        recorded = list(ledger.status().get("abRules") or ())
        vouched = self._vouched(ledger, recorded)
        ab = [a for a in recorded if a in vouched]
        if len(ab) < len(recorded):
            self._distrust(ledger, "A/B rule(s)", [a for a in recorded if a not in ab])
        for arn in ab:
            try:
                self.listeners.delete_rule(arn)
            except RuleNotFound:
                pass
        if recorded:
            ledger.record({"abRules": []})

    def _back_to_primary(
        self, ledger: Ledger, primary: Sequence[str], canary: Sequence[str], serving: Mapping[str, int]
    ) -> WeightResult | None:
        """Every canary group to 0 on the recorded route, verified, without the spec: for a Canary whose
        spec no longer parses or whose tick is refused (invariant 15). The primary groups keep their
        shares as AWS shows them (evenly when they all had 0), and the forward keeps its stickiness.
        None when no route is recorded (nothing of ours carries traffic)."""
        route = self.recorded_route(ledger.status())
        if route is None:
            return None
        with urgency(Priority.ROLLBACK):
            self._drop_ab(ledger)
            if not self._trusted_route(ledger, route, [*primary, *canary]):
                return None
            actions = self.listeners.actions(route)
            current, sticky = wire.forward_of(actions)
            if not any(current.get(arn, 0) for arn in canary):
                return WeightResult(True, 0, "canary weight 0% verified")
            groups = [arn for arn in primary if arn in current] or list(primary)
            shares = [current.get(arn, 0) for arn in groups]
            wanted = {
                **{arn: 0 for arn in current},
                **dict(
                    zip(groups, w.split(w.ALB_MAX_WEIGHT, shares if any(shares) else [1] * len(groups)), strict=True)
                ),
            }
            void = w.unserved(wanted, serving)
            if void:
                return WeightResult(
                    False,
                    w.canary_share(current, canary),
                    f"refused 0%: no healthy targets in {', '.join(map(group_of, void))}",
                )
            forward = wire.forward_action(wanted, sticky[1] if sticky[0] else None)
            self.listeners.set_actions(
                route, [forward] if self._owned(ledger.status()) else with_forward(actions, forward)
            )
            verified, shown = self._read_back(route, lambda seen: seen[0] == wanted)
            if verified:
                return WeightResult(True, 0, "canary weight 0% verified")
            return WeightResult(
                False,
                w.canary_share(shown, canary),
                f"asked for {w.describe(wanted)}, AWS shows {w.describe(shown)}",
            )

    def _read_back(self, route: Route, matches: Callable[[Any], bool]) -> tuple[bool, dict[str, int]]:
        """Reads the route until AWS shows what was written (`matches` on what `shown` returns), a few
        times with growing pauses; returns whether it did, and the weights it showed last."""
        actual: dict[str, int] = {}
        for attempt in range(READ_BACK_ATTEMPTS):
            shown = self.shown(route)
            if matches(shown):
                return True, shown[0]
            actual = shown[0]
            self.sleep(READ_BACK_PAUSE * (attempt + 1))
        return False, actual

    # -- A/B rules ---------------------------------------------------------------------------------
    def sync_ab(
        self,
        spec: CanarySpec,
        ledger: Ledger,
        canary: Sequence[w.Backend],
        want: bool,
        client_secret: Callable[[], str | None] = lambda: None,
    ) -> bool:
        """Creates, repairs or removes the A/B rules, and says so; returns whether anything changed.
        `client_secret`: the route's OIDC client secret, asked for only when a rule is written."""
        news = self._sync_ab(
            spec,
            ledger.status(),
            ledger.tags("ab"),
            canary,
            want,
            lambda arns: ledger.record({"abRules": arns}),
            client_secret,
        )
        if news is None:
            return False
        reason, message = news
        ledger.announce("Normal" if reason == "ABRules" else "Warning", reason, message)
        return True

    def _sync_ab(
        self,
        spec: CanarySpec,
        status: Mapping[str, Any],
        tags: Mapping[str, str],
        canary: Sequence[w.Backend],
        want: bool,
        record: Callable[[list[str]], object],
        client_secret: Callable[[], str | None] = lambda: None,
    ) -> tuple[str, str] | None:
        recorded = list(status.get("abRules") or ())
        if not want:
            if not recorded:
                return None
            for arn in recorded:
                self.listeners.delete_rule(arn)
            record([])
            return "ABRules", f"removed {len(recorded)} A/B rule(s)"
        forward = self.action(spec, w.target_weights([], canary, w.FULL))
        route = self.recorded_route(status)

        def actions_and_transforms() -> tuple[list[dict[str, Any]], list[Any]]:
            """Our forward behind the route's own authentication, with the route's rewrites (a
            taken-over rule; a rule awsctl created has only our forward)."""
            if route is None or self._owned(status):
                return [forward], []
            return front_actions(self.listeners.actions(route), forward, client_secret()), self.listeners.transforms(
                route
            )

        if recorded:
            return self._repair_ab(recorded, forward, record, actions_and_transforms)
        lb, rule = spec.load_balancer, spec.load_balancer.rule
        if rule is None:  # the spec parser refuses A/B without a rule; a default action has no priority
            raise NotReady("InvalidSpec", "spec.analysis.match needs spec.loadBalancer.rule", "spec.loadBalancer.rule")
        actions, transforms = actions_and_transforms()
        taken_over = route is not None and not self._owned(status)
        try:
            wanted = wire.ab_rules(spec, self.listeners.conditions(route) if taken_over and route else None)
            for i, conds in enumerate(wanted):
                wire.check_limits(conds, f"A/B rule {i + 1}")
        except wire.MatchError as err:
            raise NotReady(
                "InvalidSpec",
                f"spec.analysis.match: with the route's own conditions (rule {rule_id(route.arn if route else '')}), "
                f"{err}",
                "spec.analysis.match",
            ) from err
        priorities = wire.priorities(rule.priority, len(wanted))
        arns = []
        for priority, conds in zip(priorities, wanted, strict=True):
            existing = self.listeners.rule_at(lb.listener_arn, priority)
            if existing is not None:
                if not ours(existing.tags, tags):
                    raise NotReady(
                        "RuleConflict",
                        f"spec.loadBalancer.rule.priority: A/B needs priority {priority}, "
                        f"which {holder(existing.tags) if existing.tags.get(OWNER) else 'a rule awsctl does not own'} "
                        "holds",
                        "spec.loadBalancer.rule.priority",
                    )
                arns.append(existing.arn)  # ours from before a restart
                continue
            arns.append(
                self.listeners.create_rule(
                    lb.listener_arn,
                    priority,
                    conds,
                    actions,
                    dict(tags),
                    transforms,
                )
            )
        record(arns)
        return "ABRules", (
            f"created {len(arns)} A/B rule(s) at priority {', '.join(map(str, priorities))}: "
            "matching requests go 100% to the canary"
        )

    def _repair_ab(
        self,
        recorded: list[str],
        forward: dict[str, Any],
        record: Callable[[list[str]], object],
        actions: Callable[[], tuple[list[dict[str, Any]], list[Any]]],
    ) -> tuple[str, str] | None:
        """A/B rules are read back like the weighted rule: a changed action is put back (behind the
        route's authentication), a deleted rule makes the next tick create the set again (our own
        survivors are adopted by tag)."""
        wanted = wire.weights_of([forward])
        repaired = []
        for arn in recorded:
            try:
                if wire.weights_of(self.listeners.actions(Route(arn, False))) != wanted:
                    self.listeners.set_actions(Route(arn, False), actions()[0])
                    repaired.append(rule_id(arn))
            except RuleNotFound:
                record([])
                return "RouteDrifted", (f"A/B rule {rule_id(arn)} was deleted outside awsctl; recreating the A/B rules")
        if not repaired:
            return None
        return "RouteDrifted", f"A/B rule(s) {', '.join(repaired)} forwarded elsewhere; restored 100% to the canary"

    # -- deletion ------------------------------------------------------------------------------------
    def release(
        self,
        spec: CanarySpec | None,
        ledger: Ledger,
        primary: Sequence[w.Backend],
        canary: Sequence[w.Backend],
        serving: Callable[[list[str]], Mapping[str, int]],
        restorable: Callable[[list[str]], str | None] | None = None,
    ) -> str | None:
        """Deletion: a retiring route is given back, the weight goes back to the primary (verified,
        when its groups can serve), then the route is restored (or deleted) and the warm-up rule goes.
        A route that forwarded to groups of the user's before awsctl goes back to them only once
        `restorable` (given those groups, while the warm-up rule makes AWS health-check them) says
        they can serve. Returns what is still awaited (the caller retries), or None once nothing of
        awsctl's routes traffic."""
        status, uid = ledger.status(), ledger.uid
        route = self.recorded_route(status)
        self._give_back_retiring(ledger)
        with urgency(Priority.ROLLBACK):
            self._drop_ab(ledger)  # not left routing to the canary while the user's groups warm up
        if route is not None and not self._trusted_route(ledger, route, [b.arn for b in [*primary, *canary]]):
            route = None
        if route is not None:
            healthy = serving([b.arn for b in [*primary, *canary]])
            if spec is not None and primary and all(healthy.get(b.arn, 0) > 0 for b in primary):
                owned = self._owned(ledger.status())
                try:
                    result = self.set_route_weight(route, spec, primary, canary, 0, healthy, owned_route=owned)
                except (RuleNotFound, ListenerNotFound):
                    result = None  # the route is gone already: nothing sends traffic to our groups
                if result is not None and not result.verified:
                    return f"weight back to the primary not verified yet: {result.message}"
            restored = self.restored_weights(ledger.status())
            if restored and spec is not None and restorable is not None:
                awaited = self._before_give_back(spec, uid, ledger, route, restored, restorable)
                if awaited:
                    return awaited
            self.restore(ledger.status())
            ledger.record({"listenerRule": None})
        # The warm-up rule forwards to groups too (ours, or the user's being warmed up): it goes last,
        # found by the ARN status recorded and by uid on the listeners known, so a spec that no longer
        # parses still lets it go.
        listeners = [spec.load_balancer.listener_arn] if spec is not None else []
        listeners += [route.listener_arn] if route is not None else []
        listeners += [(status.get("listenerRule") or {}).get("listener") or ""]
        warmup = ledger.status().get("warmupRule")
        if warmup and warmup not in self._vouched(ledger, [warmup]):
            self._distrust(ledger, "the warm-up rule", [warmup])
            warmup = None
        if self.detach(*filter(None, listeners), uid=uid, recorded=warmup) or ledger.status().get("warmupRule"):
            ledger.record({"warmup": False, "warmupRule": None})
        return None

    @staticmethod
    def restored_weights(status: Mapping[str, Any]) -> dict[str, int]:
        """The groups the recorded route forwarded to before awsctl, with weight: where restoring it
        sends the traffic. A rule awsctl created is deleted instead, and sends none anywhere."""
        rule = status.get("listenerRule") or {}
        if rule.get("created") or not rule.get("previousActions"):
            return {}
        return {arn: weight for arn, weight in wire.weights_of(json.loads(rule["previousActions"])).items() if weight}

    def _before_give_back(
        self,
        spec: CanarySpec,
        uid: str,
        ledger: Ledger,
        route: Route,
        restored: Mapping[str, int],
        restorable: Callable[[list[str]], str | None],
    ) -> str | None:
        """The user's groups in use again before the route is: a group no rule forwards to has its
        targets `unused`, never health-checked, so the warm-up rule (matching no request) forwards to
        them on the route's own listener, and `restorable` judges their health."""
        try:
            arn, _ = self.attach(spec, uid, restored, ledger.tags(WARMUP_ROLE), listener=route.listener_arn)
        except (ListenerNotFound, ClientError) as err:
            log.warning("the groups to give the route back to cannot be warmed up", extra={"error": str(err)})
            return None  # no worse than giving the route back at once, which is what happens next
        if ledger.status().get("warmupRule") != arn:
            ledger.record({"warmup": True, "warmupRule": arn})
        return restorable(list(restored))

    def show(self, status: Mapping[str, Any]) -> Shown:
        route = self.recorded_route(status)
        if route is None:
            return Shown("")
        where = "listener default action" if route.is_default else f"rule {rule_id(route.arn)}"
        ab_routes = len(status.get("abRules") or ())
        try:
            weights, sticky = self.shown(route)
        except (RuleNotFound, ListenerNotFound, ClientError) as err:
            return Shown(where, route.arn, ab_routes=ab_routes, error=f"route unreadable: {err}")
        return Shown(where, route.arn, weights, sticky, ab_routes=ab_routes)

    def restore(self, status: Mapping[str, Any], rule: Mapping[str, Any] | None = None) -> None:
        """Deletion (or a route move): remove the rule awsctl created, or put back the actions it found
        (a deletion removed the A/B rules before, in `release`). `rule`: a recorded route other than
        status.listenerRule. It gives the traffic back to where it was: first in the API budget, as a
        rollback is."""
        with urgency(Priority.ROLLBACK):
            self._restore((status.get("listenerRule") or {}) if rule is None else rule)

    def _restore(self, rule: Mapping[str, Any]) -> None:
        if not rule.get("arn"):
            return
        route = Route.parse(rule["arn"])
        if rule.get("created"):
            self.listeners.delete_rule(rule["arn"])
        elif rule.get("previousActions"):
            try:
                # as AWS showed them, so without the OIDC client secret: resent, it must say to keep it
                self.listeners.set_actions(route, [_resendable(a) for a in json.loads(rule["previousActions"])])
            except (RuleNotFound, ListenerNotFound):
                log.warning("the route to restore no longer exists", extra={"rule": rule["arn"]})
        log.info("listener rule restored", extra={"rule": rule["arn"], "deleted": bool(rule.get("created"))})
