"""Two clusters, one AWS account, one listener: each operator under its own --cluster-name, each with a
Canary of the same namespace and name. Neither adopts the other's target groups or rule, and deleting
one leaves the other serving."""

from kubernetes import client, config

from awsctl.api import grant
from awsctl.dev.cluster import Environment
from tests.e2e.canaries import app, status, wait_phase
from tests.e2e.conftest import Operator, wait_for
from tests.e2e.objects import canary, create


def served(moto, st) -> dict[str, int]:
    """The groups the Canary's rule forwards to with weight, as AWS shows them."""
    return {arn: weight for arn, weight in moto.forward_weights(st["listenerRule"]["arn"]).items() if weight}


def test_two_clusters_share_a_listener_and_never_adopt_each_others(cluster, kube, namespace, moto, tmp_path):
    listener = moto.listener(namespace)
    other = Environment(tmp_path / "other")
    other.up(nodes=1, with_moto=False)
    operators = []
    try:
        other.install_crds()
        other.grant("e2e", grant.everything())  # each cluster's admin grants its own namespaces
        kube_b = config.new_client_from_config(str(other.kubeconfig))
        client.CoreV1Api(kube_b).create_namespace({"metadata": {"name": namespace}})
        wait_for(lambda: client.CoreV1Api(kube_b).list_namespaced_service_account(namespace).items, what="SA")
        for env, name, log in ((cluster[0], "east", "a.log"), (other, "west", "b.log")):
            args = ("--namespace", namespace, "--cluster-name", name)
            operators.append(Operator(env, moto, tmp_path / log, extra_args=args).start())

        app(kube, namespace)
        create(kube, namespace, canary("web", listener=listener, rule={"priority": 10, "hosts": ["east.example.com"]}))
        east = wait_phase(kube, namespace, "Initialized", timeout=90)

        # The same Canary (namespace and name) in the other cluster, at the same priority: the rule there is
        # east's, never "ours from before a restart".
        app(kube_b, namespace)
        create(
            kube_b, namespace, canary("web", listener=listener, rule={"priority": 10, "hosts": ["west.example.com"]})
        )
        refused = wait_for(
            lambda: (lambda s: s if "belongs to" in s.get("message", "") else None)(status(kube_b, namespace)),
            what="west refused the rule east created",
        )
        assert f"rule 10 belongs to Canary/{namespace}/web of cluster east" in refused["message"]
        ready = next(c for c in refused["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "False" and ready["reason"] == "RuleConflict"
        assert served(moto, east) == {east["targetGroups"]["primary"][0]: 999}

        client.CustomObjectsApi(kube_b).patch_namespaced_custom_object(
            "awsctl.io",
            "v1alpha1",
            namespace,
            "canaries",
            "web",
            {"spec": {"loadBalancer": {"rule": {"priority": 20}}}},
        )
        west = wait_phase(kube_b, namespace, "Initialized", timeout=90)
        groups = {
            side: set(east["targetGroups"][side]) | set(west["targetGroups"][side]) for side in east["targetGroups"]
        }
        assert all(len(g) == 2 for g in groups.values())  # four groups: each cluster its own pair
        assert east["listenerRule"]["arn"] != west["listenerRule"]["arn"]

        # Deleting east's Canary removes east's rule and groups, and nothing of west's.
        client.CustomObjectsApi(kube).delete_namespaced_custom_object(
            "awsctl.io", "v1alpha1", namespace, "canaries", "web"
        )
        elbv2 = moto.client("elbv2")
        wait_for(
            lambda: (
                east["listenerRule"]["arn"]
                not in {r["RuleArn"] for r in elbv2.describe_rules(ListenerArn=listener)["Rules"]}
            ),
            timeout=60,
            what="east's rule deleted",
        )
        wait_for(
            lambda: (
                not {*east["targetGroups"]["primary"], *east["targetGroups"]["canary"]}
                & {g["TargetGroupArn"] for g in elbv2.describe_target_groups()["TargetGroups"]}
            ),
            timeout=120,  # propagationSeconds after the route is given back
            what="east's groups deleted",
        )
        left = {g["TargetGroupArn"] for g in elbv2.describe_target_groups()["TargetGroups"]}
        primary_west = west["targetGroups"]["primary"][0]
        assert {primary_west, *west["targetGroups"]["canary"]} <= left
        assert served(moto, west) == {primary_west: 999}
        assert moto.targets(primary_west) and status(kube_b, namespace)["phase"] == "Initialized"
    finally:
        for op in operators:
            op.stop()
        other.down(quiet=True)
