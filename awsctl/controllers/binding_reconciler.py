"""Reconciles one TargetGroupBinding: observe Kubernetes and AWS, plan targets, apply, write status."""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from botocore.exceptions import ClientError

from awsctl import metrics
from awsctl.api import binding as api
from awsctl.api.canary import KIND as CANARY_KIND
from awsctl.aws.targets import TargetGroupInfo, TargetGroupNotFound, TargetGroups, TargetHealth
from awsctl.controllers.coalesce import Coalescer
from awsctl.controllers.errors import NotReady, refusal
from awsctl.controllers.grants import Grants
from awsctl.kube.client import ApiError, Kube, now_rfc3339
from awsctl.planning import grants as grant_plan
from awsctl.planning import naming, objects
from awsctl.planning import targets as plan
from awsctl.planning.conditions import refused, set_condition
from awsctl.planning.naming import CLUSTER, OWNER, lbc_tag
from awsctl.planning.target_type import decide_target_type

log = logging.getLogger("awsctl.binding")
DRIFT_SECONDS = 3600.0  # how often, on average, a settled binding reads its group again (targets removed by hand)
REFUSED_RECHECK_SECONDS = 60.0  # a refused binding looks again this often (e.g. its target group is made later)
DUE_SLACK = 0.5  # a recheck timer that fires this early still reads


class StaleBinding(Exception):
    """The binding was written by someone else since this reconcile read it."""


# While a pod that our readiness gate holds starts, how often the binding looks at it again (its
# containers turning ready changes no EndpointSlice). The LBC requeues at once; this is the same, polled.
GATE_RECHECK_SECONDS = 1.0

# Refusals after which the binding's targets stand for nothing that exists: they are deregistered.
WITHDRAWN = frozenset({"ServiceNotFound", "ServicePortNotFound"})


@dataclass(frozen=True)
class Outcome:
    ready: bool
    reason: str
    registered: int = 0
    healthy: int = 0
    writes: int = 0
    target_group_arn: str = ""
    managed: tuple[str, ...] | None = None  # set when the writes changed what this binding manages
    desired: int = 0
    states: dict[str, int] = field(default_factory=dict)  # desired targets by the state AWS shows
    recheck: float | None = None  # seconds until health should be read again (targets not yet healthy)
    # seconds until the binding looks again with nothing on its way: its drift read, or a refusal's retry
    idle_recheck: float | None = None
    healthy_ips: frozenset[str] = frozenset()
    unroutable: tuple[str, ...] = ()  # id:port of desired targets AWS will never check (plan.never_checked)


@dataclass(frozen=True)
class Known:
    """What a binding last learnt of its group: the targets AWS showed (kept up to date with our own
    writes, so a change costs only the write), and when health must be read again."""

    arn: str
    health: tuple[TargetHealth, ...]
    health_due: float  # monotonic time of the next DescribeTargetHealth


class BindingReconciler:
    """AWS calls per binding are the LBC's at most: a change costs its write (plus one health read
    when nothing is known yet), health is read again only while targets are on their way to
    healthy, and a settled binding reads its group once per drift period, spread over the period
    so that 200 bindings never read together."""

    def __init__(
        self,
        kube: Kube,
        groups: TargetGroups,
        clock: Callable[[], str] = now_rfc3339,
        on_targets_changed: Callable[[str, dict], None] | None = None,
        drift_seconds: float = DRIFT_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        grants: Grants | None = None,
        cluster: str = "",
    ):
        self.kube = kube
        self.groups = groups
        self.grants = grants  # None: no trust boundary (unit tests of the binding story alone)
        self.cluster = cluster  # a Canary's own groups carry it in their awsctl.io/cluster tag
        self.on_targets_changed = on_targets_changed  # e.g. wake the owning Canary
        self.clock = clock
        self.monotonic = monotonic
        self.drift_seconds = drift_seconds
        self.coalescer = Coalescer()
        self._known: dict[tuple[str, str], Known] = {}
        self._known_lock = threading.Lock()
        # Targets written ahead into status.managedTargets whose RegisterTargets never went out (the
        # reconcile gave way, or failed): missing from AWS is then no drift.
        self._unconfirmed: dict[tuple[str, str], set[str]] = {}

    # -- entry points -----------------------------------------------------------------
    def reconcile(self, namespace: str, name: str) -> Outcome | None:
        return self.coalescer.trigger((namespace, name), lambda: self._reconcile(namespace, name))

    def remove(self, body: dict) -> int:
        """Finalizer: deregister exactly what this binding registered; returns how many targets."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        try:
            return self.coalescer.exclusive(key, lambda: self._remove(body))
        finally:
            self.coalescer.forget(key)
            self._drop(key)

    def expire_health(self, namespace: str, name: str) -> None:
        """The next reconcile reads health from AWS: e.g. a rule started forwarding to the group,
        which turns `unused` targets `initial` without any Kubernetes event."""
        with self._known_lock:
            known = self._known.get((namespace, name))
            if known is not None:
                self._known[(namespace, name)] = Known(known.arn, known.health, float("-inf"))

    def _forget(self, key: tuple[str, str]) -> None:
        with self._known_lock:
            self._known.pop(key, None)

    def _drop(self, key: tuple[str, str]) -> None:
        """The binding is gone: nothing of it is kept."""
        with self._known_lock:
            self._known.pop(key, None)
            self._unconfirmed.pop(key, None)

    def _drift_delay(self, key: tuple[str, str]) -> float:
        """Between 0.5 and 1.5 drift periods, fixed per binding: the reads spread evenly."""
        spread = zlib.crc32(f"{key[0]}/{key[1]}".encode()) / 0xFFFFFFFF
        return self.drift_seconds * (0.5 + spread)

    # -- the story --------------------------------------------------------------------
    def _reconcile(self, namespace: str, name: str) -> Outcome | None:
        body = self.kube.get_custom(api.PLURAL, namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            self._drop((namespace, name))
            return None
        status = body.get("status") or {}
        try:
            spec = self._parse(body)
            service = self.kube.get_service(namespace, spec.service_name)
            if service is None:
                raise NotReady(
                    "ServiceNotFound",
                    f"spec.serviceRef.name: Service {namespace}/{spec.service_name} does not exist",
                    "spec.serviceRef.name",
                )
            port = self._service_port(service, spec)
            group = self._target_group(spec)
            self._trusted(namespace, spec, group)
            decision = decide_target_type(service, spec.target_type, group.target_type)
            target_type = decision.target_type
            if target_type is None:
                raise NotReady(decision.reason, decision.message, "spec.targetType")
            gated: dict[str, dict] = {}
            starting: set[str] = set()
            gate = objects.gate_of(body)
            desired, owners = self._desired(namespace, gate, spec, target_type, port, group, gated, starting)
            managed = frozenset(status.get("managedTargets") or ())
            try:
                health, due = self._current(namespace, name, group, managed)
            except TargetGroupNotFound:  # re-created under the same name? look it up afresh once
                group = self._target_group(spec)
                health, due = self._health(group), None
            outcome = self._apply(body, group, desired, health, managed, due)
            if starting:
                # A pod held by our gate whose containers are not ready yet: when they are, no EndpointSlice
                # changes (the gate keeps the pod unready), so look again shortly, not at the resync sweep.
                outcome = replace(outcome, recheck=min(outcome.recheck or GATE_RECHECK_SECONDS, GATE_RECHECK_SECONDS))
            self._open_gates(namespace, gate, gated, owners, outcome)
            self._write(body, outcome, target_type, message=self._summary(group.name, outcome))
            return outcome
        except StaleBinding as why:
            return self._conflict(namespace, name, why)
        except NotReady as why:
            try:
                if why.reason in WITHDRAWN:
                    self._withdraw(body)  # writes managedTargets over the version read, too
                self._refuse(body, why)
            except StaleBinding as stale:
                return self._conflict(namespace, name, stale)
            return Outcome(False, why.reason, idle_recheck=REFUSED_RECHECK_SECONDS)
        except ClientError as err:
            refused = refusal(err, "a target change", "spec.targetGroupARN")
            if refused is None:
                raise
            self._refuse(body, refused)
            return Outcome(False, refused.reason, idle_recheck=REFUSED_RECHECK_SECONDS)

    @staticmethod
    def _conflict(namespace: str, name: str, why: StaleBinding) -> Outcome:
        """Another writer since our read: run again on what is there now (what AWS shows is still known:
        the conflict is about the binding object, so no health re-read)."""
        log.info(str(why), extra={"binding": f"{namespace}/{name}", "reason": "Conflict"})
        return Outcome(False, "Conflict", recheck=0.5)

    def _parse(self, body: dict) -> api.BindingSpec:
        try:
            return api.BindingSpec.parse(body.get("spec") or {})
        except api.SpecError as err:
            raise NotReady("InvalidSpec", str(err), err.field) from err

    def _service_port(self, service: dict, spec: api.BindingSpec) -> plan.ServicePort:
        try:
            return plan.select_service_port((service.get("spec") or {}).get("ports") or [], spec.service_port)
        except plan.PortNotFound as err:
            raise NotReady("ServicePortNotFound", str(err), "spec.serviceRef.port") from err

    def _target_group(self, spec: api.BindingSpec) -> TargetGroupInfo:
        try:
            return self.groups.describe(spec.target_group_ref)
        except TargetGroupNotFound as err:
            field = "spec.targetGroupARN" if spec.target_group_arn else "spec.targetGroupName"
            raise NotReady(
                "TargetGroupNotFound", f"{field}: target group {spec.target_group_ref} does not exist", field
            ) from err

    def _trusted(self, namespace: str, spec: api.BindingSpec, group: TargetGroupInfo) -> None:
        """Before any write: the group is not the LBC's, and it is granted to the namespace (or it is a
        group awsctl created for a Canary of this namespace, which the Canary's grant covers)."""
        field = "spec.targetGroupARN" if spec.target_group_arn else "spec.targetGroupName"
        tags = self.groups.tags(group.arn)
        lbc = lbc_tag(tags)
        if lbc:
            raise NotReady(
                "ManagedByLoadBalancerController",
                f"{field}: target group {group.name} is managed by the AWS Load Balancer Controller (tag {lbc}): "
                "its own TargetGroupBinding registers this group's targets, and the two controllers would "
                "deregister each other's targets for ever. Bind a group the LBC does not manage, or let the LBC's "
                "TargetGroupBinding fill this one",
                field,
            )
        if self.grants is None:
            return
        canary_of_this_namespace = naming.owner(CANARY_KIND, namespace, "")
        own = tags.get(CLUSTER) == self.cluster and (tags.get(OWNER) or "").startswith(canary_of_this_namespace)
        self.grants.check(namespace, grant_plan.binding_asks(group.arn, field, own))

    @staticmethod
    def _summary(group: str, outcome: Outcome) -> str:
        states = ", ".join(f"{n} {state}" for state, n in sorted(outcome.states.items())) or "none"
        return (
            f"{outcome.registered}/{outcome.desired} targets registered in {group}, {outcome.healthy} healthy "
            f"({states})"
        )

    def _current(
        self, namespace: str, name: str, group: TargetGroupInfo, managed: frozenset[str]
    ) -> tuple[list[TargetHealth], float | None]:
        """The group's targets as last known while that is still good (with when it stops being
        good), else as AWS shows them now (None). A binding that never registered anything (its
        first sync) has nothing to deregister and registering is idempotent: it writes first and
        reads health once the new targets can have passed their checks (the LBC's 2 calls)."""
        with self._known_lock:
            known = self._known.get((namespace, name))
        if known is not None and known.arn == group.arn and self.monotonic() < known.health_due - DUE_SLACK:
            return list(known.health), known.health_due
        if known is None and not managed:
            return [], float("-inf")
        return self.groups.health(group.arn), None

    def _health(self, group: TargetGroupInfo):
        try:
            return self.groups.health(group.arn)
        except TargetGroupNotFound as err:
            raise NotReady(
                "TargetGroupNotFound", f"target group {group.arn} no longer exists", "spec.targetGroupARN"
            ) from err

    def _desired(
        self,
        namespace: str,
        gate: str,
        spec: api.BindingSpec,
        target_type: str,
        port: plan.ServicePort,
        group: TargetGroupInfo,
        gated: dict[str, dict],
        starting: set[str],
    ) -> tuple[set[plan.Target], dict[str, str]]:
        """The targets to register, and which pod each IP target belongs to (for readiness gates: `gate`).
        `gated` is filled with the pods that only this binding's readiness gate holds back, `starting`
        with those it holds whose containers are not ready yet."""
        if target_type == "ip":
            slices = self.kube.endpoint_slices(namespace, spec.service_name)
            for pod_name in plan.unserved_pods(slices):
                pod = self.kube.get_pod(namespace, pod_name)
                if pod is not None and waits_only_on(pod, gate):
                    gated[pod_name] = pod
                elif pod is not None and starting_behind(pod, gate):
                    starting.add(pod_name)
            owners = dict(plan.endpoint_pods(slices))
            return plan.desired_ip_targets(
                slices,
                port.name,
                self.groups.vpc_cidrs(group.vpc_id),
                group.ip_address_type,
                frozenset(gated),
                self.groups.zonal(group.arn),
            ), owners
        if not port.node_port:
            raise NotReady(
                "NoNodePort",
                f"spec.targetType is instance, but Service port {port.name or port.port} of "
                f"{spec.service_name} has no nodePort; use a NodePort or LoadBalancer Service, "
                "or targetType: ip",
                "spec.serviceRef.port",
            )
        return plan.desired_instance_targets(self.kube.nodes(), port.node_port), {}

    def _open_gates(
        self, namespace: str, gate: str, gated: dict[str, dict], owners: dict[str, str], outcome: Outcome
    ) -> None:
        """Sets this binding's readiness gate True on pods whose target AWS shows healthy, so a rolling
        update cannot outrun the ALB: the next old pod goes only when the new one serves. A pod whose
        target AWS will never check or route to (its zone is not enabled on the load balancer) cannot
        outrun the ALB either: its gate opens too, or the Deployment would wait for it forever (the
        binding's Routable condition says why)."""
        if not gated:
            return
        healthy_pods = {owners.get(ip) for ip in outcome.healthy_ips}
        never_pods = {owners.get(key.rsplit(":", 1)[0]) for key in outcome.unroutable}
        for pod_name, pod in gated.items():
            if gate_open(pod, gate):
                continue
            if pod_name in healthy_pods:
                reason, message = "TargetHealthy", "the pod's target is healthy in the ALB target group"
            elif pod_name in never_pods:
                reason = "TargetNeverRouted"
                message = "AWS will never route to the pod's target (its zone is not enabled on the load balancer)"
            else:
                continue
            self.kube.set_pod_condition(namespace, pod_name, gate, True, reason, message)

    def _apply(
        self,
        body: dict,
        group: TargetGroupInfo,
        desired: set[plan.Target],
        health: list[TargetHealth],
        managed: frozenset[str],
        due: float | None,
    ) -> Outcome:
        """`due`: when the known health (not read now) must be read again; None when just read."""
        read = due is None
        # A draining target is on its way out: a pod that comes back at the same IP:port is registered again.
        current = {h.target for h in health if h.state != "draining"}
        changes = plan.plan_targets(desired, current, managed)
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        current_keys = {t.key for t in current}  # by id:port; AWS may not echo the AvailabilityZone
        with self._known_lock:
            unconfirmed = self._unconfirmed.pop(key, set()) if read else set()
        vanished = sorted(
            t.key for t in desired if t.key in managed and t.key not in current_keys and t.key not in unconfirmed
        )
        if vanished and read:  # registered by us and gone without us: someone deregistered them by hand
            message = (
                f"{len(vanished)} target(s) awsctl registered were missing from {group.name} "
                f"({', '.join(vanished[:5])}{', ...' if len(vanished) > 5 else ''}); registering them again"
            )
            self.kube.event(body, type="Warning", reason="TargetsDrifted", message=message)
            log.warning(message, extra={"binding": f"{meta['namespace']}/{meta['name']}", "reason": "TargetsDrifted"})
        if changes.writes:
            # Written ahead: the targets about to be registered, and the group they go to (after a group
            # was re-created under the same name, status names the new one before any target reaches it).
            self._patch_managed(body, {"managedTargets": sorted(changes.managed_during), "targetGroupARN": group.arn})
            try:
                for batch in changes.deregister:  # terminating pods first: they hold connections that must drain
                    self.groups.deregister(group.arn, batch)
                for batch in changes.register:
                    self.groups.register(group.arn, batch)
            except BaseException:
                self._forget(key)  # some writes may have landed: read AWS next time
                with self._known_lock:
                    self._unconfirmed.setdefault(key, set()).update(t.key for batch in changes.register for t in batch)
                raise
            log.info(
                "targets changed",
                extra={
                    "binding": f"{meta['namespace']}/{meta['name']}",
                    "targetGroup": group.name,
                    "registered": sum(map(len, changes.register)),
                    "deregistered": sum(map(len, changes.deregister)),
                    "calls": changes.writes,
                },
            )
            health = plan_health_after(health, changes.register, changes.deregister)
        wanted = {t.key for t in desired}
        present = [h for h in health if h.target.key in wanted and h.state != "draining"]
        unroutable = tuple(sorted(h.target.key for h in plan.never_checked(health) if h.target.key in wanted))
        states = Counter(h.state for h in present)
        if len(present) < len(wanted):
            states["unregistered"] = len(wanted) - len(present)
        healthy = states.get("healthy", 0)
        recheck = plan.next_health_read(
            states, bool(changes.register), group.health_check_interval, group.healthy_threshold
        )
        now = self.monotonic()
        if read or changes.writes or due is None or (recheck is not None and now + recheck < due):
            due = now + (recheck if recheck is not None else self._drift_delay(key))
        elif recheck is not None:  # events in between never push a pending health read further out
            recheck = max(DUE_SLACK, due - now)
        with self._known_lock:
            self._known[key] = Known(group.arn, tuple(health), due)
        managed_after = tuple(sorted(changes.managed_after))
        return Outcome(
            ready=True,
            reason="Synced",
            registered=len(present),
            healthy=healthy,
            writes=changes.writes,
            target_group_arn=group.arn,
            managed=managed_after if changes.writes or managed_after != tuple(sorted(managed)) else None,
            desired=len(wanted),
            states=dict(states),
            recheck=recheck,
            idle_recheck=max(DUE_SLACK, due - now) if recheck is None else None,  # the drift read, timed
            healthy_ips=frozenset(h.target.id for h in present if h.state == "healthy"),
            unroutable=unroutable,
        )

    # -- status -----------------------------------------------------------------------
    def _write(self, body: dict, outcome: Outcome, target_type: str, message: str) -> None:
        meta, status = body["metadata"], body.get("status") or {}
        new_status = {
            "observedGeneration": meta.get("generation"),
            "targetType": target_type,
            "targetGroupARN": outcome.target_group_arn,
            "desiredTargets": outcome.desired,
            "registeredTargets": outcome.registered,
            "healthyTargets": outcome.healthy,
            "unroutableTargets": len(outcome.unroutable),
            # A merge patch merges maps: states no target is in any more are set to null to drop them.
            "targetHealth": {**{k: None for k in status.get("targetHealth") or {}}, **outcome.states},
            "conditions": set_condition(
                status.get("conditions"),
                type="Ready",
                status=True,
                reason="Synced",
                message=message,
                now=self.clock(),
                generation=meta.get("generation"),
            ),
        }
        routable = not outcome.unroutable
        shown = ", ".join(outcome.unroutable[:5]) + (", ..." if len(outcome.unroutable) > 5 else "")
        routable_message = (
            "every target is in a zone the load balancer enables"
            if routable
            else f"{len(outcome.unroutable)} target(s) AWS will never check or route to ({shown}): their zone is not "
            "enabled on the load balancer, or AWS cannot use their IP; they do not count against readiness"
        )
        new_status["conditions"] = set_condition(
            new_status["conditions"],
            type="Routable",
            status=routable,
            reason="AllTargetsRoutable" if routable else "TargetsNotRoutable",
            message=routable_message,
            now=self.clock(),
            generation=meta.get("generation"),
        )
        was: dict = next((c for c in status.get("conditions") or () if c.get("type") == "Routable"), {})
        if not routable and (was.get("status") != "False" or was.get("message") != routable_message):
            self.kube.event(body, type="Warning", reason="TargetsNotRoutable", message=routable_message)
            log.warning(routable_message, extra={"binding": f"{meta['namespace']}/{meta['name']}"})
        if outcome.managed is not None:
            new_status["managedTargets"] = list(outcome.managed)
        metrics.health_observed(naming.group_of(outcome.target_group_arn), outcome.states)
        self._patch_if_changed(body, new_status)

    def _refuse(self, body: dict, why: NotReady) -> None:
        meta, status = body["metadata"], body.get("status") or {}
        conditions, news = refused(
            status.get("conditions"),
            reason=why.reason,
            message=why.message,
            now=self.clock(),
            generation=meta.get("generation"),
        )
        log.warning(
            why.message,
            extra={"binding": f"{meta['namespace']}/{meta['name']}", "reason": why.reason, "field": why.field},
        )
        if news:
            self.kube.event(body, type="Warning", reason=why.reason, message=why.message)
        self._patch_if_changed(body, {"observedGeneration": meta.get("generation"), "conditions": conditions})

    def _patch_managed(self, body: dict, new_status: dict) -> None:
        """managedTargets is written only over the version this reconcile read: another replica's write
        since (two replicas for a moment, around a peering hand-over) makes it a conflict, and the reconcile
        runs again on what is there now, instead of dropping a target the other one just registered."""
        meta = body["metadata"]
        try:
            now = self.kube.patch_status(
                api.PLURAL, meta["namespace"], meta["name"], new_status, resource_version=meta.get("resourceVersion")
            )
        except ApiError as err:
            if err.status == 409:
                raise StaleBinding(f"{meta['namespace']}/{meta['name']} changed since it was read") from err
            raise
        if now is not None:
            meta["resourceVersion"] = now["metadata"]["resourceVersion"]
            body["status"] = {**(body.get("status") or {}), **_without_nulls(new_status)}

    def _patch_if_changed(self, body: dict, new_status: dict) -> None:
        old = body.get("status") or {}
        if all(old.get(k) == _without_nulls(v) for k, v in new_status.items()):
            return
        meta = body["metadata"]
        if "managedTargets" in new_status:
            self._patch_managed(body, new_status)
        else:
            self.kube.patch_status(api.PLURAL, meta["namespace"], meta["name"], new_status)
        counts = ("desiredTargets", "registeredTargets", "healthyTargets")
        if self.on_targets_changed and any(old.get(k) != new_status.get(k) for k in counts if k in new_status):
            self.on_targets_changed(meta["namespace"], meta.get("labels") or {})

    def _withdraw(self, body: dict) -> None:
        """The Service (or its port) is gone, so nothing the binding registered stands for anything: its
        targets are deregistered, as the LBC does, and the condition stays until the Service is back."""
        if not (body.get("status") or {}).get("managedTargets"):
            return
        self._remove(body, "its Service or port is gone")
        self._forget((body["metadata"]["namespace"], body["metadata"]["name"]))  # health is read afresh when back
        self._patch_if_changed(
            body, {"managedTargets": [], "desiredTargets": 0, "registeredTargets": 0, "healthyTargets": 0}
        )

    # -- deletion ---------------------------------------------------------------------
    def _remove(self, body: dict, because: str = "deletion") -> int:
        managed = frozenset((body.get("status") or {}).get("managedTargets") or ())
        if not managed:
            return 0
        try:
            spec = api.BindingSpec.parse(body.get("spec") or {})
            group = self.groups.describe(spec.target_group_ref)
            current = {h.target for h in self.groups.health(group.arn)}
        except (api.SpecError, TargetGroupNotFound):
            return 0  # nothing we could have registered is left to remove
        metrics.health_removed(group.name)
        removal = plan.plan_removal(current, managed)
        for batch in removal:
            self.groups.deregister(group.arn, batch)
        count = sum(map(len, removal))
        meta = body["metadata"]
        log.info(
            f"targets deregistered: {because}",
            extra={"binding": f"{meta['namespace']}/{meta['name']}", "targetGroup": group.name, "deregistered": count},
        )
        return count


def plan_health_after(health: list[TargetHealth], registered, deregistered) -> list[TargetHealth]:
    """What AWS shows right after our writes, without asking: a deregistered target drains, a
    registered one starts `initial` (or `unused`, when no rule forwards to the group)."""
    gone = {t.key for batch in deregistered for t in batch}
    added = {t.key: t for batch in registered for t in batch}
    # A new target is predicted `initial` when the group is in use (some target is checked), else `unused`:
    # one target in a zone the load balancer does not enable must not make every new one look unused.
    # (a draining target means a used group: AWS drains only what it routed to)
    unused = bool(health) and all(h.state == "unused" for h in health)
    out = [TargetHealth(h.target, "draining") if h.target.key in gone else h for h in health]
    known = {h.target.key for h in out if h.state != "draining"}
    out = [h for h in out if not (h.state == "draining" and h.target.key in added)]
    out += [TargetHealth(t, "unused" if unused else "initial") for key, t in added.items() if key not in known]
    return out


def _without_nulls(value):
    return {k: v for k, v in value.items() if v is not None} if isinstance(value, dict) else value


def waits_only_on(pod: dict, gate: str) -> bool:
    """True when `gate` is one of the pod's readiness gates and its containers are ready: the pod
    serves as soon as AWS shows its target healthy. Still True once the gate is set and until the
    kubelet turns the pod Ready (it lags), so the target is never dropped in between."""
    gates = {g.get("conditionType") for g in (pod.get("spec") or {}).get("readinessGates") or ()}
    if gate not in gates or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return _conditions(pod).get("ContainersReady") == "True"


def starting_behind(pod: dict, gate: str) -> bool:
    """The pod carries `gate` and its containers are not ready yet (nor is it going away)."""
    gates = {g.get("conditionType") for g in (pod.get("spec") or {}).get("readinessGates") or ()}
    if gate not in gates or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return _conditions(pod).get("ContainersReady") != "True"


def gate_open(pod: dict, gate: str) -> bool:
    return _conditions(pod).get(gate) == "True"


def _conditions(pod: dict) -> dict[str, str]:
    return {c.get("type"): c.get("status") for c in (pod.get("status") or {}).get("conditions") or ()}
