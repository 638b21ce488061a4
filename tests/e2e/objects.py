"""Small builders for the Kubernetes objects the e2e stories use."""

from __future__ import annotations

from kubernetes import client

PLURALS = {"TargetGroupBinding": "targetgroupbindings", "Canary": "canaries"}


def create(kube, namespace, *objects):
    core, apps, custom = client.CoreV1Api(kube), client.AppsV1Api(kube), client.CustomObjectsApi(kube)
    for obj in objects:
        kind = obj["kind"]
        if kind == "Service":
            core.create_namespaced_service(namespace, obj)
        elif kind == "Deployment":
            apps.create_namespaced_deployment(namespace, obj)
        else:
            custom.create_namespaced_custom_object("awsctl.io", "v1alpha1", namespace, PLURALS[kind], obj)


def pod_targets(kube, namespace, selector):
    """(pod IP, container port) of the running pods: what an IP target group should hold."""
    pods = client.CoreV1Api(kube).list_namespaced_pod(namespace, label_selector=selector).items
    return {
        (p.status.pod_ip, p.spec.containers[0].ports[0].container_port)
        for p in pods
        if p.status.pod_ip and not p.metadata.deletion_timestamp
    }


def events_for(kube, namespace, name):
    return [e for e in client.CoreV1Api(kube).list_namespaced_event(namespace).items if e.involved_object.name == name]


def deployment(
    name: str,
    *,
    replicas: int,
    container_port: int,
    port_name: str | None = None,
    labels: dict | None = None,
    image: str = "registry.local/app:v1",
) -> dict:
    labels = labels or {"app": name}
    port = {"containerPort": container_port}
    if port_name:
        port["name"] = port_name
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": image, "ports": [port]}]},
            },
        },
    }


def service(
    name: str,
    *,
    port: int,
    target_port: int | str,
    headless: bool = False,
    selector: dict | None = None,
    port_name: str = "http",
    service_type: str | None = None,
    annotations: dict | None = None,
) -> dict:
    spec: dict = {
        "selector": selector or {"app": name},
        "ports": [{"name": port_name, "port": port, "targetPort": target_port, "protocol": "TCP"}],
    }
    if headless:
        spec["clusterIP"] = "None"
    if service_type:
        spec["type"] = service_type
    meta: dict = {"name": name}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}


def binding(
    name: str,
    *,
    service: str,
    port: int | str,
    target_group_name: str | None = None,
    target_group_arn: str | None = None,
    target_type: str | None = None,
) -> dict:
    spec: dict = {"serviceRef": {"name": service, "port": port}}
    if target_group_name:
        spec["targetGroupName"] = target_group_name
    if target_group_arn:
        spec["targetGroupARN"] = target_group_arn
    if target_type:
        spec["targetType"] = target_type
    return {"apiVersion": "awsctl.io/v1alpha1", "kind": "TargetGroupBinding", "metadata": {"name": name}, "spec": spec}


def canary(
    name: str,
    *,
    listener: str,
    port: int = 80,
    target_port: int | str = 8080,
    analysis: dict | None = None,
    rule: dict | None = None,
    service_extra: dict | None = None,
    **top,
) -> dict:
    """A Canary on `listener`; `rule=None` drives the listener's default action."""
    # The short health check the realism layer times (5 s x 2: healthy 10 s after registration or
    # attachment) and a short drain, as a user who wants quick canaries would set them.
    load_balancer: dict = {
        "listenerARN": listener,
        "targetGroup": {
            "healthCheck": {"intervalSeconds": 5, "healthyThresholdCount": 2},
            "deregistrationDelaySeconds": 5,
        },
    }
    if rule:
        load_balancer["rule"] = rule
    return {
        "apiVersion": "awsctl.io/v1alpha1",
        "kind": "Canary",
        "metadata": {"name": name},
        "spec": {
            "targetRef": {"name": name},
            "service": {"port": port, "targetPort": target_port, **(service_extra or {})},
            "loadBalancer": load_balancer,
            "analysis": {"interval": "1s", "threshold": 2, **(analysis or {})},
            **top,
        },
    }
