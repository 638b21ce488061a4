"""The NLB provider (awsctl/routing/nlb.py) against moto behind the realism layer: the warm-up in the
listener's own forward at weight 0, the route taken and given back as it was, and what an NLB refuses."""

import json

import pytest

from awsctl.api.canary import CanarySpec
from awsctl.aws.clients import Clients
from awsctl.aws.listeners import Listeners
from awsctl.controllers.errors import NotReady
from awsctl.planning import naming
from awsctl.planning import weights as w
from awsctl.routing import Ledger, select
from awsctl.routing.alb import AlbRouter
from awsctl.routing.nlb import NlbRouter

pytestmark = pytest.mark.aws
OWNER = naming.owner_tags("test", "Canary", "ns", "web")


def nlb_spec(listener: str, **load_balancer) -> CanarySpec:
    return CanarySpec.parse(
        {
            "targetRef": {"name": "web"},
            "service": {"port": 80},
            "loadBalancer": {"listenerARN": listener, **load_balancer},
        }
    )


def canary_group(moto, name: str) -> str:
    arn = moto.tcp_group(name)
    moto.client("elbv2").add_tags(ResourceArns=[arn], Tags=[{"Key": k, "Value": v} for k, v in OWNER.items()])
    return arn


def ledger(status: dict) -> Ledger:
    return Ledger(lambda: status, status.update, lambda *_: None, owner=OWNER, uid="uid-n")


def test_an_nlb_canary_warms_up_in_the_listeners_forward_takes_it_and_gives_it_back(moto, realism_clock):
    elbv2 = moto.client("elbv2")
    listener, yours = moto.nlb_listener("nlb-route")
    primary, canary = canary_group(moto, "nlb-route-p"), canary_group(moto, "nlb-route-c")
    for arn, ip in ((yours, "10.0.2.1"), (primary, "10.0.2.2"), (canary, "10.0.2.3")):
        elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": ip, "Port": 8080}])
    assert set(moto.target_states(primary).values()) == {"unused"}
    spec = nlb_spec(listener)
    assert spec.load_balancer.network and spec.load_balancer.target_group.protocol == "TCP"
    router = select(Clients())
    assert isinstance(router.providers.of(spec), NlbRouter)
    status: dict = {}
    book = ledger(status)
    sides = [w.Backend(primary)], [w.Backend(canary)]

    # Warm-up: the groups sit beside yours at weight 0, health-checked, carrying no connection.
    assert router.warm_up(spec, book, {primary: 0, canary: 0}, None)
    assert moto.forward_weights(listener) == {yours: 1, primary: 0, canary: 0}
    assert status["warmup"] and status["warmupRule"] == listener
    assert set(moto.target_states(primary).values()) == {"initial"}
    assert not router.warm_up(spec, book, {primary: 0, canary: 0}, None)  # nothing to add: no write
    realism_clock.now += 10
    assert set(moto.target_states(primary).values()) == {"healthy"}

    # Taken: yours leaves the forward; what is recorded to give back is yours alone.
    result = router.set_weight(spec, book, *sides, 0, {primary: 1, canary: 1}, may_take=lambda _: True)
    assert result is not None and result.verified
    shown = moto.forward_weights(listener)
    assert set(shown) == {primary, canary} and shown[canary] == 0
    assert w.canary_share(shown, [canary]) == 0
    previous = json.loads(status["listenerRule"]["previousActions"])
    assert [g["TargetGroupArn"] for g in previous[0]["ForwardConfig"]["TargetGroups"]] == [yours]
    assert router.warm_up(spec, book, {primary: 0, canary: 0}, shown) is False and status["warmup"] is False

    result = router.set_weight(spec, book, *sides, 250, {primary: 1, canary: 1})
    assert result is not None and result.verified and result.shown == 250
    assert w.canary_share(moto.forward_weights(listener), [canary]) == 250
    assert router.show(status).route == "listener default action"

    # Deletion: back to the primary, yours warmed up in the forward, then the listener as it was.
    def release():
        return router.release(spec, book, *sides, lambda arns: {a: 1 for a in arns}, lambda groups: None)

    assert release() is None
    assert moto.forward_weights(listener) == {yours: 1}
    assert status["listenerRule"] is None and status["warmupRule"] is None


def test_a_canary_deleted_during_its_warm_up_takes_its_groups_out_of_the_listener(moto):
    elbv2 = moto.client("elbv2")
    listener, yours = moto.nlb_listener("nlb-gone")
    primary, canary = canary_group(moto, "nlb-gone-p"), canary_group(moto, "nlb-gone-c")
    status: dict = {}
    router = select(Clients())
    assert router.warm_up(nlb_spec(listener), ledger(status), {primary: 0, canary: 0}, None)
    assert moto.forward_weights(listener) == {yours: 1, primary: 0, canary: 0}
    # the spec no longer parses: status alone says which provider and which listener
    assert router.release(None, ledger(status), [], [], lambda arns: {}) is None
    assert moto.forward_weights(listener) == {yours: 1}
    elbv2.delete_target_group(TargetGroupArn=primary)  # in use no more: AWS lets it go


def test_an_nlb_refuses_what_it_cannot_route(moto):
    listener, _ = moto.nlb_listener("nlb-refuse")
    with pytest.raises(Exception, match="spec.loadBalancer.rule"):
        nlb_spec(listener, rule={"priority": 3})
    with pytest.raises(Exception, match="spec.loadBalancer.targetGroup.protocol"):
        nlb_spec(listener, targetGroup={"protocol": "HTTP"})
    with pytest.raises(Exception, match=r"spec.analysis.metrics\[0\].name"):
        CanarySpec.parse(
            {
                "targetRef": {"name": "web"},
                "service": {"port": 80},
                "loadBalancer": {"listenerARN": listener},
                "analysis": {"metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}}]},
            }
        )
    # A TLS listener takes no stickiness on a weighted forward: refused before any write, naming the field.
    elbv2 = moto.client("elbv2")
    group = moto.tcp_group("nlb-refuse-tls")
    lb = elbv2.describe_listeners(ListenerArns=[listener])["Listeners"][0]["LoadBalancerArn"]
    tls = elbv2.create_listener(
        LoadBalancerArn=lb,
        Protocol="TLS",
        Port=443,
        Certificates=[
            {"CertificateArn": moto.client("acm").request_certificate(DomainName="nlb.example")["CertificateArn"]}
        ],
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group}],
    )["Listeners"][0]["ListenerArn"]
    sticky = nlb_spec(tls, stickiness={"enabled": True})
    with pytest.raises(NotReady, match="spec.loadBalancer.stickiness"):
        NlbRouter(Listeners(Clients())).warm_up(sticky, ledger({}), {moto.tcp_group("nlb-refuse-p"): 0}, None)
    assert moto.forward_weights(tls) == {group: 1}
    assert isinstance(select(Clients()).providers.of(nlb_spec(moto.listener("alb-still"))), AlbRouter)
