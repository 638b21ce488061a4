"""`make bench`, data plane: is what the requests measure faithful, and what does the data plane cost?

moto (behind the realism layer) with its data plane, and pods served on 127.0.0.1; the load comes
from `awsctl dev load` in its own process, as a user runs it. Measured:

1. The share the requests measured at each weight AWS shows (0.5%, 5%, 25%, 50%), in percentage
   points from the weight, beside the sampling error's bound (4.5 standard deviations).
2. The data plane's own cost at 200 requests a second: latency through the listener against the same
   pods answered directly (p50 and p99 added).
3. The highest rate it sustains: 200, 300, 400, 600, 800 requests a second until one falls short
   (under 95% of the rate sent, any failure, or p99 above 100 ms).
Failed requests per rollout under load are counted by the e2e stories (tests/e2e/test_under_load.py),
each against its floor of 0; their figures are in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import json
import subprocess
import sys

from awsctl.dev.dataplane import DataPlane
from awsctl.dev.pods import LocalPods, pod
from benchmarks.common import verdict
from tests.harness import moto_server

STEPS = (5, 50, 250, 500)  # permille, as ALB weights
SAMPLES = 4000
ADDED_P50_GOAL_MS, ADDED_P99_GOAL_MS = 5.0, 20.0
RATE_GOAL = 200  # 4x what the stories send, 2x the demo: pods, proxy and moto share one process here


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

            print("Data plane: the share the requests measured at each weight AWS showed")
            print(f"  {'weight':>7}  {'measured':>9}  {'off by (pp)':>11}  {'bound (pp)':>10}  requests")
            for weight in STEPS:
                config = {
                    "TargetGroups": [
                        {"TargetGroupArn": stable, "Weight": 1000 - weight},
                        {"TargetGroupArn": canary, "Weight": weight},
                    ]
                }
                elbv2.modify_listener(
                    ListenerArn=listener, DefaultActions=[{"Type": "forward", "ForwardConfig": config}]
                )
                shown = moto.forward_weights(listener)[canary] / 10
                answers = load(url, 400, SAMPLES / 400)["responses"]
                share = 100 * sum(r["version"] == "v2" for r in answers) / len(answers)
                p = shown / 100
                bound = 100 * 4.5 * (p * (1 - p) / len(answers)) ** 0.5
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
    return verdict(missed)


if __name__ == "__main__":
    sys.exit(main())
