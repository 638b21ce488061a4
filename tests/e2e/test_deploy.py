"""deploy/: the operator runs a whole rollout with the ServiceAccount token under deploy/rbac.yaml, with
kopf peering as deployed, and dropping one rule from the role breaks it (the role is not a wildcard)."""

import copy
from pathlib import Path

import yaml
from kubernetes import client, dynamic

from awsctl.dev.cluster import free_port
from tests.e2e.canaries import V2, app, delete_canary, set_image, status, wait_phase
from tests.e2e.conftest import Operator, wait_for
from tests.e2e.objects import canary, create

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SA_NAMESPACE, SA_NAME = "awsctl-system", "awsctl"


def manifests(*files):
    for name in files:
        yield from (doc for doc in yaml.safe_load_all((DEPLOY / name).read_text()) if doc)


def apply(kube, docs):
    dyn = dynamic.DynamicClient(kube)
    for doc in docs:
        api = dyn.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
        namespace = doc["metadata"].get("namespace")
        try:
            api.create(body=doc, namespace=namespace)
        except client.ApiException as err:
            if err.status != 409:
                raise
            # Already there (an earlier test applied it): replace it at its current version.
            current = api.get(name=doc["metadata"]["name"], namespace=namespace)
            doc = {**doc, "metadata": {**doc["metadata"], "resourceVersion": current.metadata.resourceVersion}}
            api.replace(body=doc, namespace=namespace)
        if doc["kind"] == "CustomResourceDefinition":
            wait_for(
                lambda: any(
                    c.type == "Established" and c.status == "True"
                    for c in client.ApiextensionsV1Api(kube)
                    .read_custom_resource_definition(doc["metadata"]["name"])
                    .status.conditions
                    or ()
                ),
                what="CRD established",
            )
            dyn.resources.invalidate_cache() if hasattr(dyn.resources, "invalidate_cache") else None


def service_account_kubeconfig(env, kube, path: Path, namespace: str = SA_NAMESPACE, name: str = SA_NAME) -> Path:
    """A kubeconfig that authenticates as the ServiceAccount: the operator gets exactly its role."""
    token = (
        client.CoreV1Api(kube)
        .create_namespaced_service_account_token(name, namespace, {"spec": {"expirationSeconds": 3600}})
        .status.token
    )
    admin = yaml.safe_load(env.kubeconfig.read_text())
    config = copy.deepcopy(admin)
    config["users"] = [{"name": "awsctl-sa", "user": {"token": token}}]
    for ctx in config["contexts"]:
        ctx["context"]["user"] = "awsctl-sa"
    path.write_text(yaml.safe_dump(config))
    return path


def test_operator_runs_a_rollout_with_exactly_the_deployed_role(cluster, kube, namespace, moto, tmp_path):
    env, _ = cluster
    apply(kube, manifests("peering.yaml", "namespace.yaml", "serviceaccount.yaml", "rbac.yaml"))
    kubeconfig = service_account_kubeconfig(env, kube, tmp_path / "sa-kubeconfig")
    # The readiness-gate webhook as deployed, but dialled by URL: no Service routes to a local process.
    operator = Operator(
        env,
        moto,
        tmp_path / "operator.log",
        extra_args=("--peering", "awsctl", "--readiness-webhook-port", str(free_port())),
    )
    operator.env["KUBECONFIG"] = str(kubeconfig)
    operator.start()
    try:
        wait_for(
            lambda: client.AdmissionregistrationV1Api(kube).read_mutating_webhook_configuration(
                "awsctl-readiness-gates"
            ),
            what="webhook configured under the deployed role",
        )
        listener = moto.listener(namespace)
        app(kube, namespace)
        create(kube, namespace, canary("web", listener=listener, rule={"priority": 10}, analysis={"stepWeights": [50]}))
        wait_phase(kube, namespace, "Initialized", timeout=90)
        set_image(kube, namespace, V2)
        promoted = wait_phase(kube, namespace, "Succeeded", timeout=90)

        rbac = client.RbacAuthorizationV1Api(kube)
        role = rbac.read_cluster_role("awsctl-namespaced")
        kept = [r for r in role.rules if r.resources != ["deployments/scale"]]
        assert len(kept) == len(role.rules) - 1
        rbac.patch_cluster_role(
            "awsctl-namespaced", {"rules": [client.ApiClient().sanitize_for_serialization(r) for r in kept]}
        )
        set_image(kube, namespace, "registry.local/app:v3")
        wait_for(
            lambda: 'cannot patch resource \\"deployments/scale\\"' in operator.log(),
            timeout=30,
            what="a forbidden scale in the operator log",
        )
        assert status(kube, namespace)["lastAppliedSpec"] == promoted["lastAppliedSpec"]  # the rollout is stuck

        apply(kube, manifests("rbac.yaml"))  # the deployed role again: the rollout goes on
        wait_for(
            lambda: (lambda st: st["phase"] == "Succeeded" and st["lastPromotedSpec"] != promoted["lastPromotedSpec"])(
                status(kube, namespace)
            ),
            timeout=90,
            what="v3 promoted",
        )

        delete_canary(kube, namespace, timeout=120, what="Canary removed under RBAC")
        assert moto.awsctl_target_groups() == []
    finally:
        operator.stop()
        try:
            client.AdmissionregistrationV1Api(kube).delete_mutating_webhook_configuration("awsctl-readiness-gates")
        except client.ApiException:
            pass
        log = operator.log()
        assert "Traceback" not in log, log[-4000:]
