"""charts/awsctl: lint, template (the same RBAC as deploy/), and `helm install` into the local control
plane, then a rollout with an alert under the chart's own ServiceAccount."""

import json
import subprocess
from pathlib import Path

import yaml
from kubernetes import client

from awsctl.api.grant import Grant
from awsctl.dev.cluster import free_port
from awsctl.dev.tools import ensure_helm
from tests.e2e.canaries import V2, app, set_image, wait_phase
from tests.e2e.conftest import Operator, wait_for
from tests.e2e.objects import canary, create
from tests.e2e.test_deploy import service_account_kubeconfig

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "awsctl"
RELEASE = "awsctl-helm"


def helm(*args, kubeconfig=None) -> str:
    command = [str(ensure_helm()), *args] + (["--kubeconfig", str(kubeconfig)] if kubeconfig else [])
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"helm {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def rendered(*sets) -> list[dict]:
    args = [a for s in ("clusterName=my-cluster", *sets) for a in ("--set", s)]
    return [d for d in yaml.safe_load_all(helm("template", RELEASE, str(CHART), "--namespace", "ops", *args)) if d]


def one(docs, kind, name=None):
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, (kind, name, [d["metadata"]["name"] for d in found])
    return found[0]


def test_lint_and_template():
    helm("lint", "--strict", str(CHART), "--set", "clusterName=my-cluster")
    # No default cluster name: two clusters in one account would adopt each other's groups and rules.
    unnamed = subprocess.run(
        [str(ensure_helm()), "template", RELEASE, str(CHART)], capture_output=True, text=True, timeout=300, check=False
    )
    assert unnamed.returncode != 0 and "clusterName is required" in unnamed.stderr
    docs = rendered()
    deployed = {
        d["metadata"]["name"]: d["rules"]
        for d in yaml.safe_load_all((ROOT / "deploy" / "rbac.yaml").read_text())
        if d and d["kind"] == "ClusterRole"
    }
    # the chart grants what deploy/ grants, namespaced permissions cluster-wide without watchNamespaces
    assert one(docs, "ClusterRole", RELEASE)["rules"] == deployed["awsctl"]
    assert one(docs, "ClusterRole", f"{RELEASE}-namespaced")["rules"] == deployed["awsctl-namespaced"]
    assert one(docs, "ClusterRoleBinding", f"{RELEASE}-namespaced")["roleRef"]["name"] == f"{RELEASE}-namespaced"
    secrets = [r for d in docs if d["kind"] == "ClusterRole" for r in d["rules"] if "secrets" in r["resources"]]
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "ClusterRole" and secrets[0] in d["rules"]] == [
        f"{RELEASE}-namespaced"
    ]
    webhook = [r for r in deployed["awsctl"] if "mutatingwebhookconfigurations" in r["resources"]]
    assert [(r.get("resourceNames"), r["verbs"]) for r in webhook] == [
        (["awsctl-readiness-gates"], ["get", "patch"]),
        (None, ["create"]),  # Kubernetes cannot restrict create by name
    ]
    assert not [d for d in docs if d["kind"] == "TrafficGrant"]  # none unless asked for
    args = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert {
        "--all-namespaces",
        "--peering=awsctl",
        "--metrics-port=8081",
        "--metrics-bind-address=0.0.0.0",
        "--cluster-name=my-cluster",
        "--readiness-webhook-service=ops/awsctl-helm-webhook",
    } <= set(args)
    assert not [d for d in docs if d["kind"] == "ServiceMonitor"]
    one(docs, "ClusterKopfPeering", "awsctl")

    docs = rendered(
        "watchNamespaces={shop,blog}",
        "metrics.serviceMonitor.enabled=true",
        "apiBudget.elbv2-register=10/2",
        "serviceAccount.roleArn=arn:aws:iam::123456789012:role/x",
        "readinessGateWebhook.enabled=false",
        "aws.endpoint=http://127.0.0.1:5000",
    )
    container = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert {"--namespace=shop", "--namespace=blog", "--api-rate=elbv2-register=10/2"} <= set(container["args"])
    assert not [a for a in container["args"] if a.startswith("--readiness-webhook")]
    assert {"name": "AWS_ENDPOINT_URL", "value": "http://127.0.0.1:5000"} in container["env"]
    assert one(docs, "ServiceMonitor")["spec"]["endpoints"][0]["port"] == "metrics"
    assert one(docs, "ServiceAccount")["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/x"
    }
    assert sorted(d["metadata"]["namespace"] for d in docs if d["kind"] == "KopfPeering") == ["blog", "shop"]
    # Watching namespaces, the namespaced permissions (Secrets among them) are bound there alone.
    assert not [d for d in docs if d["kind"] == "ClusterRoleBinding" and d["metadata"]["name"].endswith("-namespaced")]
    bound = [d for d in docs if d["kind"] == "RoleBinding" and d["roleRef"]["name"] == f"{RELEASE}-namespaced"]
    assert sorted(d["metadata"]["namespace"] for d in bound) == ["blog", "shop"]
    assert {d["roleRef"]["kind"] for d in bound} == {"ClusterRole"}

    shop = {"namespaces": {"names": ["shop"]}, "listeners": ["arn:aws:elasticloadbalancing:*:*:listener/app/shared/*"]}
    args = [
        "template",
        RELEASE,
        str(CHART),
        "--set",
        "clusterName=c",
        "--set-json",
        f"grants={json.dumps({'shop': shop})}",
    ]
    (grant,) = [d for d in yaml.safe_load_all(helm(*args)) if d and d["kind"] == "TrafficGrant"]
    assert grant["metadata"]["name"] == "shop" and grant["spec"] == shop
    Grant.parse("shop", grant["spec"])  # what the operator reads
    assert not [d for d in docs if d["kind"] in ("ClusterKopfPeering", "Role") and "webhook" in d["metadata"]["name"]]


def test_helm_install_then_a_rollout_under_the_charts_service_account(cluster, kube, namespace, moto, hooks, tmp_path):
    env, _ = cluster
    release_ns = f"{namespace}-sys"
    helm(
        "install",
        RELEASE,
        str(CHART),
        "--namespace",
        release_ns,
        "--create-namespace",
        "--set",
        "clusterName=e2e",
        "--set",
        f"peering.name={RELEASE}",
        "--set",
        f"watchNamespaces={{{namespace}}}",  # namespaced permissions bound in this namespace alone
        kubeconfig=env.kubeconfig,
    )
    operator = None
    try:
        assert "deployed" in helm("status", RELEASE, "--namespace", release_ns, kubeconfig=env.kubeconfig)
        client.AppsV1Api(kube).read_namespaced_deployment(RELEASE, release_ns)
        kubeconfig = service_account_kubeconfig(env, kube, tmp_path / "sa-kubeconfig", release_ns, RELEASE)
        operator = Operator(
            env,
            moto,
            tmp_path / "operator.log",
            extra_args=("--peering", RELEASE, "--metrics-port", str(free_port()), "-n", namespace),
        )
        operator.env["KUBECONFIG"] = str(kubeconfig)
        operator.start()
        client.CoreV1Api(kube).create_namespaced_secret(
            namespace, {"metadata": {"name": "hook"}, "stringData": {"address": f"{hooks.url}/alerts"}}
        )
        client.CustomObjectsApi(kube).create_namespaced_custom_object(
            "awsctl.io",
            "v1alpha1",
            namespace,
            "alertproviders",
            {
                "apiVersion": "awsctl.io/v1alpha1",
                "kind": "AlertProvider",
                "metadata": {"name": "hook"},
                "spec": {"type": "generic", "secretRef": {"name": "hook"}},
            },
        )
        app(kube, namespace)
        create(
            kube,
            namespace,
            canary(
                "web",
                listener=moto.listener(namespace),
                rule={"priority": 10},
                analysis={"stepWeights": [50]},
                alerts=[{"providerRef": {"name": "hook"}}],
            ),
        )
        wait_phase(kube, namespace, "Initialized", timeout=90)
        set_image(kube, namespace, V2)
        wait_phase(kube, namespace, "Succeeded", timeout=90)
        wait_for(
            lambda: [b["phase"] for b in hooks.received("/alerts")][-1:] == ["Succeeded"],
            what="alerts delivered with the chart's role (AlertProvider and its Secret read)",
        )
    finally:
        if operator is not None:
            operator.stop()
        helm("uninstall", RELEASE, "--namespace", release_ns, kubeconfig=env.kubeconfig)
        client.CoreV1Api(kube).delete_namespace(release_ns)
    log = operator.log()
    assert "Traceback" not in log and "Forbidden" not in log, log[-4000:]
