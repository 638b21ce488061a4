"""`make bench`, several routes: the AWS calls a rollout step costs on one route and on two.

moto behind the realism layer; one ALB with two HTTP listeners, a rule awsctl creates on each, the
Canary's two groups. A step is what a tick does when it raises the weight: `hold` (the route read
back, from the listener's snapshot when it is fresh) then `set_weight` (the write-ahead, the write and
its read-back), through `routing.select`, the Router the reconciler has. (A taken-over route costs one
read more per step than a created rule: its other actions are read to be kept.) Measured at each of 0.5, 5, 25, 50 and 100%: the calls of the step and
of a tick that holds a verified weight. Floor: two routes cost at most twice what one does.
"""

from __future__ import annotations

import os
import sys

from awsctl.api.canary import CanarySpec
from awsctl.aws.clients import CallCounter, Clients
from awsctl.demo.alb import create_alb
from awsctl.planning import naming
from awsctl.planning.weights import Backend
from awsctl.routing import Ledger, select
from benchmarks.common import verdict
from tests.harness import moto_server

STEPS = (5, 50, 250, 500, 1000)  # permille
OWNER = naming.owner_tags("bench", "Canary", "bench", "web")


def per_step(moto, routes: int) -> tuple[list[int], list[int]]:
    """(calls of each step, calls of a tick that holds each verified weight) for a Canary on `routes` routes."""
    elbv2, ec2 = moto.client("elbv2"), moto.client("ec2")
    lb, first = create_alb(elbv2, ec2, f"bench-routes-{routes}")
    listeners = [first]
    for port in range(8080, 8080 + routes - 1):
        fixed = {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404", "ContentType": "text/plain"}}
        made = elbv2.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=port, DefaultActions=[fixed])
        listeners.append(made["Listeners"][0]["ListenerArn"])
    groups = []
    for role in ("p", "c"):
        arn = moto.target_group(f"bench-routes-{routes}-{role}")
        elbv2.add_tags(ResourceArns=[arn], Tags=[{"Key": k, "Value": v} for k, v in OWNER.items()])
        groups.append(arn)
    spec = CanarySpec.parse(
        {
            "targetRef": {"name": "web"},
            "service": {"port": 80},
            "analysis": {"interval": "10s"},
            "loadBalancer": {
                "listenerARN": first,
                "rule": {"priority": 10},
                "routes": [{"listenerARN": arn, "rule": {"priority": 10}} for arn in listeners[1:]],
            },
        }
    )
    counter = CallCounter()
    router = select(Clients(counter))
    status: dict = {}
    ledger = Ledger(lambda: status, status.update, lambda *_: None, owner=OWNER, uid=f"bench-{routes}")
    sides = [Backend(groups[0])], [Backend(groups[1])]
    serving = dict.fromkeys(groups, 1)
    router.hold(spec, ledger, *sides, 0, False)
    taken = router.set_weight(spec, ledger, *sides, 0, serving, may_take=lambda _: True)
    assert taken is not None and taken.verified, taken
    steps, holds = [], []
    for permille in STEPS:
        before = sum(counter.snapshot().values())
        router.hold(spec, ledger, *sides, permille, False)
        result = router.set_weight(spec, ledger, *sides, permille, serving, write_ahead=True)
        assert result is not None and result.verified, result
        steps.append(sum(counter.snapshot().values()) - before)
        before = sum(counter.snapshot().values())
        held = router.hold(spec, ledger, *sides, permille, False)
        assert held.shown is not None and not held.write, held
        holds.append(sum(counter.snapshot().values()) - before)
    return steps, holds


def main() -> int:
    missed: list[str] = []
    with moto_server() as moto:
        os.environ.update(moto.env())
        one, one_held = per_step(moto, 1)
        two, two_held = per_step(moto, 2)
    print("Several routes: AWS calls per rollout step (hold + write + read-back), one route and two")
    print(f"  {'weight':>7}  {'1 route':>7}  {'2 routes':>8}  {'floor (2 x 1)':>13}  {'hold 1':>6}  {'hold 2':>6}")
    for permille, a, b, ha, hb in zip(STEPS, one, two, one_held, two_held, strict=True):
        print(f"  {permille / 10:6.1f}%  {a:>7}  {b:>8}  {2 * a:>13}  {ha:>6}  {hb:>6}")
        if b > 2 * a or hb > 2 * max(ha, 1):
            missed.append(f"two routes at {permille / 10}%")
    return verdict(missed)


if __name__ == "__main__":
    sys.exit(main())
