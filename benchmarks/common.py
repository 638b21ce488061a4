"""What both benchmarks need: the local control plane with the CRDs and a moto server, and statistics."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from kubernetes import config

from awsctl.api import grant
from awsctl.dev.cluster import Environment, free_port
from awsctl.dev.pods import TableClient
from awsctl.dev.waiting import wait_until
from tests.harness import moto_server


@contextlib.contextmanager
def bench_environment(prefix: str):
    """Yields (state dir, Kubernetes API client, moto); the standard variables point at both."""
    state = Path(tempfile.mkdtemp(prefix=prefix))
    env = Environment(state / "dev")
    env.up(with_moto=False)
    try:
        env.install_crds()
        env.grant("bench", grant.everything())  # one team: every namespace may use everything
        api = config.new_client_from_config(str(env.kubeconfig))
        with moto_server() as moto:
            os.environ.update(moto.env())
            os.environ["KUBECONFIG"] = str(env.kubeconfig)
            os.environ["AWSCTL_CLUSTER_NAME"] = "bench"  # awsctl run requires a cluster name
            yield state, api, moto
    finally:
        env.down(quiet=True)


@contextlib.contextmanager
def live_ground(prefix: str, operator_args: tuple[str, ...] = ()):
    """`bench_environment` with pods that answer (`python -m awsctl.dev.pods`) and `awsctl run` as a process;
    yields (state dir, Kubernetes API client, moto, the pods' table). The caller starts its data plane(s)
    on `moto.realism` with the table's resolver."""
    with bench_environment(prefix) as (state, api, moto):
        port = free_port()
        with open(state / "pods.log", "ab") as log:
            pods = subprocess.Popen(
                [sys.executable, "-m", "awsctl.dev.pods", f"--kubeconfig={os.environ['KUBECONFIG']}", f"--port={port}"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        table: TableClient | None = None
        operator: subprocess.Popen | None = None
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until(lambda: answers(f"{url}/healthz"), "the pods server", timeout=60)
            table = TableClient(url)
            table.ready.wait(10)
            with open(state / "operator.log", "ab") as log:
                operator = subprocess.Popen(
                    [sys.executable, "-m", "awsctl", "run", "--liveness", "", *operator_args],
                    env=dict(os.environ),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            yield state, api, moto, table
        finally:
            if operator is not None:
                operator.terminate()
                operator.wait(30)
            if table is not None:
                table.close()
            os.killpg(pods.pid, signal.SIGTERM)
            pods.wait(15)


def answers(url: str) -> bool:
    try:
        return urllib.request.urlopen(url, timeout=2).status == 200
    except OSError:
        return False


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024


def all_healthy(elbv2, *groups: str) -> bool:
    """Every target of these groups shows `healthy` (an `initial` one gets no traffic yet)."""
    states = [
        d["TargetHealth"]["State"]
        for group in groups
        for d in elbv2.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
    ]
    return set(states) == {"healthy"}


def verdict(missed: list[str]) -> int:
    """The benchmark's exit code: non-zero, with one line that says which targets were missed."""
    if missed:
        print("TARGET MISSED: " + "; ".join(missed))
        return 1
    return 0


def web_deployment(replicas: int, annotations: dict[str, str] | None = None) -> dict:
    """The benchmarks' app: `replicas` pods labelled app=web, listening on 8080."""
    labels = {"app": "web"}
    return {
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": annotations or {}},
                "spec": {"containers": [{"name": "app", "image": "bench/app:v1", "ports": [{"containerPort": 8080}]}]},
            },
        },
    }
