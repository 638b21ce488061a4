"""The local environment is a real Kubernetes: controllers, scheduling, EndpointSlices, schema validation, GC."""

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.e2e.conftest import wait_for
from tests.e2e.objects import deployment, service


def test_nodes_look_like_eks_nodes(kube):
    nodes = client.CoreV1Api(kube).list_node(label_selector="type=kwok").items
    assert len(nodes) == 3
    for node in nodes:
        assert node.spec.provider_id.startswith("aws:///us-east-1")
        assert any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)


def test_deployment_pods_services_and_endpointslices(kube, namespace):
    apps, core, disc = client.AppsV1Api(kube), client.CoreV1Api(kube), client.DiscoveryV1Api(kube)
    apps.create_namespaced_deployment(namespace, deployment("web", replicas=3, container_port=8080))
    core.create_namespaced_service(namespace, service("web", port=80, target_port=8080))
    core.create_namespaced_service(
        namespace, service("web-headless", port=80, target_port=8080, headless=True, selector={"app": "web"})
    )

    def ready_ips():
        pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
        ready = [
            p
            for p in pods
            if p.status.pod_ip and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
        ]
        return {p.status.pod_ip for p in ready} if len(ready) == 3 else None

    ips = wait_for(ready_ips, what="3 ready pods")
    assert len(ips) == 3  # distinct IPs

    svc = core.read_namespaced_service("web", namespace)
    assert svc.spec.cluster_ip not in (None, "", "None")
    assert core.read_namespaced_service("web-headless", namespace).spec.cluster_ip == "None"

    for name in ("web", "web-headless"):

        def slice_ips(name=name):
            slices = disc.list_namespaced_endpoint_slice(
                namespace, label_selector=f"kubernetes.io/service-name={name}"
            ).items
            got = {a for s in slices for e in s.endpoints or [] for a in e.addresses if e.conditions.ready}
            ports = {p.port for s in slices for p in s.ports or []}
            return (got, ports) if got == ips else None

        got, ports = wait_for(slice_ips, what=f"EndpointSlices of {name}")
        assert ports == {8080}  # the pod port, not the Service port 80


def test_crd_schema_rejects_invalid_bindings(kube, namespace):
    custom = client.CustomObjectsApi(kube)

    def create(spec):
        return custom.create_namespaced_custom_object(
            "awsctl.io",
            "v1alpha1",
            namespace,
            "targetgroupbindings",
            {
                "apiVersion": "awsctl.io/v1alpha1",
                "kind": "TargetGroupBinding",
                "metadata": {"generateName": "bad-"},
                "spec": spec,
            },
        )

    with pytest.raises(ApiException) as both:
        create(
            {
                "serviceRef": {"name": "web", "port": 80},
                "targetGroupName": "a",
                "targetGroupARN": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/a/1",
            }
        )
    assert both.value.status == 422 and "exactly one of targetGroupARN and targetGroupName" in both.value.body
    with pytest.raises(ApiException) as bad_type:
        create({"serviceRef": {"name": "web", "port": 80}, "targetGroupName": "a", "targetType": "lambda"})
    assert bad_type.value.status == 422 and "targetType" in bad_type.value.body
    with pytest.raises(ApiException) as no_ref:
        create({"targetGroupName": "a"})
    assert no_ref.value.status == 422 and "serviceRef" in no_ref.value.body


def test_deleting_a_deployment_garbage_collects_its_pods(kube, namespace):
    apps, core = client.AppsV1Api(kube), client.CoreV1Api(kube)
    apps.create_namespaced_deployment(namespace, deployment("gc", replicas=2, container_port=80))
    wait_for(lambda: len(core.list_namespaced_pod(namespace, label_selector="app=gc").items) == 2, what="pods")
    apps.delete_namespaced_deployment("gc", namespace, propagation_policy="Background")
    wait_for(
        lambda: not core.list_namespaced_pod(namespace, label_selector="app=gc").items,
        timeout=60,
        what="pods garbage-collected",
    )


def test_a_status_write_over_a_stale_read_is_a_conflict(cluster, kube, namespace):
    """What a binding's managedTargets write relies on: a merge patch that carries the resourceVersion it
    read is refused (409) when another writer came in between, so a stale whole list never wins."""
    from awsctl.kube.client import ApiError, Kube
    from tests.e2e.objects import binding, create

    create(kube, namespace, binding("web", service="web", port=80, target_group_name="any"))
    ours, theirs = Kube.from_kubeconfig(str(cluster[0].kubeconfig)), Kube.from_kubeconfig(str(cluster[0].kubeconfig))
    read = ours.get_custom("targetgroupbindings", namespace, "web")
    theirs.patch_status("targetgroupbindings", namespace, "web", {"managedTargets": ["10.0.0.1:8080"]})
    with pytest.raises(ApiError) as err:
        ours.patch_status(
            "targetgroupbindings", namespace, "web", {"managedTargets": []}, read["metadata"]["resourceVersion"]
        )
    assert err.value.status == 409
    now = ours.get_custom("targetgroupbindings", namespace, "web")
    assert now["status"]["managedTargets"] == ["10.0.0.1:8080"]
    written = ours.patch_status(
        "targetgroupbindings", namespace, "web", {"managedTargets": []}, now["metadata"]["resourceVersion"]
    )
    assert written is not None and written["metadata"]["resourceVersion"] != now["metadata"]["resourceVersion"]
