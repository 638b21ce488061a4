"""`awsctl demo`: local control plane + moto + operator, and a headless app whose pods go into a target group.

It shows the parts that exist today end to end: IP targets at the container port behind a
headless Service, a scale-up, a terminating pod drained at once, a refused instance-mode
binding, and clean removal. It cleans up everything it started.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from awsctl.dev.cluster import Environment

NS = "demo"


def _step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def _wait(predicate, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise RuntimeError(f"demo: timed out waiting for {what}")


def run_demo(state_dir: Path | None = None, keep: bool = False) -> int:
    from kubernetes import client, config

    started = time.monotonic()
    state_dir = state_dir or Path(tempfile.mkdtemp(prefix="awsctl-demo-"))
    env = Environment(state_dir)
    _step("starting the local control plane and moto (awsctl dev up)")
    exports = env.up()
    os.environ.update(exports)
    operator = None
    try:
        api_client = config.new_client_from_config(str(env.kubeconfig))
        core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
        custom = client.CustomObjectsApi(api_client)
        _step("applying the CRDs")
        env.install_crds()

        import boto3
        elbv2, ec2 = boto3.client("elbv2"), boto3.client("ec2")
        vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
        _step("creating an ip target group in moto (the ALB side)")
        arn = elbv2.create_target_group(Name="demo-web", Protocol="HTTP", Port=80, VpcId=vpc,
                                        TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
        print(f"    {arn}")

        _step("starting the operator (awsctl run)")
        log_path = state_dir / "logs" / "operator.log"
        with open(log_path, "ab") as log:
            operator = subprocess.Popen([sys.executable, "-m", "awsctl", "run", "--liveness", "",
                                         "--resync-seconds", "5"], env=dict(os.environ),
                                        stdout=log, stderr=subprocess.STDOUT)
        print(f"    logs: {log_path}")

        _step("deploying web (3 pods, containerPort 8080) behind a headless Service (port 80 -> 8080)")
        core.create_namespace({"metadata": {"name": NS}})
        _wait(lambda: core.list_namespaced_service_account(NS).items, "namespace")
        labels = {"app": "web"}
        apps.create_namespaced_deployment(NS, {
            "metadata": {"name": "web"},
            "spec": {"replicas": 3, "selector": {"matchLabels": labels}, "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "demo/web:v1",
                                         "ports": [{"name": "http", "containerPort": 8080}]}]}}}})
        core.create_namespaced_service(NS, {"metadata": {"name": "web"}, "spec": {
            "clusterIP": "None", "selector": labels,
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})
        custom.create_namespaced_custom_object("awsctl.io", "v1alpha1", NS, "targetgroupbindings", {
            "apiVersion": "awsctl.io/v1alpha1", "kind": "TargetGroupBinding", "metadata": {"name": "web"},
            "spec": {"serviceRef": {"name": "web", "port": 80}, "targetGroupARN": arn}})

        def aws_targets():
            health = elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
            return sorted(f"{d['Target']['Id']}:{d['Target']['Port']} {d['TargetHealth']['State']}" for d in health)

        def show(want: int):
            targets = _wait(lambda: (lambda t: t if len(t) == want else None)(aws_targets()),
                            f"{want} targets in AWS")
            for line in targets:
                print(f"    {line}")

        show(3)
        _step("scaling web to 5: new pods are registered")
        apps.patch_namespaced_deployment_scale("web", NS, {"spec": {"replicas": 5}})
        show(5)
        _step("deleting one pod: it is deregistered while still Terminating, then replaced")
        victim = core.list_namespaced_pod(NS, label_selector="app=web").items[0]
        core.delete_namespaced_pod(victim.metadata.name, NS)
        _wait(lambda: not any(t.startswith(victim.status.pod_ip + ":") for t in aws_targets()), "drain")
        print(f"    {victim.status.pod_ip} drained")
        show(5)

        _step("a binding asking for instance mode on the headless Service is refused, with no AWS write")
        custom.create_namespaced_custom_object("awsctl.io", "v1alpha1", NS, "targetgroupbindings", {
            "apiVersion": "awsctl.io/v1alpha1", "kind": "TargetGroupBinding", "metadata": {"name": "web-instance"},
            "spec": {"serviceRef": {"name": "web", "port": "http"}, "targetGroupARN": arn,
                     "targetType": "instance"}})

        def refused():
            obj = custom.get_namespaced_custom_object("awsctl.io", "v1alpha1", NS, "targetgroupbindings",
                                                      "web-instance")
            conds = (obj.get("status") or {}).get("conditions") or []
            return next((c for c in conds if c["type"] == "Ready" and c["status"] == "False"), None)

        cond = _wait(refused, "refusal")
        print(f"    Ready=False {cond['reason']}: {cond['message']}")

        _step("awsctl status")
        subprocess.run([sys.executable, "-m", "awsctl", "status", "-n", NS], check=False)

        _step("deleting the bindings: the finalizer deregisters exactly their targets")
        for name in ("web", "web-instance"):
            custom.delete_namespaced_custom_object("awsctl.io", "v1alpha1", NS, "targetgroupbindings", name)
        _wait(lambda: not aws_targets(), "empty target group")
        print("    target group is empty")
        print(f"\ndemo finished in {time.monotonic() - started:.1f}s")
        return 0
    finally:
        if operator:
            operator.terminate()
            try:
                operator.wait(10)
            except subprocess.TimeoutExpired:
                operator.kill()
        if keep:
            print(f"environment kept; `awsctl dev down --state-dir {state_dir}` stops it")
        else:
            env.down()
