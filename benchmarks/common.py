"""What both benchmarks need: the local control plane with the CRDs and a moto server, and statistics."""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from pathlib import Path

from kubernetes import config

from awsctl.dev.cluster import Environment
from tests.harness import moto_server


@contextlib.contextmanager
def bench_environment(prefix: str):
    """Yields (state dir, Kubernetes API client, moto); the standard variables point at both."""
    state = Path(tempfile.mkdtemp(prefix=prefix))
    env = Environment(state / "dev")
    env.up(with_moto=False)
    try:
        env.install_crds()
        api = config.new_client_from_config(str(env.kubeconfig))
        with moto_server() as moto:
            os.environ.update(moto.env())
            os.environ["KUBECONFIG"] = str(env.kubeconfig)
            os.environ["AWSCTL_CLUSTER_NAME"] = "bench"  # awsctl run requires a cluster name
            yield state, api, moto
    finally:
        env.down(quiet=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024


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
