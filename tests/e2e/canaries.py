"""Helpers shared by the Canary e2e stories: reading status, driving images, reading what AWS was told."""

import os
import subprocess
import sys

from kubernetes import client

from tests.e2e.conftest import wait_for
from tests.e2e.objects import canary, create, deployment, events_for, service
from tests.harness import VoidWatch  # noqa: F401 - the stories import it from here

V1 = "registry.local/app:v1"  # the image app() starts with
V2 = "registry.local/app:v2"
# A side that lost its weight keeps its pods loadBalancer.propagationSeconds (30 s by default) after the weight 0 is
# verified, and a tick then scales it: what a test waits for a scale-down at most.
SCALED_DOWN = 90


def awsctl(cluster, *args, env=None, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "awsctl", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "KUBECONFIG": str(cluster[0].kubeconfig), **(env or {})},
    )


def status(kube, namespace, name="web"):
    obj = client.CustomObjectsApi(kube).get_namespaced_custom_object(
        "awsctl.io", "v1alpha1", namespace, "canaries", name
    )
    return obj.get("status") or {}


def condition(st: dict, kind: str) -> dict:
    """The status condition of this type (StopIteration when there is none)."""
    return next(c for c in st.get("conditions") or () if c["type"] == kind)


def wait_phase(kube, namespace, phase, timeout=60.0, name="web"):
    return wait_for(
        lambda: (lambda s: s if s.get("phase") == phase else None)(status(kube, namespace, name)),
        timeout=timeout,
        what=f"phase {phase}",
    )


def set_image(kube, namespace, image, name="web", **env: str):
    """A new revision of your Deployment: `image`, and the pods-that-answer settings in `env` (DEV_ERROR_RATE=...)."""
    container: dict = {"name": "app", "image": image}
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    client.AppsV1Api(kube).patch_namespaced_deployment(
        name, namespace, {"spec": {"template": {"spec": {"containers": [container]}}}}
    )


def image_of(kube, namespace, name):
    return client.AppsV1Api(kube).read_namespaced_deployment(name, namespace).spec.template.spec.containers[0].image


def replicas_of(kube, namespace, name):
    return client.AppsV1Api(kube).read_namespaced_deployment(name, namespace).spec.replicas


def apex_pods(kube, namespace, service="web"):
    """The pods the apex Service's EndpointSlices serve (ready, not terminating)."""
    slices = (
        client.DiscoveryV1Api(kube)
        .list_namespaced_endpoint_slice(namespace, label_selector=f"kubernetes.io/service-name={service}")
        .items
    )
    return sorted(
        e.target_ref.name
        for s in slices
        for e in s.endpoints or ()
        if e.target_ref and e.conditions and e.conditions.serving and not e.conditions.terminating
    )


def primary_templates(kube, namespace, name="web-primary"):
    """The images of the primary's ReplicaSets, oldest first: one per template the primary was given."""
    sets = client.AppsV1Api(kube).list_namespaced_replica_set(namespace).items
    mine = [
        rs
        for rs in sets
        if any(ref.kind == "Deployment" and ref.name == name for ref in rs.metadata.owner_references or ())
    ]
    mine.sort(key=lambda rs: int((rs.metadata.annotations or {}).get("deployment.kubernetes.io/revision", "0")))
    return [rs.spec.template.spec.containers[0].image for rs in mine]


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


def app(kube, namespace, *, headless=False, replicas=2, pre_stop: int | None = None):
    """Your Deployment `web` (v1) and Service; `pre_stop`: a preStop sleep of that many seconds on its pods,
    as the Canary's GracefulTermination condition advises (at least loadBalancer.propagationSeconds)."""
    web = deployment("web", replicas=replicas, container_port=8080)
    if pre_stop is not None:
        web["spec"]["template"]["spec"]["containers"][0]["lifecycle"] = {"preStop": {"sleep": {"seconds": pre_stop}}}
    create(kube, namespace, web, service("web", port=80, target_port=8080, headless=headless))


def started(kube, namespace, moto, analysis):
    """Your Deployment and Service, and a Canary with these analysis settings on a rule at priority 10,
    Initialized; returns (the rule's ARN, the canary group's ARN)."""
    listener = moto.listener(namespace)
    app(kube, namespace)
    create(kube, namespace, canary("web", listener=listener, rule={"priority": 10}, analysis=analysis))
    st = wait_phase(kube, namespace, "Initialized")
    return st["listenerRule"]["arn"], st["targetGroups"]["canary"][0]


def delete_canary(kube, namespace, *, timeout, what, name="web"):
    """Deletes the Canary and waits until its finalizer has let it go."""
    custom = client.CustomObjectsApi(kube)
    custom.delete_namespaced_custom_object("awsctl.io", "v1alpha1", namespace, "canaries", name)
    wait_for(
        lambda: not custom.list_namespaced_custom_object("awsctl.io", "v1alpha1", namespace, "canaries")["items"],
        timeout=timeout,
        what=what,
    )


def held_for_deletion(listener, hooks):
    """A Canary with revertOnDeletion on `listener`'s default action, whose v2 stops at 40% behind a
    confirm-promotion gate that says no (`/promote` answers 403): the deletion stories' starting point."""
    hooks.respond("/promote", 403)
    gate = {"name": "gate", "type": "confirm-promotion", "url": f"{hooks.url}/promote"}
    return canary(
        "web", listener=listener, revertOnDeletion=True, analysis={"stepWeights": [20, 40], "webhooks": [gate]}
    )
