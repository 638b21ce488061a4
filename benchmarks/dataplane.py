"""`make bench`, data plane: is what the requests measure faithful, and what does the data plane cost?

moto (behind the realism layer) with its data plane, and pods served on 127.0.0.1; the load comes
from `awsctl dev load` in its own process, as a user runs it. Measured:

1. The share the requests measured at each weight AWS shows (0.5%, 5%, 25%, 50%), in percentage
   points from the weight, beside the sampling error's bound (4.5 standard deviations).
2. The data plane's own cost at 200 requests a second: latency through the listener against the same
   pods answered directly (p50 and p99 added).
3. The highest rate it sustains: 200, 300, 400, 600, 800 requests a second until one falls short
   (under 95% of the rate sent, any failure, or p99 above 100 ms).
4. A rollout under load, as a user runs one: the local control plane, `awsctl run` as a process, the
   pods server, 100 requests a second through the listener from Initialized until the canary has
   scaled to 0. Failed requests beside their floor of 0, and at each step the canary's share of the
   requests sent while AWS showed that weight (sampled every 100 ms), in percentage points from it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from kubernetes import client

from awsctl.dev.dataplane import DataPlane
from awsctl.dev.load import Load
from awsctl.dev.pods import LocalPods, pod
from awsctl.dev.waiting import wait_until
from benchmarks.common import all_healthy, live_ground, verdict, web_deployment
from tests.harness import moto_server

STEPS = (5, 50, 250, 500)  # permille, as ALB weights
SAMPLES = 4000
ADDED_P50_GOAL_MS, ADDED_P99_GOAL_MS = 5.0, 20.0
RATE_GOAL = 200  # 4x what the stories send, 2x the demo: pods, proxy and moto share one process here
NS = "bench-load"
ROLLOUT_RATE = 100  # requests a second through the rollout, as in the demo
ROLLOUT_STEPS = [0.5, 5, 25, 50]
SAMPLE_SECONDS = 0.1  # how often the rollout reads the weight AWS shows
EDGE_SECONDS = 0.3  # requests this close to a change of the weight shown are left out of the share


def load(url: str, rate: float, seconds: float) -> dict:
    """`awsctl dev load` in its own process: the summary and every response."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "awsctl",
            "dev",
            "load",
            url,
            "--rate",
            str(rate),
            "--duration",
            str(seconds),
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
    )
    return json.loads(done.stdout)


def main() -> int:
    if sys.argv[1:] == ["--rollout"]:  # the rollout alone
        return verdict(rollout_under_load())
    missed: list[str] = []
    with moto_server() as moto:
        pods = LocalPods()
        plane = DataPlane(moto.realism, pods.resolve).start()
        try:
            elbv2 = moto.client("elbv2")
            listener = moto.listener("bench-dataplane")
            stable, canary = moto.target_group("stable", port=8080), moto.target_group("canary", port=8080)
            ips = {stable: ["172.31.0.10", "172.31.0.11"], canary: ["172.31.16.10", "172.31.16.11"]}
            for group, version in ((stable, "v1"), (canary, "v2")):
                for index, ip in enumerate(ips[group]):
                    pods.observe("ADDED", pod(f"{version}-{index}", ip, image=f"web:{version}"))
                elbv2.register_targets(TargetGroupArn=group, Targets=[{"Id": ip, "Port": 8080} for ip in ips[group]])
            url = plane.wait_listener(listener) + "/"

            def forward(weight: int) -> None:
                groups = [
                    {"TargetGroupArn": stable, "Weight": min(999, 1000 - weight)},
                    {"TargetGroupArn": canary, "Weight": weight},
                ]
                elbv2.modify_listener(
                    ListenerArn=listener,
                    DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}],
                )

            forward(0)  # both groups in use, so that AWS health-checks their targets

            wait_until(
                lambda: all_healthy(elbv2, stable, canary),
                "every target healthy (initial ones get no request)",
                timeout=90,
                interval=0.5,
            )

            print("Data plane: the share the requests measured at each weight AWS showed")
            print(f"  {'weight':>7}  {'measured':>9}  {'off by (pp)':>11}  {'bound (pp)':>10}  requests")
            for weight in STEPS:
                forward(weight)
                shown = moto.forward_weights(listener)[canary] / 10
                time.sleep(plane.propagation.rule_seconds[1])  # until the slowest node routes by it
                answers = load(url, 400, SAMPLES / 400)["responses"]
                share = 100 * sum(r["version"] == "v2" for r in answers) / len(answers)
                bound = bound_pp(shown, len(answers))
                off = share - shown
                print(f"  {shown:6.1f}%  {share:8.2f}%  {off:+11.2f}  {bound:10.2f}  {len(answers)}")
                if abs(off) > bound or any(r["status"] != 200 for r in answers):
                    missed.append(f"share at {shown}%")

            print("Data plane: latency added at 200 requests a second (the same pods, direct and through it)")
            address = pods.resolve(ips[stable][0], 8080)
            assert address is not None
            direct = load(f"http://{address[0]}:{address[1]}/", 200, 10)
            through = load(url, 200, 10)
            added = {q: through["latency_ms"][q] - direct["latency_ms"][q] for q in ("p50", "p99")}
            print(f"  direct  p50 {direct['latency_ms']['p50']:.1f} ms  p99 {direct['latency_ms']['p99']:.1f} ms")
            print(f"  through p50 {through['latency_ms']['p50']:.1f} ms  p99 {through['latency_ms']['p99']:.1f} ms")
            print(
                f"  added   p50 {added['p50']:.1f} ms (goal < {ADDED_P50_GOAL_MS})  "
                f"p99 {added['p99']:.1f} ms (goal < {ADDED_P99_GOAL_MS})"
            )
            if added["p50"] > ADDED_P50_GOAL_MS or added["p99"] > ADDED_P99_GOAL_MS:
                missed.append("added latency")

            print("Data plane: the highest rate it sustains (5 s each; 95% of the rate, no failure, p99 < 100 ms)")
            sustained = 0
            for rate in (200, 300, 400, 600, 800):
                got = load(url, rate, 5)
                ok = got["rate"] >= 0.95 * rate and got["failures"] == 0 and got["latency_ms"]["p99"] < 100
                print(
                    f"  {rate:5d}/s sent: {got['rate']:7.1f}/s answered, {got['failures']} failed, "
                    f"p99 {got['latency_ms']['p99']:.1f} ms  {'ok' if ok else 'short'}"
                )
                if not ok:
                    break
                sustained = rate
            print(f"  sustained: {sustained}/s (goal >= {RATE_GOAL}/s; the stories send 50/s, the demo 100/s)")
            if sustained < RATE_GOAL:
                missed.append("sustained rate")
        finally:
            plane.stop()
            pods.close()
    missed += rollout_under_load()
    return verdict(missed)


def bound_pp(percent: float, requests: int) -> float:
    """4.5 standard deviations of a share measured over `requests`, in percentage points."""
    p = percent / 100
    return 100 * 4.5 * (p * (1 - p) / max(requests, 1)) ** 0.5


def rollout_under_load() -> list[str]:
    print(f"Data plane: a rollout under {ROLLOUT_RATE} requests a second (steps {ROLLOUT_STEPS}, interval 20s)")
    with live_ground("awsctl-bench-load-", ("--namespace", NS)) as (_, api, moto, table):
        plane = DataPlane(moto.realism, table.resolve).start()
        try:
            return _rollout(api, moto, plane)
        finally:
            plane.stop()


def _rollout(api, moto, plane: DataPlane) -> list[str]:
    ns = NS
    core, apps, custom = client.CoreV1Api(api), client.AppsV1Api(api), client.CustomObjectsApi(api)
    core.create_namespace({"metadata": {"name": ns}})
    wait_until(lambda: core.list_namespaced_service_account(ns).items, "namespace", timeout=30, interval=1.0)
    deployment = web_deployment(2)
    apps.create_namespaced_deployment(ns, deployment)
    labels = deployment["spec"]["selector"]["matchLabels"]
    core.create_namespaced_service(
        ns, {"metadata": {"name": "web"}, "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]}}
    )
    listener = moto.listener("bench-load")
    health = {"intervalSeconds": 5, "healthyThresholdCount": 2}
    spec = {
        "targetRef": {"name": "web"},
        "service": {"port": 80, "targetPort": 8080},
        "loadBalancer": {
            "listenerARN": listener,
            "rule": {"priority": 10},
            "targetGroup": {"healthCheck": health, "deregistrationDelaySeconds": 5},
        },
        "analysis": {"interval": "20s", "stepWeights": ROLLOUT_STEPS},
    }
    canary = {"apiVersion": "awsctl.io/v1alpha1", "kind": "Canary", "metadata": {"name": "web"}, "spec": spec}
    custom.create_namespaced_custom_object("awsctl.io", "v1alpha1", ns, "canaries", canary)

    def status() -> dict:
        return custom.get_namespaced_custom_object("awsctl.io", "v1alpha1", ns, "canaries", "web").get("status") or {}

    wait_until(lambda: status().get("phase") == "Initialized", "Initialized", timeout=180, interval=0.5)
    st = status()
    rule, group = st["listenerRule"]["arn"], st["targetGroups"]["canary"][0]
    url = plane.wait_listener(listener) + "/"
    lag = plane.propagation.rule_seconds[1]  # the new rule reaches the slowest node
    time.sleep(lag)
    load = Load(url, ROLLOUT_RATE).start()
    shown: list[tuple[float, float]] = []  # (seconds into the load, canary percent AWS showed)
    try:
        container = {**deployment["spec"]["template"]["spec"]["containers"][0], "image": "bench/app:v2"}
        apps.patch_namespaced_deployment("web", ns, {"spec": {"template": {"spec": {"containers": [container]}}}})
        deadline = time.monotonic() + 420
        while time.monotonic() < deadline:
            shown.append((time.monotonic() - load.started, moto.forward_weights(rule).get(group, 0) / 10))
            if status().get("phase") == "Succeeded" and shown[-1][1] == 0:
                break
            time.sleep(SAMPLE_SECONDS)
        wait_until(lambda: status().get("phase") == "Succeeded", "Succeeded", timeout=60, interval=0.5)
        wait_until(
            lambda: not (apps.read_namespaced_deployment("web", ns).spec.replicas or 0), "scaled to 0", timeout=90
        )
        time.sleep(10)  # the canary's pods stop; the primary serves on
    finally:
        load.stop()
    summary = load.summary()
    print(f"  {summary.line()}")
    failed = [(round(r.sent, 2), r.status, r.error) for r in load.responses if r.failed]
    print(f"  failed requests: {summary.failures} (floor 0){'; first: ' + str(failed[:5]) if failed else ''}")
    print(f"  {'AWS showed':>10}  {'for (s)':>7}  {'measured':>9}  {'off by (pp)':>11}  {'bound (pp)':>10}  requests")
    missed = [f"{summary.failures} failed requests in the rollout"] if summary.failures else []
    for start, end, percent in segments(shown):
        # from when the slowest node has the weight: before it, the nodes route by the step before
        window = [r for r in load.responses if start + lag + EDGE_SECONDS <= r.sent <= end - EDGE_SECONDS]
        if not window or percent == 0:
            continue
        share = 100 * sum(not (r.pod or "").startswith(f"{NS}/web-primary-") for r in window) / len(window)
        off, bound = share - percent, bound_pp(percent, len(window))
        print(f"  {percent:9.1f}%  {end - start:7.1f}  {share:8.2f}%  {off:+11.2f}  {bound:10.2f}  {len(window)}")
        if abs(off) > bound:
            missed.append(f"share at {percent}% in the rollout")
    return missed


def segments(shown: list[tuple[float, float]]) -> list[tuple[float, float, float]]:
    """(start, end, percent): the spans over which AWS showed one weight, from the samples."""
    out: list[tuple[float, float, float]] = []
    for at, percent in shown:
        if out and out[-1][2] == percent:
            out[-1] = (out[-1][0], at, percent)
        else:
            out.append((at, at, percent))
    return out


if __name__ == "__main__":
    sys.exit(main())
