"""Every CLI failure a user can cause is one line that says what is wrong and what to do, a non-zero
exit, and never a traceback."""

import os
import subprocess
import sys

import pytest
import yaml

from awsctl.dev.cluster import free_port

NO_AWS = {
    "AWS_ACCESS_KEY_ID": None,
    "AWS_SECRET_ACCESS_KEY": None,
    "AWS_SESSION_TOKEN": None,
    "AWS_PROFILE": None,
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI": None,
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": None,
    "AWS_WEB_IDENTITY_TOKEN_FILE": None,
}


def awsctl(*args, env):
    merged = {**os.environ, **env}
    proc = subprocess.run(
        [sys.executable, "-m", "awsctl", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in merged.items() if v is not None},
    )
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


@pytest.fixture
def unreachable_kubeconfig(cluster, tmp_path):
    config = yaml.safe_load(cluster[0].kubeconfig.read_text())
    port = free_port()
    for entry in config["clusters"]:
        entry["cluster"]["server"] = f"https://127.0.0.1:{port}"
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path, port


@pytest.mark.parametrize(
    "command", [("status",), ("run", "--cluster-name", "e2e", "--liveness", ""), ("promote", "web")]
)
def test_no_kubeconfig(command, tmp_path):
    line = awsctl(
        *command, env={"KUBECONFIG": str(tmp_path / "missing"), "HOME": str(tmp_path), "KUBERNETES_SERVICE_HOST": None}
    )
    assert "no Kubernetes credentials" in line and "Set KUBECONFIG" in line


@pytest.mark.parametrize(
    "command", [("status",), ("run", "--cluster-name", "e2e", "--liveness", ""), ("pause", "web", "-n", "x")]
)
def test_unreachable_api_server(command, unreachable_kubeconfig):
    path, port = unreachable_kubeconfig
    line = awsctl(*command, env={"KUBECONFIG": str(path)})
    assert f"cannot reach the Kubernetes API server at https://127.0.0.1:{port}" in line and "kubeconfig" in line


def test_missing_aws_credentials_region_and_a_wrong_endpoint(cluster, moto):
    kube = {"KUBECONFIG": str(cluster[0].kubeconfig)}
    run = ("run", "--cluster-name", "e2e", "--liveness", "")
    line = awsctl(*run, env={**kube, **moto.env(), **NO_AWS})
    assert "no AWS credentials" in line and "AWS_PROFILE" in line
    line = awsctl(*run, env={**kube, **moto.env(), "AWS_REGION": None, "AWS_DEFAULT_REGION": None})
    assert line == "error: no AWS region: set AWS_REGION (e.g. export AWS_REGION=us-east-1)"
    wrong = f"http://127.0.0.1:{free_port()}"
    line = awsctl(*run, env={**kube, **moto.env(), "AWS_ENDPOINT_URL": wrong})
    assert "cannot reach AWS" in line and f"AWS_ENDPOINT_URL is {wrong}" in line


def test_missing_canary(cluster, namespace):
    env = {"KUBECONFIG": str(cluster[0].kubeconfig)}
    for verb in ("promote", "abort", "retry", "pause", "resume"):
        line = awsctl(verb, "nope", "-n", namespace, env=env)
        assert (
            line == f'error: canary "nope" not found in namespace "{namespace}" (awsctl status -n {namespace} '
            "lists them)"
        )
    line = awsctl("status", "nope", "-n", namespace, env=env)
    assert line == f'error: no canary or target group binding named "nope" in namespace "{namespace}"'


def test_run_without_a_cluster_name_refuses_to_start(tmp_path):
    """No default: two clusters sharing an account under one name would adopt each other's target groups
    and rules, and fight over the weights."""
    env = {k: v for k, v in os.environ.items() if k != "AWSCTL_CLUSTER_NAME"}
    proc = subprocess.run(
        [sys.executable, "-m", "awsctl", "run", "--liveness", ""],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "KUBECONFIG": str(tmp_path / "missing")},
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: --cluster-name is required (or AWSCTL_CLUSTER_NAME)")
