"""The trust boundary, end to end: two namespaces' Canaries on one shared listener. A TrafficGrant lets one
of them use the listener and a range of rule priorities; the other has none. The granted one rolls out;
the other is refused (Ready=False, NotGranted, an event) and awsctl makes no AWS write for it."""

import uuid

from kubernetes import client

from tests.e2e.canaries import V2, app, condition, reasons, set_image, status, wait_phase
from tests.e2e.conftest import UNGRANTED, Operator, release, wait_for
from tests.e2e.objects import canary, create


def test_of_two_namespaces_on_one_listener_only_the_granted_one_reaches_aws(kube, namespace, moto, cluster, tmp_path):
    core, custom = client.CoreV1Api(kube), client.CustomObjectsApi(kube)
    shop, other = namespace, f"t-{uuid.uuid4().hex[:8]}"
    # Neither gets the suite's grant-everything: shop is granted below, `other` never is.
    core.patch_namespace(shop, {"metadata": {"labels": {UNGRANTED: "true"}}})
    core.create_namespace({"metadata": {"name": other, "labels": {UNGRANTED: "true"}}})
    grant = f"shop-{shop}"
    listener = moto.listener(shop)
    custom.create_cluster_custom_object(
        "awsctl.io",
        "v1alpha1",
        "trafficgrants",
        {
            "apiVersion": "awsctl.io/v1alpha1",
            "kind": "TrafficGrant",
            "metadata": {"name": grant},
            "spec": {
                "namespaces": {"names": [shop]},
                "listeners": [listener],
                "rulePriorities": [{"from": 10, "to": 19}],
            },
        },
    )
    operator = Operator(cluster[0], moto, tmp_path / "operator.log", extra_args=("-n", shop, "-n", other)).start()
    try:
        wait_for(lambda: core.list_namespaced_service_account(other).items, what="default SA")
        for ns, host, priority in ((shop, "shop.example.com", 10), (other, "other.example.com", 20)):
            app(kube, ns)
            rule = {"priority": priority, "hosts": [host]}
            create(kube, ns, canary("web", listener=listener, rule=rule, analysis={"stepWeights": [50]}))

        st = wait_phase(kube, shop, "Initialized", timeout=90)
        set_image(kube, shop, V2)
        st = wait_phase(kube, shop, "Succeeded", timeout=120)
        assert st["listenerRule"]["priority"] == 10

        refused = wait_for(
            lambda: (lambda c: c if c["reason"] == "NotGranted" else None)(condition(status(kube, other), "Ready")),
            what="the ungranted Canary refused",
        )
        assert refused["status"] == "False"
        assert refused["message"].startswith(
            f"spec.loadBalancer.listenerARN: no TrafficGrant selects namespace {other}"
        )
        assert reasons(kube, other).count("NotGranted") == 1  # one event, not one per tick
        assert not status(kube, other).get("listenerRule") and not status(kube, other).get("targetGroups")
        # Nothing in AWS is its: no rule at its priority, no target group tagged as its, no write to the listener
        # but the granted Canary's.
        elbv2 = moto.client("elbv2")
        priorities = {r["Priority"] for r in elbv2.describe_rules(ListenerArn=listener)["Rules"]}
        assert "20" not in priorities and "10" in priorities
        groups = [g["TargetGroupArn"] for g in elbv2.describe_target_groups()["TargetGroups"]]
        tags = [
            d
            for i in range(0, len(groups), 20)
            for d in elbv2.describe_tags(ResourceArns=groups[i : i + 20])["TagDescriptions"]
        ]
        owner = {d["ResourceArn"]: t["Value"] for d in tags for t in d["Tags"] if t["Key"] == "awsctl.io/owner"}
        assert not any(o.startswith(f"Canary/{other}/") for o in owner.values())
        shops = {arn for arn, o in owner.items() if o == f"Canary/{shop}/web"}
        assert shops and {g for w in moto.weight_writes for g in w.weights} <= shops  # every forward written: shop's
    finally:
        operator.stop()
        release(kube, other)
        custom.delete_cluster_custom_object("awsctl.io", "v1alpha1", "trafficgrants", grant)
