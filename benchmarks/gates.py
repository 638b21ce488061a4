"""`make bench`, readiness gates: how long a pod held by awsctl's gate waits after its containers are ready.

`awsctl run` as a process, with its default resync (10 minutes) and the readiness-gate webhook, binds a
Service whose pods take 3 s to start (`awsctl.io/dev-start-delay`). A pod held only by the gate turns
ContainersReady without changing any EndpointSlice (the gate keeps it unready), so nothing but the
binding itself can notice. Measured per pod, sampled every 100 ms: ContainersReady -> the gate's
condition True, beside its floor: the target's health checks after registration
(HealthyThresholdCount x HealthCheckIntervalSeconds under the realism layer). The LBC requeues at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from kubernetes import client

from awsctl.dev.cluster import free_port
from awsctl.dev.waiting import wait_until
from benchmarks.common import bench_environment, percentile, verdict, web_deployment

NS = "bench-gates"
PODS = 6
START_DELAY = "3s"
INTERVAL, THRESHOLD = 5, 2
FLOOR = INTERVAL * THRESHOLD
GOAL = FLOOR + 3.0  # the health checks, then at most a recheck and a status write
GATE = "target-health.awsctl.io/web"


def conditions(pod) -> dict[str, str]:
    return {c.type: c.status for c in pod.status.conditions or ()}


def main() -> int:
    with bench_environment("awsctl-bench-gates-") as (state, api, moto):
        core, apps, custom = client.CoreV1Api(api), client.AppsV1Api(api), client.CustomObjectsApi(api)
        core.create_namespace({"metadata": {"name": NS, "labels": {"awsctl.io/readiness-gate-injection": "enabled"}}})
        wait_until(lambda: core.list_namespaced_service_account(NS).items, "namespace", timeout=30, interval=0.5)
        listener = moto.listener("bench-gates")
        group = moto.client("elbv2").create_target_group(
            Name="bench-gates",
            Protocol="HTTP",
            Port=80,
            VpcId=moto.default_vpc()["VpcId"],
            TargetType="ip",
            HealthCheckIntervalSeconds=INTERVAL,
            HealthyThresholdCount=THRESHOLD,
        )["TargetGroups"][0]["TargetGroupArn"]
        moto.client("elbv2").modify_listener(
            ListenerArn=listener, DefaultActions=[{"Type": "forward", "TargetGroupArn": group}]
        )  # in use: health-checked
        port = free_port()
        with open(state / "operator-gates.log", "ab") as log:
            op = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "awsctl",
                    "run",
                    "--liveness",
                    "",
                    "--namespace",
                    NS,
                    "--readiness-webhook-port",
                    str(port),
                    "--log-format",
                    "text",
                ],
                env=dict(os.environ),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            admission = client.AdmissionregistrationV1Api(api)
            wait_until(
                lambda: admission.list_mutating_webhook_configuration().items, "webhook", timeout=60, interval=0.2
            )
            labels = {"app": "web"}
            core.create_namespaced_service(
                NS,
                {
                    "metadata": {"name": "web"},
                    "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]},
                },
            )
            custom.create_namespaced_custom_object(
                "awsctl.io",
                "v1alpha1",
                NS,
                "targetgroupbindings",
                {
                    "apiVersion": "awsctl.io/v1alpha1",
                    "kind": "TargetGroupBinding",
                    "metadata": {"name": "web"},
                    "spec": {"serviceRef": {"name": "web", "port": 80}, "targetGroupARN": group},
                },
            )
            time.sleep(2)  # the binding is seen before its pods exist
            apps.create_namespaced_deployment(NS, web_deployment(PODS, {"awsctl.io/dev-start-delay": START_DELAY}))
            ready_at: dict[str, float] = {}
            gate_at: dict[str, float] = {}
            deadline = time.monotonic() + 150
            while time.monotonic() < deadline and len(gate_at) < PODS:
                now = time.monotonic()
                for pod in core.list_namespaced_pod(NS, label_selector="app=web").items:
                    seen = conditions(pod)
                    if seen.get("ContainersReady") == "True":
                        ready_at.setdefault(pod.metadata.name, now)
                    if seen.get(GATE) == "True":
                        gate_at.setdefault(pod.metadata.name, now)
                time.sleep(0.1)
            waits = [gate_at[p] - ready_at[p] for p in gate_at if p in ready_at]
        finally:
            op.terminate()
            op.wait(30)

    missed = []
    print(f"Readiness gates: {PODS} pods starting in {START_DELAY}, operator resync 600 s (its default)")
    if len(waits) < PODS:
        missed.append(f"only {len(waits)}/{PODS} gates opened")
        print(f"  gates opened: {len(waits)}/{PODS}")
    if waits:
        p50, p99 = percentile(waits, 0.5), percentile(waits, 0.99)
        print(
            f"  ContainersReady -> gate True:   p50 {p50:.1f} s, p99 {p99:.1f} s"
            f"  (floor {FLOOR:.1f} s: health checks {THRESHOLD} x {INTERVAL} s; goal < {GOAL:.1f} s)"
        )
        if p99 >= GOAL:
            missed.append(f"ContainersReady -> gate p99 {p99:.1f} s >= {GOAL:.1f} s")
    return verdict(missed)


if __name__ == "__main__":
    sys.exit(main())
