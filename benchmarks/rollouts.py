"""`make bench`, rollouts: what one weight step costs, and 100 Canaries initialized on one operator.

1. Step decision -> verified weight: `AlbRouter.set_route_weight` (ModifyRule, then DescribeRules until
   AWS shows the asked weights) against moto over HTTP, with the AWS calls per step counted by the
   botocore before-call hook.
2. AWS calls per Canary tick in steady state (an Initialized Canary, nothing to do).
3. 100 Canaries of 10 pods each on one `awsctl run` process, under the realism layer's rate limits:
   time from creating them to all Initialized (primary Deployments rolled out, groups registered,
   rules verified) beside its floor, peak RSS, and a minute of steady state (AWS calls per second,
   throttled calls) with 100 Canaries and their 200 bindings. The primaries' pods carry their
   binding's readiness gate, so their availability waits on AWS health too: it is awsctl's work,
   and is not subtracted.

Floor: a Canary cannot be Initialized without 7 calls of ELBv2's "other mutations" bucket (2
CreateTargetGroup, 2 ModifyTargetGroupAttributes for the deregistration delay, a warm-up rule
created, the route's rule created, the warm-up rule deleted), which AWS admits at 20 + 3/s; and
the last Canary's route and warm-up deletion (2 calls) cannot come before its targets passed 2
health checks 5 s apart after its warm-up rule put them in use.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from kubernetes import client

from awsctl.api import canary as canary_api
from awsctl.aws.clients import CallCounter, Clients
from awsctl.aws.cloudwatch import CloudWatch
from awsctl.aws.listeners import Listeners, Route
from awsctl.aws.target_groups import OwnedTargetGroups
from awsctl.aws.targets import TargetGroups
from awsctl.controllers.analysis_runner import AnalysisRunner
from awsctl.controllers.canary_reconciler import CanaryReconciler
from awsctl.dev.realism import RATE_LIMITS
from awsctl.dev.waiting import wait_until
from awsctl.kube.client import Kube
from awsctl.planning import weights as w
from awsctl.routing import alb_wire as wire
from awsctl.routing.alb import AlbRouter as Traffic
from benchmarks.common import bench_environment, peak_rss_mib, percentile, verdict

CANARIES = 100
PODS = 10
STEPS = (5, 50, 250, 500, 0)  # the demo's 0.5% -> 5% -> 25% -> 50%, then back to the primary
TARGET_STEP_SECONDS = 2.0
TARGET_FLOOR_RATIO = 1.2
TARGET_RSS_MIB = 120
MUTATIONS_PER_CANARY = 7
HEALTH_SECONDS = 5 * 2
STEADY_WINDOW = 60.0


def floor_seconds(calls: int, bucket: str) -> float:
    burst, rate = RATE_LIMITS[bucket]
    return max(0.0, (calls - burst) / rate)


def weight_steps(moto) -> tuple[list[float], float, float]:
    """Returns (seconds per verified step, reads per step, writes per step)."""
    elbv2 = moto.client("elbv2")
    listener = moto.listener("bench-steps")
    arns = [moto.target_group(f"bench-{side}") for side in ("primary", "canary")]
    for i, arn in enumerate(arns):
        elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": f"10.0.9.{i + 1}", "Port": 8080}])
    rule = elbv2.create_rule(
        ListenerArn=listener,
        Priority=1,
        Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/*"]}}],
        Actions=[wire.forward_action({arns[0]: 999, arns[1]: 0})],
    )["Rules"][0]["RuleArn"]
    spec = canary_api.CanarySpec.parse(
        {"targetRef": {"name": "bench"}, "service": {"port": 80}, "loadBalancer": {"listenerARN": listener}}
    )
    counter = CallCounter()
    traffic = Traffic(Listeners(Clients(counter)))
    route = Route(rule, False)
    healthy = {arns[0]: 1, arns[1]: 1}
    seconds = []
    before_r, before_w = counter.reads(), counter.writes()
    rounds = 10
    for _ in range(rounds):
        for permille in STEPS:
            started = time.perf_counter()
            result = traffic.set_route_weight(
                route, spec, [w.Backend(arns[0])], [w.Backend(arns[1])], permille, healthy
            )
            seconds.append(time.perf_counter() - started)
            if not result.verified:
                raise RuntimeError(result.message)
    steps = rounds * len(STEPS)
    return seconds, (counter.reads() - before_r) / steps, (counter.writes() - before_w) / steps


def app_objects(name: str) -> tuple[dict, dict]:
    labels = {"app": name}
    deployment = {
        "metadata": {"name": name},
        "spec": {
            "replicas": PODS,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "bench/app:v1", "ports": [{"containerPort": 8080}]}]},
            },
        },
    }
    service = {
        "metadata": {"name": name},
        "spec": {"clusterIP": "None", "selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }
    return deployment, service


def hundred_canaries(api, moto, state: Path) -> dict:
    ns = "bench-canaries"
    core, apps, custom = client.CoreV1Api(api), client.AppsV1Api(api), client.CustomObjectsApi(api)
    core.create_namespace({"metadata": {"name": ns}})
    wait_until(lambda: core.list_namespaced_service_account(ns).items, "namespace", timeout=30, interval=1.0)
    # An ALB holds at most 100 rules, and each Canary needs its rule plus, while it warms up, a warm-up
    # rule: 25 Canaries per load balancer, as a real account would spread them.
    listeners = [moto.listener(f"bench-100-{n}") for n in range(CANARIES // 25)]
    names = [f"app{i:03d}" for i in range(CANARIES)]
    for name in names:
        deployment, service = app_objects(name)
        apps.create_namespaced_deployment(ns, deployment)
        core.create_namespaced_service(ns, service)

    def available() -> bool:
        items = apps.list_namespaced_deployment(ns).items
        return len(items) == CANARIES and all((d.status.available_replicas or 0) == PODS for d in items)

    started = time.monotonic()
    wait_until(available, f"{CANARIES * PODS} pods", timeout=600, interval=1.0)
    pods_seconds = time.monotonic() - started

    with open(state / "operator-canaries.log", "ab") as log:
        op = subprocess.Popen(
            [sys.executable, "-m", "awsctl", "run", "--liveness", "", "--namespace", ns, "--log-format", "text"],
            env=dict(os.environ),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        time.sleep(3)  # operator started and watching, nothing to do yet
        started = time.monotonic()
        for i, name in enumerate(names):
            custom.create_namespaced_custom_object(
                "awsctl.io",
                "v1alpha1",
                ns,
                "canaries",
                {
                    "apiVersion": "awsctl.io/v1alpha1",
                    "kind": "Canary",
                    "metadata": {"name": name},
                    "spec": {
                        "targetRef": {"name": name},
                        "service": {"port": 80, "targetPort": 8080},
                        "loadBalancer": {
                            "listenerARN": listeners[i % len(listeners)],
                            "rule": {"priority": i + 1},
                            "targetGroup": {"healthCheck": {"intervalSeconds": 5, "healthyThresholdCount": 2}},
                        },
                        "analysis": {"interval": "5s", "stepWeights": [0.5, 5, 25, 50]},
                    },
                },
            )

        primaries_at: list[float] = []

        def initialized() -> bool:
            if not primaries_at:  # when the cluster had rolled out every primary Deployment
                primaries = [
                    d for d in apps.list_namespaced_deployment(ns).items if d.metadata.name.endswith("-primary")
                ]
                if len(primaries) == CANARIES and all((d.status.available_replicas or 0) == PODS for d in primaries):
                    primaries_at.append(time.monotonic() - started)
            items = custom.list_namespaced_custom_object("awsctl.io", "v1alpha1", ns, "canaries")["items"]
            return sum((c.get("status") or {}).get("phase") == "Initialized" for c in items) == CANARIES

        wait_until(initialized, f"{CANARIES} Canaries Initialized", timeout=900, interval=1.0)
        converge = time.monotonic() - started
        before, throttled = moto.realism.stats.calls.copy(), moto.realism.stats.throttled
        time.sleep(STEADY_WINDOW)
        steady = moto.realism.stats.calls.copy()
        steady.subtract(before)
        steady_throttled = moto.realism.stats.throttled - throttled
        rss = peak_rss_mib(op.pid)
    finally:
        op.terminate()
        op.wait(30)

    counter = CallCounter()
    clients = Clients(counter)
    groups = TargetGroups(clients)
    reconciler = CanaryReconciler(
        Kube.from_kubeconfig(os.environ["KUBECONFIG"]),
        groups,
        OwnedTargetGroups(clients),
        Traffic(Listeners(clients)),
        AnalysisRunner(CloudWatch(clients)),
        cluster="default",
    )
    for name in names:  # warm the immutable caches (group type/VPC, listener VPC) as a running operator has
        reconciler.tick(ns, name)
    before_r, before_w, before = counter.reads(), counter.writes(), counter.snapshot()
    for name in names:
        reconciler.tick(ns, name)
    steady_ops = counter.snapshot() - before
    return {
        "pods_seconds": pods_seconds,
        "converge": converge,
        "rss": rss,
        "steady_calls": sum(steady.values()) / STEADY_WINDOW,
        "steady_describes": sum(n for a, n in steady.items() if a.startswith("Describe")) / STEADY_WINDOW,
        "steady_throttled": steady_throttled,
        "primaries": primaries_at[0] if primaries_at else converge,
        "tick_reads": (counter.reads() - before_r) / CANARIES,
        "tick_writes": (counter.writes() - before_w) / CANARIES,
        "tick_ops": [f"{op} x{n / CANARIES:g}" for op, n in sorted(steady_ops.items())],
    }


def main() -> int:
    with bench_environment("awsctl-bench-rollouts-") as (state, api, moto):
        seconds, step_reads, step_writes = weight_steps(moto)
        fleet = hundred_canaries(api, moto, state)

    p50, p99 = statistics.median(seconds), percentile(seconds, 0.99)
    after_health = 2  # the last Canary's route rule and warm-up deletion
    bucket_floor = max(
        floor_seconds(MUTATIONS_PER_CANARY * CANARIES - after_health, "mutate"), floor_seconds(2 * CANARIES, "register")
    )
    floor = bucket_floor + HEALTH_SECONDS + after_health / RATE_LIMITS["mutate"][1]
    print("\nWeight step: decision -> weight verified in AWS (AlbRouter.set_route_weight against moto over HTTP)")
    print(f"{'steps':>6} {'p50 s':>7} {'p99 s':>7} {'max s':>7} | {'AWS reads':>9} {'writes':>6} per step")
    print(f"{len(seconds):>6} {p50:>7.3f} {p99:>7.3f} {max(seconds):>7.3f} | {step_reads:>9.2f} {step_writes:>6.2f}")
    print(
        f"  floor: {1 / RATE_LIMITS['mutate'][1]:.3f} s a step once the burst of {RATE_LIMITS['mutate'][0]:.0f} "
        "ModifyRule is spent (AWS refills 3/s); back-to-back steps are bucket-bound"
    )
    print(f"\n{CANARIES} Canaries x {PODS} pods on one operator (`awsctl run`, analysis interval 5s)")
    print(f"  user pods ready beforehand (not counted):   {fleet['pods_seconds']:.1f} s")
    print(f"  created -> all {CANARIES * PODS} primary pods available: {fleet['primaries']:.1f} s")
    print(
        f"  created -> all Initialized:                 {fleet['converge']:.1f} s  (floor {floor:.1f} s: "
        f"{MUTATIONS_PER_CANARY * CANARIES} mutations at 3/s, the last one's health {HEALTH_SECONDS} s; "
        f"ratio {fleet['converge'] / floor:.2f})"
    )
    print(
        f"  steady state, AWS calls per second:         {fleet['steady_calls']:.2f} "
        f"({fleet['steady_describes']:.2f} Describe*/s of a 10/s budget), throttled: {fleet['steady_throttled']}"
    )
    print(f"  operator peak RSS (VmHWM):                  {fleet['rss']:.0f} MiB")
    print(
        f"  steady tick, AWS calls per Canary:          {fleet['tick_reads']:.2f} reads / "
        f"{fleet['tick_writes']:.2f} writes ({', '.join(fleet['tick_ops'])})"
    )
    missed = []
    if p99 > TARGET_STEP_SECONDS:
        missed.append(f"step p99 {p99:.2f}s > {TARGET_STEP_SECONDS}s")
    if fleet["converge"] > TARGET_FLOOR_RATIO * floor:
        missed.append(f"convergence {fleet['converge']:.0f}s > {TARGET_FLOOR_RATIO} x floor {floor:.0f}s")
    if fleet["steady_throttled"]:
        missed.append(f"{fleet['steady_throttled']} calls throttled in steady state")
    if fleet["steady_describes"] > RATE_LIMITS["describe"][1] / 2:
        missed.append(f"steady Describe* {fleet['steady_describes']:.1f}/s > half the budget")
    if fleet["rss"] > TARGET_RSS_MIB:
        missed.append(f"RSS {fleet['rss']:.0f} MiB > {TARGET_RSS_MIB} MiB")
    if fleet["tick_writes"] != 0:
        missed.append("steady ticks made AWS writes")
    return verdict(missed)


if __name__ == "__main__":
    raise SystemExit(main())
