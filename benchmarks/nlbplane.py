"""`make bench`, the NLB data plane: do new connections follow the weights AWS shows, and do open ones stay?

moto (behind the realism layer) with its data plane, and pods served on 127.0.0.1; a Network Load
Balancer's TCP listener forwards to two TCP groups (TCP health checks). Measured under the test
ground's default propagation, each weight left the slowest node's rule delay to reach every node:

1. The share of new connections at each step of an NLB canary (0.5%, 5%, 25%, 50%): the weight written
   and verified by awsctl's NLB provider (routing/nlb.py, what a rollout step calls), then 2000
   connections, one request each, in percentage points from the weight AWS showed, beside the sampling
   error's bound (4.5 standard deviations); and the AWS calls that step took (floor: 4, the
   ModifyListener and the reads that verify it).
2. Connections opened before a weight change: 20 kept open across the change from 0% to 100% canary,
   10 requests each after it. Floor: every request on the target its connection was opened to.
"""

from __future__ import annotations

import http.client
import os
import sys
import time

from awsctl.api.canary import CanarySpec
from awsctl.aws.clients import CallCounter, Clients
from awsctl.aws.listeners import Listeners
from awsctl.dev.dataplane import DataPlane
from awsctl.dev.pods import LocalPods, pod
from awsctl.dev.waiting import wait_until
from awsctl.planning.weights import Backend
from awsctl.routing import Ledger
from awsctl.routing.nlb import NlbRouter
from benchmarks.common import all_healthy, verdict
from benchmarks.dataplane import bound_pp
from tests.harness import moto_server

STEPS = (5, 50, 250, 500)  # permille
CONNECTIONS = 2000
HELD = 20
STEP_CALLS = 4  # one ModifyListener, and the DescribeListeners that verify it (a few while nodes catch up)


def request(conn: http.client.HTTPConnection) -> str:
    conn.request("GET", "/")
    answer = conn.getresponse()
    answer.read()
    return str(answer.getheader("X-Dev-Version"))


def main() -> int:
    missed: list[str] = []
    with moto_server() as moto:
        pods = LocalPods()
        plane = DataPlane(moto.realism, pods.resolve).start()
        try:
            elbv2, ec2 = moto.client("elbv2"), moto.client("ec2")
            vpc = moto.default_vpc()["VpcId"]
            subnets = [
                s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
            ]
            lb = elbv2.create_load_balancer(Name="bench-nlb", Subnets=subnets[:2], Type="network", Scheme="internal")
            stable, canary = moto.tcp_group("bench-nlb-v1"), moto.tcp_group("bench-nlb-v2")
            ips = {stable: ["172.31.0.10", "172.31.0.11"], canary: ["172.31.16.10", "172.31.16.11"]}
            for group, version in ((stable, "v1"), (canary, "v2")):
                for index, ip in enumerate(ips[group]):
                    pods.observe("ADDED", pod(f"{version}-{index}", ip, image=f"web:{version}"))
                elbv2.register_targets(TargetGroupArn=group, Targets=[{"Id": ip, "Port": 8080} for ip in ips[group]])

            def forward(weight: int, stable_weight: int | None = None) -> list[dict]:
                pairs = [
                    {
                        "TargetGroupArn": stable,
                        "Weight": min(999, 1000 - weight) if stable_weight is None else stable_weight,
                    },
                    {"TargetGroupArn": canary, "Weight": weight},
                ]
                return [{"Type": "forward", "ForwardConfig": {"TargetGroups": pairs}}]

            listener = elbv2.create_listener(
                LoadBalancerArn=lb["LoadBalancers"][0]["LoadBalancerArn"],
                Protocol="TCP",
                Port=80,
                DefaultActions=forward(0),  # both groups in use, so that AWS health-checks their targets
            )["Listeners"][0]["ListenerArn"]

            wait_until(
                lambda: all_healthy(elbv2, stable, canary),
                "every target healthy by TCP checks",
                timeout=90,
                interval=0.5,
            )
            host, port = wait_until(lambda: plane.network.addresses().get(listener), "the listener's port", timeout=10)
            settle = plane.propagation.rule_seconds[1]  # until the slowest node routes by a change

            os.environ.update(moto.env())
            counter = CallCounter()
            router = NlbRouter(Listeners(Clients(counter)))
            spec = CanarySpec.parse(
                {"targetRef": {"name": "web"}, "service": {"port": 80}, "loadBalancer": {"listenerARN": listener}}
            )
            status: dict = {}
            ledger = Ledger(lambda: status, status.update, lambda *_: None, uid="bench")
            sides = [Backend(stable)], [Backend(canary)]
            router.set_weight(spec, ledger, *sides, 0, {stable: 2, canary: 2}, may_take=lambda _: True)

            print(f"NLB canary steps: the share of new connections at each step ({CONNECTIONS} each)")
            print(
                f"  {'weight':>7}  {'measured':>9}  {'off by (pp)':>11}  {'bound (pp)':>10}  connections  "
                f"AWS calls (floor {STEP_CALLS})"
            )
            for weight in STEPS:
                before = sum(counter.snapshot().values())
                result = router.set_weight(spec, ledger, *sides, weight, {stable: 2, canary: 2})
                calls = sum(counter.snapshot().values()) - before
                if result is None or not result.verified:
                    missed.append(f"step to {weight / 10}% not verified")
                shown = moto.forward_weights(listener)[canary] / sum(moto.forward_weights(listener).values()) * 100
                time.sleep(settle)
                seen = []
                for _ in range(CONNECTIONS):
                    conn = http.client.HTTPConnection(host, port, timeout=10)
                    seen.append(request(conn))
                    conn.close()
                share = 100 * seen.count("v2") / len(seen)
                bound = bound_pp(shown, len(seen))
                print(
                    f"  {shown:6.1f}%  {share:8.2f}%  {share - shown:+11.2f}  {bound:10.2f}  {len(seen):>11}  "
                    f"{calls:>9}"
                )
                if abs(share - shown) > bound or set(seen) - {"v1", "v2"}:
                    missed.append(f"share at {shown}%")
                if calls > STEP_CALLS:
                    missed.append(f"{calls} AWS calls for the step to {shown}%")

            print(f"NLB data plane: {HELD} connections held open across a change from 0% to 100% canary")
            elbv2.modify_listener(ListenerArn=listener, DefaultActions=forward(0))
            time.sleep(settle)
            held = [http.client.HTTPConnection(host, port, timeout=10) for _ in range(HELD)]
            first = [request(conn) for conn in held]
            elbv2.modify_listener(ListenerArn=listener, DefaultActions=forward(999, stable_weight=0))
            time.sleep(settle)
            moved = sum(request(conn) != was for conn, was in zip(held, first, strict=True) for _ in range(10))
            for conn in held:
                conn.close()
            fresh = http.client.HTTPConnection(host, port, timeout=10)
            after = request(fresh)
            fresh.close()
            print(f"  before: {first.count('v1')} on v1; after: {moved} of {HELD * 10} requests moved (floor 0)")
            print(f"  a new connection after the change: {after} (expected v2)")
            if moved or after != "v2" or set(first) != {"v1"}:
                missed.append("held connections")
        finally:
            plane.stop()
            pods.close()
    return verdict(missed)


if __name__ == "__main__":
    sys.exit(main())
