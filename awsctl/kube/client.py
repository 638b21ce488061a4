"""Kubernetes API access: a small REST client on urllib3, in-cluster or from KUBECONFIG.

Not the official client: importing it loads a pydantic model for every kind in Kubernetes (~20 MiB
of an operator that reads a handful of kinds as plain JSON). Credentials: the pod's service account
(kopf's loader), else the kubeconfig's current context, with its `exec` plugin if it has one
(e.g. `aws eks get-token`); a 401 loads them again once, so rotated tokens are picked up. The
operator's kopf session logs in with the same loader.
"""

from __future__ import annotations

import base64
import calendar
import json
import logging
import os
import socket
import subprocess
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

import kopf
import urllib3
import yaml

from awsctl import metrics
from awsctl.api import GROUP, VERSION, binding

log = logging.getLogger("awsctl.kube")
FIELD_MANAGER = "awsctl"
APPLY = "application/apply-patch+yaml"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
POOL_SIZE = 32  # above the binding and handler threads together, so connections are reused
TIMEOUT = urllib3.Timeout(connect=10.0, read=60.0)
# Connection failures are retried, and a 429 (the API server's "storage is (re)initializing" or its
# priority-and-fairness limit) after its Retry-After: the request was not processed, so any verb may
# be sent again. Past the retries the 429 is returned as the ApiError it is.
RETRIES = urllib3.Retry(
    total=6,
    connect=3,
    read=0,
    redirect=0,
    status=3,
    other=0,
    backoff_factor=0.2,
    status_forcelist=(429,),
    allowed_methods=None,
    raise_on_status=False,
)


class ApiError(Exception):
    """The API server refused a call: its HTTP status, reason and JSON body (a Status)."""

    def __init__(self, status: int, reason: str, body: str):
        super().__init__(f"({status}) {reason}: {body[:300]}")
        self.status, self.reason, self.body = status, reason, body

    @property
    def message(self) -> str:
        """The Status's own words (e.g. which field the schema refused), else the HTTP reason."""
        try:
            return json.loads(self.body).get("message") or str(self.reason)
        except (TypeError, ValueError, AttributeError):
            return str(self.reason)


class Unreachable(Exception):
    """No connection to the API server (after urllib3's connect retries)."""

    def __init__(self, server: str, reason: object):
        super().__init__(f"{server}: {reason}")
        self.server = server
        self.reason = reason


def _exec_token(plugin: dict) -> str | None:
    """Runs a kubeconfig `exec` credential plugin (e.g. `aws eks get-token`) for its token."""
    env = dict(os.environ, **{e["name"]: e["value"] for e in plugin.get("env") or ()})
    out = subprocess.run(
        [plugin["command"], *(plugin.get("args") or ())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return (json.loads(out).get("status") or {}).get("token")


def kubeconfig_connection(paths: str) -> kopf.ConnectionInfo:
    """The current context of kubeconfig files (`KUBECONFIG` syntax: the first value of a name wins)."""
    current: str | None = None
    contexts: dict[str, dict[str, Any]] = {}
    clusters: dict[str, dict[str, Any]] = {}
    users: dict[str, dict[str, Any]] = {}
    for path in (os.path.expanduser(p) for p in paths.split(os.pathsep) if p):
        with open(path, encoding="utf-8") as f:
            config = yaml.safe_load(f) or {}
        current = current or config.get("current-context")
        for kind, into in (("contexts", contexts), ("clusters", clusters), ("users", users)):
            for item in config.get(kind) or ():
                into.setdefault(item["name"], item.get(kind[:-1]) or {})
    if current not in contexts:
        raise kopf.LoginError(f"kubeconfig {paths}: no current context")
    context = contexts[current]
    cluster, user = clusters.get(context.get("cluster") or "", {}), users.get(context.get("user") or "", {})
    token = user.get("token") or (user.get("auth-provider") or {}).get("config", {}).get("access-token")
    if not token and user.get("exec"):
        token = _exec_token(user["exec"])
    return kopf.ConnectionInfo(
        server=cluster["server"],
        ca_path=cluster.get("certificate-authority"),
        ca_data=cluster.get("certificate-authority-data"),
        insecure=cluster.get("insecure-skip-tls-verify"),
        certificate_path=user.get("client-certificate"),
        certificate_data=user.get("client-certificate-data"),
        private_key_path=user.get("client-key"),
        private_key_data=user.get("client-key-data"),
        username=user.get("username"),
        password=user.get("password"),
        token=token,
        default_namespace=context.get("namespace"),
        proxy_url=cluster.get("proxy-url"),
    )


def load_connection(kubeconfig: str | None = None) -> kopf.ConnectionInfo:
    """`kubeconfig` if given; else the pod's service account in a cluster; else KUBECONFIG or ~/.kube/config."""
    if kubeconfig:
        return kubeconfig_connection(kubeconfig)
    info = kopf.login_with_service_account(settings=kopf.OperatorSettings(), logger=log)
    if info is not None:
        return info
    paths = os.environ.get("KUBECONFIG") or "~/.kube/config"
    if not any(os.path.exists(os.path.expanduser(p)) for p in paths.split(os.pathsep) if p):
        raise kopf.LoginError("no Kubernetes credentials: not in a cluster, and no KUBECONFIG or ~/.kube/config")
    return kubeconfig_connection(paths)


class Rest:
    """JSON over one pooled HTTPS connection set to the API server."""

    def __init__(self, kubeconfig: str | None = None, fence: Callable[[str], None] | None = None):
        self._kubeconfig = kubeconfig
        self.fence = fence  # called before every write (any method but GET); raises to refuse it
        self._login()

    def _login(self) -> None:
        info = load_connection(self._kubeconfig)
        self.server = info.server.rstrip("/")
        self.default_namespace = info.default_namespace or "default"
        self._headers = {"Accept": "application/json", "User-Agent": "awsctl", **info.as_http_headers()}
        self._pool = urllib3.PoolManager(
            num_pools=2,
            maxsize=POOL_SIZE,
            ssl_context=info.as_ssl_context(),
            assert_hostname=False if info.insecure else None,
        )

    def call(self, method: str, path: str, body=None, *, content_type: str = "application/json", **query) -> dict:
        if method != "GET" and self.fence is not None:
            self.fence(f"{method} {path}")
        metrics.kubernetes_calls.labels(method).inc()
        params = {k: v for k, v in query.items() if v is not None}
        url = self.server + path + ("?" + urlencode(params) if params else "")
        for attempt in (1, 2):
            headers = dict(self._headers)
            data = None
            if body is not None:
                data, headers["Content-Type"] = json.dumps(body).encode(), content_type
            try:
                response = self._pool.request(
                    method, url, body=data, headers=headers, timeout=TIMEOUT, retries=RETRIES, preload_content=True
                )
            except urllib3.exceptions.MaxRetryError as err:
                raise Unreachable(self.server, err.reason or err) from err
            if response.status == 401 and attempt == 1:
                self._login()  # a rotated service-account token or an expired exec token
                continue
            if response.status >= 400:
                raise ApiError(response.status, response.reason or "", response.data.decode("utf-8", "replace"))
            return json.loads(response.data) if response.data else {}
        raise AssertionError("unreachable")


def _custom(namespace: str | None, plural: str, name: str = "", sub: str = "") -> str:
    base = f"/apis/{GROUP}/{VERSION}" + (f"/namespaces/{quote(namespace)}" if namespace else "") + f"/{plural}"
    return base + (f"/{quote(name)}" if name else "") + (f"/{sub}" if sub else "")


def _core(namespace: str, kind: str, name: str = "", sub: str = "") -> str:
    return (
        f"/api/v1/namespaces/{quote(namespace)}/{kind}"
        + (f"/{quote(name)}" if name else "")
        + (f"/{sub}" if sub else "")
    )


def _hpa(namespace: str, name: str = "") -> str:
    return f"/apis/autoscaling/v2/namespaces/{quote(namespace)}/horizontalpodautoscalers" + (
        f"/{quote(name)}" if name else ""
    )


def _apps(namespace: str, name: str, sub: str = "") -> str:
    return f"/apis/apps/v1/namespaces/{quote(namespace)}/deployments/{quote(name)}" + (f"/{sub}" if sub else "")


RFC3339 = "%Y-%m-%dT%H:%M:%SZ"  # the second-resolution UTC form Kubernetes uses in conditions and events


def rfc3339(epoch: float) -> str:
    return time.strftime(RFC3339, time.gmtime(epoch))


def epoch(text: str | None) -> float:
    return float(calendar.timegm(time.strptime(text, RFC3339))) if text else 0.0


def now_rfc3339() -> str:
    return rfc3339(time.time())


class Kube:
    """The calls awsctl makes, returning plain dicts."""

    def __init__(self, rest: Rest | None = None):
        self.rest = rest or Rest()
        self._instance = socket.gethostname()

    @classmethod
    def from_kubeconfig(cls, path: str) -> Kube:
        return cls(Rest(str(path)))

    def _read(self, path: str) -> dict | None:
        try:
            return self.rest.call("GET", path)
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    # -- reads ------------------------------------------------------------------------
    def get_custom(self, plural: str, namespace: str, name: str) -> dict | None:
        return self._read(_custom(namespace, plural, name))

    def get_service(self, namespace: str, name: str) -> dict | None:
        return self._read(_core(namespace, "services", name))

    def get_deployment(self, namespace: str, name: str) -> dict | None:
        return self._read(_apps(namespace, name))

    def list_custom(self, plural: str, namespace: str | None, label_selector: str | None = None) -> list[dict]:
        """In one namespace, or in all of them when `namespace` is None."""
        return self.rest.call("GET", _custom(namespace or None, plural), labelSelector=label_selector)["items"]

    def peering_status(self, name: str, namespace: str | None) -> dict | None:
        """kopf's peering object's status (its peers' records): the ClusterKopfPeering, or the KopfPeering
        in `namespace`; None when the object is missing."""
        where = f"/namespaces/{namespace}/kopfpeerings/{name}" if namespace else f"/clusterkopfpeerings/{name}"
        found = self._read("/apis/kopf.dev/v1" + where)
        return None if found is None else dict(found.get("status") or {})

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        """A namespace's labels ({} when it is gone)."""
        found = self._read(f"/api/v1/namespaces/{quote(namespace)}")
        return dict(((found or {}).get("metadata") or {}).get("labels") or {})

    def endpoint_slices(self, namespace: str, service: str) -> list[dict]:
        return self.rest.call(
            "GET",
            f"/apis/discovery.k8s.io/v1/namespaces/{quote(namespace)}/endpointslices",
            labelSelector=f"kubernetes.io/service-name={service}",
        )["items"]

    def events(self, namespace: str, field_selector: str) -> list[dict]:
        return self.rest.call("GET", _core(namespace, "events"), fieldSelector=field_selector)["items"]

    def get_secret(self, namespace: str, name: str) -> dict | None:
        return self._read(_core(namespace, "secrets", name))

    def create_secret(self, namespace: str, name: str, data: dict[str, bytes], kind: str = "Opaque") -> None:
        self.rest.call(
            "POST",
            _core(namespace, "secrets"),
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "awsctl"}},
                "type": kind,
                "data": {k: base64.b64encode(v).decode("ascii") for k, v in data.items()},
            },
        )

    def apply_webhook_configuration(self, config: dict) -> None:
        """Server-side apply of a MutatingWebhookConfiguration (idempotent; ours alone)."""
        self.rest.call(
            "PATCH",
            "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/" + quote(config["metadata"]["name"]),
            config,
            content_type=APPLY,
            fieldManager=FIELD_MANAGER,
            force="true",
        )

    def get_autoscaler(self, namespace: str, name: str) -> dict | None:
        return self._read(_hpa(namespace, name))

    def autoscalers(self, namespace: str) -> list[dict]:
        return self.rest.call("GET", _hpa(namespace))["items"]

    def get_pod(self, namespace: str, name: str) -> dict | None:
        return self._read(_core(namespace, "pods", name))

    def nodes(self) -> list[dict]:
        return self.rest.call("GET", "/api/v1/nodes")["items"]

    # -- writes -----------------------------------------------------------------------
    def patch_status(
        self, plural: str, namespace: str, name: str, status: dict, resource_version: str | None = None
    ) -> dict | None:
        """A merge patch of the status; the object as it is now (None when it was deleted meanwhile).
        `resource_version`: only if nobody wrote the object since that version, else ApiError 409."""
        patch: dict = {"status": status}
        if resource_version is not None:
            patch["metadata"] = {"resourceVersion": resource_version}
        try:
            return self.rest.call("PATCH", _custom(namespace, plural, name, "status"), patch, content_type=MERGE_PATCH)
        except ApiError as err:
            if err.status != 404:  # deleted meanwhile: nothing to report on
                raise
            return None

    def apply(self, obj: dict) -> dict:
        """Server-side apply as `awsctl`: idempotent (no write when nothing differs), owns only our fields."""
        meta = obj["metadata"]
        if obj["kind"] == "Service":
            path = _core(meta["namespace"], "services", meta["name"])
        elif obj["kind"] == "Deployment":
            path = _apps(meta["namespace"], meta["name"])
        elif obj["kind"] == "HorizontalPodAutoscaler":
            path = _hpa(meta["namespace"], meta["name"])
        else:
            path = _custom(meta["namespace"], {binding.KIND: binding.PLURAL}[obj["kind"]], meta["name"])
        return self.rest.call("PATCH", path, obj, content_type=APPLY, fieldManager=FIELD_MANAGER, force="true")

    def set_pod_condition(self, namespace: str, name: str, type: str, status: bool, reason: str, message: str) -> None:
        """One pod condition (a readiness gate's), merged by type: the kubelet's own conditions stay."""
        condition = {
            "type": type,
            "status": "True" if status else "False",
            "reason": reason,
            "message": message,
            "lastProbeTime": None,
            "lastTransitionTime": now_rfc3339(),
        }
        try:
            self.rest.call(
                "PATCH",
                _core(namespace, "pods", name, "status"),
                {"status": {"conditions": [condition]}},
                content_type=STRATEGIC_MERGE_PATCH,
            )
        except ApiError as err:
            if err.status != 404:  # the pod is gone: nothing to gate
                raise

    def scale(self, namespace: str, deployment: str, replicas: int) -> None:
        self.rest.call(
            "PATCH", _apps(namespace, deployment, "scale"), {"spec": {"replicas": replicas}}, content_type=MERGE_PATCH
        )

    def set_service_selector(self, namespace: str, name: str, selector: dict) -> None:
        """Replaces the whole selector (a merge patch would keep keys we want gone)."""
        self.rest.call(
            "PATCH",
            _core(namespace, "services", name),
            [{"op": "replace", "path": "/spec/selector", "value": selector}],
            content_type=JSON_PATCH,
        )

    def patch_custom(self, plural: str, namespace: str, name: str, patch: dict) -> dict:
        """A merge patch of spec or metadata (what `awsctl pause` and `awsctl promote` change)."""
        return self.rest.call("PATCH", _custom(namespace, plural, name), patch, content_type=MERGE_PATCH)

    def delete_custom(self, plural: str, namespace: str, name: str) -> None:
        try:
            self.rest.call("DELETE", _custom(namespace, plural, name))
        except ApiError as err:
            if err.status != 404:
                raise

    def event(self, obj: dict, *, type: str, reason: str, message: str) -> None:
        """Posts a core/v1 Event on `obj`; failures are logged, never raised (events are best effort)."""
        meta = obj.get("metadata") or {}
        now = now_rfc3339()
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta.get('name', 'awsctl')}.", "namespace": meta.get("namespace")},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"),
                "kind": obj.get("kind"),
                "name": meta.get("name"),
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": type,
            "reason": reason,
            "message": message[:1024],
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "source": {"component": "awsctl"},
            "reportingComponent": "awsctl.io/controller",
            "reportingInstance": self._instance,
        }
        try:
            self.rest.call("POST", _core(meta.get("namespace") or "default", "events"), body)
        except Exception as err:  # noqa: BLE001 - an event must never break a reconcile
            log.warning("could not post event", extra={"reason": reason, "error": str(err)})
