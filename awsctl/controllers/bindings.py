"""kopf handlers for TargetGroupBindings and the objects that feed them.

Cross-object triggers go through indexes, so an EndpointSlice event reconciles exactly the
bindings of its Service: no polling, no reconcile-everything. Reconciles wait in one queue,
most urgent first, for a fixed set of worker threads: a slice that lost an endpoint (a pod
terminating) jumps a burst of 200 registrations, both for a thread and, inside, for the API
budget.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from awsctl import metrics
from awsctl.api import GROUP, VERSION
from awsctl.api import binding as api
from awsctl.aws.budget import Priority, Superseded, cancellable, urgency
from awsctl.controllers.binding_reconciler import BindingReconciler
from awsctl.controllers.errors import namespaced
from awsctl.controllers.memory import Trimmer
from awsctl.controllers.peering import Fenced, PeeringGate

log = logging.getLogger("awsctl.binding")
Key = tuple[str, str]


def slice_priority(endpoints: Iterable[dict]) -> Priority:
    """A slice with an endpoint that must leave (terminating, or no longer serving) is urgent."""
    for endpoint in endpoints or ():
        conditions = endpoint.get("conditions") or {}
        if conditions.get("terminating") or conditions.get("serving") is False or conditions.get("ready") is False:
            return Priority.DEREGISTER
    return Priority.REGISTER


class BindingQueue:
    """Binding reconciles by priority, then arrival; a key queued again keeps one entry at the more
    urgent priority, and a key that is running is run once more afterwards (never twice at once).
    After each run, health is read again when the reconciler asks (targets on their way to healthy)."""

    def __init__(
        self,
        reconciler: BindingReconciler,
        workers: int,
        interrupt: Callable[[], None] = lambda: None,
        resync_seconds: float = 600.0,
        gate: PeeringGate | None = None,
    ):
        self.reconciler = reconciler
        self.gate = gate or PeeringGate(peering=False)  # closed while another replica is the active one
        self.workers = workers
        self.resync_seconds = resync_seconds
        self._tracked: set[Key] = set()  # every binding this operator handles, for the resync sweep
        self._trim = Trimmer()
        self._idle: asyncio.TimerHandle | None = None
        self.interrupt = interrupt  # wakes calls waiting in the API budget (Budget.interrupt)
        self._heap: list[tuple[int, int, Key]] = []
        self._queued: dict[Key, int] = {}  # key -> the priority it waits at
        self._running: dict[Key, int | None] = {}  # key -> priority to run again at, if asked meanwhile
        self._running_at: dict[Key, tuple[int, threading.Event]] = {}  # key -> its priority, its cancel flag
        self._order = itertools.count()
        self._ready: asyncio.Condition | None = None
        self._rechecks: dict[Key, asyncio.TimerHandle] = {}
        self._changed_at: dict[Key, float] = {}  # key -> when an event first asked for it since its last run
        self._tasks: list[asyncio.Task] = []
        self._pool: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._ready = asyncio.Condition()
        self.gate.bind(self._loop)
        self.gate.when_open(lambda: asyncio.ensure_future(self._notify(every=True)))
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="binding")
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(self.workers)]
        self._tasks.append(asyncio.create_task(self._sweep()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for handle in self._rechecks.values():
            handle.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def put(self, key: Key, priority: Priority) -> None:
        """Event-loop side: queue a reconcile (or raise the urgency of the queued one)."""
        if priority not in (Priority.CONFIRM, Priority.ROUTINE):  # an event, not a sweep or a health re-read
            self._changed_at.setdefault(key, time.monotonic())
        if key in self._running:
            again = self._running[key]
            self._running[key] = priority if again is None else min(again, priority)
            running_at, cancel = self._running_at[key]
            if priority < running_at and not cancel.is_set():
                # e.g. a pod of this binding started terminating while its reconcile waits to register:
                # give up that wait, and run again at once, deregistration first.
                cancel.set()
                self.interrupt()
            return
        if self._queued.get(key, Priority.ROUTINE + 1) <= priority:
            return
        self._queued[key] = priority
        heapq.heappush(self._heap, (int(priority), next(self._order), key))
        if self._ready is not None:
            asyncio.ensure_future(self._notify())

    def put_threadsafe(self, key: Key, priority: Priority = Priority.ROUTINE) -> None:
        """From a handler thread (e.g. a Canary that just made a rule forward to the group)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.put, key, priority)

    def track(self, key: Key) -> None:
        self._tracked.add(key)

    async def _sweep(self) -> None:
        """Queues every binding once per resync period, spread evenly over it: this catches a missed
        event (drift reads and refusals' retries have timers of their own). One task for all bindings,
        where a kopf timer per binding would hold a task, a logger and a body each, and fire in step."""
        while True:
            await self.gate.opened()  # a paused replica sweeps nothing
            keys = sorted(self._tracked)
            if not keys:
                await asyncio.sleep(self.resync_seconds)
                continue
            gap = self.resync_seconds / len(keys)
            for key in keys:
                await asyncio.sleep(gap)
                if key in self._tracked and self.gate.is_open():
                    self.put(key, Priority.ROUTINE)

    def forget(self, key: Key) -> None:
        self._tracked.discard(key)
        handle = self._rechecks.pop(key, None)
        if handle is not None:
            handle.cancel()
        self._queued.pop(key, None)
        self._changed_at.pop(key, None)

    async def _notify(self, every: bool = False) -> None:
        assert self._ready is not None
        async with self._ready:
            if every:
                self._ready.notify_all()
            else:
                self._ready.notify()

    async def _next(self) -> tuple[Key, int]:
        assert self._ready is not None
        async with self._ready:
            while True:
                # While another replica is the active one, what is queued waits (it runs on resume).
                while self._heap and self.gate.is_open():
                    priority, _, key = heapq.heappop(self._heap)
                    if self._queued.get(key) == priority:  # else superseded by a more urgent entry
                        del self._queued[key]
                        self._running[key] = None
                        self._running_at[key] = (priority, threading.Event())
                        return key, priority
                await self._ready.wait()

    async def _worker(self) -> None:
        assert self._loop is not None
        while True:
            key, priority = await self._next()
            _, cancel = self._running_at[key]
            changed_at = self._changed_at.pop(key, None)
            try:
                outcome = await self._loop.run_in_executor(self._pool, self._run, key, priority, cancel)
            except Superseded:
                outcome = None  # run again below, at the urgent priority
            except Fenced:  # paused mid-reconcile: it runs again when this replica is the active one
                outcome = None
                again = self._running.get(key)
                self._running[key] = priority if again is None else min(again, priority)
            except Exception:  # noqa: BLE001 - one binding's failure must not stop the worker
                log.exception("binding reconcile failed; retrying", extra={"binding": "/".join(key)})
                metrics.reconcile_errors.labels("TargetGroupBinding").inc()
                outcome = None
                self._schedule(key, 5.0)
            if outcome is not None and outcome.writes and changed_at is not None:
                metrics.target_registration.observe(time.monotonic() - changed_at)
            elif outcome is None and changed_at is not None:  # not done: the change still waits
                self._changed_at[key] = min(changed_at, self._changed_at.get(key, changed_at))
            self._running_at.pop(key, None)
            again = self._running.pop(key, None)
            if again is not None:
                self.put(key, Priority(again))
            elif outcome is not None and outcome.recheck:
                # the change's own follow-up: ahead of other bindings' registrations, which wait on another
                # API bucket, so a burst's health reads interleave with it instead of trailing it
                self._schedule(key, outcome.recheck, Priority.CONFIRM)
            elif outcome is not None and outcome.idle_recheck:
                self._schedule(key, outcome.idle_recheck, Priority.ROUTINE)
            if not self._heap and not self._running:
                self._when_idle()

    def _when_idle(self) -> None:
        """A second after the queue last ran dry, give the burst's freed memory back (see memory.py)."""
        assert self._loop is not None
        if self._idle is not None:
            self._idle.cancel()
        loop = self._loop
        self._idle = loop.call_later(1.0, lambda: loop.run_in_executor(self._pool, self._trim))

    def _run(self, key: Key, priority: int, cancel: threading.Event):
        with urgency(Priority(priority)), cancellable(cancel):
            return self.reconciler.reconcile(*key)

    def _schedule(self, key: Key, delay: float, priority: Priority = Priority.ROUTINE) -> None:
        assert self._loop is not None
        previous = self._rechecks.pop(key, None)
        if previous is not None:
            previous.cancel()
        self._rechecks[key] = self._loop.call_later(delay, self.put, key, priority)


def register(registry: kopf.OperatorRegistry, reconciler: BindingReconciler, queue: BindingQueue) -> None:
    """`queue` also re-queues every binding once per resync period (see BindingQueue._sweep)."""

    @kopf.on.startup(registry=registry)
    async def start_binding_workers(**_: Any) -> None:
        await queue.start()

    @kopf.on.cleanup(registry=registry)
    async def stop_binding_workers(**_: Any) -> None:
        await queue.stop()

    def queue_all(keys: Iterable[Key], priority: Priority) -> None:
        for key in keys:
            queue.put(key, priority)

    @kopf.index(GROUP, VERSION, api.PLURAL, id="bindings_by_service", registry=registry)
    def bindings_by_service(namespace: str | None, name: str, spec: kopf.Spec, **_: Any) -> object:
        service = (spec.get("serviceRef") or {}).get("name")
        return {(namespaced(namespace), service): name} if service else None

    @kopf.on.resume(GROUP, VERSION, api.PLURAL, id="binding_resumed", registry=registry)
    @kopf.on.create(GROUP, VERSION, api.PLURAL, id="binding_created", registry=registry)
    @kopf.on.update(GROUP, VERSION, api.PLURAL, field="spec", id="binding_updated", registry=registry)
    async def binding_changed(namespace: str | None, name: str, **_: Any) -> None:
        key = (namespaced(namespace), name)
        queue.track(key)
        queue.put(key, Priority.REGISTER)

    @kopf.on.delete(GROUP, VERSION, api.PLURAL, id="binding_deleted", registry=registry)
    async def binding_deleted(body: kopf.Body, namespace: str | None, name: str, **_: Any) -> None:
        queue.forget((namespaced(namespace), name))
        try:
            with urgency(Priority.DEREGISTER):
                await asyncio.to_thread(reconciler.remove, dict(body))
        except Fenced as fenced:  # the active replica removes it; kopf retries here after a hand-over
            raise kopf.TemporaryError(str(fenced), delay=2.0) from None

    @kopf.on.event("v1", "services", id="service_event", registry=registry)  # type: ignore[arg-type]  # kopf passes indices as keywords its protocol omits
    async def service_event(namespace: str | None, name: str, bindings_by_service: kopf.Index, **_: Any) -> None:
        ns = namespaced(namespace)
        queue_all(((ns, b) for b in bindings_by_service.get((ns, name), ())), Priority.REGISTER)

    @kopf.on.event(  # type: ignore[arg-type]  # kopf passes indices as keywords its protocol omits
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        labels={"kubernetes.io/service-name": kopf.PRESENT},
        id="endpoints_event",
        registry=registry,
    )
    async def endpoints_event(
        type: str,
        namespace: str | None,
        labels: kopf.Labels,
        body: kopf.Body,
        bindings_by_service: kopf.Index,
        **_: Any,
    ) -> None:
        ns = namespaced(namespace)
        service = labels.get("kubernetes.io/service-name")
        priority = Priority.DEREGISTER if type == "DELETED" else slice_priority(body.get("endpoints") or ())
        queue_all(((ns, b) for b in bindings_by_service.get((ns, service), ())), priority)
