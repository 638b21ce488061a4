"""Analysis stories: CloudWatch metrics seeded into moto, A/B rules, drift repair, and `awsctl status`."""

import json
import subprocess
import sys
import time

from kubernetes import client

from tests.e2e.canaries import V2, app, canary_shares, reasons, set_image, status, wait_phase
from tests.e2e.conftest import wait_for
from tests.e2e.objects import canary, create

SUCCESS_RATE = {"name": "request-success-rate", "interval": "5s", "thresholdRange": {"min": 99}}


def test_no_data_holds_then_healthy_metrics_promote(kube, namespace, moto, operator):
    listener = moto.listener(namespace)
    app(kube, namespace)
    create(kube, namespace, canary("web", listener=listener, rule={"priority": 10}, analysis={
        "stepWeights": [10, 50], "metrics": [SUCCESS_RATE]}))
    st = wait_phase(kube, namespace, "Initialized")
    canary_arn = st["targetGroups"]["canary"][0]
    set_image(kube, namespace, V2)
    held = wait_for(lambda: (lambda s: s if s.get("message", "").startswith("holding") else None)(
        status(kube, namespace)), what="analysis held for lack of data")
    time.sleep(4)  # several ticks without data: still held, nothing counted, nothing promoted
    st = status(kube, namespace)
    assert st["phase"] == "Progressing" and st["canaryWeight"] == held["canaryWeight"] == 10
    assert st["failedChecks"] == 0 and st["metrics"][0]["verdict"] == "wait"
    assert "no requests reached the canary" in st["message"] and "AnalysisHeld" in reasons(kube, namespace)

    with moto.traffic(listener, canary_arn, requests=200, errors=0):
        st = wait_phase(kube, namespace, "Succeeded", timeout=90)
    assert st["metrics"][0]["value"] == 100 and st["metrics"][0]["verdict"] == "pass"
    assert canary_shares(moto, st["listenerRule"]["arn"], canary_arn) == [0, 100, 500, 0]


def test_a_5xx_burst_rolls_back(kube, namespace, moto, operator):
    listener = moto.listener(namespace)
    app(kube, namespace)
    create(kube, namespace, canary("web", listener=listener, rule={"priority": 10}, analysis={
        "stepWeights": [10, 20, 30], "threshold": 2, "metrics": [SUCCESS_RATE]}))
    st = wait_phase(kube, namespace, "Initialized")
    canary_arn = st["targetGroups"]["canary"][0]
    with moto.traffic(listener, canary_arn, requests=100, errors=0) as load:
        set_image(kube, namespace, V2)
        wait_for(lambda: status(kube, namespace).get("canaryWeight", 0) >= 20, what="healthy steps to 20%")
        load["errors"] = 40  # the new image starts failing: 60% success
        st = wait_phase(kube, namespace, "Failed", timeout=60)
    assert st["failedChecks"] >= 2 and st["canaryWeight"] == 0
    assert moto.forward_weights(st["listenerRule"]["arn"])[canary_arn] == 0
    failing = st["metrics"][0]
    assert failing["verdict"] == "fail" and failing["value"] < 99
    events = client.CoreV1Api(kube).list_namespaced_event(namespace).items
    assert any("below the minimum 99" in (e.message or "") for e in events)


def test_ab_rule_routes_matching_requests_to_the_canary_then_goes(kube, namespace, moto, operator):
    listener = moto.listener(namespace)
    app(kube, namespace)
    create(kube, namespace, canary("web", listener=listener, rule={"priority": 10, "hosts": ["web.example.com"]},
                                   analysis={"interval": "2s", "iterations": 6, "match": [
                                       {"headers": {"x-canary": {"exact": "insider"}}, "cookies": {"canary": "always"}}
                                   ]}))
    st = wait_phase(kube, namespace, "Initialized")
    canary_arn, main_rule = st["targetGroups"]["canary"][0], st["listenerRule"]["arn"]
    elbv2 = moto.client("elbv2")

    def ab_rule():
        return next((r for r in elbv2.describe_rules(ListenerArn=listener)["Rules"] if r["Priority"] == "9"), None)
    set_image(kube, namespace, V2)
    rule = wait_for(ab_rule, timeout=60, what="A/B rule at priority 9")
    conditions = {c["Field"] + ":" + (c.get("HttpHeaderConfig") or {}).get("HttpHeaderName", ""): c
                  for c in rule["Conditions"]}
    assert conditions["host-header:"]["HostHeaderConfig"]["Values"] == ["web.example.com"]
    assert conditions["http-header:x-canary"]["HttpHeaderConfig"]["Values"] == ["insider"]
    assert conditions["http-header:Cookie"]["HttpHeaderConfig"]["Values"] == ["*canary=always*"]
    assert moto.forward_weights(rule["RuleArn"]) == {canary_arn: 999}
    assert "ABRules" in reasons(kube, namespace)

    elbv2.delete_rule(RuleArn=rule["RuleArn"])  # by hand, mid-analysis: awsctl puts it back
    again = wait_for(lambda: (lambda r: r if r and r["RuleArn"] != rule["RuleArn"] else None)(ab_rule()),
                     timeout=10, what="A/B rule recreated")
    assert moto.forward_weights(again["RuleArn"]) == {canary_arn: 999}
    assert "RouteDrifted" in reasons(kube, namespace)

    st = wait_phase(kube, namespace, "Succeeded", timeout=90)
    assert ab_rule() is None and st.get("abRules") == []
    assert set(canary_shares(moto, main_rule, canary_arn)) == {0}  # the weighted rule never moved


def test_manual_changes_are_reverted_with_an_event_and_status_shows_aws(kube, namespace, moto, operator, hooks):
    hooks.respond("/promote", 403)
    listener = moto.listener(namespace)
    app(kube, namespace, replicas=3)
    spec = canary("web", listener=listener, rule={"priority": 10}, analysis={
        "stepWeights": [20], "webhooks": [{"name": "gate", "type": "confirm-promotion",
                                           "url": f"{hooks.url}/promote"}]})
    spec["spec"]["loadBalancer"]["stickiness"] = {"enabled": True, "durationSeconds": 60}
    create(kube, namespace, spec)
    st = wait_phase(kube, namespace, "Initialized")
    rule, primary_arn, canary_arn = (st["listenerRule"]["arn"], st["targetGroups"]["primary"][0],
                                     st["targetGroups"]["canary"][0])
    set_image(kube, namespace, V2)
    wait_phase(kube, namespace, "WaitingPromotion")
    elbv2 = moto.client("elbv2")
    action = elbv2.describe_rules(RuleArns=[rule])["Rules"][0]["Actions"][0]
    assert action["ForwardConfig"]["TargetGroupStickinessConfig"] == {"Enabled": True, "DurationSeconds": 60}
    assert reasons(kube, namespace).count("RouteDrifted") == 0  # our own verified writes are not drift

    elbv2.modify_rule(RuleArn=rule, Actions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [
        {"TargetGroupArn": primary_arn, "Weight": 500}, {"TargetGroupArn": canary_arn, "Weight": 500}]}}])
    wait_for(lambda: moto.forward_weights(rule) == {primary_arn: 800, canary_arn: 200}, what="weights restored")
    wait_for(lambda: "RouteDrifted" in reasons(kube, namespace), what="RouteDrifted event")
    drift = [e for e in client.CoreV1Api(kube).list_namespaced_event(namespace).items if e.reason == "RouteDrifted"]
    assert "=500" in drift[0].message and "=800" in drift[0].message and drift[0].type == "Warning"

    def drifted_targets():
        return [e for e in client.CoreV1Api(kube).list_namespaced_event(namespace).items
                if e.reason == "TargetsDrifted"]
    assert drifted_targets() == []  # registering, scaling and rolling pods is not drift
    victim = next(iter(moto.targets(primary_arn)))
    elbv2.deregister_targets(TargetGroupArn=primary_arn, Targets=[{"Id": victim[0], "Port": victim[1]}])
    wait_for(lambda: victim in moto.targets(primary_arn), what="target registered again")
    wait_for(lambda: [e.involved_object.name for e in drifted_targets()] == ["web-primary"],
             what="one TargetsDrifted event, on the primary binding")

    env = dict(operator.env)

    def report():
        out = subprocess.run([sys.executable, "-m", "awsctl", "status", "-n", namespace, "-o", "json"], env=env,
                             capture_output=True, text=True, timeout=60, check=True).stdout
        return json.loads(out)
    # The re-registered target is `initial` in AWS for 5 s x 2 before it counts as healthy again.
    row = wait_for(lambda: (lambda r: r if all(g["healthy"] == 3 for g in r["groups"]) else None)(
        report()["canaries"][0]), timeout=30, what="every target healthy again in awsctl status")
    assert row["phase"] == "WaitingPromotion" and row["route"]["stickiness"] == {"enabled": True,
                                                                                  "durationSeconds": 60}
    assert {g["role"]: g["weight"] for g in row["groups"]} == {"primary": 800, "canary": 200}
    assert all(g["healthy"] == 3 for g in row["groups"])
    text = subprocess.run([sys.executable, "-m", "awsctl", "status", "-n", namespace], env=env,
                          capture_output=True, text=True, timeout=60, check=True).stdout
    assert "WaitingPromotion" in text and "w=200" in text and "sticky 60s" in text
    assert all(len(line) <= 80 for line in text.splitlines())
