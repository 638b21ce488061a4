"""One Canary on two listeners of one ALB (spec.loadBalancer.routes), both under load: a rule on the first
listener and the second listener's default action carry one weight, stepped, verified, promoted and rolled
back together, with the test ground's defaults (nodes apply every change late)."""

from __future__ import annotations

import time

from awsctl.dev.load import Load
from awsctl.planning import weights as w
from tests.e2e.canaries import SCALED_DOWN, V2, app, awsctl, replicas_of, set_image, status, wait_phase
from tests.e2e.conftest import wait_for
from tests.e2e.objects import canary, create
from tests.e2e.test_under_load import RATE, more_load


def second_listener(moto, listener: str, port: int = 8080) -> str:
    elbv2 = moto.client("elbv2")
    lb = elbv2.describe_listeners(ListenerArns=[listener])["Listeners"][0]["LoadBalancerArn"]
    fixed = {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404", "ContentType": "text/plain"}}
    made = elbv2.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=port, DefaultActions=[fixed])
    return made["Listeners"][0]["ListenerArn"]


def loads(traffic, *listeners: str) -> list[Load]:
    urls = [traffic.wait_listener(listener) + "/" for listener in listeners]
    time.sleep(traffic.propagation.rule_seconds[1])  # until every node routes by the new routes
    return [Load(url, RATE).start() for url in urls]


def test_a_canary_on_two_listeners_promotes_and_rolls_back_both_under_load(
    kube, namespace, cluster, moto, operator, traffic, hooks, report
):
    first = moto.listener(namespace)
    second = second_listener(moto, first)
    app(kube, namespace)
    hooks.respond("/promote", 200)
    gate = {"name": "gate", "type": "confirm-promotion", "url": f"{hooks.url}/promote"}
    spec = canary(
        "web",
        listener=first,
        rule={"priority": 10},
        analysis={"interval": "3s", "stepWeights": [10, 50], "webhooks": [gate]},
    )
    spec["spec"]["loadBalancer"]["routes"] = [{"listenerARN": second}]
    create(kube, namespace, spec)
    st = wait_phase(kube, namespace, "Initialized", timeout=90)
    rule = st["listenerRule"]["arn"]
    assert st["routes"][0]["listenerRule"]["arn"] == second
    running = loads(traffic, first, second)
    try:
        set_image(kube, namespace, V2)
        wait_phase(kube, namespace, "Succeeded", timeout=180)
        wait_for(lambda: replicas_of(kube, namespace, "web") == 0, timeout=SCALED_DOWN, what="the canary scaled to 0")
        for load in running:
            more_load(load, 5)

        # v3 stops at 50% on both routes (the gate says no), then an abort takes both back at once.
        hooks.respond("/promote", 403)
        set_image(kube, namespace, "registry.local/app:v3")
        wait_phase(kube, namespace, "WaitingPromotion", timeout=120)
        canary_group = status(kube, namespace)["targetGroups"]["canary"]
        for route in (rule, second):
            assert w.canary_share(moto.forward_weights(route), canary_group) == 500
        aborted = awsctl(cluster, "abort", "web", "-n", namespace, "--wait", "60")
        assert aborted.returncode == 0, aborted.stderr
        wait_phase(kube, namespace, "Failed", timeout=120)
        for route in (rule, second):
            assert w.canary_share(moto.forward_weights(route), canary_group) == 0
        wait_for(lambda: replicas_of(kube, namespace, "web") == 0, timeout=SCALED_DOWN, what="the canary scaled to 0")
        for load in running:
            more_load(load, 10)
    finally:
        for load in running:
            load.stop()
    for name, load in zip(("first listener", "second listener"), running, strict=True):
        said = report(f"two routes, {name}", load)
        assert load.summary().requests > 20 * RATE
        assert load.summary().failures == 0, said
        versions = {r.version for r in load.responses}
        assert {"v1", "v2", "v3"} <= versions, versions  # each listener carried every revision
        assert {r.version for r in load.responses[-RATE:]} == {"v2"}  # the promoted one, after the rollback
