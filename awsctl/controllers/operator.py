"""`awsctl run`: wires settings, adapters and handlers into one kopf operator."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import kopf

from awsctl import __version__, metrics, routing
from awsctl.api.binding import PLURAL as BINDINGS
from awsctl.api.canary import PLURAL as CANARIES
from awsctl.aws.budget import Budget, Rate
from awsctl.aws.clients import Clients
from awsctl.aws.cloudwatch import CloudWatch
from awsctl.aws.target_groups import OwnedTargetGroups
from awsctl.aws.targets import TargetGroups
from awsctl.controllers import bindings, canaries, logs, readiness_gates
from awsctl.controllers.analysis_runner import AnalysisRunner
from awsctl.controllers.binding_reconciler import DRIFT_SECONDS, BindingReconciler
from awsctl.controllers.bindings import BindingQueue
from awsctl.controllers.canary_reconciler import CanaryReconciler
from awsctl.controllers.grants import Grants
from awsctl.controllers.peering import PeeringGate
from awsctl.controllers.readiness_gates import WebhookOptions
from awsctl.kube.client import Kube, Rest, load_connection
from awsctl.planning.objects import CANARY_LABEL

log = logging.getLogger("awsctl")
FINALIZER = "awsctl.io/finalizer"
API_CONNECTIONS = 32  # kopf's connections to the API server: ~6 long watches, the rest for patches and events


def bounded_session(info: kopf.ConnectionInfo, limit: int = API_CONNECTIONS) -> kopf.AiohttpSession:
    """kopf's own session opens a new TLS connection for every concurrent request, without bound:
    200 bindings starting together held ~300, each with a 128 KiB buffer and OpenSSL's state
    (~70 MiB at the peak, kept by the heap afterwards). The same credentials, with a bounded pool:
    requests past it wait for a connection instead."""
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, ssl=info.as_ssl_context()),
        headers=info.as_http_headers(),
        proxy=info.proxy_url,
        trust_env=info.trust_env,
    )
    return kopf.AiohttpSession(
        server=info.server,
        default_namespace=info.default_namespace,
        priority=info.priority,
        expiration=info.expiration,
        aiohttp_session=session,
    )


@dataclass(frozen=True)
class OperatorOptions:
    cluster_name: str  # unique in the AWS account: in every target group's name and awsctl.io/cluster tag
    namespaces: tuple[str, ...] = ()
    liveness: str | None = None
    peering: str | None = None
    peering_priority: int | None = None  # None: random, so that replicas never tie (kopf pauses all on a tie)
    peering_lifetime: int = 10  # seconds a silent active replica is trusted: the standby's takeover time
    # This replica's key in the peering object; kopf's own default, but known here so the fence can read it.
    identity: str = field(default_factory=lambda: replica_identity())
    resync_seconds: float = 600.0
    drift_seconds: float = DRIFT_SECONDS
    log_format: str = "json"
    verbose: bool = False
    workers: int = 8  # threads for Canary ticks and kopf's own sync handlers
    binding_workers: int = 16  # threads for binding reconciles, fed most urgent first
    rates: dict[str, Rate] = field(default_factory=dict)  # API budget overrides by bucket
    readiness_webhook: WebhookOptions | None = None  # None: no webhook (the generated primary's gate still works)
    metrics_port: int = 0  # 0: no /metrics
    metrics_host: str = "0.0.0.0"  # the address /metrics listens on


def replica_identity() -> str:
    """kopf's choice: the pod's name when the chart sets POD_ID, else host/pid/random."""
    return os.environ.get("POD_ID") or f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(3)}"


def peering_reader(kube: Kube, name: str, namespaces: tuple[str, ...]) -> Callable[[], list[dict | None]]:
    """Reads every peering object kopf keeps this replica in: the ClusterKopfPeering when watching the
    whole cluster, else the KopfPeering in each watched namespace."""
    return lambda: [kube.peering_status(name, namespace) for namespace in (namespaces or (None,))]


def build_registry(options: OperatorOptions, kube: Kube, clients: Clients) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    peering_priority = options.peering_priority if options.peering_priority is not None else random.randint(1, 2**31)
    groups = TargetGroups(clients)
    grants = Grants(kube)
    canary_reconciler = CanaryReconciler(
        kube,
        groups,
        OwnedTargetGroups(clients),
        routing.select(clients),
        AnalysisRunner(CloudWatch(clients)),
        cluster=options.cluster_name,
        drift_seconds=options.drift_seconds,
        grants=grants,
    )

    def wake_owner(namespace: str, labels: dict) -> None:
        canary = labels.get(CANARY_LABEL)
        if canary:
            canary_reconciler.wakeups.wake((namespace, canary))

    reconciler = BindingReconciler(
        kube,
        groups,
        on_targets_changed=wake_owner,
        drift_seconds=options.drift_seconds,
        grants=grants,
        cluster=options.cluster_name,
    )
    gate = PeeringGate(
        peering=bool(options.peering),
        identity=options.identity,
        priority=peering_priority,
        lifetime=options.peering_lifetime,
    )
    if options.peering:  # every AWS and Kubernetes write awsctl makes passes the gate first
        kube.rest.fence = gate.fence
        clients.fence = gate.fence
    queue = BindingQueue(
        reconciler,
        options.binding_workers,
        interrupt=clients.budget.interrupt,
        resync_seconds=options.resync_seconds,
        gate=gate,
    )

    def recheck_bindings(namespace: str, canary: str) -> None:
        for binding in kube.list_custom(BINDINGS, namespace, f"{CANARY_LABEL}={canary}"):
            name = binding["metadata"]["name"]
            reconciler.expire_health(namespace, name)
            queue.put_threadsafe((namespace, name))

    canary_reconciler.on_groups_attached = recheck_bindings

    @kopf.on.login(registry=registry)
    async def login(**_: Any) -> kopf.AiohttpSession:
        return bounded_session(load_connection())

    @kopf.on.startup(registry=registry)
    async def share_executor(settings: kopf.OperatorSettings, **_: Any) -> None:
        """Our async handlers hand blocking work to asyncio.to_thread; give them kopf's pool
        (`--workers` threads), not asyncio's default of cpu+4 (6 threads on 2 cores)."""
        settings.execution.max_workers = options.workers
        asyncio.get_running_loop().set_default_executor(settings.execution.executor)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.finalizer = FINALIZER
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="awsctl.io")
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix="awsctl.io", key="last-handled-configuration"
        )
        settings.posting.level = logging.WARNING  # our own events say what happened; kopf's only on trouble
        settings.posting.reporting_component = "awsctl"
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330
        settings.networking.connect_timeout = 10
        settings.batching.error_delays = (1, 2, 5, 10, 30, 60)
        if options.peering:
            settings.peering.name = options.peering
            settings.peering.mandatory = True
            settings.peering.priority = peering_priority
            settings.peering.lifetime = options.peering_lifetime
        log.info(
            "awsctl operator starting",
            extra={
                "version": __version__,
                "cluster": options.cluster_name,
                "namespaces": list(options.namespaces) or "all",
                "peering": options.peering or "standalone",
                "peeringPriority": peering_priority if options.peering else None,
                "apiBudget": {
                    name: f"{b.configured.burst}/{b.configured.per_second:g}"
                    for name, b in clients.budget.buckets.items()
                },
                "awsEndpoint": os.environ.get("AWS_ENDPOINT_URL", "default"),
                "awsRegion": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
            },
        )

    if options.peering:

        @kopf.on.startup(registry=registry)
        def watch_peers(**_: Any) -> None:
            gate.watch(peering_reader(kube, options.peering or "", options.namespaces))

        @kopf.on.cleanup(registry=registry)
        def stop_watching_peers(**_: Any) -> None:
            gate.stop()

    bindings.register(registry, reconciler, queue)
    canaries.register(registry, canary_reconciler)
    if options.readiness_webhook is not None:
        # Unfenced: every replica serves the webhook and writes the same Secret and configuration.
        readiness_gates.register(registry, Kube(Rest()), options.readiness_webhook)
    return registry


def preflight(kube: Kube, clients: Clients, namespaces: tuple[str, ...] = ()) -> None:
    """Fails at once, with the cause, where the operator would otherwise retry forever: no Kubernetes
    credentials, an API server it cannot reach or that lacks the CRDs, no AWS credentials or region,
    an AWS endpoint it cannot reach. The AWS probe is STS GetCallerIdentity, which needs no IAM rights."""
    for namespace in namespaces or (None,):  # where it will watch, so a namespaced role suffices
        kube.list_custom(CANARIES, namespace, label_selector="awsctl.io/preflight")
    clients.whoami()


def run(options: OperatorOptions) -> int:
    """Raises (before logging and kopf start) what preflight finds; the CLI puts it in one line."""
    kube = Kube()
    clients = Clients(budget=Budget(options.rates))
    preflight(kube, clients, options.namespaces)
    logs.configure(options.log_format, options.verbose)
    registry = build_registry(options, kube, clients)
    if options.metrics_port:
        metrics.serve(options.metrics_port, options.metrics_host)
        log.info(
            "serving Prometheus metrics",
            extra={"address": options.metrics_host, "port": options.metrics_port, "path": "/metrics"},
        )
    asyncio.run(
        kopf.operator(
            registry=registry,
            clusterwide=not options.namespaces,
            namespaces=options.namespaces,
            liveness_endpoint=options.liveness,
            standalone=not options.peering,
            peering_name=options.peering,
            identity=options.identity,  # type: ignore[arg-type]  # kopf's Identity is a NewType of str
        )
    )
    return 0
