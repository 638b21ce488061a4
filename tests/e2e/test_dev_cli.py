"""`awsctl dev up | env | down` as a user runs them: exports, idempotent up, nothing left behind."""

import json
import subprocess
import sys

from kubernetes import client, config

from awsctl.dev.cluster import _alive


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
        assert set(pids) == {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "moto"}
        assert all(_alive(pid) for pid in pids.values())
    finally:
        down = awsctl("down", state_dir=state_dir)
    assert down.returncode == 0, down.stderr
    assert not any(_alive(pid) for pid in pids.values())
    assert (state_dir / "logs" / "kube-apiserver.log").exists()
