"""`awsctl dev up | env | listeners | load | down` as a user runs them: exports, idempotent up, a
request through a listener to a pod that answers, nothing left behind."""

import json
import subprocess
import sys
import urllib.request

import boto3
from kubernetes import client, config

from awsctl.demo.alb import create_alb
from awsctl.dev.cluster import _alive
from tests.e2e.conftest import wait_for
from tests.e2e.objects import create, deployment


def awsctl(*args, state_dir):
    return subprocess.run(
        [sys.executable, "-m", "awsctl", "dev", *args, "--state-dir", str(state_dir)],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_up_env_down(tmp_path):
    state_dir = tmp_path / "dev"
    up = awsctl("up", state_dir=state_dir)
    try:
        assert up.returncode == 0, up.stderr
        exports = dict(line.removeprefix("export ").split("=", 1) for line in up.stdout.splitlines())
        assert set(exports) >= {"KUBECONFIG", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID"}
        assert exports["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        assert "starting kube-apiserver" in up.stderr and "ready in" in up.stderr  # progress is shown

        again = awsctl("up", state_dir=state_dir)
        assert again.returncode == 0 and "already running" in again.stderr
        assert awsctl("env", state_dir=state_dir).stdout == up.stdout

        nodes = client.CoreV1Api(config.new_client_from_config(exports["KUBECONFIG"])).list_node().items
        assert len(nodes) == 3 and all(
            any(c.type == "Ready" and c.status == "True" for c in n.status.conditions) for n in nodes
        )
        pids = json.loads((state_dir / "state.json").read_text())["pids"]
        assert set(pids) == {
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kwok",
            "moto",
            "pods",
        }
        assert all(_alive(pid) for pid in pids.values())
        request_through_a_listener(exports, state_dir)
    finally:
        down = awsctl("down", state_dir=state_dir)
    assert down.returncode == 0, down.stderr
    assert not any(_alive(pid) for pid in pids.values())
    assert (state_dir / "logs" / "kube-apiserver.log").exists()


def request_through_a_listener(exports, state_dir):
    """A kwok pod answers through the data plane: pod IP registered in a group, a listener forwarding."""
    kube = config.new_client_from_config(exports["KUBECONFIG"])
    create(kube, "default", deployment("web", replicas=1, container_port=8080, image="demo/web:v7"))
    core = client.CoreV1Api(kube)
    ip = wait_for(
        lambda: next((p.status.pod_ip for p in core.list_namespaced_pod("default").items if p.status.pod_ip), None),
        timeout=60,
        what="the pod's IP",
    )
    aws = {
        "endpoint_url": exports["AWS_ENDPOINT_URL"],
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    elbv2, ec2 = boto3.client("elbv2", **aws), boto3.client("ec2", **aws)
    _, listener = create_alb(elbv2, ec2, "dev-cli")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    group = elbv2.create_target_group(Name="web", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip")[
        "TargetGroups"
    ][0]["TargetGroupArn"]
    elbv2.register_targets(TargetGroupArn=group, Targets=[{"Id": ip, "Port": 8080, "AvailabilityZone": "all"}])
    elbv2.modify_listener(ListenerArn=listener, DefaultActions=[{"Type": "forward", "TargetGroupArn": group}])

    def url():
        shown = awsctl("listeners", state_dir=state_dir)
        assert shown.returncode == 0, shown.stderr
        lines = shown.stdout.splitlines()
        return lines[0].startswith("LISTENER") and len(lines) == 2 and lines[1].split()[-1]

    base = wait_for(url, timeout=30, what="the listener's URL")
    answer = wait_for(lambda: urllib.request.urlopen(base, timeout=5), timeout=60, what="an answer from the pod")
    assert answer.headers["X-Dev-Version"] == "v7"  # the image's tag
    assert json.loads(answer.read())["ip"] == ip

    load = awsctl("load", base, "--rate", "20", "--duration", "2", state_dir=state_dir)
    assert load.returncode == 0, load.stderr
    assert load.stdout.startswith("40 requests, 0 failed"), load.stdout
