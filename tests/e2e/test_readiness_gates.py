"""Pod readiness gates: a pod is Ready only once its ALB target is healthy, so a rollout cannot
outrun the load balancer. The webhook injects the gate in opted-in namespaces; kwok honours gates
the way a kubelet does; the binding sets the gate when AWS shows the target healthy."""

import base64

from kubernetes import client

from awsctl.controllers.readiness_gates import CONFIGURATION, WebhookOptions, certificate
from awsctl.dev.cluster import free_port
from awsctl.kube.client import Kube
from tests.e2e.conftest import Operator, wait_for
from tests.e2e.objects import binding, create, deployment, service


def ready(pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or ())


def test_webhook_gates_pods_of_bound_services_until_their_targets_are_healthy(kube, namespace, moto, cluster, tmp_path):
    core = client.CoreV1Api(kube)
    core.patch_namespace(namespace, {"metadata": {"labels": {"awsctl.io/readiness-gate-injection": "enabled"}}})
    port = free_port()
    op = Operator(
        cluster[0],
        moto,
        tmp_path / "operator.log",
        extra_args=("--namespace", namespace, "--readiness-webhook-port", str(port)),
    ).start()
    admission = client.AdmissionregistrationV1Api(kube)
    try:
        config = wait_for(
            lambda: admission.read_mutating_webhook_configuration(CONFIGURATION),
            timeout=30,
            what="webhook configuration",
        )
        hook = config.webhooks[0]
        assert hook.client_config.url == f"https://127.0.0.1:{port}/readiness-gates"
        assert hook.failure_policy == "Ignore"
        assert hook.namespace_selector.match_labels == {"awsctl.io/readiness-gate-injection": "enabled"}

        arn = moto.target_group(f"{namespace}-gated", listener=moto.listener(namespace))
        create(
            kube,
            namespace,
            service("web", port=80, target_port=8080),
            binding("web", service="web", port=80, target_group_arn=arn),
        )
        wait_for(
            lambda: (
                "Ready"
                in str(
                    client.CustomObjectsApi(kube)
                    .get_namespaced_custom_object("awsctl.io", "v1alpha1", namespace, "targetgroupbindings", "web")
                    .get("status")
                )
            ),
            what="binding seen",
        )
        create(kube, namespace, deployment("web", replicas=2, container_port=8080))

        pods = wait_for(
            lambda: (lambda p: p if len(p) == 2 else None)(
                core.list_namespaced_pod(namespace, label_selector="app=web").items
            ),
            what="2 pods",
        )
        assert all(
            [g.condition_type for g in p.spec.readiness_gates or ()] == ["target-health.awsctl.io/web"] for p in pods
        )
        # Registered while only the gate holds them back, and not Ready while AWS still checks them.
        states = wait_for(
            lambda: (lambda s: s if len(s) == 2 else None)(moto.target_states(arn)),
            timeout=30,
            what="2 targets registered",
        )
        if "initial" in states.values():
            assert not any(ready(p) for p in core.list_namespaced_pod(namespace, label_selector="app=web").items)
        wait_for(
            lambda: all(ready(p) for p in core.list_namespaced_pod(namespace, label_selector="app=web").items),
            timeout=40,
            what="pods Ready",
        )
        assert set(moto.target_states(arn).values()) == {"healthy"}
        for p in core.list_namespaced_pod(namespace, label_selector="app=web").items:
            gate = next(c for c in p.status.conditions if c.type == "target-health.awsctl.io/web")
            assert gate.status == "True" and gate.reason == "TargetHealthy"
        # Pods of Services with no binding are left alone.
        create(kube, namespace, deployment("other", replicas=1, container_port=8080))
        other = wait_for(lambda: core.list_namespaced_pod(namespace, label_selector="app=other").items, what="pod")
        assert not other[0].spec.readiness_gates
        assert "Traceback" not in op.log()
    finally:
        op.stop()
        admission.delete_mutating_webhook_configuration(CONFIGURATION)


def test_in_cluster_certificate_is_created_once_and_shared(cluster, kube, namespace):
    options = WebhookOptions(service=f"{namespace}/awsctl-webhook")
    first, second = (
        certificate(Kube.from_kubeconfig(cluster[0].kubeconfig), options),
        certificate(Kube.from_kubeconfig(cluster[0].kubeconfig), options),
    )
    assert first == second  # a second replica reads the Secret the first one wrote
    secret = client.CoreV1Api(kube).read_namespaced_secret("awsctl-webhook-tls", namespace)
    assert secret.type == "kubernetes.io/tls" and base64.b64decode(secret.data["ca.crt"]) == first.ca
