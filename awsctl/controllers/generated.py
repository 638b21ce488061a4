"""The Kubernetes objects a Canary generates, made to exist: the primary Deployment, the Services,
and the apex Service pointed at the primary. Objects with our names that we do not own are never
taken over (NameConflict)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from awsctl.api import canary as api
from awsctl.api.canary import CanaryStatus
from awsctl.controllers.errors import NotReady
from awsctl.kube.client import Kube
from awsctl.planning import naming, objects

log = logging.getLogger("awsctl.canary")
REVISION_ANNOTATION = "awsctl.io/revision"
Write = Callable[[CanaryStatus], object]  # patches the Canary's status (write-ahead records)


def owned_or_absent(existing: Mapping | None, body: dict, kind: str, name: str) -> None:
    if existing is not None and not objects.owned_by(existing, body["metadata"]["uid"]):
        raise NotReady(
            "NameConflict",
            f"{kind} {name} exists and is not owned by this Canary; awsctl will not take it over",
            "metadata.name",
        )


def differs(existing: Mapping, wanted: Mapping) -> bool:
    """Compares only the fields we set, so the API server's defaults never cause a write."""
    have, want = existing.get("spec") or {}, wanted["spec"]
    if have.get("selector") != want["selector"]:
        return True
    have_ports = {(p.get("name"), p.get("port"), str(p.get("targetPort"))) for p in have.get("ports") or ()}
    return have_ports != {(p.get("name"), p.get("port"), str(p.get("targetPort"))) for p in want["ports"]}


class GeneratedObjects:
    def __init__(self, kube: Kube):
        self.kube = kube

    def ensure_primary(self, body: dict, spec: api.CanarySpec, target: dict, write: Write) -> dict:
        ns = body["metadata"]["namespace"]
        name = naming.primary_name(target["metadata"]["name"])
        primary = self.kube.get_deployment(ns, name)
        owned_or_absent(primary, body, "Deployment", name)
        if primary is not None:
            return primary
        status = body.get("status") or {}
        replicas = int((target.get("spec") or {}).get("replicas", 1)) or int(status.get("targetReplicas") or 1)
        if "targetReplicas" not in status:  # write-ahead: revertOnDeletion needs it after the target is at 0
            write({"targetReplicas": replicas})
        return self.kube.apply(self.primary(body, spec, target, replicas))

    @staticmethod
    def primary(body: dict, spec: api.CanarySpec, target: dict, replicas: int) -> dict:
        primary = objects.primary_deployment(
            target, body, replicas, readiness_gate_of(body, spec), spec.termination_delay_seconds
        )
        primary["metadata"]["annotations"] = {REVISION_ANNOTATION: objects.template_hash(target)}
        return primary

    def ensure_primary_autoscaler(self, body: dict, spec: api.CanarySpec, target: dict, check: bool) -> None:
        """With spec.autoscalerRef: the primary's own HPA, a copy of the target's aimed at the primary (the
        target's keeps scaling the canary; at 0 replicas Kubernetes does not autoscale it). Without it, a
        target some HPA scales is refused: its primary would never be autoscaled (`check`: look; a LIST,
        done when a revision starts, not every tick)."""
        ns, target_name = body["metadata"]["namespace"], target["metadata"]["name"]
        if spec.autoscaler is None:
            if check:
                scaling = [a["metadata"]["name"] for a in self.kube.autoscalers(ns) if objects.scales(a, target_name)]
                if scaling:
                    raise NotReady(
                        "AutoscalerNotReferenced",
                        f"spec.autoscalerRef: HorizontalPodAutoscaler {ns}/{scaling[0]} scales Deployment "
                        f"{target_name}, so the primary would never be autoscaled; name it in spec.autoscalerRef "
                        "and the primary gets its own",
                        "spec.autoscalerRef",
                    )
            return
        user = self.kube.get_autoscaler(ns, spec.autoscaler)
        field = "spec.autoscalerRef.name"
        if user is None:
            raise NotReady(
                "AutoscalerNotFound", f"{field}: HorizontalPodAutoscaler {ns}/{spec.autoscaler} does not exist", field
            )
        if not objects.scales(user, target_name):
            raise NotReady(
                "AutoscalerMismatch",
                f"{field}: HorizontalPodAutoscaler {ns}/{spec.autoscaler} does not scale Deployment {target_name}",
                field,
            )
        wanted = objects.primary_autoscaler(user, body, naming.primary_name(target_name))
        name = wanted["metadata"]["name"]
        existing = self.kube.get_autoscaler(ns, name)
        owned_or_absent(existing, body, "HorizontalPodAutoscaler", name)
        if existing is None or (existing.get("spec") or {}) != wanted["spec"]:
            self.kube.apply(wanted)

    def ensure_services(
        self,
        body: dict,
        spec: api.CanarySpec,
        target: dict,
        apex: dict | None,
        user_apex: dict | None,
        headless: bool,
        target_type: str,
    ) -> str:
        """`apex` is the apex Service as the tick already read it (or None): not fetched twice. Returns the
        Services' IP family as an ip target group names it ("ipv4" or "ipv6"): your apex Service's first
        family, else the generated ones' (the cluster's default, IPv6 on an IPv6 cluster)."""
        ports = objects.service_ports(user_apex, spec.service.port, spec.service.target_port)
        wanted = objects.generated_services(
            body,
            spec.service.name,
            objects.selector_of(target),
            ports,
            headless=headless,
            node_port=target_type == "instance",
            user_service=user_apex,
        )
        ns = body["metadata"]["namespace"]
        families = [objects.ip_family(user_apex)] if user_apex is not None else []
        for svc in wanted:
            name = svc["metadata"]["name"]
            existing = apex if name == spec.service.name else self.kube.get_service(ns, name)
            owned_or_absent(existing, body, "Service", name)
            if existing is None or differs(existing, svc):
                existing = self.kube.apply(svc)
            families.append(objects.ip_family(existing))
        return next((f for f in families if f), "ipv4")

    def point_apex_at_primary(self, body: dict, apex: dict, target: dict, write: Write) -> None:
        selector = objects.primary_selector(objects.selector_of(target))
        if (apex.get("spec") or {}).get("selector") == selector:
            return
        if "apexSelector" not in (body.get("status") or {}):  # write-ahead: revertOnDeletion restores this
            write({"apexSelector": (apex.get("spec") or {}).get("selector") or {}})
        self.kube.set_service_selector(body["metadata"]["namespace"], apex["metadata"]["name"], selector)
        log.info("apex Service pointed at the primary", extra={"service": apex["metadata"]["name"]})


def readiness_gate_of(body: dict, spec: api.CanarySpec) -> str | None:
    """The readiness gate of the generated primary's pods: answered by the primary's own binding,
    so only when the primary side is the generated Service (backendRefs put a proxy in front)."""
    if not spec.load_balancer.readiness_gate or spec.service.backend_refs.get("primary"):
        return None
    return naming.readiness_gate(naming.binding_name(body["metadata"]["name"], "primary", "", True))
