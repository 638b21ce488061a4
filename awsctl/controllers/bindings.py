"""kopf handlers for TargetGroupBindings and the objects that feed them.

Cross-object triggers go through indexes, so an EndpointSlice or Pod event reconciles
exactly the bindings of its Service: no polling, no reconcile-everything.
"""

from __future__ import annotations

import asyncio
import logging

import kopf

from awsctl.api import GROUP, VERSION
from awsctl.api import binding as api
from awsctl.controllers.binding_reconciler import BindingReconciler
from awsctl.planning.gates import selector_matches

log = logging.getLogger("awsctl.binding")


def register(registry: kopf.OperatorRegistry, reconciler: BindingReconciler, resync_seconds: float) -> None:
    rechecks: dict[tuple[str, str], asyncio.TimerHandle] = {}

    async def reconcile_one(namespace: str, name: str) -> None:
        """Reconciles, then reads health again soon while desired targets are not yet healthy: AWS
        health changes raise no Kubernetes event, and a Canary waits on exactly this count."""
        outcome = await asyncio.to_thread(reconciler.reconcile, namespace, name)
        key = (namespace, name)
        previous = rechecks.pop(key, None)
        if previous is not None:
            previous.cancel()
        if outcome is not None and outcome.recheck:
            rechecks[key] = asyncio.get_running_loop().call_later(
                outcome.recheck, lambda: asyncio.ensure_future(reconcile_one(namespace, name)))

    async def reconcile_all(keys) -> None:
        await asyncio.gather(*(reconcile_one(ns, name) for ns, name in keys))

    @kopf.index(GROUP, VERSION, api.PLURAL, id="bindings_by_service", registry=registry)
    def bindings_by_service(namespace, name, spec, **_):
        service = (spec.get("serviceRef") or {}).get("name")
        return {(namespace, service): name} if service else None

    @kopf.index("v1", "services", id="service_selectors", registry=registry)
    def service_selectors(namespace, name, spec, **_):
        return {namespace: (name, dict(spec.get("selector") or {}))}

    @kopf.on.resume(GROUP, VERSION, api.PLURAL, id="binding_resumed", registry=registry)
    @kopf.on.create(GROUP, VERSION, api.PLURAL, id="binding_created", registry=registry)
    @kopf.on.update(GROUP, VERSION, api.PLURAL, field="spec", id="binding_updated", registry=registry)
    async def binding_changed(namespace, name, **_):
        await reconcile_one(namespace, name)

    @kopf.timer(GROUP, VERSION, api.PLURAL, interval=resync_seconds, initial_delay=resync_seconds,
                id="binding_resync", registry=registry)
    async def binding_resync(namespace, name, **_):
        await reconcile_one(namespace, name)

    @kopf.on.delete(GROUP, VERSION, api.PLURAL, id="binding_deleted", registry=registry)
    async def binding_deleted(body, namespace, name, **_):
        handle = rechecks.pop((namespace, name), None)
        if handle is not None:
            handle.cancel()
        await asyncio.to_thread(reconciler.remove, dict(body))

    @kopf.on.event("v1", "services", id="service_event", registry=registry)
    async def service_event(namespace, name, bindings_by_service: kopf.Index, **_):
        await reconcile_all((namespace, b) for b in bindings_by_service.get((namespace, name), ()))

    @kopf.on.event("discovery.k8s.io", "v1", "endpointslices",
                   labels={"kubernetes.io/service-name": kopf.PRESENT}, id="endpoints_event", registry=registry)
    async def endpoints_event(namespace, labels, bindings_by_service: kopf.Index, **_):
        service = labels.get("kubernetes.io/service-name")
        await reconcile_all((namespace, b) for b in bindings_by_service.get((namespace, service), ()))

    @kopf.on.event("v1", "pods", id="pod_event", registry=registry)
    async def pod_event(type, namespace, name, meta, labels, service_selectors: kopf.Index,
                        bindings_by_service: kopf.Index, **_):
        terminating = type != "DELETED" and bool(meta.get("deletionTimestamp"))
        if not reconciler.terminating.mark(namespace, name, terminating) or not terminating:
            return
        services = [svc for svc, selector in service_selectors.get(namespace, ())
                    if selector_matches(selector, labels)]
        keys = {(namespace, b) for svc in services for b in bindings_by_service.get((namespace, svc), ())}
        if keys:
            log.info("pod terminating: deregistering at once", extra={"pod": f"{namespace}/{name}"})
            await reconcile_all(keys)
