"""Kubernetes API access through the official client, in-cluster or from KUBECONFIG."""

from __future__ import annotations

import base64
import calendar
import json
import logging
import socket
import time
from functools import cached_property

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from awsctl.api import GROUP, VERSION, binding

log = logging.getLogger("awsctl.kube")
FIELD_MANAGER = "awsctl"
APPLY = "application/apply-patch+yaml"
JSON_PATCH = "application/json-patch+json"


def load_api_client() -> client.ApiClient:
    try:
        config.load_incluster_config()
        cfg = client.Configuration.get_default_copy()
    except config.ConfigException:
        cfg = client.Configuration()
        config.load_kube_config(client_configuration=cfg)
    cfg.connection_pool_maxsize = 64  # above the handler thread pool, so connections are reused
    return client.ApiClient(cfg)


RFC3339 = "%Y-%m-%dT%H:%M:%SZ"  # the second-resolution UTC form Kubernetes uses in conditions and events


def rfc3339(epoch: float) -> str:
    return time.strftime(RFC3339, time.gmtime(epoch))


def epoch(text: str | None) -> float:
    return float(calendar.timegm(time.strptime(text, RFC3339))) if text else 0.0


def now_rfc3339() -> str:
    return rfc3339(time.time())


class Kube:
    """Thin wrappers returning plain dicts, so planning code never sees client model classes."""

    def __init__(self, api_client: client.ApiClient | None = None):
        self.api_client = api_client or load_api_client()
        self._instance = socket.gethostname()

    @cached_property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api_client)

    @cached_property
    def discovery(self) -> client.DiscoveryV1Api:
        return client.DiscoveryV1Api(self.api_client)

    @cached_property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api_client)

    @cached_property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api_client)

    @staticmethod
    def _json(call, *args, **kwargs) -> dict:
        """Raw JSON instead of client model objects: the models cost CPU and memory on every read."""
        return json.loads(call(*args, _preload_content=False, **kwargs).data)

    def _read(self, call, *args) -> dict | None:
        try:
            return self._json(call, *args)
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    # -- reads ------------------------------------------------------------------------
    def get_custom(self, plural: str, namespace: str, name: str) -> dict | None:
        return self._read(self.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, plural, name)

    def get_service(self, namespace: str, name: str) -> dict | None:
        return self._read(self.core.read_namespaced_service, name, namespace)

    def get_deployment(self, namespace: str, name: str) -> dict | None:
        return self._read(self.apps.read_namespaced_deployment, name, namespace)

    def list_custom(self, plural: str, namespace: str | None, label_selector: str | None = None) -> list[dict]:
        """In one namespace, or in all of them when `namespace` is None."""
        if namespace:
            return self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural,
                                                             label_selector=label_selector)["items"]
        return self.custom.list_cluster_custom_object(GROUP, VERSION, plural, label_selector=label_selector)["items"]

    def endpoint_slices(self, namespace: str, service: str) -> list[dict]:
        return self._json(self.discovery.list_namespaced_endpoint_slice, namespace,
                          label_selector=f"kubernetes.io/service-name={service}")["items"]

    def get_secret(self, namespace: str, name: str) -> dict | None:
        return self._read(self.core.read_namespaced_secret, name, namespace)

    def create_secret(self, namespace: str, name: str, data: dict[str, bytes], kind: str = "Opaque") -> None:
        self.core.create_namespaced_secret(namespace, {
            "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "awsctl"}}, "type": kind,
            "data": {k: base64.b64encode(v).decode("ascii") for k, v in data.items()}})

    def apply_webhook_configuration(self, config: dict) -> None:
        """Server-side apply of a MutatingWebhookConfiguration (idempotent; ours alone)."""
        client.AdmissionregistrationV1Api(self.api_client).patch_mutating_webhook_configuration(
            config["metadata"]["name"], config, field_manager=FIELD_MANAGER, force=True, _content_type=APPLY)

    def get_pod(self, namespace: str, name: str) -> dict | None:
        return self._read(self.core.read_namespaced_pod, name, namespace)

    def nodes(self) -> list[dict]:
        return self._json(self.core.list_node)["items"]

    # -- writes -----------------------------------------------------------------------
    def patch_status(self, plural: str, namespace: str, name: str, status: dict) -> None:
        try:
            self.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, plural, name, {"status": status}
            )
        except ApiException as err:
            if err.status != 404:  # deleted meanwhile: nothing to report on
                raise

    def apply(self, obj: dict) -> dict:
        """Server-side apply as `awsctl`: idempotent (no write when nothing differs), owns only our fields."""
        meta = obj["metadata"]
        kwargs = {"field_manager": FIELD_MANAGER, "force": True, "_content_type": APPLY}
        if obj["kind"] == "Service":
            return self._json(self.core.patch_namespaced_service, meta["name"], meta["namespace"], obj, **kwargs)
        if obj["kind"] == "Deployment":
            return self._json(self.apps.patch_namespaced_deployment, meta["name"], meta["namespace"], obj, **kwargs)
        plural = {binding.KIND: binding.PLURAL}[obj["kind"]]
        return self._json(self.custom.patch_namespaced_custom_object, GROUP, VERSION, meta["namespace"], plural,
                          meta["name"], obj, **kwargs)

    def set_pod_condition(self, namespace: str, name: str, type: str, status: bool, reason: str,
                          message: str) -> None:
        """One pod condition (a readiness gate's), merged by type: the kubelet's own conditions stay."""
        condition = {"type": type, "status": "True" if status else "False", "reason": reason, "message": message,
                     "lastProbeTime": None, "lastTransitionTime": now_rfc3339()}
        try:
            self.core.patch_namespaced_pod_status(name, namespace, {"status": {"conditions": [condition]}},
                                                  _content_type="application/strategic-merge-patch+json")
        except ApiException as err:
            if err.status != 404:  # the pod is gone: nothing to gate
                raise

    def scale(self, namespace: str, deployment: str, replicas: int) -> None:
        self.apps.patch_namespaced_deployment_scale(deployment, namespace, {"spec": {"replicas": replicas}})

    def set_service_selector(self, namespace: str, name: str, selector: dict) -> None:
        """Replaces the whole selector (a merge patch would keep keys we want gone)."""
        self.core.patch_namespaced_service(name, namespace, [{"op": "replace", "path": "/spec/selector",
                                                              "value": selector}], _content_type=JSON_PATCH)

    def delete_custom(self, plural: str, namespace: str, name: str) -> None:
        try:
            self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
        except ApiException as err:
            if err.status != 404:
                raise

    def event(self, obj: dict, *, type: str, reason: str, message: str) -> None:
        """Posts a core/v1 Event on `obj`; failures are logged, never raised (events are best effort)."""
        meta = obj.get("metadata") or {}
        now = now_rfc3339()
        body = {
            "metadata": {"generateName": f"{meta.get('name', 'awsctl')}.", "namespace": meta.get("namespace")},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "name": meta.get("name"),
                "namespace": meta.get("namespace"), "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": type, "reason": reason, "message": message[:1024],
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "source": {"component": "awsctl"},
            "reportingComponent": "awsctl.io/controller", "reportingInstance": self._instance,
        }
        try:
            self.core.create_namespaced_event(meta.get("namespace") or "default", body)
        except Exception as err:  # noqa: BLE001 - an event must never break a reconcile
            log.warning("could not post event", extra={"reason": reason, "error": str(err)})
