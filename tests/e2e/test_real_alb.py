"""Stories that only a real ALB tells apart from moto: each one failed (or deadlocked) before the
product met the ELBv2 realism layer."""

import time

from kubernetes import client

from tests.e2e.canaries import SCALED_DOWN, V2, app, canary_shares, reasons, replicas_of, set_image, status, wait_phase
from tests.e2e.conftest import wait_for
from tests.e2e.objects import binding, canary, create, deployment, service


def rules_by_priority(moto, listener):
    return {r["Priority"]: r for r in moto.client("elbv2").describe_rules(ListenerArn=listener)["Rules"]}


def test_a_rule_deleted_by_hand_is_warmed_up_and_retaken(kube, namespace, moto, operator, hooks):
    hooks.respond("/promote", 403)
    listener = moto.listener(namespace)
    app(kube, namespace)
    create(
        kube,
        namespace,
        canary(
            "web",
            listener=listener,
            rule={"priority": 10},
            analysis={
                "stepWeights": [20],
                "webhooks": [{"name": "gate", "type": "confirm-promotion", "url": f"{hooks.url}/promote"}],
            },
        ),
    )
    st = wait_phase(kube, namespace, "Initialized")
    assert set(rules_by_priority(moto, listener)) == {"10", "default"}  # the warm-up rule went with the route
    set_image(kube, namespace, V2)
    st = wait_phase(kube, namespace, "WaitingPromotion", timeout=90)
    primary, canary_arn = st["targetGroups"]["primary"][0], st["targetGroups"]["canary"][0]
    moto.client("elbv2").delete_rule(RuleArn=st["listenerRule"]["arn"])
    # Its groups are unused now; a route re-created at once would point at groups AWS does not check.
    wait_for(
        lambda: set(moto.target_states(primary).values()) == {"unused"} or "50000" in rules_by_priority(moto, listener),
        what="groups unused or warm-up rule",
    )
    again = wait_for(
        lambda: (lambda r: r if r.get("10") and r["10"]["RuleArn"] != st["listenerRule"]["arn"] else None)(
            rules_by_priority(moto, listener)
        ),
        timeout=60,
        what="rule re-created",
    )
    assert moto.forward_weights(again["10"]["RuleArn"]) == {primary: 800, canary_arn: 200}
    assert set(moto.target_states(primary).values()) == {"healthy"}
    wait_for(
        lambda: set(rules_by_priority(moto, listener)) == {"10", "default"}, timeout=20, what="warm-up rule removed"
    )
    assert "RouteDrifted" in reasons(kube, namespace)


def test_a_changed_rule_priority_moves_the_route(kube, namespace, moto, operator, hooks):
    hooks.respond("/promote", 403)
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
                "stepWeights": [30],
                "webhooks": [{"name": "gate", "type": "confirm-promotion", "url": f"{hooks.url}/promote"}],
            },
        ),
    )
    wait_phase(kube, namespace, "Initialized")
    set_image(kube, namespace, V2)
    st = wait_phase(kube, namespace, "WaitingPromotion", timeout=90)
    primary, canary_arn = st["targetGroups"]["primary"][0], st["targetGroups"]["canary"][0]
    client.CustomObjectsApi(kube).patch_namespaced_custom_object(
        "awsctl.io",
        "v1alpha1",
        namespace,
        "canaries",
        "web",
        {"spec": {"loadBalancer": {"rule": {"priority": 20, "hosts": ["web.example.com"]}}}},
    )
    moved = wait_for(
        lambda: (lambda r: r if "20" in r and "10" not in r else None)(rules_by_priority(moto, listener)),
        timeout=30,
        what="route moved to priority 20",
    )
    assert moto.forward_weights(moved["20"]["RuleArn"]) == {primary: 700, canary_arn: 300}
    st = status(kube, namespace)
    assert st["listenerRule"]["priority"] == 20 and not st.get("retiringRule")
    assert {"RouteMoving", "RouteMoved"} <= set(reasons(kube, namespace))


def test_a_canary_moved_to_another_load_balancer_gets_new_groups_there(kube, namespace, moto, operator):
    """A target group serves one load balancer: AWS (and the realism layer) refuse the old groups on a
    listener of another. The move makes new groups there, takes the new route once they are healthy,
    gives the old route back, and deletes the old groups and bindings after the propagation wait; a
    rollout then runs on the new load balancer."""
    first = moto.listener(namespace)
    second = moto.listener(f"{namespace}-b")
    app(kube, namespace)
    create(kube, namespace, canary("web", listener=first, rule={"priority": 10}, analysis={"stepWeights": [50]}))
    st = wait_phase(kube, namespace, "Initialized", timeout=90)
    old_groups = {*st["targetGroups"]["primary"], *st["targetGroups"]["canary"]}
    crd = client.CustomObjectsApi(kube)
    old_bindings = {
        b["metadata"]["name"]
        for b in crd.list_namespaced_custom_object("awsctl.io", "v1alpha1", namespace, "targetgroupbindings")["items"]
    }
    crd.patch_namespaced_custom_object(
        "awsctl.io", "v1alpha1", namespace, "canaries", "web", {"spec": {"loadBalancer": {"listenerARN": second}}}
    )
    moved = wait_for(
        lambda: (lambda s: s if s.get("listenerRule", {}).get("listener") == second else None)(status(kube, namespace)),
        timeout=90,
        what="the route taken on the second load balancer",
    )
    new_groups = {*moved["targetGroups"]["primary"], *moved["targetGroups"]["canary"]}
    assert not new_groups & old_groups
    shown = moto.forward_weights(moved["listenerRule"]["arn"])
    assert set(shown) == new_groups and shown[moved["targetGroups"]["canary"][0]] == 0
    wait_for(lambda: set(rules_by_priority(moto, first)) == {"default"}, timeout=60, what="the old rule deleted")
    # The old groups are kept for the propagation wait (30 s), then deleted with their bindings.
    wait_for(lambda: not status(kube, namespace).get("retiringGroups"), timeout=120, what="the old groups retired")
    left = {tg["TargetGroupArn"] for tg in moto.client("elbv2").describe_target_groups()["TargetGroups"]}
    assert not old_groups & left and new_groups <= left
    bindings = {
        b["metadata"]["name"]
        for b in crd.list_namespaced_custom_object("awsctl.io", "v1alpha1", namespace, "targetgroupbindings")["items"]
    }
    assert bindings and not bindings & old_bindings
    assert {"TargetGroupsMoving", "RouteMoving", "RouteMoved", "TargetGroupsRetired"} <= set(reasons(kube, namespace))
    assert "AWSRefused" not in reasons(kube, namespace)

    set_image(kube, namespace, V2)  # a rollout on the new load balancer completes
    st = wait_phase(kube, namespace, "Succeeded", timeout=240)
    assert canary_shares(moto, st["listenerRule"]["arn"], st["targetGroups"]["canary"][0])[-2:] == [500, 0]


def test_aws_refusal_is_a_condition_and_one_event(kube, namespace, moto, operator):
    listener = moto.listener(namespace)
    elbv2 = moto.client("elbv2")
    group = moto.target_group(f"{namespace}-full")
    for priority in range(1, 101):  # the load balancer's 100 rules are all taken
        elbv2.create_rule(
            ListenerArn=listener,
            Priority=priority,
            Actions=[{"Type": "forward", "TargetGroupArn": group}],
            Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": [f"/{priority}"]}}],
        )
    app(kube, namespace)
    create(kube, namespace, canary("web", listener=listener, rule={"priority": 200}))

    def ready():
        conds = status(kube, namespace).get("conditions") or []
        return next((c for c in conds if c["type"] == "Ready" and c["reason"] == "TooManyRules"), None)

    cond = wait_for(ready, timeout=60, what="TooManyRules condition")
    assert cond["status"] == "False" and "AWS refused" in cond["message"]
    time.sleep(3)  # several ticks: still one event, no traceback, the operator alive
    assert reasons(kube, namespace).count("TooManyRules") == 1
    assert operator.proc.poll() is None and "Traceback" not in operator.log()


def test_rollback_with_stickiness_scales_down_after_the_cookie_expires(kube, namespace, moto, operator, hooks):
    hooks.respond("/check", 500)
    listener = moto.listener(namespace)
    app(kube, namespace)
    spec = canary(
        "web",
        listener=listener,
        rule={"priority": 10},
        analysis={
            "stepWeight": 10,
            "maxWeight": 50,
            "threshold": 1,
            "webhooks": [{"name": "check", "type": "rollout", "url": f"{hooks.url}/check"}],
        },
    )
    spec["spec"]["loadBalancer"]["stickiness"] = {"enabled": True, "durationSeconds": 4}
    create(kube, namespace, spec)
    st = wait_phase(kube, namespace, "Initialized")
    rule, canary_arn = st["listenerRule"]["arn"], st["targetGroups"]["canary"][0]
    set_image(kube, namespace, V2)
    st = wait_phase(kube, namespace, "Failed", timeout=90)
    failed_at = time.monotonic()
    assert moto.forward_weights(rule)[canary_arn] == 0 and canary_shares(moto, rule, canary_arn)[-1] == 0
    # Clients pinned to the canary group keep reaching live pods until their cookie expires.
    assert replicas_of(kube, namespace, "web") == 2 and st.get("scaleDownAt")
    wait_for(lambda: replicas_of(kube, namespace, "web") == 0, timeout=SCALED_DOWN, what="canary scaled to 0")
    assert time.monotonic() - failed_at >= 30 + 2.5  # loadBalancer.propagationSeconds, then the cookie's 4 s


def test_weights_verify_through_throttling(kube, namespace, moto, operator):
    listener = moto.listener(namespace)
    app(kube, namespace)
    create(kube, namespace, canary("web", listener=listener, rule={"priority": 10}, analysis={"stepWeights": [10, 40]}))
    st = wait_phase(kube, namespace, "Initialized")
    rule, canary_arn = st["listenerRule"]["arn"], st["targetGroups"]["canary"][0]
    moto.throttle(3, "ModifyRule", "DescribeRules")  # another tool in the account spent the budget
    set_image(kube, namespace, V2)
    wait_phase(kube, namespace, "Succeeded", timeout=120)
    assert canary_shares(moto, rule, canary_arn) == [0, 100, 400, 0]
    assert moto.realism.stats.throttled >= 3


def test_a_group_recreated_under_the_same_name_is_found_again(kube, namespace, moto, operator):
    name = f"{namespace}-re"
    arn = moto.target_group(name)
    create(
        kube,
        namespace,
        deployment("web", replicas=2, container_port=8080),
        service("web", port=80, target_port=8080),
        binding("web", service="web", port=80, target_group_name=name),
    )
    wait_for(lambda: len(moto.targets(arn)) == 2, what="2 targets")
    elbv2 = moto.client("elbv2")
    elbv2.delete_target_group(TargetGroupArn=arn)  # a terraform replace
    new = moto.target_group(name)
    wait_for(lambda: len(moto.targets(new)) == 2, timeout=20, what="targets in the new group")
    got = client.CustomObjectsApi(kube).get_namespaced_custom_object(
        "awsctl.io", "v1alpha1", namespace, "targetgroupbindings", "web"
    )
    assert got["status"]["targetGroupARN"] == new
