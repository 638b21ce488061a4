"""The pod readiness-gate webhook (as the LBC's pod mutator): pods created in a namespace labelled
`awsctl.io/readiness-gate-injection=enabled` get `target-health.awsctl.io/<binding>` for every
binding whose Service selects them. The binding sets the gate True once the pod's target is
healthy in AWS, so the pod becomes Ready (and a rolling update moves on) only then.

The webhook's serving certificate and its MutatingWebhookConfiguration are managed here:
- in `awsctl dev` and other out-of-cluster runs, a fresh CA per process and a `url` client config
  (`--readiness-webhook-host`, 127.0.0.1 by default);
- in a cluster (`--readiness-webhook-service NAMESPACE/NAME`), a CA and certificate kept in the
  Secret `<NAME>-tls` (created once, shared by every replica) and a `service` client config.
The configuration fails open (`failurePolicy: Ignore`): an operator that is down never blocks
pod creation; such pods just get no gate.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import kopf

from awsctl.api import GROUP, VERSION
from awsctl.api.binding import PLURAL as BINDINGS
from awsctl.controllers.errors import namespaced
from awsctl.kube.client import ApiError, Kube
from awsctl.planning import objects
from awsctl.planning.gates import NAMESPACE_LABEL, readiness_gates

if TYPE_CHECKING:
    from awsctl.kube import tls

log = logging.getLogger("awsctl.webhook")
HANDLER_ID = "readiness-gates"
CONFIGURATION = "awsctl-readiness-gates"


@dataclass(frozen=True)
class WebhookOptions:
    port: int = 9443
    host: str = "127.0.0.1"  # what the apiserver dials, out of cluster
    service: str | None = None  # NAMESPACE/NAME of the Service in front of the operator, in cluster


def client_config(options: WebhookOptions, ca: bytes) -> dict:
    bundle = base64.b64encode(ca).decode("ascii")
    if options.service:
        namespace, name = options.service.split("/", 1)
        return {
            "service": {"namespace": namespace, "name": name, "port": options.port, "path": f"/{HANDLER_ID}"},
            "caBundle": bundle,
        }
    return {"url": f"https://{options.host}:{options.port}/{HANDLER_ID}", "caBundle": bundle}


def configuration(options: WebhookOptions, ca: bytes) -> dict:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": CONFIGURATION, "labels": {"app.kubernetes.io/managed-by": "awsctl"}},
        "webhooks": [
            {
                "name": "readiness-gates.awsctl.io",
                "clientConfig": client_config(options, ca),
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "resources": ["pods"],
                        "operations": ["CREATE"],
                        "scope": "Namespaced",
                    }
                ],
                "namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: "enabled"}},
                "failurePolicy": "Ignore",
                "sideEffects": "None",
                "matchPolicy": "Equivalent",
                "timeoutSeconds": 10,
                "admissionReviewVersions": ["v1"],
                "reinvocationPolicy": "IfNeeded",
            }
        ],
    }


def certificate(kube: Kube, options: WebhookOptions) -> tls.ServingBundle:
    """In a cluster, one bundle in a Secret for every replica (the first one creates it); out of
    one, a fresh bundle for this process. `cryptography` is imported here, only when the webhook is
    on: it is 14 MiB of an operator that serves no webhook."""
    from awsctl.kube import tls

    if not options.service:
        return tls.serving_bundle("awsctl-webhook", (options.host, "localhost"))
    namespace, name = options.service.split("/", 1)
    secret = f"{name}-tls"
    for _ in range(3):
        found = kube.get_secret(namespace, secret)
        if found is not None:
            data = found.get("data") or {}
            return tls.ServingBundle(*(base64.b64decode(data[k]) for k in ("ca.crt", "tls.crt", "tls.key")))
        bundle = tls.serving_bundle(
            f"{name}.{namespace}.svc",
            (f"{name}.{namespace}.svc", f"{name}.{namespace}", f"{name}.{namespace}.svc.cluster.local"),
        )
        try:
            kube.create_secret(
                namespace,
                secret,
                {"ca.crt": bundle.ca, "tls.crt": bundle.cert, "tls.key": bundle.key},
                kind="kubernetes.io/tls",
            )
            return bundle
        except ApiError as err:
            if err.status != 409:  # another replica created it first: read theirs
                raise
    raise RuntimeError(f"could not read or create Secret {namespace}/{secret}")


class ManagedWebhookServer(kopf.WebhookServer):
    """kopf's HTTPS server with our certificate; each time it (re)starts, the configuration is
    written with our client config and CA bundle (namespace opt-in, fail-open)."""

    def __init__(self, kube: Kube, options: WebhookOptions):
        self.kube, self.options = kube, options
        bundle = certificate(kube, options)
        self._files = tempfile.TemporaryDirectory(prefix="awsctl-webhook-")
        cert, key = Path(self._files.name) / "tls.crt", Path(self._files.name) / "tls.key"
        cert.write_bytes(bundle.cert)
        key.write_bytes(bundle.key)
        key.chmod(0o600)
        self.ca = bundle.ca
        super().__init__(addr="0.0.0.0", port=options.port, certfile=str(cert), pkeyfile=str(key), cadata=bundle.ca)

    async def __call__(self, fn) -> AsyncIterator[Any]:
        async for config in super().__call__(fn):
            await asyncio.to_thread(self.kube.apply_webhook_configuration, configuration(self.options, self.ca))
            log.info(
                "readiness-gate webhook serving",
                extra={
                    "port": self.options.port,
                    "clientConfig": {k: v for k, v in client_config(self.options, self.ca).items() if k != "caBundle"},
                },
            )
            yield config


def register(registry: kopf.OperatorRegistry, kube: Kube, options: WebhookOptions) -> None:
    @kopf.on.startup(registry=registry)
    def serve_webhook(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.admission.server = ManagedWebhookServer(kube, options)
        settings.admission.managed = None  # our configuration, with its namespace selector, is written above

    @kopf.index("v1", "services", id="service_selectors", registry=registry)
    def service_selectors(namespace: str | None, name: str, spec: kopf.Spec, **_: Any) -> object:
        """Which Services select a new pod: the bindings behind them each add a gate."""
        return {namespaced(namespace): (name, dict(spec.get("selector") or {}))}

    @kopf.index(GROUP, VERSION, BINDINGS, id="gates_by_service", registry=registry)
    def gates_by_service(namespace: str | None, body: kopf.Body, spec: kopf.Spec, **_: Any) -> object:
        """The readiness gate each binding answers, by its Service (a binding made after a move answers
        the gate of the binding it replaces, objects.gate_name)."""
        service = (spec.get("serviceRef") or {}).get("name")
        return {(namespaced(namespace), service): objects.gate_name(body)} if service else None

    @kopf.on.mutate("v1", "pods", operations=["CREATE"], ignore_failures=True, id=HANDLER_ID, registry=registry)  # type: ignore[arg-type]  # kopf passes indices as keywords its protocol omits
    def add_readiness_gates(
        body: kopf.Body,
        patch: kopf.Patch,
        service_selectors: kopf.Index,
        gates_by_service: kopf.Index,
        **_: Any,
    ) -> None:
        meta = body.get("metadata") or {}
        namespace = meta.get("namespace")
        gates = readiness_gates(
            meta.get("labels"),
            service_selectors.get(namespace, ()),
            lambda service: gates_by_service.get((namespace, service), ()),
            (body.get("spec") or {}).get("readinessGates"),
        )
        if gates is not None:
            patch.spec["readinessGates"] = gates
            log.info(
                "readiness gates added",
                extra={
                    "pod": f"{namespace}/{meta.get('name') or meta.get('generateName')}",
                    "gates": [g["conditionType"] for g in gates],
                },
            )
