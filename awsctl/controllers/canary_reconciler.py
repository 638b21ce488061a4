"""One tick of one Canary: observe Kubernetes and AWS, decide the next step, apply it, write status.

The daemon in controllers/canaries.py calls `tick` once per analysis interval. Every tick
first makes the generated objects, target groups, child bindings and route exist (all
idempotent), then lets planning/rollout.py decide. Status is the only memory, so a killed
operator resumes where it stopped; AWS resources are found again by name and tags.
"""

from __future__ import annotations

import base64
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import cast

from botocore.exceptions import ClientError

from awsctl import metrics
from awsctl.analysis import webhooks
from awsctl.api import canary as api
from awsctl.api.binding import PLURAL as BINDINGS
from awsctl.api.canary import PROGRESS_DEADLINE_SECONDS, CanaryStatus
from awsctl.api.phases import FINISHED, Phase, phase_of
from awsctl.api.schema import SpecError
from awsctl.aws.target_groups import OwnedTargetGroups, TargetGroupConflict
from awsctl.aws.targets import TargetGroups
from awsctl.controllers.alerts import Alerter
from awsctl.controllers.analysis_runner import AnalysisRunner
from awsctl.controllers.binding_reconciler import DRIFT_SECONDS
from awsctl.controllers.canary_groups import Backend, CanaryGroups
from awsctl.controllers.canary_status import CanaryStatusWriter
from awsctl.controllers.coalesce import Coalescer
from awsctl.controllers.errors import NotReady, refusal, route_gone
from awsctl.controllers.generated import REVISION_ANNOTATION, GeneratedObjects
from awsctl.controllers.grants import Grants
from awsctl.controllers.wakeups import Wakeups
from awsctl.kube.client import Kube, epoch, rfc3339
from awsctl.planning import alerts, commands, naming, objects, placement
from awsctl.planning import grants as grant_plan
from awsctl.planning import weights as w
from awsctl.planning.conditions import find_condition, flagged, is_true, refused, set_condition
from awsctl.planning.rollout import (
    ANALYSIS,
    STALLED,
    Ask,
    Observed,
    Policy,
    RolloutState,
    Step,
    ab_routes,
    decide,
    evidence_since,
    let_go,
    needs_health,
    route_max_age,
    when_refused,
)
from awsctl.planning.targets import serves_only
from awsctl.routing import Ledger, RouteGone, Router, WeightResult, ab_active

log = logging.getLogger("awsctl.canary")
WEIGHTED = (Phase.PROGRESSING, Phase.WAITING_PROMOTION, Phase.BAKING)  # the canary's weight is watched there
INVALID_SPEC_RETRY = 30.0  # seconds between looks at a Canary whose spec cannot be parsed
REFUSAL_FIELDS = {
    "TooManyRules": "spec.loadBalancer.rule.priority",
    "PriorityInUse": "spec.loadBalancer.rule.priority",
    "TooManyTargetGroups": "spec.loadBalancer.targetGroup",
    "TooManyUniqueTargetGroupsPerLoadBalancer": "spec.loadBalancer.targetGroup",
    "UnsupportedProtocol": "spec.loadBalancer.targetGroup.protocol",
}


@dataclass(frozen=True)
class Ground:
    """What a tick stands on once the objects the Canary owns are ensured."""

    target: dict  # your Deployment
    primary: dict  # the generated primary Deployment
    user_apex: dict | None  # your apex Service, when it is yours (not generated)
    backends: list[Backend]  # every Service on each side, with its target group
    revision: str  # your Deployment's template hash


@dataclass(frozen=True)
class Seen:
    """What a tick observed, for decide() and apply."""

    state: RolloutState  # as recorded (a weight written before a restart adopted)
    observed: Observed
    primary_side: list[w.Backend]
    canary_side: list[w.Backend]
    health: SideHealth
    shown: dict[str, int] | None  # the weights the live route shows, when they are the verified ones

    @property
    def primary_arns(self) -> list[str]:
        return [b.arn for b in self.primary_side]

    @property
    def canary_arns(self) -> list[str]:
        return [b.arn for b in self.canary_side]


class SideHealth:
    """Per target group, what its binding wants and what AWS shows healthy of that (from the child
    bindings' status, read once per tick on first use): a side is ready only when every endpoint
    its bindings want is registered and healthy, never when any one target of the group is."""

    def __init__(self, load: Callable[[], dict[str, dict]]):
        self._load = load
        self._data: dict[str, dict] | None = None

    def of(self, arn: str) -> dict:
        if self._data is None:
            self._data = self._load()
        return self._data.get(arn) or {}

    def serving(self, arns) -> dict[str, int]:
        """Healthy desired targets per group: what the void guard needs (a group with 0 gets no weight)."""
        return {arn: int(self.of(arn).get("healthyTargets") or 0) for arn in arns}

    def ready(self, arns, minimum: Mapping[str, int] | None = None) -> bool:
        """`minimum`: at least this many desired targets per group (a generated Service's binding must
        want every replica of its Deployment: EndpointSlices lag the Deployment's own status)."""
        minimum = minimum or {}
        return bool(arns) and all(
            _binding_ready(self.of(arn)) and int(self.of(arn).get("desiredTargets") or 0) >= minimum.get(arn, 1)
            for arn in arns
        )

    def describe(self, arns) -> str:
        """`group: 1/3 healthy (2 initial)` per group, for messages that say what is awaited."""
        parts = []
        for arn in arns:
            st = self.of(arn)
            states = ", ".join(f"{n} {k}" for k, n in sorted((st.get("targetHealth") or {}).items()) if k != "healthy")
            if st.get("unroutableTargets"):
                states += f"{', ' if states else ''}{st['unroutableTargets']} never routed: zone not enabled"
            parts.append(
                f"{naming.group_of(arn)}: {st.get('healthyTargets', 0)}/{st.get('desiredTargets', 0)} "
                f"healthy{f' ({states})' if states else ''}"
            )
        return "; ".join(parts)


def _replicas_behind(backends: list[Backend], role: str, deployment: Mapping | None) -> dict[str, int]:
    """The generated Service of a side selects exactly its Deployment's pods."""
    replicas = int(((deployment or {}).get("spec") or {}).get("replicas", 1))
    return {b.arn: replicas for b in backends if b.role == role and b.generated}


def _binding_ready(status: dict) -> bool:
    """Every target AWS will route to is healthy, and there is one. Targets AWS never checks (a zone the
    load balancer does not enable) are left out: waiting on them blocked a side forever."""
    desired = int(status.get("desiredTargets") or 0)
    routable = desired - int(status.get("unroutableTargets") or 0)
    healthy = int(status.get("healthyTargets") or 0)
    return desired > 0 and routable > 0 and healthy == routable and is_true(status.get("conditions"), "Ready")


def policy_of(spec: api.CanarySpec) -> Policy:
    a = spec.analysis
    return Policy(
        steps=a.steps,
        max_weight=a.max_weight,
        threshold=a.threshold,
        step_promotion=a.step_promotion,
        iterations=a.iterations,
        progress_deadline=float(spec.progress_deadline_seconds),
        skip_analysis=spec.skip_analysis,
        suspend=spec.suspend,
        hooks=frozenset(h.type for h in a.webhooks),
        no_data_tolerance=a.no_data_tolerance,
        bake_weight=a.bake.weight if a.bake else None,
        bake_seconds=a.bake.duration_seconds if a.bake else 0.0,
        ab_testing=bool(a.match),
    )


def state_of(status: Mapping) -> RolloutState:
    return RolloutState(
        phase=phase_of(status.get("phase")),
        weight=w.from_percent(status.get("canaryWeight")),
        failed_checks=int(status.get("failedChecks") or 0),
        iterations=int(status.get("iterations") or 0),
        last_applied=status.get("lastAppliedSpec") or "",
        last_promoted=status.get("lastPromotedSpec") or "",
        transition_at=epoch(status.get("lastTransitionTime")),
        no_data=int(status.get("noDataChecks") or 0),
        unavailable_since=epoch(status.get("unavailableSince")) if status.get("unavailableSince") else 0.0,
    )


def _int_or(value: object, default: int) -> int:
    """A field of a spec that did not parse, when it is still a positive whole number."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default


def deployment_ready(dep: Mapping | None) -> bool:
    """Rolled out: the controller saw the latest spec and every one of its (at least one) replicas is
    updated and available; a Deployment scaled to 0 is not ready to take traffic."""
    if not dep:
        return False
    spec, st = dep.get("spec") or {}, dep.get("status") or {}
    want = int(spec.get("replicas", 1))
    return (
        want >= 1
        and (st.get("observedGeneration") or 0) >= (dep["metadata"].get("generation") or 0)
        and (st.get("updatedReplicas") or 0) >= want
        and (st.get("availableReplicas") or 0) >= want
        and (st.get("replicas") or 0) == want
    )


class CanaryReconciler:
    def __init__(
        self,
        kube: Kube,
        groups: TargetGroups,
        owned: OwnedTargetGroups,
        traffic: Router,
        analysis: AnalysisRunner,
        cluster: str,
        clock: Callable[[], float] = time.time,
        drift_seconds: float = DRIFT_SECONDS,
        grants: Grants | None = None,
    ):
        self.kube = kube
        self.grants = grants or Grants(kube)
        self.drift_seconds = drift_seconds  # how often a Canary at rest reads its route
        self.analysis = analysis
        self.groups = groups
        self.owned = owned
        self.traffic = traffic
        self.cluster = cluster
        self.clock = clock
        self.locks = Coalescer()
        self.wakeups = Wakeups()
        self.status = CanaryStatusWriter(kube)
        self.generated = GeneratedObjects(kube)
        self.alerter = Alerter(kube)
        self.canary_groups = CanaryGroups(kube, groups, owned, cluster)
        self.on_groups_attached: Callable[[str, str], None] | None = None  # (namespace, Canary name)

    def tick(self, namespace: str, name: str) -> float:
        """Returns the seconds until the next tick (the Canary's own analysis interval)."""
        return self.locks.exclusive((namespace, name), lambda: self._tick_measured(namespace, name))

    def _tick_measured(self, namespace: str, name: str) -> float:
        started = time.monotonic()
        body = self.kube.get_custom(api.PLURAL, namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            metrics.canary_removed(namespace, name)
            return 1.0
        with self.status.tick(body):  # one PATCH of status per tick, besides the write-aheads
            interval = self._tick_safely(body)
        metrics.canary_observed(namespace, name, body.get("status"), time.monotonic() - started)
        return interval

    def _tick_safely(self, body: dict) -> float:
        try:
            spec = api.CanarySpec.parse(body.get("spec") or {})
            self.traffic.check(spec)
        except SpecError as err:
            self._refused(body, None, NotReady("InvalidSpec", str(err), err.field))
            return INVALID_SPEC_RETRY
        try:
            self._tick(body, spec)
        except NotReady as why:
            self._refused(body, spec, why)
        except TargetGroupConflict as err:
            self._refused(body, spec, NotReady("TargetGroupConflict", str(err), "spec.loadBalancer.targetGroup"))
        except RouteGone as err:
            self._refused(body, spec, route_gone(err))
        except ClientError as err:  # AWS said no to the input: a condition and one event, not a loop
            code = (err.response.get("Error") or {}).get("Code", "")
            refused = refusal(
                err, f"a change for this Canary ({err.operation_name})", REFUSAL_FIELDS.get(code, "spec.loadBalancer")
            )
            if refused is None:
                raise
            self._refused(body, spec, refused)
        return spec.analysis.interval_seconds

    def _refused(self, body: dict, spec: api.CanarySpec | None, why: NotReady) -> None:
        """A refused tick: the condition and one event, and, while a canary is in flight, what must
        still work without decide(): `awsctl abort`, and the progress deadline, each taking the weight
        back to 0 (verified) from the route and groups recorded in status (invariant 15)."""
        self._refuse(body, why)
        status = body.get("status") or {}
        state = state_of(status)
        ready = find_condition(status.get("conditions"), "Ready") or {}
        since = epoch(ready["lastTransitionTime"]) if ready.get("lastTransitionTime") else self.clock()
        raw = body.get("spec") or {}
        step = when_refused(
            state,
            self.clock(),
            since,
            commands.pending(body["metadata"].get("annotations"), status.get("commands"), state.last_applied),
            float(
                spec.progress_deadline_seconds
                if spec
                else _int_or(raw.get("progressDeadlineSeconds"), PROGRESS_DEADLINE_SECONDS)
            ),
            why.message,
            suspended=spec.suspend if spec else raw.get("suspend") is True,
        )
        if step is None:
            return
        groups = status.get("targetGroups") or {}
        primary, canary = list(groups.get("primary") or ()), list(groups.get("canary") or ())
        try:
            result = self.traffic.set_weight(
                None,
                self.ledger(body),
                [w.Backend(arn) for arn in primary],
                [w.Backend(arn) for arn in canary],
                0,
                self.canary_groups.healthy_arns(primary),
            )
        except (RouteGone, ClientError) as err:
            log.warning(f"rollback of a refused Canary failed: {err}", extra={"canary": self._key(body)})
            return
        if result is not None and not result.verified:
            log.warning(result.message, extra={"canary": self._key(body), "asked": 0})
            return
        self._announce(body, "Warning", step.reason, step.message)
        self._record_commands(body, step.commands, step, step.state)
        release = spec.load_balancer.release_seconds if spec is not None else float(api.PROPAGATION_SECONDS)
        scale_down_at = rfc3339(self.clock() + release)
        now = rfc3339(self.clock())
        promoted = set_condition(
            (body.get("status") or {}).get("conditions"),
            type="Promoted",
            status=False,
            reason=step.reason,
            message=step.message,
            now=now,
            generation=body["metadata"].get("generation"),
        )
        self._quiet(
            body,
            {
                "phase": step.state.phase,
                "canaryWeight": 0,
                "pendingWeight": None,
                "lastTransitionTime": now,
                "message": step.message,
                "scaleDownAt": scale_down_at,  # once the nodes have applied the weight 0 (a tick then)
                "conditions": promoted,  # now, not at the next parsed tick
            },
        )

    # -- the story ------------------------------------------------------------------------------
    def _tick(self, body: dict, spec: api.CanarySpec) -> None:
        """One tick: what the Canary owns made right, what is there observed, the step decided (pure,
        planning/rollout.py), applied and verified, then what follows from where it stands."""
        ground = self._prepare(body, spec)
        seen = self._observe(body, spec, ground)
        step = self._decide(body, spec, seen.state, seen.observed, seen.canary_arns, seen.primary_arns)
        state, message, verified = self._apply(
            body, spec, step, ground.target, ground.primary, seen.primary_side, seen.canary_side, seen.health
        )
        self._follow_up(body, spec, ground, seen, step, state, message, verified or seen.shown)

    def _prepare(self, body: dict, spec: api.CanarySpec) -> Ground:
        """Refuses what cannot run (naming the field), then ensures what the Canary owns: the primary,
        the generated Services, the target groups and their bindings, and their record in status."""
        meta = body["metadata"]
        ns = meta["namespace"]
        self.grants.check(ns, grant_plan.canary_asks(spec, ns))  # before any write, every tick
        target = self.kube.get_deployment(ns, spec.target_name)
        if target is None:
            raise NotReady(
                "TargetNotFound",
                f"spec.targetRef.name: Deployment {ns}/{spec.target_name} does not exist",
                "spec.targetRef.name",
            )
        apex = self.kube.get_service(ns, spec.service.name)
        user_apex = apex if apex and not objects.owned_by(apex, meta["uid"]) else None
        headless = (
            spec.service.headless
            if spec.service.headless is not None
            else bool(user_apex and (user_apex.get("spec") or {}).get("clusterIP") == "None")
        )
        if headless and spec.load_balancer.target_type == "instance":
            raise NotReady(
                "InstanceTargetOnHeadless",
                f"spec.loadBalancer.targetType: Service {spec.service.name} is headless (no NodePort); "
                "instance targets cannot reach it, use targetType: ip",
                "spec.loadBalancer.targetType",
            )
        target_type = "ip" if headless else spec.load_balancer.target_type
        blind = spec.analysis.blind_metrics()
        if blind:
            field = f"spec.analysis.metrics[{blind[0]}]"
            raise NotReady(
                "MetricsNeedTraffic",
                f"{field}: {spec.analysis.metrics[blind[0]].name} cannot judge a "
                "blue/green canary (iterations without match): it gets no ALB traffic. Use webhooks "
                "(type rollout), a custom query, or alarms instead",
                field,
            )
        backends = self._backends(ns, spec)
        revision = objects.template_hash(target)

        primary = self.generated.ensure_primary(body, spec, target, self.status.writer(body))
        before = body.get("status") or {}
        starting = before.get("phase") in (None, Phase.INITIALIZING) or before.get("lastAppliedSpec") != revision
        self.generated.ensure_primary_autoscaler(body, spec, target, check=starting)
        family = self.generated.ensure_services(body, spec, target, apex, user_apex, headless, target_type)
        place = placement.placement(body.get("status") or {}, spec.load_balancer.listener_arn)
        backends = self.canary_groups.ensure(body, spec, backends, target_type, family, place)
        if place.retiring is not None:
            self._announce(
                body,
                "Normal",
                "TargetGroupsMoving",
                f"spec.loadBalancer.listenerARN is on load balancer {place.load_balancer}: a target group serves "
                "one load balancer, so new groups are made there; the old ones go once the move is verified",
            )
        self.status.write(
            body,
            body.get("status") or {},
            {
                "groupsAt": {"loadBalancer": place.load_balancer, "key": place.key},
                **({"retiringGroups": cast(api.RetiringGroups, place.retiring)} if place.retiring is not None else {}),
                "targetGroups": {
                    "primary": [b.arn for b in backends if b.role == "primary"],
                    "canary": [b.arn for b in backends if b.role == "canary"],
                },
                "backends": {
                    "primary": [b.key for b in backends if b.role == "primary"],
                    "canary": [b.key for b in backends if b.role == "canary"],
                },
            },
        )
        return Ground(target, primary, user_apex, backends, revision)

    def _observe(self, body: dict, spec: api.CanarySpec, ground: Ground) -> Seen:
        """The recorded state, the route held on its last verified weight (drift repaired, a write from
        before a restart adopted), and what decide() needs to know of the Deployments and targets."""
        meta, status = body["metadata"], body.get("status") or {}
        target, primary, backends, revision = ground.target, ground.primary, ground.backends, ground.revision
        health = SideHealth(lambda: self._binding_health(body))
        state = state_of(status)
        primary_side = [w.Backend(b.arn, b.share) for b in backends if b.role == "primary"]
        canary_side = [w.Backend(b.arn, b.share) for b in backends if b.role == "canary"]
        primary_arns, canary_arns = [b.arn for b in primary_side], [b.arn for b in canary_side]
        shown = None
        if state.phase != Phase.INITIALIZING:
            max_age = route_max_age(
                state, revision, objects.spec_changed(body), spec.analysis.interval_seconds, self.drift_seconds
            )
            shown = self._hold_weight(body, spec, state.weight, primary_side, canary_side, health, max_age)
            state = state_of(body.get("status") or {})  # may have adopted a weight written before a restart

        look = needs_health(policy_of(spec), state, revision)  # steady state: decide() reads no health
        observed = Observed(
            revision=revision,
            now=self.clock(),
            primary_ready=deployment_ready(primary),
            primary_revision=((primary or {}).get("metadata", {}).get("annotations") or {}).get(REVISION_ANNOTATION)
            or "",
            canary_ready=deployment_ready(target),
            primary_healthy=not look or health.ready(primary_arns, _replicas_behind(backends, "primary", primary)),
            canary_healthy=not look or health.ready(canary_arns, _replicas_behind(backends, "canary", target)),
            details={"primary-targets": health.describe(primary_arns), "canary-targets": health.describe(canary_arns)}
            if look
            else {},
            commands=commands.pending(meta.get("annotations"), status.get("commands"), state.last_applied),
        )
        observed = self._watch_weighted(observed, state, canary_arns)
        return Seen(state, observed, primary_side, canary_side, health, shown)

    def _follow_up(
        self,
        body: dict,
        spec: api.CanarySpec,
        ground: Ground,
        seen: Seen,
        step: Step,
        state: RolloutState,
        message: str,
        shown: Mapping[str, int] | None,
    ) -> None:
        """After the step: the commands it handled, the warm-up and A/B routes, your apex Service, the
        canary scaled down once drained, groups of an old load balancer retired, and the status written.
        `shown`: the weights AWS verifiably shows (this step's, or the held ones)."""
        meta = body["metadata"]
        target, user_apex = ground.target, ground.user_apex
        self._record_commands(body, seen.observed.commands, step, state)
        self._warm_up(body, spec, seen.primary_side, seen.canary_side, shown)
        self._sync_ab(body, spec, step if state is step.state else None, state, seen.canary_side, seen.observed)
        if user_apex is not None:
            self._point_apex(body, spec, user_apex, target, state, taken_over=seen.state.phase == Phase.INITIALIZING)
        self._scale_down_when_drained(body, spec, step, state, target, user_apex is not None)
        self._retire_groups(body, spec)
        lb = spec.load_balancer
        gap = objects.termination_gap(
            target, spec.termination_delay_seconds, lb.target_group.deregistration_delay, lb.propagation_seconds
        )
        self._write_rollout(body, state, step, message, spec, gap)
        self.wakeups.phase((meta["namespace"], meta["name"]), state.phase)

    def _record_commands(self, body: dict, asked: frozenset[str], step: Step, state: RolloutState) -> None:
        """A command counts as handled once its step took effect; reaching Failed or Succeeded makes
        the rest moot (a promote asked before a rollback must not promote the retried revision)."""
        if not asked or state is not step.state:
            return
        done = step.commands | (asked if state.phase in FINISHED else frozenset())
        if done:
            status = body.get("status") or {}
            self.status.write(
                body,
                status,
                {"commands": commands.handled_after(body["metadata"].get("annotations"), status.get("commands"), done)},
            )

    def _watch_weighted(self, observed: Observed, state: RolloutState, canary_arns: list[str]) -> Observed:
        """While the canary carries weight, its groups' health read from AWS this tick (one DescribeTargetHealth
        per group, through the API budget): a settled binding reads health about once an hour, so its status
        would never show a canary whose every target turned unhealthy."""
        if state.weight <= 0 or state.phase not in WEIGHTED or not canary_arns:
            return observed
        healthy = self.canary_groups.healthy_arns(canary_arns)
        void = [arn for arn, count in healthy.items() if count == 0]
        if not void:
            return observed
        said = "; ".join(f"{naming.group_of(arn)}: no healthy target" for arn in void)
        return replace(observed, canary_void=True, details={**observed.details, "canary-void": said})

    def _retire_groups(self, body: dict, spec: api.CanarySpec) -> None:
        """After a move to another load balancer: the old groups go once the old route is given back and
        loadBalancer.propagationSeconds have passed (planning.placement.retirement)."""
        status = body.get("status") or {}
        retiring = dict(status.get("retiringGroups") or {})
        since = retiring.get("since")
        todo = placement.retirement(
            status, self.clock(), spec.load_balancer.propagation_seconds, None if since is None else epoch(since)
        )
        if todo == "start":
            self.status.write(body, status, {"retiringGroups": {**retiring, "since": rfc3339(self.clock())}})
        elif todo == "remove":
            waiting = self.canary_groups.retire(body, list(retiring.get("arns") or ()))
            if not waiting:
                self.status.write(body, status, {"retiringGroups": None})
                self._announce(
                    body,
                    "Normal",
                    "TargetGroupsRetired",
                    f"the move is complete: {len(retiring.get('arns') or ())} target group(s) of load balancer "
                    f"{retiring.get('loadBalancer')} deleted",
                )

    def _binding_health(self, body: dict) -> dict[str, dict]:
        """Target group ARN -> its child binding's status (desired, healthy, states), current ones only."""
        meta = body["metadata"]
        out = {}
        for b in self.kube.list_custom(BINDINGS, meta["namespace"], f"{objects.CANARY_LABEL}={meta['name']}"):
            st = b.get("status") or {}
            arn = (b.get("spec") or {}).get("targetGroupARN")
            if (
                arn
                and st.get("targetGroupARN") == arn
                and st.get("observedGeneration") == b["metadata"].get("generation")
            ):
                out[arn] = st
        return out

    def ledger(self, body: dict) -> Ledger:
        """The router's access to this Canary's status and events, for this tick."""
        return Ledger(
            status=lambda: body.get("status") or {},
            record=lambda changes: self.status.write(body, body.get("status") or {}, changes, now=True),
            announce=lambda type, reason, message: self._announce(body, type, reason, message),
            owner=self.tags(body, "owner"),
            uid=body["metadata"]["uid"],
        )

    def tags(self, body: dict, role: str) -> dict[str, str]:
        meta = body["metadata"]
        return naming.owner_tags(self.cluster, api.KIND, meta["namespace"], meta["name"], role)

    def _warm_up(
        self, body: dict, spec: api.CanarySpec, primary_side, canary_side, shown: Mapping[str, int] | None
    ) -> None:
        meta = body["metadata"]
        weights = w.target_weights(primary_side, canary_side, 0)
        if self.traffic.warm_up(spec, self.ledger(body), weights, shown):
            if self.on_groups_attached is not None:
                # `unused` targets turn `initial` with no Kubernetes event: the bindings must look again.
                self.on_groups_attached(meta["namespace"], meta["name"])

    def _backends(self, ns: str, spec: api.CanarySpec) -> list[Backend]:
        out = []
        for side in spec.service.backends():
            if not side.generated and self.kube.get_service(ns, side.service) is None:
                raise NotReady(
                    "BackendNotFound",
                    f"{side.field}: Service {ns}/{side.service} does not exist; no traffic shifts until it does",
                    side.field,
                )
            out.append(Backend(side.role, side.service, side.port, side.share, side.generated, side.field))
        return out

    # -- the route and its weights ---------------------------------------------------------------------
    def _may_take(self, health: SideHealth) -> Callable[[Mapping[str, int]], bool]:
        """A route is taken only once no group would get traffic into the void. Taking a route is rare
        and decisive, so AWS is asked afresh too: a binding's counts can be a resync old (a route
        deleted by hand turns its groups `unused` without any Kubernetes event)."""
        return lambda weights: (
            not w.unserved(weights, health.serving(weights))
            and not w.unserved(weights, self.canary_groups.healthy_arns(list(weights)))
        )

    def _hold_weight(
        self,
        body: dict,
        spec: api.CanarySpec,
        permille: int,
        primary_side,
        canary_side,
        health: SideHealth,
        max_age: float,
    ) -> dict[str, int] | None:
        """Keeps AWS on the last verified weight (the router repairs drift, adopts a weight written
        just before a restart, re-takes a deleted rule, follows a moved route). Returns the weights
        the live route shows (None when there is no live route). `max_age`: how old a look at the
        route may be."""
        ledger = self.ledger(body)
        held = self.traffic.hold(spec, ledger, primary_side, canary_side, permille, objects.spec_changed(body), max_age)
        if held.adopted is not None:
            ledger.record({"canaryWeight": w.percent(held.adopted), "pendingWeight": None})
            log.info(
                "adopted the weight written before a restart",
                extra={"canary": self._key(body), "weight": w.percent(held.adopted)},
            )
        if not held.write:
            return held.shown
        result = self._set_weight(body, spec, primary_side, canary_side, permille, health, write_ahead=False)
        if result is None:
            return None
        if held.drift:
            outcome = "restored" if result.verified else f"restoring failed: {result.message}"
            self._announce(body, "Warning", "RouteDrifted", f"{held.drift}; {outcome}")
        return w.target_weights(primary_side, canary_side, permille) if result.verified else None

    def _set_weight(
        self,
        body: dict,
        spec: api.CanarySpec,
        primary_side,
        canary_side,
        permille: int,
        health: SideHealth,
        write_ahead: bool,
        from_permille: int | None = None,
    ) -> WeightResult | None:
        """`from_permille`: the verified weight this write starts from (None: not known, e.g. a drift
        repair). A group whose weight goes up is judged by its health read from AWS now (invariant 14):
        ALB fails open when every target is unhealthy, so a stale count would send traffic to bad pods."""
        arns = [b.arn for b in primary_side + canary_side]
        serving = health.serving(arns)
        before = None if from_permille is None else w.target_weights(primary_side, canary_side, from_permille)
        up = w.raised(before, w.target_weights(primary_side, canary_side, permille))
        if up:
            fresh = self.canary_groups.healthy_arns(up)
            serving = {arn: min(n, fresh[arn]) if arn in fresh else n for arn, n in serving.items()}
        return self.traffic.set_weight(
            spec,
            self.ledger(body),
            primary_side,
            canary_side,
            permille,
            serving,
            self._may_take(health),
            write_ahead,
        )

    def _point_apex(
        self, body: dict, spec: api.CanarySpec, apex: dict, target: dict, state: RolloutState, taken_over: bool
    ) -> None:
        """Your apex Service selects the primary's pods once the route is awsctl's on every node of the load
        balancer: `propagationSeconds` after the tick that took the route over (status.apexAt). Your own group
        (filled from that Service), which the old route forwarded to, loses your pods then; a late node
        still routing by the old rule would find only draining and initial targets there (503s)."""
        if state.phase == Phase.INITIALIZING:
            return
        status = body.get("status") or {}
        if taken_over and not status.get("apexAt"):
            at = self.clock() + spec.load_balancer.propagation_seconds
            status = self.status.write(body, status, {"apexAt": rfc3339(at)})
        due = status.get("apexAt")
        if let_go(epoch(due) if due else None, self.clock()):
            self.generated.point_apex_at_primary(body, apex, target, self.status.writer(body))

    def _scale_down_when_drained(
        self, body: dict, spec: api.CanarySpec, step: Step, state: RolloutState, target: dict, user_apex: bool
    ) -> None:
        """The canary scales to 0 only after the step that asks for it took effect (its weight 0
        verified, not merely 0 before), its A/B rules are gone, and the load balancer's nodes have had
        `propagationSeconds` to apply it (they route by the old weights for a while after the API shows
        the new ones), with stickiness on the whole cookie duration too (at most an hour, by the schema):
        no request, sticky or not, may be sent to pods that are gone; and with your own apex Service,
        once its EndpointSlices serve primary pods only."""
        status = body.get("status") or {}
        now = self.clock()
        took_effect = state is step.state
        if took_effect and step.scale_canary == "down" and state.weight == 0 and status.get("scaleDownAt") is None:
            wait = spec.load_balancer.release_seconds
            status = self.status.write(body, status, {"scaleDownAt": rfc3339(now + wait)})
        due = status.get("scaleDownAt")
        if due is None or state.weight != 0 or ab_active(status) or not let_go(epoch(due), now):
            return
        ns = body["metadata"]["namespace"]
        if user_apex and not serves_only(
            self.kube.endpoint_slices(ns, spec.service.name),
            self.kube.endpoint_slices(ns, naming.primary_name(spec.service.name)),
        ):
            log.info("waiting for the apex Service to serve primary pods only", extra={"canary": self._key(body)})
            return
        if int((target.get("spec") or {}).get("replicas", 0)) != 0:
            self.kube.scale(ns, spec.target_name, 0)
        self.status.write(body, status, {"scaleDownAt": None})

    def _sync_ab(
        self,
        body: dict,
        spec: api.CanarySpec,
        step: Step | None,
        state: RolloutState,
        canary_side,
        observed: Observed,
    ) -> None:
        """`step`: the step that took effect; None when its weight did not verify and `state` is the last one."""
        want = step.ab_routes if step is not None else ab_routes(policy_of(spec), state, observed)
        if want and not ab_active(body.get("status") or {}):
            # Rules that send matching requests to the canary are created on health read now, not on a
            # binding's count: ALB fails open, so a stale count would route them to known-bad pods.
            fresh = self.canary_groups.healthy_arns([b.arn for b in canary_side])
            want = bool(fresh) and all(n > 0 for n in fresh.values())
        was = ab_active(body.get("status") or {})
        self.traffic.sync_ab(spec, self.ledger(body), canary_side, want, lambda: self._oidc_secret(body, spec))
        if was and not ab_active(body.get("status") or {}) and state.weight == 0:
            self._quiet(body)

    def _quiet(self, body: dict, more: CanaryStatus | None = None) -> None:
        """The canary's groups verifiably take no traffic from now on (weight 0, no A/B rule): metric
        periods that start earlier never count for the next revision (target groups are reused across
        revisions). Rounded up to the second that status keeps: never a moment before the verification."""
        changes: CanaryStatus = {**(more or {}), "analysisSince": rfc3339(math.ceil(self.clock()))}
        self.status.write(body, body.get("status") or {}, changes)

    def _judge_evidence(self, body: dict, state: RolloutState, thin: str) -> None:
        """The Evidence condition: False while the period a metric check counted held too few requests to
        judge (one failed request would decide the step), with a Warning event when that starts."""
        status = body.get("status") or {}
        at = f"{w.percent(state.weight):g}%"
        problem = (
            (
                "TooFewRequests",
                f"at {at}: {thin}. Send more traffic, take larger steps (spec.analysis.stepWeights), or lower "
                "the check's min",
            )
            if thin
            else None
        )
        conditions, news = flagged(
            status.get("conditions"),
            type="Evidence",
            problem=problem,
            fine=("EnoughRequests", f"at {at}: every metric check's period held enough requests to judge"),
            now=rfc3339(self.clock()),
            generation=body["metadata"].get("generation"),
        )
        if conditions != status.get("conditions"):
            self.status.write(body, status, {"conditions": conditions})
        if news and problem:
            self._announce(body, "Warning", *problem)

    def _oidc_secret(self, body: dict, spec: api.CanarySpec) -> str | None:
        """The OIDC client secret spec.loadBalancer.oidcClientSecretRef names (None when it names none)."""
        ref = spec.load_balancer.oidc_client_secret
        if ref is None:
            return None
        name, key = ref
        ns = body["metadata"]["namespace"]
        field = "spec.loadBalancer.oidcClientSecretRef"
        encoded = ((self.kube.get_secret(ns, name) or {}).get("data") or {}).get(key)
        if not encoded:
            raise NotReady("SecretNotFound", f"{field}: Secret {ns}/{name} has no key {key!r}", field)
        return base64.b64decode(encoded).decode().strip()

    # -- decide, with gates answered by webhooks ---------------------------------------------------
    def _decide(
        self,
        body: dict,
        spec: api.CanarySpec,
        state: RolloutState,
        observed: Observed,
        canary_groups: list[str],
        primary_groups: list[str],
    ) -> Step:
        gates: dict[str, bool | None] = {}
        details: dict[str, str] = {}
        pending: set[str] = set()
        policy = policy_of(spec)
        status = body.get("status") or {}
        quiet, step_since = status.get("analysisSince"), status.get("stepSince")
        anchor = evidence_since(epoch(quiet) if quiet else None, epoch(step_since) if step_since else None)
        while True:
            out = decide(
                policy, state, replace(observed, gates=dict(gates), details=dict(details), pending=frozenset(pending))
            )
            if not isinstance(out, Ask):
                return out
            for gate in out.gates:
                answer = self.analysis.answer(
                    gate,
                    spec,
                    self._payload(body, state, observed.revision),
                    canary_groups,
                    primary_groups,
                    anchor,
                    observed.now,
                )
                gates[gate], details[gate] = answer.ok, answer.detail
                if gate == ANALYSIS and answer.metrics and answer.ok is not None:  # a judged period
                    self._judge_evidence(body, state, answer.thin)
                if answer.pending:
                    pending.add(gate)
                if answer.metrics or answer.alarms:
                    self.status.write(
                        body, body.get("status") or {}, {"metrics": answer.metrics, "alarms": answer.alarms}
                    )

    @staticmethod
    def _payload(body: dict, state: RolloutState, checksum: str, metadata: Mapping[str, str] | None = None) -> dict:
        meta = body["metadata"]
        return webhooks.payload(meta["name"], meta["namespace"], state.phase, checksum, metadata or {})

    # -- apply: promote, weight (verified), scale, hooks -----------------------------------------------
    def _apply(
        self,
        body: dict,
        spec: api.CanarySpec,
        step: Step,
        target: dict,
        primary: dict,
        primary_side,
        canary_side,
        health: SideHealth,
    ) -> tuple[RolloutState, str, dict[str, int] | None]:
        """Returns the state to record (the step's, or the previous one when the weight did not verify),
        its message, and the weights AWS verifiably shows when this step wrote them."""
        previous = state_of(body.get("status") or {})
        verified = None
        if step.promote and objects.template_hash(target) == step.state.last_applied:  # never another revision
            replicas = int((primary.get("spec") or {}).get("replicas", 1))
            self.kube.apply(self.generated.primary(body, spec, target, replicas))
        if step.weight is not None:
            # write-ahead of a new weight, so a restart can tell our write from drift
            result = self._set_weight(
                body,
                spec,
                primary_side,
                canary_side,
                step.weight,
                health,
                write_ahead=step.weight != previous.weight,
                from_permille=previous.weight,
            )
            if result is None:
                return (
                    previous,
                    (
                        "waiting for healthy primary targets before taking over the route: "
                        f"{health.describe([b.arn for b in primary_side])}"
                    ),
                    None,
                )
            if not result.verified:
                log.warning(result.message, extra={"canary": self._key(body), "asked": w.percent(step.weight)})
                return previous, result.message, None
            verified = w.target_weights(primary_side, canary_side, step.weight)
            if step.weight > 0 and step.weight != previous.weight:  # a new step: its evidence starts now
                self.status.write(body, body.get("status") or {}, {"stepSince": rfc3339(math.ceil(self.clock()))})
            # From above 0 to 0: the groups go quiet. (Before the first revision's traffic there is nothing to
            # cut: groups awsctl creates are new, and their ARN, so their metrics' dimension, is new too.)
            if step.weight == 0 and previous.weight != 0 and not ab_active(body.get("status") or {}):
                self._quiet(body)
        ns = body["metadata"]["namespace"]
        if step.scale_canary == "up":  # a revision starts: the last one's metric values no longer apply
            self.kube.scale(ns, spec.target_name, max(1, int((primary.get("spec") or {}).get("replicas", 1))))
            self.status.write(body, body.get("status") or {}, {"metrics": [], "scaleDownAt": None})
        for kind in step.hooks:
            webhooks.run_all(spec.analysis.hooks(kind), self._payload(body, step.state, step.state.last_applied))
        if step.event and step.message != (body.get("status") or {}).get("message"):  # once, not every tick
            self._event(body, spec, step, step.event)
        stalled = step.reason == STALLED and step.message != (body.get("status") or {}).get("message")
        if spec.alerts and (step.state.phase != previous.phase or stalled):
            self._alert(body, spec, step)
        return step.state, step.message, verified

    def _alert(self, body: dict, spec: api.CanarySpec, step: Step) -> None:
        meta = body["metadata"]
        news = alerts.News(
            name=meta["name"],
            namespace=meta["namespace"],
            phase=step.state.phase,
            weight=w.percent(step.state.weight),
            reason=step.reason,
            message=step.message,
            revision=step.state.last_applied,
            time=rfc3339(self.clock()),
            severity=alerts.severity_of(step.state.phase, step.event),
        )
        about = {"apiVersion": body.get("apiVersion"), "kind": body.get("kind"), "metadata": dict(meta)}
        self.alerter.send(about, spec.alerts, news)

    def _announce(self, body: dict, type: str, reason: str, message: str, **extra) -> None:
        """One Kubernetes event and one log line (at the event's level) for the same news."""
        self.kube.event(body, type=type, reason=reason, message=message)
        (log.warning if type == "Warning" else log.info)(
            message, extra={"canary": self._key(body), "reason": reason, **extra}
        )

    def _event(self, body: dict, spec: api.CanarySpec, step: Step, type: str) -> None:
        self._announce(
            body, type, step.reason, step.message, phase=step.state.phase, weight=w.percent(step.state.weight)
        )
        hooks = spec.analysis.hooks("event")
        if hooks:
            webhooks.run_all(
                hooks,
                self._payload(
                    body, step.state, step.state.last_applied, {"eventMessage": step.message, "eventType": type}
                ),
            )

    # -- status -------------------------------------------------------------------------------------
    @staticmethod
    def _key(body: dict) -> str:
        return f"{body['metadata']['namespace']}/{body['metadata']['name']}"

    def _write_rollout(
        self,
        body: dict,
        state: RolloutState,
        step: Step,
        message: str,
        spec: api.CanarySpec,
        gap: tuple[str, str] | None = None,
    ) -> None:
        meta, status = body["metadata"], body.get("status") or {}
        now = rfc3339(self.clock())
        generation = meta.get("generation")
        phase = state.phase
        message = message or status.get("message") or ""
        before = find_condition(status.get("conditions"), "GracefulTermination") or {}
        if gap is not None and (before.get("reason"), before.get("message")) != gap:
            self._announce(body, "Warning", *gap)
        conditions = set_condition(
            status.get("conditions"),
            type="Ready",
            status=True,
            reason="Synced",
            message="generated objects, target groups and bindings are in place",
            now=now,
            generation=generation,
        )
        conditions = set_condition(
            conditions,
            type="GracefulTermination",
            status=gap is None,
            reason=gap[0] if gap else "TerminationDelayed",
            message=gap[1] if gap else "deleted pods keep serving while their targets are deregistered",
            now=now,
            generation=generation,
        )
        conditions = set_condition(
            conditions,
            type="Promoted",
            status=phase in (Phase.INITIALIZED, Phase.SUCCEEDED),
            reason=step.reason if phase == step.state.phase else phase,
            message=message,
            now=now,
            generation=generation,
        )
        self.status.write(
            body,
            status,
            {
                "phase": phase,
                "canaryWeight": w.percent(state.weight),
                "failedChecks": state.failed_checks,
                "iterations": state.iterations,
                "lastAppliedSpec": state.last_applied,
                "lastPromotedSpec": state.last_promoted,
                "lastTransitionTime": rfc3339(state.transition_at)
                if state.transition_at
                else (status.get("lastTransitionTime") or now),
                "observedGeneration": generation,
                "message": message,
                "conditions": conditions,
                "noDataChecks": state.no_data,
                "unavailableSince": rfc3339(state.unavailable_since) if state.unavailable_since else None,
                # the write-ahead is spent once status records the weight it was for
                **({"pendingWeight": None} if step.weight is None or state.weight == step.weight else {}),
            },
        )

    def _refuse(self, body: dict, why: NotReady) -> None:
        meta, status = body["metadata"], body.get("status") or {}
        conditions, news = refused(
            status.get("conditions"),
            reason=why.reason,
            message=why.message,
            now=rfc3339(self.clock()),
            generation=meta.get("generation"),
        )
        if news:
            self._announce(body, "Warning", why.reason, why.message, field=why.field)
        self.status.write(
            body,
            status,
            {
                "phase": status.get("phase") or Phase.INITIALIZING,
                "observedGeneration": meta.get("generation"),
                "message": why.message,
                "conditions": conditions,
            },
        )
