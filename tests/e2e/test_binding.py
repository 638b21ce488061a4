"""TargetGroupBinding stories: `awsctl run` as a process, the real control plane, moto over HTTP."""

import time

from kubernetes import client

from tests.e2e.conftest import wait_for
from tests.e2e.objects import binding, create, deployment, events_for, pod_targets, service


def get_binding(kube, namespace, name):
    return client.CustomObjectsApi(kube).get_namespaced_custom_object(
        "awsctl.io", "v1alpha1", namespace, "targetgroupbindings", name
    )


def ready_condition(kube, namespace, name):
    status = get_binding(kube, namespace, name).get("status") or {}
    return next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), None)


def test_headless_service_registers_pod_ip_at_container_port(kube, namespace, moto, operator):
    arn = moto.target_group(f"{namespace}-web", listener=moto.listener(namespace))  # in use: health-checked
    create(
        kube,
        namespace,
        deployment("web", replicas=3, container_port=8080),
        service("web", port=80, target_port=8080, headless=True),
        binding("web", service="web", port=80, target_group_name=f"{namespace}-web"),
    )

    expected = wait_for(lambda: (lambda t: t if len(t) == 3 else None)(pod_targets(kube, namespace, "app=web")))
    wait_for(lambda: moto.targets(arn) == expected, what="pod IPs registered at 8080")
    assert all(port == 8080 for _, port in moto.targets(arn))  # never the Service port 80

    # AWS shows them initial first; the binding reads health again until all 3 are healthy.
    status = wait_for(
        lambda: (
            (get_binding(kube, namespace, "web").get("status") or {}).get("healthyTargets") == 3
            and get_binding(kube, namespace, "web")["status"]
        ),
        timeout=40,
    )
    assert status["desiredTargets"] == 3 and status["targetHealth"] == {"healthy": 3}
    assert status["targetType"] == "ip"
    assert status["healthyTargets"] == 3
    assert ready_condition(kube, namespace, "web")["status"] == "True"

    # Scale up: new targets registered, and the old ones never left in between.
    client.AppsV1Api(kube).patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 5}})
    wait_for(
        lambda: len(moto.targets(arn)) == 5 and moto.targets(arn) == pod_targets(kube, namespace, "app=web"),
        what="5 targets",
    )
    assert all(call == "register_targets" for call, _ in moto.writes_to(arn))

    # A terminating pod is deregistered at once, while kwok still holds it in Terminating.
    victim = client.CoreV1Api(kube).list_namespaced_pod(namespace, label_selector="app=web").items[0]
    client.CoreV1Api(kube).delete_namespaced_pod(victim.metadata.name, namespace)
    wait_for(
        lambda: (victim.status.pod_ip, 8080) not in moto.targets(arn), timeout=10, what="terminating pod deregistered"
    )
    wait_for(
        lambda: moto.targets(arn) == pod_targets(kube, namespace, "app=web") and len(moto.targets(arn)) == 5,
        what="replacement registered",
    )
    # Only the victim was ever deregistered (one call, one target); nothing else churned.
    deregs = [keys for call, keys in moto.writes_to(arn) if call == "deregister_targets"]
    assert deregs and all(keys == (f"{victim.status.pod_ip}:8080",) for keys in deregs)


def test_named_target_port_resolves_per_pod(kube, namespace, moto, operator):
    arn = moto.target_group(f"{namespace}-multi")
    create(
        kube,
        namespace,
        deployment(
            "multi-a", replicas=2, container_port=8080, port_name="web", labels={"app": "multi", "variant": "a"}
        ),
        deployment(
            "multi-b", replicas=2, container_port=9090, port_name="web", labels={"app": "multi", "variant": "b"}
        ),
        service("multi", port=80, target_port="web", headless=True, selector={"app": "multi"}),
        binding("multi", service="multi", port="http", target_group_arn=arn),
    )
    wait_for(lambda: len(pod_targets(kube, namespace, "app=multi")) == 4, what="4 pods")
    wait_for(lambda: moto.targets(arn) == pod_targets(kube, namespace, "app=multi"), what="per-pod ports")
    assert {port for _, port in moto.targets(arn)} == {8080, 9090}


def test_steady_state_resync_makes_no_write(kube, namespace, moto, operator):
    arn = moto.target_group(f"{namespace}-calm")
    create(
        kube,
        namespace,
        deployment("calm", replicas=2, container_port=8080),
        service("calm", port=80, target_port=8080),
        binding("calm", service="calm", port=80, target_group_name=f"{namespace}-calm"),
    )
    wait_for(lambda: len(moto.targets(arn)) == 2, what="2 targets")
    # Registered targets start out as `initial`; health is read once more when they could first
    # pass, and shows them `unused` (no rule forwards to this group). Then nothing changes.
    wait_for(
        lambda: (get_binding(kube, namespace, "calm").get("status") or {}).get("targetHealth") == {"unused": 2},
        timeout=30,
        what="health read back",
    )
    writes = len(moto.writes_to(arn))
    observed = get_binding(kube, namespace, "calm")["metadata"]["resourceVersion"]
    time.sleep(5)  # more than two resync periods of the operator under test (2 s)
    assert len(moto.writes_to(arn)) == writes
    assert get_binding(kube, namespace, "calm")["metadata"]["resourceVersion"] == observed  # no status churn either


def test_instance_mode_on_headless_is_refused_without_aws_writes(kube, namespace, moto, operator):
    arn = moto.target_group(f"{namespace}-inst", target_type="instance")
    create(
        kube,
        namespace,
        deployment("inst", replicas=2, container_port=8080),
        service("inst", port=80, target_port=8080, headless=True),
        binding("inst", service="inst", port=80, target_group_arn=arn, target_type="instance"),
    )
    cond = wait_for(lambda: ready_condition(kube, namespace, "inst"), what="Ready condition")
    assert cond["status"] == "False" and cond["reason"] == "InstanceModeOnHeadlessService"
    assert "NodePort" in cond["message"]
    warning = wait_for(lambda: [e for e in events_for(kube, namespace, "inst") if e.type == "Warning"])
    assert warning[0].reason == "InstanceModeOnHeadlessService"
    time.sleep(3)
    assert moto.writes_to(arn) == []
    assert len([e for e in events_for(kube, namespace, "inst") if e.type == "Warning"]) == 1  # no event storm
    assert "InstanceModeOnHeadlessService" in operator.log() and "spec.targetType" in operator.log()


def test_instance_mode_registers_node_instances_at_the_node_port(kube, namespace, moto, operator):
    arn = moto.target_group(f"{namespace}-np", target_type="instance")
    create(
        kube,
        namespace,
        deployment("np", replicas=1, container_port=8080),
        service("np", port=80, target_port=8080, service_type="NodePort"),
        binding("np", service="np", port=80, target_group_arn=arn),
    )
    node_port = wait_for(
        lambda: client.CoreV1Api(kube).read_namespaced_service("np", namespace).spec.ports[0].node_port
    )
    nodes = client.CoreV1Api(kube).list_node(label_selector="type=kwok").items
    expected = {(n.spec.provider_id.rsplit("/", 1)[-1], node_port) for n in nodes}
    wait_for(lambda: moto.targets(arn) == expected, what="node instances at the NodePort")
    assert wait_for(lambda: get_binding(kube, namespace, "np").get("status", {}).get("targetType")) == "instance"


def test_missing_service_then_created(kube, namespace, moto, operator):
    arn = moto.target_group(f"{namespace}-late")
    create(kube, namespace, binding("late", service="late", port=80, target_group_arn=arn))
    cond = wait_for(lambda: ready_condition(kube, namespace, "late"), what="Ready condition")
    assert cond["reason"] == "ServiceNotFound" and "spec.serviceRef.name" in cond["message"]
    create(
        kube, namespace, deployment("late", replicas=1, container_port=8080), service("late", port=80, target_port=8080)
    )
    wait_for(lambda: len(moto.targets(arn)) == 1, what="registered once the Service exists")
    wait_for(lambda: ready_condition(kube, namespace, "late")["status"] == "True", what="Ready")

    # The Service goes: its targets stand for nothing, so they are deregistered (as the LBC does), and the
    # condition says why. They were left registered, and never deregistered, before.
    client.CoreV1Api(kube).delete_namespaced_service("late", namespace)
    wait_for(lambda: moto.targets(arn) == set(), what="targets deregistered once the Service is gone")
    cond = wait_for(lambda: (lambda c: c if c["status"] == "False" else None)(ready_condition(kube, namespace, "late")))
    assert cond["reason"] == "ServiceNotFound"
    assert get_binding(kube, namespace, "late")["status"]["managedTargets"] == []
    create(kube, namespace, service("late", port=80, target_port=8080))
    wait_for(lambda: len(moto.targets(arn)) == 1, what="registered again once the Service is back")


def test_missing_target_group_and_port_get_their_own_reasons(kube, namespace, moto, operator):
    create(
        kube,
        namespace,
        deployment("odd", replicas=1, container_port=8080),
        service("odd", port=80, target_port=8080),
        binding("no-tg", service="odd", port=80, target_group_name="does-not-exist"),
        binding("no-port", service="odd", port=81, target_group_name="does-not-exist"),
    )
    assert wait_for(lambda: ready_condition(kube, namespace, "no-tg"))["reason"] == "TargetGroupNotFound"
    assert wait_for(lambda: ready_condition(kube, namespace, "no-port"))["reason"] == "ServicePortNotFound"
    assert operator.proc.poll() is None


def test_deleting_the_binding_removes_only_its_targets(kube, namespace, moto, operator):
    arn = moto.target_group(f"{namespace}-del")
    users = {"Id": "172.31.5.5", "Port": 80}
    moto.client("elbv2").register_targets(TargetGroupArn=arn, Targets=[users])
    create(
        kube,
        namespace,
        deployment("del", replicas=2, container_port=8080),
        service("del", port=80, target_port=8080, headless=True),
        binding("del", service="del", port=80, target_group_arn=arn),
    )
    wait_for(lambda: len(moto.targets(arn)) == 3, what="2 pod targets next to the user's")
    client.CustomObjectsApi(kube).delete_namespaced_custom_object(
        "awsctl.io", "v1alpha1", namespace, "targetgroupbindings", "del"
    )
    wait_for(lambda: moto.targets(arn) == {("172.31.5.5", 80)}, what="only the user's target left")

    def gone():
        try:
            get_binding(kube, namespace, "del")
        except client.ApiException as err:
            return err.status == 404

    wait_for(gone, what="finalizer released")
