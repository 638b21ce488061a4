"""The ELBv2 realism layer: moto made as strict as a real Application Load Balancer.

moto is kind: every registered target is `healthy` at once, a group is never `unused`,
`initial` or `draining`, any weight is accepted and nothing is throttled. A controller that
passes against that proves little. This module patches the moto server *inside its own
process* (the tests' in-process server and `python -m awsctl.dev.moto_server`, which `awsctl dev`
and the demo start) so that it reproduces what AWS documents:

- target health per group as a state machine, with timings from the group's own settings:
  `unused` (Target.NotInUse) while no rule or default action forwards to the group (weight 0
  counts as in use); `initial` (Elb.RegistrationInProgress, then Elb.InitialHealthChecking)
  until its first health check, one HealthCheckIntervalSeconds after registration or attachment;
  then `healthy`, or `unhealthy` where a test injected it. AWS, "Health checks for Application
  Load Balancer target groups": "After your target is registered, it must pass one health check to
  be considered healthy"; HealthyThresholdCount is the count of passes that brings an `unhealthy`
  target back. With a data plane attached (`awsctl.dev.dataplane`), real health checks decide
  instead: `initial` until one probe passes (or UnhealthyThresholdCount fail in a row), then
  `healthy` or `unhealthy` by the group's thresholds; `draining`
  (Target.DeregistrationInProgress) for the deregistration delay, still listed. Targets are
  keyed by Id *and* Port. Each deregistration is also kept (`GroupState.departed`), with the state
  the target had, for the data plane's nodes that have not applied it yet; likewise every version
  of every listener's rules (`Realism.routes`), stamped with when the API made it.
- the documented ELBv2 API rate limits per account and region, as token buckets: past a
  limit the call gets `Throttling` (HTTP 400). Tests can inject throttling too.
- CloudWatch's GetMetricStatistics answers for exactly the dimensions asked for (each combination
  is a metric of its own); moto also counted datapoints that have more, so a LoadBalancer query
  summed the per-TargetGroup datapoints as well (its GetMetricData is already exact).
- the validation moto skips: weights 0-999, at most 5 groups per forward action, 100 rules
  per load balancer, 5 condition values per rule, IP targets of the group's address family, and a
  target group forwarded to by one load balancer only (TargetGroupAssociationLimit).
- Network Load Balancers as AWS has them, where moto (5.2) treats them as ALBs:
  - their ARNs say `net/` (`loadbalancer/net/...`, `listener/net/...`); moto wrote `app/`;
  - a listener forwards only to groups of a protocol it can carry (IncompatibleProtocols): TCP to
    TCP or TCP_UDP, TLS to TCP or TLS, UDP to UDP or TCP_UDP, TCP_UDP to TCP_UDP, HTTP(S) to HTTP(S)
    ("Create a target group for your Network Load Balancer"; "Listeners for your Network Load
    Balancers": "The target groups for a TCP_UDP listener must use the TCP_UDP protocol");
  - a weighted forward on a TLS listener has no stickiness (the weighted-target-groups release,
    November 2025, as issue 35 gives it; refused here, the unkind side, where AWS's reference does
    not say whether it refuses or ignores it);
  - listener rules (July 2026) match only the source address type, on dual-stack load balancers
    ("Listener rules for your Network Load Balancer": prerequisites, and the console's only
    condition): a layer-7 condition, or a rule on an IPv4-only NLB, is refused (ValidationError).
  Weights 0-999 and new connections only are NLB's as ALB's ("Listeners for your Network Load
  Balancers": "Routing traffic to multiple target groups").

Why inside the moto process and not a proxy in front of it: health depends on which rules
forward to a group, and that state lives in moto's models; a proxy would have to re-read it
over HTTP on every call (spending the very budget it enforces) and parse query-protocol XML.

`AWSCTL_REALISM=off` turns the layer off for debugging; nothing else does.
"""

from __future__ import annotations

import copy
import ipaddress
import os
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SWITCH = "AWSCTL_REALISM"
OBSERVER_HEADER = "X-Awsctl-Observer"  # a test's own look at AWS: answered, never counted against the budget

# AWS's documented ELBv2 request-token buckets (per account and region): (bucket size, refill per second).
RATE_LIMITS: dict[str, tuple[float, float]] = {
    "register": (20, 4),  # RegisterTargets, DeregisterTargets
    "describe": (40, 10),  # Describe*
    "mutate": (20, 3),  # every other call: ModifyRule, CreateTargetGroup, AddTags, ...
}
MAX_WEIGHT = 999
MAX_GROUPS_PER_FORWARD = 5
MAX_RULES_PER_LOAD_BALANCER = 100
MAX_CONDITION_VALUES = 5
MAX_VALUES_PER_CONDITION = 3  # ALB: match evaluations in one condition
# The target group protocols a listener of each protocol may forward to (see the module's text).
CARRIES: dict[str, frozenset[str]] = {
    "HTTP": frozenset({"HTTP", "HTTPS"}),
    "HTTPS": frozenset({"HTTP", "HTTPS"}),
    "TCP": frozenset({"TCP", "TCP_UDP"}),
    "TLS": frozenset({"TCP", "TLS"}),
    "UDP": frozenset({"UDP", "TCP_UDP"}),
    "TCP_UDP": frozenset({"TCP_UDP"}),
}
LAYER7_CONDITIONS = frozenset({"host-header", "path-pattern", "http-header", "http-request-method", "query-string"})
REGISTRATION_SECONDS = 1.0  # how long a target shows Elb.RegistrationInProgress before its health checks
HISTORY_SECONDS = 600.0  # superseded rules and deregistrations kept this long: past any node's delay


def enabled() -> bool:
    return os.environ.get(SWITCH, "on").strip().lower() not in ("off", "0", "false", "no")


def category_of(action: str) -> str:
    if action in ("RegisterTargets", "DeregisterTargets"):
        return "register"
    return "describe" if action.startswith("Describe") else "mutate"


class TokenBucket:
    def __init__(self, size: float, rate: float, clock: Callable[[], float] = time.monotonic):
        self.size, self.rate, self.clock = size, rate, clock
        self.tokens = size
        self.updated = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.size, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass
class Registration:
    id: str
    port: int
    registered_at: float
    availability_zone: str | None = None

    @property
    def key(self) -> str:
        return f"{self.id}:{self.port}"


@dataclass(frozen=True)
class Departure:
    """A deregistration as the data plane's nodes apply it: each one late, then draining for `delay`."""

    target: Registration
    at: float  # when DeregisterTargets returned
    state: str  # the target's health then: what a node that has not applied it still routes by
    delay: float  # the group's deregistration delay (0 when the group was not in use)


@dataclass
class GroupState:
    """What moto does not keep for a target group: registrations by id:port, draining ones, and use."""

    targets: dict[str, Registration] = field(default_factory=dict)
    draining: dict[str, tuple[Registration, float]] = field(default_factory=dict)  # key -> (target, until)
    in_use_since: float | None = None
    zones: frozenset[str] = frozenset()  # the zones enabled on the load balancers that use the group
    zone_of: dict[str, str | None] = field(default_factory=dict)  # target id -> its subnet's zone (in the VPC)
    probes: dict[str, Probe] = field(default_factory=dict)  # id:port -> its health checks' results so far
    departed: dict[str, Departure] = field(default_factory=dict)  # id:port -> its last deregistration
    # id:port -> its state when the group left use: a node still routing by an older rule routes by these
    last_states: dict[str, str] = field(default_factory=dict)


@dataclass
class Probe:
    """One target's health checks in a row, as ALB counts them (a data plane attached)."""

    passed: int = 0
    failed: int = 0
    state: str = "initial"
    reason: tuple[str, str] | None = None  # (Reason, Description) of the last failure


@dataclass
class Stats:
    """What the operator spent (observers excluded): benchmarks set these figures beside their floors."""

    throttled: int = 0
    calls: Counter = field(default_factory=Counter)  # action -> calls admitted
    log: list = field(default_factory=list)  # (monotonic time, action), when `recording`


class Realism:
    """One per process; `install()` patches moto's ELBv2 backend and response classes."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.lock = threading.RLock()
        self.unhealthy: set[str] = set()  # target ids, or id:port keys, that fail their health checks
        self.limits = dict(RATE_LIMITS)
        self.buckets: dict[tuple[str, str, str], TokenBucket] = {}
        self.injected: list[list[Any]] = []  # [remaining, actions or None = any]
        self.stats = Stats()
        self.recording = False
        self.probing = False  # a data plane's real health checks decide health, not the timer
        # listener ARN -> [(when the API made it, its rules as (priority, conditions, actions))], oldest first
        self.routes: dict[str, list[tuple[float, tuple]]] = {}
        self.history_seconds = HISTORY_SECONDS  # how long a superseded version is kept for a late node
        # Elb.RegistrationInProgress: "The target is in the process of being registered with the load
        # balancer"; a data plane sets it to its slowest node's registration delay, so a target is past it
        # only once every node routes to it
        self.registration_seconds = REGISTRATION_SECONDS
        self._undo: list[Callable[[], None]] = []

    # -- test controls ------------------------------------------------------------------------
    def reset(self) -> None:
        with self.lock:
            self.unhealthy.clear()
            self.buckets.clear()
            self.injected.clear()
            self.stats = Stats()

    def inject_throttling(self, count: int, actions: tuple[str, ...] = ()) -> None:
        """The next `count` calls (of `actions`, or any) get Throttling, as when another tool spent the budget."""
        with self.lock:
            self.injected.append([count, frozenset(actions) or None])

    # -- rate limits --------------------------------------------------------------------------
    def admit(self, account: str, region: str, action: str) -> bool:
        with self.lock:
            for entry in self.injected:
                remaining, actions = entry
                if remaining > 0 and (actions is None or action in actions):
                    entry[0] -= 1
                    self.stats.throttled += 1
                    return False
            category = category_of(action)
            key = (account, region, category)
            bucket = self.buckets.get(key)
            if bucket is None:
                bucket = self.buckets[key] = TokenBucket(*self.limits[category], clock=self.clock)
            if bucket.take():
                self.stats.calls[action] += 1
                if self.recording:
                    self.stats.log.append((self.clock(), action))
                return True
            self.stats.throttled += 1
            return False

    # -- health ---------------------------------------------------------------------------------
    @staticmethod
    def state(group: Any) -> GroupState:
        st = getattr(group, "_awsctl_realism", None)
        if st is None:
            st = GroupState()
            group._awsctl_realism = st
        return st

    def refresh_use(self, backend: Any) -> None:
        """After any change to rules or default actions: which groups a listener forwards to now."""
        now = self.clock()
        with self.lock:
            for group in backend.target_groups.values():
                st = self.state(group)
                used = backend._any_listener_using(group.arn)
                st.zones = _zones_using(backend, group.arn) if used else frozenset()
                if used and st.in_use_since is None:
                    st.in_use_since = now
                    st.last_states.clear()
                elif not used and st.in_use_since is not None:
                    st.last_states = {key: self.health(group, reg, now)[0] for key, reg in st.targets.items()}
                    st.in_use_since = None
                    st.draining.clear()  # an unused group has no connections to drain
                    st.probes.clear()  # nor health checks: they start again when it is used
            self._record_routes(backend, now)

    def _record_routes(self, backend: Any, now: float) -> None:
        """Every listener's rules as the API shows them now, kept beside the versions before them."""
        for lb in backend.load_balancers.values():
            for listener in lb.listeners.values():
                rules = tuple(
                    (
                        None if rule.priority == "default" else int(rule.priority),
                        copy.deepcopy(tuple(rule.conditions or ())),
                        tuple(copy.deepcopy(dict(a.data)) for a in rule.actions),
                    )
                    for rule in list(listener.rules.values())
                )
                history = self.routes.setdefault(listener.arn, [])
                if not history or history[-1][1] != rules:
                    history.append((now, rules))
                # keep the newest version older than the horizon: a late node may still route by it
                while len(history) > 1 and history[1][0] < now - self.history_seconds:
                    history.pop(0)
        known = {listener.arn for lb in backend.load_balancers.values() for listener in lb.listeners.values()}
        for arn in [a for a in self.routes if a not in known]:
            del self.routes[arn]

    def routes_at(self, listener_arn: str, moment: float) -> tuple | None:
        """The listener's rules as the API showed them at `moment`; None before it had any."""
        with self.lock:
            found = None
            for stamp, rules in self.routes.get(listener_arn, ()):
                if stamp > moment:
                    break
                found = rules
            return found

    def record_probe(self, group: Any, key: str, passed: bool, reason: tuple[str, str] | None = None) -> None:
        """A health check's result, from the data plane: the counts move the target's state."""
        with self.lock:
            st = self.state(group)
            if key not in st.targets or st.in_use_since is None:
                return  # deregistered, or the group left use, while the check was in flight
            probe = st.probes.setdefault(key, Probe())
            if passed:
                probe.passed, probe.failed = probe.passed + 1, 0
                # a new target needs one pass; an unhealthy one HealthyThresholdCount in a row (AWS's guide)
                needed = 1 if probe.state == "initial" else int(group.healthy_threshold_count or 5)
                if probe.passed >= needed:
                    probe.state, probe.reason = "healthy", None
            else:
                probe.passed, probe.failed = 0, probe.failed + 1
                probe.reason = reason or _FAILED
                if probe.failed >= int(group.unhealthy_threshold_count or 2):
                    probe.state = "unhealthy"

    def health(self, group: Any, reg: Registration, now: float) -> tuple[str, str | None, str | None]:
        st = self.state(group)
        if st.in_use_since is None:
            return (
                "unused",
                "Target.NotInUse",
                "Target group is not configured to receive traffic from the load balancer",
            )
        zone = self._zone(group, reg)
        if zone is not None and st.zones and zone not in st.zones:
            return (
                "unused",
                "Target.NotInUse",
                "Target is in an Availability Zone that is not enabled for the load balancer",
            )
        started = max(reg.registered_at, st.in_use_since)
        elapsed = now - started
        interval = float(group.health_check_interval_seconds or 30)
        if elapsed < self.registration_seconds:
            return "initial", *REGISTERING
        if self.probing:
            probe = st.probes.get(reg.key)
            if probe is None or probe.state == "initial":
                return "initial", "Elb.InitialHealthChecking", "Initial health checks in progress"
            if probe.state == "unhealthy":
                return "unhealthy", *(probe.reason or _FAILED)
        elif elapsed < interval:  # the first health check, which a new target must pass
            return "initial", "Elb.InitialHealthChecking", "Initial health checks in progress"
        if reg.key in self.unhealthy or reg.id in self.unhealthy:
            return "unhealthy", *_FAILED
        return "healthy", None, None

    def _zone(self, group: Any, reg: Registration) -> str | None:
        """The zone AWS routes an ip target through: the one it was registered with (None for "all",
        outside the VPC), else its subnet's in the group's VPC (None when no subnet holds it)."""
        if getattr(group, "target_type", "") != "ip" or reg.availability_zone == "all":
            return None
        if reg.availability_zone:
            return reg.availability_zone
        st = self.state(group)
        if reg.id not in st.zone_of:
            st.zone_of[reg.id] = _subnet_zone(group, reg.id)
        return st.zone_of[reg.id]

    def describe(self, group: Any, wanted: list[dict], status_type: Any) -> list:
        now = self.clock()
        with self.lock:
            st = self.state(group)
            for key, (_, until) in list(st.draining.items()):
                if now >= until:
                    del st.draining[key]
            out = []
            if wanted:
                for t in wanted:
                    key = f"{t['Id']}:{t.get('Port') or group.port}"
                    if key in st.targets:
                        out.append(
                            self._status(status_type, group, st.targets[key], *self.health(group, st.targets[key], now))
                        )
                    elif key in st.draining:
                        out.append(self._status(status_type, group, st.draining[key][0], *_DRAINING))
                    else:
                        reg = Registration(t["Id"], int(t.get("Port") or group.port or 0), now)
                        out.append(
                            self._status(
                                status_type,
                                group,
                                reg,
                                "unused",
                                "Target.NotRegistered",
                                "Target is not registered to the target group",
                            )
                        )
                return out
            for reg in st.targets.values():
                out.append(self._status(status_type, group, reg, *self.health(group, reg, now)))
            for reg, _ in st.draining.values():
                out.append(self._status(status_type, group, reg, *_DRAINING))
            return out

    @staticmethod
    def _status(
        status_type: Any, group: Any, reg: Registration, state: str, reason: str | None, description: str | None
    ):
        return status_type(reg.id, reg.port, group.health_check_port, state, reason, description)

    def register(self, group: Any, targets: list[dict]) -> None:
        now = self.clock()
        with self.lock:
            st = self.state(group)
            for t in targets:
                _check_address_family(group, t["Id"])
                if t.get("AvailabilityZone") == "all" and _cross_zone_off(group):
                    raise _error(
                        "ValidationError",
                        "The Availability Zone 'all' is not valid for a target group with cross-zone load "
                        "balancing off; specify the target's Availability Zone",
                    )
            for t in targets:
                reg = Registration(t["Id"], int(t.get("Port") or group.port or 0), now, t.get("AvailabilityZone"))
                if reg.key in st.targets:
                    continue  # registering a registered target changes nothing
                st.draining.pop(reg.key, None)  # a draining target registered again starts over
                st.departed.pop(reg.key, None)
                st.probes.pop(reg.key, None)
                st.targets[reg.key] = reg
                group.targets[reg.key] = {"Id": reg.id, "Port": reg.port}

    def deregister(self, group: Any, targets: list[dict], invalid: Callable[[], Exception]) -> None:
        now = self.clock()
        with self.lock:
            st = self.state(group)
            keys = [f"{t['Id']}:{t.get('Port') or group.port}" for t in targets]
            if any(k not in st.targets and k not in st.draining for k in keys):
                raise invalid()
            delay = float(group.attributes.get("deregistration_delay.timeout_seconds", 300))
            for key in [k for k, d in st.departed.items() if d.at + d.delay < now - self.history_seconds]:
                del st.departed[key]
            for key in keys:
                reg = st.targets.get(key)
                if reg is not None:
                    used = st.in_use_since is not None
                    state = self.health(group, reg, now)[0] if used else st.last_states.get(key, "unused")
                    st.departed[key] = Departure(reg, now, state, delay if used else 0.0)
                st.probes.pop(key, None)
                st.targets.pop(key, None)
                group.targets.pop(key, None)
                if reg is not None and st.in_use_since is not None and delay > 0:
                    st.draining[key] = (reg, now + delay)

    # -- validation moto skips -----------------------------------------------------------------
    @staticmethod
    def check_actions(actions: list[dict] | None) -> None:
        for action in actions or ():
            if action.get("Type", action.get("type")) != "forward":
                continue
            groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
            if len(groups) > MAX_GROUPS_PER_FORWARD:
                raise _error(
                    "ValidationError",
                    f"A forward action can have at most {MAX_GROUPS_PER_FORWARD} target groups, not {len(groups)}",
                )
            for g in groups:
                weight = g.get("Weight", 1)
                try:
                    ok = 0 <= int(weight) <= MAX_WEIGHT
                except (TypeError, ValueError):
                    ok = False
                if not ok:
                    raise _error(
                        "ValidationError", f"Target group weight {weight!r} is not in the range 0-{MAX_WEIGHT}"
                    )
            # AWS's documentation does not say that a forward whose weights are all 0 is accepted, nor that
            # its groups are then health-checked. Assumed refused here, so nothing awsctl does relies on it.
            if groups and all(str(g.get("Weight", 1)) == "0" for g in groups):
                raise _error(
                    "ValidationError", "A forward action needs at least one target group with a weight above 0"
                )

    @staticmethod
    def check_new_oidc(actions: list[dict] | None) -> None:
        """A new rule's authenticate-oidc needs its ClientSecret: UseExistingClientSecret is only for
        ModifyRule (there is no existing secret yet), and Describe* never returns one to copy."""
        for action in actions or ():
            if action.get("Type", action.get("type")) != "authenticate-oidc":
                continue
            config = action.get("AuthenticateOidcConfig") or {}
            if not config.get("ClientSecret"):
                raise _error(
                    "ValidationError", "A client secret must be specified when creating an authenticate-oidc action"
                )

    @staticmethod
    def check_oidc_resent(actions: list[dict] | None) -> None:
        """ModifyRule and ModifyListener: an authenticate-oidc action must carry its ClientSecret again, or
        say UseExistingClientSecret: true. Describe* never returns the secret, so an action read back and
        sent as it is fails (a restore of a taken-over rule must say to keep the secret)."""
        for action in actions or ():
            if action.get("Type", action.get("type")) != "authenticate-oidc":
                continue
            config = action.get("AuthenticateOidcConfig") or {}
            if not config.get("ClientSecret") and str(config.get("UseExistingClientSecret")).lower() != "true":
                raise _error(
                    "ValidationError",
                    "You must specify a client secret for an authenticate-oidc action, "
                    "or set UseExistingClientSecret to true",
                )

    @staticmethod
    def hide_secrets(stored: Any) -> None:
        """AWS keeps an OIDC client secret and never shows it: Describe* returns the action without
        ClientSecret (moto would echo it). The stored copy drops it, as what AWS shows is all anyone reads."""
        for holder in stored if isinstance(stored, list) else [stored]:
            for action in list(getattr(holder, "actions", None) or ()) + list(
                getattr(holder, "default_actions", None) or ()
            ):
                config = getattr(action, "data", {}).get("AuthenticateOidcConfig")
                if isinstance(config, dict):
                    config.pop("ClientSecret", None)
                    config.pop("UseExistingClientSecret", None)

    @staticmethod
    def check_conditions(conditions: list[dict] | None) -> None:
        for condition in conditions or ():
            count = _condition_value_count(condition)
            if count > MAX_VALUES_PER_CONDITION:
                raise _error(
                    "ValidationError",
                    f"A condition can only have '{MAX_VALUES_PER_CONDITION}' values; "
                    f"this {condition.get('Field', 'condition')} condition has {count}",
                )
        values = sum(_condition_value_count(c) for c in conditions or ())
        if values > MAX_CONDITION_VALUES:
            raise _error(
                "ValidationError",
                f"A rule can only have '{MAX_CONDITION_VALUES}' condition values; this one has {values}",
            )

    @staticmethod
    def check_one_load_balancer(backend: Any, lb_arn: str | None, actions: list[dict] | None) -> None:
        """AWS: a target group of an Application Load Balancer is used by one load balancer; forwarding to it
        from a listener of another is refused (TargetGroupAssociationLimit). moto accepts it."""
        for action in actions or ():
            if action.get("Type", action.get("type")) != "forward":
                continue
            for arn in backend._get_target_group_arns_from(action_data=action):
                others = {
                    lb.arn
                    for lb in backend.load_balancers.values()
                    for listener in lb.listeners.values()
                    for rule in listener.rules.values()
                    for used in rule.actions
                    if arn in backend._get_target_group_arns_from(action_data=used.data)
                } - {lb_arn}
                if others:
                    raise _error(
                        "TargetGroupAssociationLimit",
                        f"The following target groups cannot be associated with more than one load balancer: {arn}",
                    )

    @staticmethod
    def check_protocols(backend: Any, protocol: str | None, actions: list[dict] | None) -> None:
        """A listener forwards only to target groups of a protocol it can carry; a weighted forward on a
        TLS listener has no stickiness."""
        allowed = CARRIES.get((protocol or "").upper())
        for action in actions or ():
            if action.get("Type", action.get("type")) != "forward":
                continue
            for arn in backend._get_target_group_arns_from(action_data=action):
                group = backend.target_groups.get(arn)
                theirs = (getattr(group, "protocol", None) or "").upper()
                if allowed is not None and theirs and theirs not in allowed:
                    raise _error(
                        "IncompatibleProtocols",
                        f"Listener protocol '{protocol}' is not compatible with target group protocol '{theirs}'",
                    )
            sticky = (action.get("ForwardConfig") or {}).get("TargetGroupStickinessConfig") or {}
            if (protocol or "").upper() == "TLS" and str(sticky.get("Enabled")).lower() == "true":
                raise _error("ValidationError", "Target group stickiness is not supported on TLS listeners")

    @staticmethod
    def check_network_rule(backend: Any, listener_arn: str, conditions: list[dict] | None) -> None:
        """A Network Load Balancer's rules match the source address type only, and only on a dual-stack one."""
        listener = backend.describe_listeners(None, [listener_arn])[0]
        lb = backend.load_balancers.get(listener.load_balancer_arn)
        if lb is None or getattr(lb, "type", "application") != "network":
            return
        fields = sorted({str(c.get("Field")) for c in conditions or () if c.get("Field") in LAYER7_CONDITIONS})
        if fields:
            raise _error(
                "ValidationError",
                f"A Network Load Balancer listener rule can only match the source IP address type, not {', '.join(fields)}",
            )
        if getattr(lb, "ip_address_type", "ipv4") != "dualstack":
            raise _error("ValidationError", "Listener rules need a dual-stack Network Load Balancer")

    @staticmethod
    def protocol_of(backend: Any, listener_arn: str | None) -> str | None:
        found = backend.describe_listeners(None, [listener_arn]) if listener_arn else []
        return found[0].protocol if found else None

    @staticmethod
    def load_balancer_of(backend: Any, *, listener_arn: str | None = None, rule_arn: str | None = None) -> str | None:
        for lb in backend.load_balancers.values():
            for listener in lb.listeners.values():
                if listener.arn == listener_arn or (rule_arn and rule_arn in listener.rules):
                    return lb.arn
        return None

    @staticmethod
    def check_rule_count(backend: Any, listener_arn: str) -> None:
        listener = backend.describe_listeners(None, [listener_arn])[0]
        lb = backend.load_balancers.get(listener.load_balancer_arn)
        listeners = lb.listeners.values() if lb is not None else [listener]
        rules = sum(len(getattr(lst, "_non_default_rules", {})) for lst in listeners)
        if rules >= MAX_RULES_PER_LOAD_BALANCER:
            raise _error("TooManyRules", f"The load balancer already has {rules} rules, the most it can have")

    # -- patching -------------------------------------------------------------------------------
    def install(self) -> Realism:
        from moto.elbv2 import exceptions as moto_errors
        from moto.elbv2 import models, responses

        backend_cls, response_cls = models.ELBv2Backend, responses.ELBV2Response
        # Throttling is a common AWS error, not an ELBv2 model shape; moto warns on each one.
        warnings.filterwarnings("ignore", message=".*code Throttling does not match an error shape.*")
        layer = self

        def patch(owner: Any, name: str, make: Callable[[Callable], Callable]) -> None:
            original = getattr(owner, name)
            setattr(owner, name, make(original))
            self._undo.append(lambda: setattr(owner, name, original))

        def call_action(original):
            def call(resp):
                action = resp._get_action()
                observer = (resp.headers or {}).get(OBSERVER_HEADER)
                if action and not observer and not layer.admit(resp.current_account, resp.region, action):
                    raise_into = _error("Throttling", "Rate exceeded")
                    status, headers, body = resp.serialized(_action_result(raise_into))
                    headers["status"] = status
                    return status, headers, body
                return original(resp)

            return call

        def group(backend, arn):
            found = backend.target_groups.get(arn)
            if found is None:
                raise moto_errors.TargetGroupNotFoundError()
            return found

        def register_targets(_original):
            return lambda backend, arn, instances: layer.register(group(backend, arn), instances)

        def deregister_targets(_original):
            return lambda backend, arn, instances: layer.deregister(
                group(backend, arn), instances, moto_errors.InvalidTargetError
            )

        def describe_target_health(_original):
            return lambda backend, arn, targets: layer.describe(
                group(backend, arn), targets or [], models.FakeHealthStatus
            )

        def route_change(original, validate=None):
            def changed(backend, *args, **kwargs):
                with layer.lock:  # a data plane reads rules under the same lock: never a half-made change
                    if validate:
                        validate(backend, *args, **kwargs)
                    result = original(backend, *args, **kwargs)
                    layer.hide_secrets(result)
                    layer.refresh_use(backend)
                return result

            return changed

        def validate_create_rule(backend, listener_arn, conditions, priority, actions, tags=None):
            layer.check_network_rule(backend, listener_arn, conditions)
            layer.check_conditions(conditions)
            layer.check_actions(actions)
            layer.check_protocols(backend, layer.protocol_of(backend, listener_arn), actions)
            layer.check_new_oidc(actions)
            layer.check_rule_count(backend, listener_arn)
            layer.check_one_load_balancer(backend, layer.load_balancer_of(backend, listener_arn=listener_arn), actions)

        def validate_modify_rule(backend, rule_arn, conditions, actions):
            listener_arn = next(
                (
                    lst.arn
                    for lb in backend.load_balancers.values()
                    for lst in lb.listeners.values()
                    if rule_arn in lst.rules
                ),
                None,
            )
            if listener_arn and conditions:
                layer.check_network_rule(backend, listener_arn, conditions)
            layer.check_conditions(conditions)
            layer.check_actions(actions)
            layer.check_protocols(backend, layer.protocol_of(backend, listener_arn), actions)
            layer.check_oidc_resent(actions)
            layer.check_one_load_balancer(backend, layer.load_balancer_of(backend, rule_arn=rule_arn), actions)

        def listener_actions(args, kwargs):
            return (
                kwargs.get("default_actions")
                or kwargs.get("actions")
                or next(
                    (a for a in args if isinstance(a, list) and a and isinstance(a[0], dict) and "Type" in a[0]), None
                )
            )

        def validate_modify_listener(backend, *args, **kwargs):
            layer.check_actions(listener_actions(args, kwargs))
            layer.check_oidc_resent(listener_actions(args, kwargs))
            arn = kwargs.get("arn") or (args[0] if args else None)
            # moto's ModifyListener passes (arn, port, protocol, ssl_policy, certificates, default_actions)
            protocol = kwargs.get("protocol") or (args[2] if len(args) > 2 else None) or layer.protocol_of(backend, arn)
            layer.check_protocols(backend, protocol, listener_actions(args, kwargs))
            lb = layer.load_balancer_of(backend, listener_arn=arn)
            layer.check_one_load_balancer(backend, lb, listener_actions(args, kwargs))

        def validate_create_listener(backend, *args, **kwargs):
            layer.check_actions(listener_actions(args, kwargs))
            layer.check_new_oidc(listener_actions(args, kwargs))
            protocol = kwargs.get("protocol") or (args[1] if len(args) > 1 else None)
            layer.check_protocols(backend, protocol, listener_actions(args, kwargs))
            lb = kwargs.get("load_balancer_arn") or (args[0] if args else None)
            layer.check_one_load_balancer(backend, lb, listener_actions(args, kwargs))

        from moto.cloudwatch import models as cloudwatch_models

        exact = threading.local()

        def exact_statistics(original):
            def call(*args, **kwargs):
                exact.on = True
                try:
                    return original(*args, **kwargs)
                finally:
                    exact.on = False

            return call

        def exact_filter(original):
            def matches(datum, namespace, name, dimensions, already_present_metrics=None):
                found = original(datum, namespace, name, dimensions, already_present_metrics)
                if found and dimensions and getattr(exact, "on", False):
                    return len(datum.dimensions) == len(dimensions)
                return found

            return matches

        network = threading.local()

        def typed_arn(original):
            def make(*args, **kwargs):
                arn = original(*args, **kwargs)
                return (
                    arn.replace(":loadbalancer/app/", ":loadbalancer/net/", 1) if getattr(network, "on", False) else arn
                )

            return make

        def create_load_balancer(original):
            def create(backend, *args, **kwargs):
                network.on = kwargs.get("loadbalancer_type") == "network"
                try:
                    return original(backend, *args, **kwargs)
                finally:
                    network.on = False

            return create

        cloudwatch_cls = cloudwatch_models.CloudWatchBackend
        patch(cloudwatch_cls, "get_metric_statistics", exact_statistics)
        patch(cloudwatch_models.MetricDatumBase, "filter", exact_filter)
        patch(response_cls, "call_action", call_action)
        patch(models, "make_arn_for_load_balancer", typed_arn)
        patch(backend_cls, "create_load_balancer", create_load_balancer)
        patch(backend_cls, "register_targets", register_targets)
        patch(backend_cls, "deregister_targets", deregister_targets)
        patch(backend_cls, "describe_target_health", describe_target_health)
        patch(backend_cls, "create_rule", lambda o: route_change(o, validate_create_rule))
        patch(backend_cls, "modify_rule", lambda o: route_change(o, validate_modify_rule))
        patch(backend_cls, "modify_listener", lambda o: route_change(o, validate_modify_listener))
        patch(backend_cls, "create_listener", lambda o: route_change(o, validate_create_listener))
        for name in (
            "delete_rule",
            "delete_listener",
            "delete_load_balancer",
            "set_rule_priorities",
            "delete_target_group",
        ):
            patch(backend_cls, name, route_change)
        return self

    def uninstall(self) -> None:
        while self._undo:
            self._undo.pop()()


REGISTERING = ("Elb.RegistrationInProgress", "Target registration is in progress")
_DRAINING = ("draining", "Target.DeregistrationInProgress", "Target deregistration is in progress")
_FAILED = ("Target.FailedHealthChecks", "Health checks failed")


def _error(code: str, message: str) -> Exception:
    from moto.elbv2.exceptions import ELBClientError

    return ELBClientError(code, message)


def _action_result(err: Exception):
    from moto.core.responses import ActionResult

    return ActionResult(err)


def _cross_zone_off(group: Any) -> bool:
    return str((getattr(group, "attributes", None) or {}).get("load_balancing.cross_zone.enabled")) == "false"


def _zones_using(backend: Any, group_arn: str) -> frozenset[str]:
    """The zones of every load balancer with a listener (default action or rule) that forwards to the group."""
    zones: set[str] = set()
    for lb in backend.load_balancers.values():
        for listener in lb.listeners.values():
            if any(
                group_arn in backend._get_target_group_arns_from(action_data=action.data)
                for rule in listener.rules.values()
                for action in rule.actions
            ):
                zones |= {subnet.availability_zone for subnet in lb.subnets}
    return frozenset(zones)


def _subnet_zone(group: Any, ip: str) -> str | None:
    """The zone of the group's VPC subnet that holds `ip` (moto's EC2 state, same account and region)."""
    from moto.ec2.models import ec2_backends

    _, _, _, region, account, _ = group.arn.split(":", 5)
    try:
        address = ipaddress.ip_address(ip)
        subnets = [s for zone in ec2_backends[account][region].subnets.values() for s in zone.values()]
    except (ValueError, KeyError):
        return None
    for subnet in subnets:
        if subnet.vpc_id != group.vpc_id:
            continue
        for block in (subnet.cidr_block, getattr(subnet, "ipv6_cidr_block", None)):
            if block and address in ipaddress.ip_network(block, strict=False):
                return subnet.availability_zone
    return None


def _check_address_family(group: Any, target_id: str) -> None:
    if getattr(group, "target_type", "") != "ip":
        return
    try:
        version = ipaddress.ip_address(target_id).version
    except ValueError:
        raise _error("ValidationError", f"'{target_id}' is not a valid IP address") from None
    family = (getattr(group, "ip_address_type", None) or "ipv4").lower()
    if (version == 6) != (family == "ipv6"):
        raise _error(
            "ValidationError",
            f"The IP address '{target_id}' is not a valid "
            f"{'IPv6' if family == 'ipv6' else 'IPv4'} address for this target group",
        )


def _condition_value_count(condition: dict) -> int:
    """How AWS counts a rule's condition values: every host, path, header value, method, IP and
    query-string pair."""
    total = 0
    for key, value in condition.items():
        if key == "Values" and isinstance(value, list):
            total = max(total, len(value))
        elif key.endswith("Config") and isinstance(value, dict):
            total = max(total, len(value.get("Values") or []))
    return total


_INSTALLED: Realism | None = None


def install_once() -> Realism | None:
    """Installs the layer in this process unless `AWSCTL_REALISM=off`; returns it (or None when off)."""
    global _INSTALLED
    if not enabled():
        return None
    if _INSTALLED is None:
        _INSTALLED = Realism().install()
    return _INSTALLED
