"""One Canary on several routes (awsctl/routing/routes.py) against moto behind the realism layer: every route
warmed up, taken, stepped and verified together, taken back together, and given back on deletion."""

from dataclasses import dataclass, field
from typing import Any

import pytest

from awsctl.api.canary import CanarySpec
from awsctl.api.schema import SpecError
from awsctl.aws.clients import Clients
from awsctl.planning import naming
from awsctl.planning import weights as w
from awsctl.routing import Ledger, RouteGone, select
from awsctl.routing import alb_wire as wire

pytestmark = pytest.mark.aws
OWNER = naming.owner_tags("test", "Canary", "ns", "web")


def group(moto, name: str, ip: str) -> str:
    """A group of this Canary's (its tags say so), with one target."""
    arn = moto.target_group(name)
    elbv2 = moto.client("elbv2")
    elbv2.add_tags(ResourceArns=[arn], Tags=[{"Key": k, "Value": v} for k, v in OWNER.items()])
    elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": ip, "Port": 80}])
    return arn


def ledger_of(status: dict, uid: str) -> Ledger:
    return Ledger(lambda: status, status.update, lambda *_: None, owner=OWNER, uid=uid)


def second_listener(moto, listener: str, port: int = 8080) -> str:
    """Another HTTP listener on `listener`'s load balancer, answering 404 until something forwards."""
    elbv2 = moto.client("elbv2")
    lb = elbv2.describe_listeners(ListenerArns=[listener])["Listeners"][0]["LoadBalancerArn"]
    fixed = {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404", "ContentType": "text/plain"}}
    return elbv2.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=port, DefaultActions=[fixed])["Listeners"][
        0
    ]["ListenerArn"]


def two_routes(first: str, second: str, **routes) -> CanarySpec:
    return CanarySpec.parse(
        {
            "targetRef": {"name": "web"},
            "service": {"port": 80},
            "loadBalancer": {
                "listenerARN": first,
                "rule": {"priority": 10},
                "routes": [{"listenerARN": second, **routes}],
            },
        }
    )


@dataclass
class Ground:
    """Two listeners of one ALB, a Canary's two groups with a target each, and the Router on a status."""

    first: str
    second: str
    primary: str
    canary: str
    status: dict = field(default_factory=dict)
    router: Any = field(default_factory=lambda: select(Clients()))

    @classmethod
    def of(cls, moto, name: str, net: str) -> "Ground":
        first = moto.listener(name)
        primary, canary = group(moto, f"{name}-p", f"{net}.1"), group(moto, f"{name}-c", f"{net}.2")
        return cls(first, second_listener(moto, first), primary, canary)

    @property
    def ledger(self) -> Ledger:
        return ledger_of(self.status, f"uid-{self.first[-6:]}")

    @property
    def sides(self) -> tuple[list[w.Backend], list[w.Backend]]:
        return [w.Backend(self.primary)], [w.Backend(self.canary)]

    @property
    def serving(self) -> dict[str, int]:
        return {self.primary: 1, self.canary: 1}


def test_one_weight_on_two_listeners_stepped_verified_taken_back_and_given_back(moto, realism_clock):
    elbv2 = moto.client("elbv2")
    ground = Ground.of(moto, "routes-a", "10.0.3")
    first, second, primary, canary = ground.first, ground.second, ground.primary, ground.canary
    spec = two_routes(first, second)
    router, status, ledger, sides, serving = ground.router, ground.status, ground.ledger, ground.sides, ground.serving

    held = router.hold(spec, ledger, *sides, 0, False)
    assert held.shown is None and held.write  # no route yet on either
    assert router.warm_up(spec, ledger, {primary: 0, canary: 0}, held.shown)
    assert status["warmupRule"] and status["routes"][0]["warmupRule"]  # a warm-up rule on each listener
    realism_clock.now += 10
    result = router.set_weight(spec, ledger, *sides, 0, serving, may_take=lambda _: True)
    assert result is not None and result.verified
    rule = status["listenerRule"]["arn"]
    assert status["routes"][0]["listenerRule"]["arn"] == second  # the second listener's default action
    assert moto.forward_weights(second) == moto.forward_weights(rule)

    result = router.set_weight(spec, ledger, *sides, 250, serving, write_ahead=True)
    assert result is not None and result.verified and result.shown == 250
    for route in (rule, second):
        assert w.canary_share(moto.forward_weights(route), [canary]) == 250
    held = router.hold(spec, ledger, *sides, 250, False)
    assert held.shown is not None and not held.write
    assert "and 1 more route(s)" in router.show(status).route

    # Drift on one route: the hold reports it, and no step counts until both show the weight again.
    elbv2.modify_listener(ListenerArn=second, DefaultActions=[wire.forward_action({primary: 1, canary: 1})])
    held = router.hold(spec, ledger, *sides, 250, False, max_age=0)
    assert held.shown is None and held.write and "showed" in held.drift
    assert router.set_weight(spec, ledger, *sides, 250, serving).verified

    # A refused tick (no spec): every route back to the primary, verified.
    back = router.set_weight(None, ledger, *sides, 0, serving)
    assert back is not None and back.verified
    for route in (rule, second):
        assert w.canary_share(moto.forward_weights(route), [canary]) == 0

    # Deletion gives every route back: the rule awsctl created goes, the default action is as it was.
    assert router.release(spec, ledger, *sides, lambda arns: {a: 1 for a in arns}) is None
    assert elbv2.describe_listeners(ListenerArns=[second])["Listeners"][0]["DefaultActions"][0]["Type"] == (
        "fixed-response"
    )
    assert [r for r in elbv2.describe_rules(ListenerArn=first)["Rules"] if not r["IsDefault"]] == []
    assert not status.get("routes") and status["listenerRule"] is None


def test_a_refusal_on_one_route_holds_both_and_a_rollback_still_takes_the_other_back(moto, realism_clock):
    elbv2 = moto.client("elbv2")
    ground = Ground.of(moto, "routes-gone", "10.0.5")
    second, primary, canary = ground.second, ground.primary, ground.canary
    spec = two_routes(ground.first, second)
    router, status, ledger, sides, serving = ground.router, ground.status, ground.ledger, ground.sides, ground.serving
    router.warm_up(spec, ledger, {primary: 0, canary: 0}, None)
    realism_clock.now += 10
    assert router.set_weight(spec, ledger, *sides, 0, serving, may_take=lambda _: True).verified
    assert router.set_weight(spec, ledger, *sides, 250, serving).verified
    rule = status["listenerRule"]["arn"]
    elbv2.delete_listener(ListenerArn=second)  # the second route vanishes outside awsctl
    with pytest.raises(RouteGone) as gone:  # the tick is refused, naming the route's field
        router.set_weight(spec, ledger, *sides, 500, serving)
    assert gone.value.field.startswith("spec.loadBalancer.routes[0]"), gone.value.field
    assert w.canary_share(moto.forward_weights(rule), [canary]) in (250, 500)
    back = router.set_weight(None, ledger, *sides, 0, serving)  # an abort, from status alone
    assert back is not None and back.verified
    assert w.canary_share(moto.forward_weights(rule), [canary]) == 0


def test_a_route_dropped_from_the_spec_is_given_back(moto, realism_clock):
    elbv2 = moto.client("elbv2")
    first = moto.listener("routes-drop")
    second = second_listener(moto, first)
    primary = group(moto, "routes-drop-p", "10.0.4.1")
    router = select(Clients())
    status: dict = {}
    ledger = ledger_of(status, "uid-d")
    sides = [w.Backend(primary)], []
    spec = two_routes(first, second)
    router.warm_up(spec, ledger, {primary: 0}, None)
    realism_clock.now += 10
    assert router.set_weight(spec, ledger, *sides, 0, {primary: 1}, may_take=lambda _: True).verified
    assert moto.forward_weights(second) == {primary: w.ALB_MAX_WEIGHT}
    alone = CanarySpec.parse(
        {
            "targetRef": {"name": "web"},
            "service": {"port": 80},
            "loadBalancer": {"listenerARN": first, "rule": {"priority": 10}},
        }
    )
    held = router.hold(alone, ledger, *sides, 0, False)
    assert held.shown is not None
    assert elbv2.describe_listeners(ListenerArns=[second])["Listeners"][0]["DefaultActions"][0]["Type"] == (
        "fixed-response"
    )
    assert not status.get("routes")


def test_routes_are_refused_off_the_first_ones_load_balancer_or_twice(moto):
    first = moto.listener("routes-refuse")
    other = moto.listener("routes-other")
    with pytest.raises(SpecError, match=r"spec.loadBalancer.routes\[0\].listenerARN"):
        two_routes(first, other)
    with pytest.raises(SpecError, match=r"spec.loadBalancer.routes\[0\]"):
        two_routes(first, first, rule={"priority": 10})
