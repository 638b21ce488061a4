"""NLB canaries under load: connections, not requests. Every request opens its own TCP connection through
the test ground's NLB listener (`awsctl.dev.nlbplane`), so each follows the weights as a new connection
does on an NLB, with the test ground's defaults: nodes apply forwards, registrations and deregistrations
late, and CloudWatch (AWS/NetworkELB) publishes a minute late.
"""

from __future__ import annotations

import time
from collections import Counter

from awsctl.dev.load import Load
from tests.e2e.canaries import SCALED_DOWN, V2, app, replicas_of, set_image, status, wait_phase
from tests.e2e.conftest import wait_for
from tests.e2e.objects import canary, create
from tests.e2e.test_under_load import RATE, more_load, rolled_back_and_settled


def connections(traffic, listener: str) -> Load:
    """The load on the NLB listener's port, started once the Canary's forward has reached every node: before
    that a late node still forwards to your (empty) group, and resets the connection, as an NLB does."""
    host, port = wait_for(lambda: traffic.network.addresses().get(listener), timeout=10, what="the NLB port")
    time.sleep(traffic.propagation.rule_seconds[1])
    return Load(f"http://{host}:{port}/", RATE, fresh_connections=True).start()


def nlb_canary(listener: str, analysis: dict) -> dict:
    made = canary("web", listener=listener, analysis=analysis)
    assert "rule" not in made["spec"]["loadBalancer"]  # an NLB canary drives the listener's default action
    return made


def test_an_nlb_canary_promotes_with_no_failed_connection(kube, namespace, moto, operator, traffic, report):
    listener, yours = moto.nlb_listener(namespace)
    app(kube, namespace)
    create(kube, namespace, nlb_canary(listener, {"stepWeights": [10, 50]}))
    st = wait_phase(kube, namespace, "Initialized", timeout=90)
    assert st["listenerRule"]["arn"] == listener
    load = connections(traffic, listener)
    try:
        set_image(kube, namespace, V2)
        wait_phase(kube, namespace, "Succeeded", timeout=180)
        wait_for(lambda: replicas_of(kube, namespace, "web") == 0, timeout=SCALED_DOWN, what="the canary scaled to 0")
        more_load(load, 10)
    finally:
        load.stop()
    said = report("nlb promotion", load)
    summary = load.summary()
    assert summary.requests > 20 * RATE
    assert summary.failures == 0, said
    assert Counter(r.version for r in load.responses[-RATE:]) == {"v2": RATE}
    flows = [f for f in traffic.network.flows if f.listener == listener and f.time >= time.time() - 600]
    groups = status(kube, namespace)["targetGroups"]
    # the canary's group carried connections during the rollout; your group none once the Canary held it
    assert any(f.group == groups["canary"][0] for f in flows)
    assert not [f for f in flows if f.error], [f for f in flows if f.error][:5]
    assert yours not in moto.forward_weights(listener)


def test_an_nlb_canary_that_resets_connections_is_rolled_back_failing_only_its_own(
    kube, namespace, moto, operator, traffic, report
):
    """v3 resets a third of its connections. The analysis sees that only in AWS/NetworkELB's
    TCP_Target_Reset_Count against NewFlowCount, published by the data plane a minute late, and rolls back."""
    listener, _ = moto.nlb_listener(namespace)
    app(kube, namespace)
    success = {"name": "connection-success-rate", "interval": "1m", "thresholdRange": {"min": 99}}
    create(kube, namespace, nlb_canary(listener, {"interval": "5s", "stepWeights": [10, 50], "metrics": [success]}))
    wait_phase(kube, namespace, "Initialized", timeout=90)
    load = connections(traffic, listener)
    try:
        set_image(kube, namespace, "registry.local/app:v3", DEV_RESET_RATE="0.3")
        st = rolled_back_and_settled(kube, namespace, load, timeout=420)
    finally:
        load.stop()
    said = report("nlb rollback", load)
    failing = st["metrics"][0]
    assert failing["verdict"] == "fail" and failing["value"] < 99, failing
    canary_group = st["targetGroups"]["canary"][0]
    flows = [f for f in traffic.network.flows if f.listener == listener]
    failed_flows = [f for f in flows if f.error]
    failed = [r for r in load.responses if r.failed]
    # Every failed connection was one v3 reset itself: none the load balancer reset, none to the primary.
    assert failed and {f.error for f in failed_flows} == {"reset by the target"}, (said, failed_flows[:5])
    assert {f.group for f in failed_flows} == {canary_group}, said
    assert len(failed) == len(failed_flows), said  # each failed request is one connection v3 reset
    assert {r.version for r in load.responses[-RATE:]} == {"v1"}
