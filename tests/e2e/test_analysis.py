"""Analysis stories: CloudWatch metrics seeded into moto, A/B rules, drift repair, and `awsctl status`."""

import contextlib
import json
import math
import subprocess
import sys
import time

from kubernetes import client

from awsctl.kube.client import epoch
from tests.e2e.canaries import V2, app, canary_shares, condition, reasons, set_image, status, wait_phase
from tests.e2e.conftest import wait_for
from tests.e2e.objects import canary, create

SUCCESS_RATE = {"name": "request-success-rate", "interval": "5s", "thresholdRange": {"min": 99}}


def test_no_data_holds_then_healthy_metrics_promote(kube, namespace, moto, operator):
    listener = moto.listener(namespace)
    app(kube, namespace)
    create(
        kube,
        namespace,
        canary(
            "web",
            listener=listener,
            rule={"priority": 10},
            analysis={"stepWeights": [10, 50], "metrics": [SUCCESS_RATE], "noDataTolerance": 30},
        ),
    )
    st = wait_phase(kube, namespace, "Initialized")
    canary_arn = st["targetGroups"]["canary"][0]
    set_image(kube, namespace, V2)
    held = wait_for(
        lambda: (lambda s: s if s.get("message", "").startswith("holding") else None)(status(kube, namespace)),
        what="analysis held for lack of data",
    )
    time.sleep(4)  # several ticks without data: held within the tolerance, nothing counted, nothing promoted
    st = status(kube, namespace)
    assert st["phase"] == "Progressing" and st["canaryWeight"] == held["canaryWeight"] == 10
    assert st["failedChecks"] == 0 and st["metrics"][0]["verdict"] == "wait" and st["noDataChecks"] >= 3
    assert "no requests reached it" in st["message"] and "/30)" in st["message"]
    assert "AnalysisHeld" in reasons(kube, namespace)

    with moto.traffic(listener, canary_arn, requests=200, errors=0):
        st = wait_phase(kube, namespace, "Succeeded", timeout=240)  # each step waits for a period of its own
    assert st["metrics"][0]["value"] == 100 and st["metrics"][0]["verdict"] == "pass" and st["noDataChecks"] == 0
    assert canary_shares(moto, st["listenerRule"]["arn"], canary_arn) == [0, 100, 500, 0]
    # Each step earns its own evidence: 50% was asked for only on a period that began after 10% was verified,
    # never on the minute that mostly held 10%'s predecessor.
    wall = time.time() - time.monotonic()
    writes = [w for w in moto.weight_writes if w.route == st["listenerRule"]["arn"]]
    at = {w.weights[canary_arn]: wall + w.at for w in writes if w.weights.get(canary_arn)}
    assert at[500] >= (at[100] // 60 + 1) * 60, (at[100], at[500])


def test_no_data_past_the_tolerance_counts_as_failed_checks(kube, namespace, moto, operator):
    listener = moto.listener(namespace)
    app(kube, namespace)
    create(
        kube,
        namespace,
        canary(
            "web",
            listener=listener,
            rule={"priority": 10},
            analysis={"stepWeights": [10, 50], "threshold": 2, "metrics": [SUCCESS_RATE], "noDataTolerance": 1},
        ),
    )
    wait_phase(kube, namespace, "Initialized")
    set_image(kube, namespace, V2)
    st = wait_phase(kube, namespace, "Failed", timeout=90)  # silence is never a pass
    assert st["canaryWeight"] == 0
    events = client.CoreV1Api(kube).list_namespaced_event(namespace).items
    assert any("no data for 2 checks in a row" in (e.message or "") for e in events)


def test_a_5xx_burst_rolls_back(kube, namespace, moto, operator):
    listener = moto.listener(namespace)
    app(kube, namespace)
    create(
        kube,
        namespace,
        canary(
            "web",
            listener=listener,
            rule={"priority": 10},
            analysis={"stepWeights": [10, 20, 30], "threshold": 2, "metrics": [SUCCESS_RATE]},
        ),
    )
    st = wait_phase(kube, namespace, "Initialized")
    canary_arn = st["targetGroups"]["canary"][0]
    with moto.traffic(listener, canary_arn, requests=100, errors=0) as load:
        set_image(kube, namespace, V2)
        wait_for(lambda: status(kube, namespace).get("canaryWeight", 0) >= 20, timeout=150, what="healthy steps to 20%")
        load["errors"] = 40  # the new image starts failing: 60% success
        st = wait_phase(kube, namespace, "Failed", timeout=150)  # judged on a period that began at 20%
    assert st["failedChecks"] >= 2 and st["canaryWeight"] == 0
    assert moto.forward_weights(st["listenerRule"]["arn"])[canary_arn] == 0
    failing = st["metrics"][0]
    assert failing["verdict"] == "fail" and failing["value"] < 99
    events = client.CoreV1Api(kube).list_namespaced_event(namespace).items
    assert any("below the minimum 99" in (e.message or "") for e in events)

    # v3 comes while v2's failing minutes are still in the look-back, on the same target groups: they
    # must count neither against it nor for it. It holds until a period after v2 left is published.
    quiet = epoch(st["analysisSince"])
    set_image(kube, namespace, "registry.local/app:v3")
    held = wait_for(
        lambda: (lambda s: s if "is published yet" in s.get("message", "") else None)(status(kube, namespace)),
        what="v3 held until a period of its own",
    )
    time.sleep(3)  # several ticks: v2's errors are not v3's, and the wait is not silence either
    st = status(kube, namespace)
    assert st["phase"] == "Progressing" and st["canaryWeight"] == held["canaryWeight"] == 10
    assert st["failedChecks"] == 0 and st["noDataChecks"] == 0
    assert condition(st, "Evidence")["status"] == "True"  # v2's periods held thousands of requests
    # v3's own minute, but thin: a request every 5 s, 12 a period, where one failed request in fewer than 100
    # would take it below 99%. It steps on (all passed), and says the evidence is too thin to judge.
    with moto.traffic(listener, canary_arn, requests=1, errors=0, every=5):
        st = wait_for(
            lambda: (lambda s: s if s.get("canaryWeight", 0) >= 20 else None)(status(kube, namespace)),
            what="v3 judged on a period after v2 left",
            timeout=150,
        )
    assert st["failedChecks"] == 0 and time.time() >= math.ceil(quiet / 60) * 60  # not before that period began
    thin = condition(st, "Evidence")
    assert (thin["status"], thin["reason"]) == ("False", "TooFewRequests"), thin
    assert "fewer than the 100 at which one failed request keeps the rate above its min 99" in thin["message"]
    assert "TooFewRequests" in reasons(kube, namespace)


def test_ab_rule_routes_matching_requests_to_the_canary_then_goes(kube, namespace, moto, operator):
    listener = moto.listener(namespace)
    app(kube, namespace)
    create(
        kube,
        namespace,
        canary(
            "web",
            listener=listener,
            rule={"priority": 10, "hosts": ["web.example.com"]},
            analysis={
                "interval": "2s",
                "iterations": 6,
                "match": [{"headers": {"x-canary": {"exact": "insider"}}, "cookies": {"canary": "always"}}],
            },
        ),
    )
    st = wait_phase(kube, namespace, "Initialized")
    canary_arn, main_rule = st["targetGroups"]["canary"][0], st["listenerRule"]["arn"]
    elbv2 = moto.client("elbv2")

    def ab_rule():
        return next((r for r in elbv2.describe_rules(ListenerArn=listener)["Rules"] if r["Priority"] == "9"), None)

    set_image(kube, namespace, V2)
    rule = wait_for(ab_rule, timeout=60, what="A/B rule at priority 9")
    conditions = {
        c["Field"] + ":" + (c.get("HttpHeaderConfig") or {}).get("HttpHeaderName", ""): c for c in rule["Conditions"]
    }
    assert conditions["host-header:"]["HostHeaderConfig"]["Values"] == ["web.example.com"]
    assert conditions["http-header:x-canary"]["HttpHeaderConfig"]["Values"] == ["insider"]
    # The cookie is matched at cookie boundaries (never as a substring of another cookie): two rules.
    assert conditions["http-header:Cookie"]["HttpHeaderConfig"]["Values"] == [
        "canary=always",
        "canary=always;*",
        "*; canary=always",
    ]
    # the cookie's second rule is created just after the first: a read between the two finds only one
    middle = wait_for(
        lambda: next((r for r in elbv2.describe_rules(ListenerArn=listener)["Rules"] if r["Priority"] == "8"), None),
        timeout=30,
        what="the cookie's second A/B rule at priority 8",
    )
    cookie = next(
        c for c in middle["Conditions"] if (c.get("HttpHeaderConfig") or {}).get("HttpHeaderName") == "Cookie"
    )
    assert cookie["HttpHeaderConfig"]["Values"] == ["*; canary=always;*"]
    assert moto.forward_weights(rule["RuleArn"]) == {canary_arn: 999} == moto.forward_weights(middle["RuleArn"])
    assert "ABRules" in reasons(kube, namespace)

    elbv2.delete_rule(RuleArn=rule["RuleArn"])  # by hand, mid-analysis: awsctl puts it back
    again = wait_for(
        lambda: (lambda r: r if r and r["RuleArn"] != rule["RuleArn"] else None)(ab_rule()),
        timeout=10,
        what="A/B rule recreated",
    )
    assert moto.forward_weights(again["RuleArn"]) == {canary_arn: 999}
    assert "RouteDrifted" in reasons(kube, namespace)

    st = wait_phase(kube, namespace, "Succeeded", timeout=90)
    assert ab_rule() is None and st.get("abRules") == []
    assert not [r for r in elbv2.describe_rules(ListenerArn=listener)["Rules"] if r["Priority"] == "8"]
    assert set(canary_shares(moto, main_rule, canary_arn)) == {0}  # the weighted rule never moved


def test_manual_changes_are_reverted_with_an_event_and_status_shows_aws(kube, namespace, moto, operator, hooks):
    hooks.respond("/promote", 403)
    listener = moto.listener(namespace)
    app(kube, namespace, replicas=3)
    spec = canary(
        "web",
        listener=listener,
        rule={"priority": 10},
        analysis={
            "stepWeights": [20],
            "webhooks": [{"name": "gate", "type": "confirm-promotion", "url": f"{hooks.url}/promote"}],
        },
    )
    spec["spec"]["loadBalancer"]["stickiness"] = {"enabled": True, "durationSeconds": 60}
    create(kube, namespace, spec)
    st = wait_phase(kube, namespace, "Initialized")
    rule, primary_arn, canary_arn = (
        st["listenerRule"]["arn"],
        st["targetGroups"]["primary"][0],
        st["targetGroups"]["canary"][0],
    )
    set_image(kube, namespace, V2)
    wait_phase(kube, namespace, "WaitingPromotion")
    elbv2 = moto.client("elbv2")
    action = elbv2.describe_rules(RuleArns=[rule])["Rules"][0]["Actions"][0]
    assert action["ForwardConfig"]["TargetGroupStickinessConfig"] == {"Enabled": True, "DurationSeconds": 60}
    assert reasons(kube, namespace).count("RouteDrifted") == 0  # our own verified writes are not drift

    elbv2.modify_rule(
        RuleArn=rule,
        Actions=[
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": primary_arn, "Weight": 500},
                        {"TargetGroupArn": canary_arn, "Weight": 500},
                    ]
                },
            }
        ],
    )
    wait_for(lambda: moto.forward_weights(rule) == {primary_arn: 800, canary_arn: 200}, what="weights restored")
    wait_for(lambda: "RouteDrifted" in reasons(kube, namespace), what="RouteDrifted event")
    drift = [e for e in client.CoreV1Api(kube).list_namespaced_event(namespace).items if e.reason == "RouteDrifted"]
    assert "=500" in drift[0].message and "=800" in drift[0].message and drift[0].type == "Warning"

    def drifted_targets():
        return [
            e for e in client.CoreV1Api(kube).list_namespaced_event(namespace).items if e.reason == "TargetsDrifted"
        ]

    assert drifted_targets() == []  # registering, scaling and rolling pods is not drift
    victim = next(iter(moto.targets(primary_arn)))
    elbv2.deregister_targets(TargetGroupArn=primary_arn, Targets=[{"Id": victim[0], "Port": victim[1]}])
    wait_for(lambda: victim in moto.targets(primary_arn), what="target registered again")
    wait_for(
        lambda: [e.involved_object.name for e in drifted_targets()] == ["web-primary"],
        what="one TargetsDrifted event, on the primary binding",
    )

    env = dict(operator.env)

    def report():
        out = subprocess.run(
            [sys.executable, "-m", "awsctl", "status", "-n", namespace, "-o", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        return json.loads(out)

    # The re-registered target is `initial` in AWS for 5 s x 2 before it counts as healthy again.
    row = wait_for(
        lambda: (lambda r: r if all(g["healthy"] == 3 for g in r["groups"]) else None)(report()["canaries"][0]),
        timeout=30,
        what="every target healthy again in awsctl status",
    )
    assert row["phase"] == "WaitingPromotion" and row["route"]["stickiness"] == {"enabled": True, "durationSeconds": 60}
    assert {g["role"]: g["weight"] for g in row["groups"]} == {"primary": 800, "canary": 200}
    assert all(g["healthy"] == 3 for g in row["groups"])
    text = subprocess.run(
        [sys.executable, "-m", "awsctl", "status", "-n", namespace],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "WaitingPromotion" in text and "w=200" in text and "sticky 60s" in text
    assert all(len(line) <= 80 for line in text.splitlines())


def primary_pods(kube, namespace):
    return {
        (p.metadata.name, p.metadata.uid)
        for p in client.CoreV1Api(kube).list_namespaced_pod(namespace, label_selector="app=web-primary").items
        if not p.metadata.deletion_timestamp
    }


def primary_image(kube, namespace):
    return (
        client.AppsV1Api(kube)
        .read_namespaced_deployment("web-primary", namespace)
        .spec.template.spec.containers[0]
        .image
    )


def test_a_bake_at_full_weight_keeps_the_primary_warm_then_promotes(kube, namespace, moto, operator):
    listener = moto.listener(namespace)
    app(kube, namespace)
    create(
        kube,
        namespace,
        canary(
            "web",
            listener=listener,
            rule={"priority": 10},
            analysis={"stepWeights": [20], "bake": {"weight": 100, "duration": "6s"}},
        ),
    )
    st = wait_phase(kube, namespace, "Initialized")
    rule, primary_arn, canary_arn = (
        st["listenerRule"]["arn"],
        st["targetGroups"]["primary"][0],
        st["targetGroups"]["canary"][0],
    )
    before = primary_pods(kube, namespace)
    set_image(kube, namespace, V2)
    wait_phase(kube, namespace, "Baking", timeout=90)
    assert moto.forward_weights(rule) == {primary_arn: 0, canary_arn: 999}
    time.sleep(3)  # mid-bake: the old version still runs, registered and healthy, at weight 0
    assert primary_pods(kube, namespace) == before and primary_image(kube, namespace) == "registry.local/app:v1"
    assert set(moto.target_states(primary_arn).values()) == {"healthy"}
    st = wait_phase(kube, namespace, "Succeeded", timeout=90)
    assert primary_image(kube, namespace) == V2 and primary_pods(kube, namespace) != before
    assert canary_shares(moto, rule, canary_arn) == [0, 200, 999, 0]
    assert {"Baking", "Promoting", "Succeeded"} <= set(reasons(kube, namespace))


def test_an_alarm_during_the_bake_moves_the_weight_back_at_once(kube, namespace, moto, operator):
    listener = moto.listener(namespace)
    cloudwatch = moto.client("cloudwatch")
    alarm = f"{namespace}-web-5xx"
    cloudwatch.put_metric_alarm(
        AlarmName=alarm,
        MetricName="HTTPCode_Target_5XX_Count",
        Namespace="AWS/ApplicationELB",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=10,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="quiet")
    app(kube, namespace)
    create(
        kube,
        namespace,
        canary(
            "web",
            listener=listener,
            rule={"priority": 10},
            analysis={
                "interval": "1s",
                "stepWeights": [20],
                "alarms": [{"name": alarm}],
                "bake": {"weight": 100, "duration": "5m"},
            },
        ),
    )
    st = wait_phase(kube, namespace, "Initialized")
    rule, primary_arn, canary_arn = (
        st["listenerRule"]["arn"],
        st["targetGroups"]["primary"][0],
        st["targetGroups"]["canary"][0],
    )
    before = primary_pods(kube, namespace)
    set_image(kube, namespace, V2)
    st = wait_phase(kube, namespace, "Baking", timeout=90)
    assert st["alarms"] == [{"name": alarm, "state": "OK"}]
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="5xx burst")
    tripped = time.monotonic()
    wait_for(
        lambda: moto.forward_weights(rule) == {primary_arn: 999, canary_arn: 0},
        timeout=5,
        interval=0.05,
        what="weight back on the primary",
    )
    assert time.monotonic() - tripped < 3.0  # one analysis interval (1 s) and the verified write
    st = wait_phase(kube, namespace, "Failed", timeout=10)
    assert "bake failed: alarm" in st["message"] and st["alarms"] == [{"name": alarm, "state": "ALARM"}]
    # The old version never stopped: same pods, same image, no capacity gap.
    assert primary_pods(kube, namespace) == before and primary_image(kube, namespace) == "registry.local/app:v1"


def test_a_relative_check_passes_where_the_absolute_one_fails(kube, namespace, moto, operator):
    """Both sides fail 2% of requests (a shared dependency, not the release): judged against the
    primary the canary is fine; against a fixed 99% minimum it is not."""
    from tests.e2e.objects import deployment, service

    listener = moto.listener(namespace)
    app(kube, namespace)
    create(
        kube, namespace, deployment("api", replicas=2, container_port=8080), service("api", port=80, target_port=8080)
    )
    relative = {"name": "request-success-rate", "interval": "5s", "thresholdRange": {"maxDelta": 0.5}}
    create(
        kube,
        namespace,
        canary(
            "web",
            listener=listener,
            rule={"priority": 10},
            analysis={"stepWeights": [10, 20], "threshold": 2, "metrics": [relative]},
        ),
        canary(
            "api",
            listener=listener,
            rule={"priority": 20},
            analysis={"stepWeights": [10, 20], "threshold": 2, "metrics": [SUCCESS_RATE]},
        ),
    )
    web, api = wait_phase(kube, namespace, "Initialized"), wait_phase(kube, namespace, "Initialized", name="api")
    arns = [
        web["targetGroups"]["primary"][0],
        web["targetGroups"]["canary"][0],
        api["targetGroups"]["primary"][0],
        api["targetGroups"]["canary"][0],
    ]
    with contextlib.ExitStack() as stack:
        for arn in arns:
            stack.enter_context(moto.traffic(listener, arn, requests=100, errors=2))
        set_image(kube, namespace, V2)
        set_image(kube, namespace, V2, name="api")
        web = wait_phase(kube, namespace, "Succeeded", timeout=240)  # a period of its own for each step
        api = wait_phase(kube, namespace, "Failed", timeout=240, name="api")
    metric = web["metrics"][0]
    assert metric["value"] == 98.0 and metric["primary"] == 98.0 and metric["relative"] == {"maxDelta": 0.5}
    assert api["metrics"][0]["value"] == 98.0 and api["metrics"][0]["verdict"] == "fail"


def test_blue_green_built_in_metrics_get_a_condition_not_a_silent_hold(kube, namespace, moto, operator):
    listener = moto.listener(namespace)
    app(kube, namespace)
    create(
        kube,
        namespace,
        canary("web", listener=listener, rule={"priority": 10}, analysis={"iterations": 3, "metrics": [SUCCESS_RATE]}),
    )

    def ready():
        conds = status(kube, namespace).get("conditions") or []
        return next((c for c in conds if c["type"] == "Ready" and c["reason"] == "MetricsNeedTraffic"), None)

    cond = wait_for(ready, timeout=30, what="MetricsNeedTraffic condition")
    assert cond["status"] == "False" and "spec.analysis.metrics[0]" in cond["message"]
    assert "webhooks" in cond["message"] and "custom query" in cond["message"]
    wait_for(lambda: "MetricsNeedTraffic" in reasons(kube, namespace), what="one event")
    assert moto.awsctl_target_groups() == []  # nothing was created for a rollout that could not be judged
