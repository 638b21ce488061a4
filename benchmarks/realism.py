"""`make bench`, realism: one Canary's whole rollout under the ELBv2 realism layer.

`awsctl run` as a process drives a Canary (3 pods, health check 5 s x 2, steps 0.5/5/25/50%)
against moto behind the realism layer: targets start `unused`, then `initial`, and are healthy
after their first health check, 5 s after they are in use (AWS: a new target "must pass one health
check"); the API is rate-limited as AWS documents. Measured:

1. Canary created -> Initialized (primary Deployment created, its pods gated until healthy in AWS,
   the route taken), beside its floor: one HealthCheckIntervalSeconds after the targets are
   registered and in use.
2. Each weight step: the ModifyRule at moto -> `status.canaryWeight` showing that weight (the
   read-back verified it), beside its floor (one write and one read, no bucket wait).
3. Void windows during the promotion, sampled every 100 ms from moto's own state (must be 0).
4. Throttled calls per rollout (the operator's, answered `Throttling` by the realism layer).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time

from kubernetes import client

from awsctl.dev.waiting import wait_until
from benchmarks.common import bench_environment, verdict, web_deployment
from tests.harness import VoidWatch

NS = "bench-realism"
PODS = 3
INTERVAL, THRESHOLD = 5, 2
HEALTH_FLOOR = INTERVAL  # one passing check makes a new target healthy
TARGET_STEP_SECONDS = 2.0


def phase(custom, name="web"):
    return custom.get_namespaced_custom_object("awsctl.io", "v1alpha1", NS, "canaries", name).get("status") or {}


def main() -> int:
    with bench_environment("awsctl-bench-realism-") as (state, api, moto):
        core, apps, custom = client.CoreV1Api(api), client.AppsV1Api(api), client.CustomObjectsApi(api)
        core.create_namespace({"metadata": {"name": NS}})
        wait_until(lambda: core.list_namespaced_service_account(NS).items, "namespace", timeout=30, interval=0.5)
        listener = moto.listener("bench-realism")
        labels = {"app": "web"}
        apps.create_namespaced_deployment(NS, web_deployment(PODS))
        core.create_namespaced_service(
            NS,
            {
                "metadata": {"name": "web"},
                "spec": {"clusterIP": "None", "selector": labels, "ports": [{"port": 80, "targetPort": 8080}]},
            },
        )
        wait_until(
            lambda: (apps.read_namespaced_deployment("web", NS).status.available_replicas or 0) == PODS,
            "user pods",
            timeout=120,
            interval=0.5,
        )

        with open(state / "operator-realism.log", "ab") as log:
            op = subprocess.Popen(
                [sys.executable, "-m", "awsctl", "run", "--liveness", "", "--namespace", NS, "--log-format", "text"],
                env=dict(os.environ),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            time.sleep(3)
            throttled_before = moto.realism.stats.throttled
            started = time.monotonic()
            custom.create_namespaced_custom_object(
                "awsctl.io",
                "v1alpha1",
                NS,
                "canaries",
                {
                    "apiVersion": "awsctl.io/v1alpha1",
                    "kind": "Canary",
                    "metadata": {"name": "web"},
                    "spec": {
                        "targetRef": {"name": "web"},
                        "service": {"port": 80, "targetPort": 8080},
                        "loadBalancer": {
                            "listenerARN": listener,
                            "rule": {"priority": 10},
                            "targetGroup": {
                                "healthCheck": {"intervalSeconds": INTERVAL, "healthyThresholdCount": THRESHOLD},
                                "deregistrationDelaySeconds": 5,
                            },
                        },
                        "analysis": {"interval": "2s", "stepWeights": [0.5, 5, 25, 50]},
                    },
                },
            )
            wait_until(lambda: phase(custom).get("phase") == "Initialized", "Initialized", timeout=180, interval=0.1)
            initialized = time.monotonic() - started
            st = phase(custom)
            rule = st["listenerRule"]["arn"]
            primary, canary = st["targetGroups"]["primary"][0], st["targetGroups"]["canary"][0]

            shown: list[tuple[float, float]] = []  # (when, canaryWeight) each time status changes
            stop = threading.Event()

            def follow():
                last = None
                while not stop.is_set():
                    weight = phase(custom).get("canaryWeight")
                    if weight != last:
                        shown.append((time.monotonic(), weight))
                        last = weight
                    stop.wait(0.05)

            follower = threading.Thread(target=follow, daemon=True)
            follower.start()
            writes_before = len(moto.weight_writes)
            pods = {primary: (api, NS, "app=web-primary"), canary: (api, NS, "app=web")}
            with VoidWatch(moto, rule, pods, interval=INTERVAL) as watch:
                apps.patch_namespaced_deployment(
                    "web",
                    NS,
                    {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "bench/app:v2"}]}}}},
                )
                rollout_started = time.monotonic()
                wait_until(lambda: phase(custom).get("phase") == "Succeeded", "Succeeded", timeout=300, interval=0.2)
                rollout = time.monotonic() - rollout_started
            stop.set()
            follower.join(2)
            throttled = moto.realism.stats.throttled - throttled_before
        finally:
            op.terminate()
            op.wait(30)

    steps = []
    for write in list(moto.weight_writes)[writes_before:]:
        if write.route != rule:
            continue
        total = sum(write.weights.values())
        percent = round(100 * write.weights.get(canary, 0) / total, 1) if total else 0.0
        before = [w for t, w in shown if t < write.at]
        if before and before[-1] is not None and abs(before[-1] - percent) < 0.05:
            continue  # the weight status already showed (a revision starting at 0): not a step
        verified = next(
            (t for t, w in shown if t >= write.at - 0.05 and w is not None and abs(w - percent) < 0.05), None
        )
        if verified is not None:
            steps.append((percent, max(0.0, verified - write.at)))
    seconds = [s for _, s in steps]
    print("\nOne Canary under the ELBv2 realism layer (3 pods, health check 5 s x 2, `awsctl run`)")
    print(f"{'figure':<46} {'measured':>10} {'floor':>10}")
    print(f"{'created -> Initialized':<46} {initialized:>9.1f}s {HEALTH_FLOOR:>9.1f}s")
    print(f"{'weight step, write -> verified in status, p50':<46} {statistics.median(seconds):>9.2f}s {'~0':>9}s")
    print(f"{'weight step, write -> verified in status, max':<46} {max(seconds):>9.2f}s {'~0':>9}s")
    print(f"{'rollout (new revision -> Succeeded)':<46} {rollout:>9.1f}s {'':>10}")
    print(f"{'void windows during the rollout':<46} {len(watch.voids):>10} {0:>10}")
    print(f"{'throttled calls per rollout (incl. init)':<46} {throttled:>10} {'':>10}")
    print(f"  steps verified: {', '.join(f'{p:g}%' for p, _ in steps)}; samples: {watch.samples}")
    print("  floors: targets are healthy one HealthCheckIntervalSeconds after they are in use (one passing")
    print("  check); a verified step is one ModifyRule and one DescribeRules, which the buckets admit at once.")
    missed = []
    if watch.voids:
        missed.append(f"{len(watch.voids)} void samples, first {watch.voids[0]}")
    if max(seconds) > TARGET_STEP_SECONDS:
        missed.append(f"slowest verified step {max(seconds):.2f}s > {TARGET_STEP_SECONDS}s")
    return verdict(missed)


if __name__ == "__main__":
    raise SystemExit(main())
