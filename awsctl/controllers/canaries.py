"""kopf handlers for Canaries: one daemon per Canary ticks at its own analysis interval (as Flagger
gives each canary its own ticker); a finalizer restores traffic and cleans up on deletion."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from awsctl import metrics
from awsctl.api import GROUP, VERSION
from awsctl.api import canary as api
from awsctl.controllers.canary_reconciler import CanaryReconciler
from awsctl.controllers.canary_removal import CanaryRemoval, Retry
from awsctl.controllers.errors import namespaced
from awsctl.controllers.peering import Fenced
from awsctl.kube.client import ApiError
from awsctl.planning import commands

log = logging.getLogger("awsctl.canary")
MIN_INTERVAL = 0.5
ERROR_BACKOFF = (1, 2, 5, 10, 30)
FENCED_RETRY = 2.0  # seconds: a paused replica's daemon, resumed by kopf before the fence opens, retries


async def pause(stopped: kopf.DaemonStopped, woken: asyncio.Event, seconds: float) -> None:
    """Sleeps until the interval ends, the daemon is stopped, or a binding wakes a waiting Canary."""
    woken.clear()
    waits = {asyncio.ensure_future(stopped.wait()), asyncio.ensure_future(woken.wait())}
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()


def register(registry: kopf.OperatorRegistry, reconciler: CanaryReconciler) -> None:
    removal = CanaryRemoval(reconciler)

    @kopf.daemon(GROUP, VERSION, api.PLURAL, id="canary_loop", cancellation_timeout=30, registry=registry)
    async def canary_loop(namespace: str | None, name: str, stopped: kopf.DaemonStopped, **_: Any) -> None:
        key = (namespaced(namespace), name)
        woken = reconciler.wakeups.register(key)
        try:
            await run_loop(*key, stopped, woken)
        finally:
            reconciler.wakeups.unregister(key)

    async def run_loop(namespace: str, name: str, stopped: kopf.DaemonStopped, woken: asyncio.Event) -> None:
        errors = 0
        while not stopped:
            try:
                interval = await asyncio.to_thread(reconciler.tick, namespace, name)
                errors = 0
            except Fenced as fenced:  # another replica is the active one: it ticks this Canary
                log.info("tick stopped at a write: %s", fenced, extra={"canary": f"{namespace}/{name}"})
                interval = FENCED_RETRY
            except Exception as err:  # noqa: BLE001 - an API hiccup must not end the Canary's loop
                if isinstance(err, ApiError):  # e.g. RBAC: one line that says what was refused
                    log.error(
                        "the Kubernetes API refused a call; retrying",
                        extra={"canary": f"{namespace}/{name}", "status": err.status, "detail": err.message},
                    )
                else:
                    log.exception("canary tick failed; retrying", extra={"canary": f"{namespace}/{name}"})
                metrics.reconcile_errors.labels(api.KIND).inc()
                interval = ERROR_BACKOFF[min(errors, len(ERROR_BACKOFF) - 1)]
                errors += 1
            await pause(stopped, woken, max(MIN_INTERVAL, interval))

    woken_for: dict[tuple[str, str], frozenset[str]] = {}

    @kopf.on.event(GROUP, VERSION, api.PLURAL, registry=registry)
    async def command_asked(namespace: str | None, name: str, body: kopf.Body, type: str, **_: Any) -> None:
        """`awsctl promote|abort|retry` is answered now, not at the end of the analysis interval; once
        per command, so a command that must wait (for a ready canary) never hurries the analysis.
        Async on purpose: a sync handler takes a thread of the pool the Canary ticks use, and with 100
        Canaries every status patch queued a handler call there, holding its body (+30 MiB peak)."""
        key = (namespaced(namespace), name)
        if type == "DELETED":
            woken_for.pop(key, None)
            return
        status = body.get("status") or {}
        annotations = body.get("metadata", {}).get("annotations") or {}
        asked = frozenset(
            annotations[commands.annotation(v)]
            for v in commands.pending(annotations, status.get("commands"), status.get("lastAppliedSpec") or "")
        )
        if asked - woken_for.get(key, frozenset()):
            reconciler.wakeups.wake(key, any_phase=True)
        woken_for[key] = asked

    @kopf.on.delete(GROUP, VERSION, api.PLURAL, id="canary_deleted", registry=registry)
    def canary_deleted(namespace: str | None, name: str, **_: Any) -> None:
        namespace = namespaced(namespace)
        body = reconciler.kube.get_custom(api.PLURAL, namespace, name)
        if body is None:
            return
        try:
            removal.remove(body)
            metrics.canary_removed(namespace, name)
        except Fenced as fenced:
            raise kopf.TemporaryError(str(fenced), delay=FENCED_RETRY) from None
        except Retry as wait:
            log.info(str(wait), extra={"canary": f"{namespace}/{name}"})
            raise kopf.TemporaryError(str(wait), delay=wait.delay) from None
