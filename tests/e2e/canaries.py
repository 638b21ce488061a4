"""Helpers shared by the Canary e2e stories: reading status, driving images, reading what AWS was told."""

import threading
import time

from kubernetes import client

from tests.e2e.conftest import wait_for
from tests.e2e.objects import create, deployment, events_for, service

V2 = "registry.local/app:v2"


def status(kube, namespace, name="web"):
    obj = client.CustomObjectsApi(kube).get_namespaced_custom_object("awsctl.io", "v1alpha1", namespace,
                                                                     "canaries", name)
    return obj.get("status") or {}


def wait_phase(kube, namespace, phase, timeout=60.0, name="web"):
    return wait_for(lambda: (lambda s: s if s.get("phase") == phase else None)(status(kube, namespace, name)),
                    timeout=timeout, what=f"phase {phase}")


def set_image(kube, namespace, image, name="web"):
    client.AppsV1Api(kube).patch_namespaced_deployment(name, namespace, {
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}})


def image_of(kube, namespace, name):
    return client.AppsV1Api(kube).read_namespaced_deployment(name, namespace).spec.template.spec.containers[0].image


def replicas_of(kube, namespace, name):
    return client.AppsV1Api(kube).read_namespaced_deployment(name, namespace).spec.replicas


def fold(values):
    """Repeats folded: [0, 0, 5, 5, 0] -> [0, 5, 0]."""
    out = []
    for value in values:
        if not out or out[-1] != value:
            out.append(value)
    return out


def canary_shares(moto, route, canary_arn, since=0):
    """The canary weights AWS was told, in order, with repeats folded."""
    return fold(w.get(canary_arn, 0) for w in moto.weights_written(route)[since:])


def reasons(kube, namespace, name="web"):
    return [e.reason for e in events_for(kube, namespace, name) if e.involved_object.kind == "Canary"]


def app(kube, namespace, *, headless=False, replicas=2):
    create(kube, namespace, deployment("web", replicas=replicas, container_port=8080),
           service("web", port=80, target_port=8080, headless=headless))




class VoidWatch:
    """Samples what the ALB would do every 100 ms (from moto's own state) and records *void windows*:
    a moment when a group with weight above 0 has no healthy target (requests get 503s), or a stretch
    longer than one health-check interval in which it has fewer healthy targets than its side has
    Ready pods (Kubernetes believes in capacity the ALB does not send to)."""

    def __init__(self, moto, route_arn: str, pods: dict[str, tuple] | None = None, interval: float = 5.0,
                 every: float = 0.1):
        self.moto, self.route, self.every, self.interval = moto, route_arn, every, interval
        self.pods = pods or {}  # group ARN -> (kube, namespace, label selector) of the pods behind it
        self.samples = 0
        self.voids: list[tuple[float, str, str]] = []  # (time, group, what)
        self._short_since: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _ready_pods(self, arn: str) -> int | None:
        if arn not in self.pods:
            return None
        kube, namespace, selector = self.pods[arn]
        pods = client.CoreV1Api(kube).list_namespaced_pod(namespace, label_selector=selector).items
        return sum(1 for p in pods if not p.metadata.deletion_timestamp and any(
            c.type == "Ready" and c.status == "True" for c in p.status.conditions or ()))

    def _run(self):
        while not self._stop.is_set():
            try:
                served = self.moto.served(self.route)
            except (KeyError, IndexError):  # the route is being replaced: nothing routes through it now
                served = {}
            now = time.monotonic()
            self.samples += 1
            for arn, (weight, healthy) in served.items():
                if weight <= 0:
                    self._short_since.pop(arn, None)
                    continue
                if healthy == 0:
                    self.voids.append((now, arn, f"weight {weight} and no healthy target"))
                ready = self._ready_pods(arn)
                if ready is not None and healthy < ready:
                    since = self._short_since.setdefault(arn, now)
                    if now - since > self.interval:
                        self.voids.append((now, arn, f"{healthy} healthy targets for {ready} Ready pods "
                                                     f"for {now - since:.1f}s"))
                else:
                    self._short_since.pop(arn, None)
            self._stop.wait(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)
