"""Canary stories: `awsctl run` as a process, the real control plane (with kwok pods), moto over HTTP.

Weights are checked where they matter: in what AWS was told (every ModifyRule/ModifyListener
the moto server received) and in what it shows afterwards.
"""

import time

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.e2e.canaries import (
    SCALED_DOWN,
    V1,
    V2,
    VoidWatch,
    apex_pods,
    app,
    awsctl,
    canary_shares,
    held_for_deletion,
    image_of,
    primary_templates,
    reasons,
    replicas_of,
    set_image,
    started,
    status,
    wait_phase,
)
from tests.e2e.conftest import wait_for
from tests.e2e.objects import canary, create, deployment, events_for, pod_targets, service


def test_promotion_steps_exactly_and_ends_on_the_new_image(kube, namespace, moto, operator):
    listener = moto.listener(namespace)
    app(kube, namespace)
    create(
        kube,
        namespace,
        canary(
            "web",
            listener=listener,
            rule={"priority": 10, "hosts": ["web.example.com"]},
            analysis={"stepWeights": [0.5, 5, 20], "maxWeight": 50},
        ),
    )
    st = wait_phase(kube, namespace, "Initialized")
    rule, primary, canary_arn = (
        st["listenerRule"]["arn"],
        st["targetGroups"]["primary"][0],
        st["targetGroups"]["canary"][0],
    )
    assert moto.forward_weights(rule) == {primary: 999, canary_arn: 0}
    assert replicas_of(kube, namespace, "web-primary") == 2
    # Your Deployment goes to 0 only once the apex Service (yours, pointed at the primary) serves primary pods.
    served = wait_for(
        lambda: (lambda n, pods: (n, pods) if n == 0 else None)(
            replicas_of(kube, namespace, "web"), apex_pods(kube, namespace)
        ),
        timeout=SCALED_DOWN,
        what="your Deployment scaled to 0",
    )
    assert served[1] and all(pod.startswith("web-primary-") for pod in served[1]), served

    # The primary's pods carry the readiness gate its binding answers: Ready means healthy in AWS.
    gates = client.AppsV1Api(kube).read_namespaced_deployment("web-primary", namespace).spec.template.spec
    assert [g.condition_type for g in gates.readiness_gates] == ["target-health.awsctl.io/web-primary"]
    pods = {primary: (kube, namespace, "app=web-primary"), canary_arn: (kube, namespace, "app=web")}
    with VoidWatch(moto, rule, pods) as watch:  # AWS sampled every 100 ms through the whole promotion
        set_image(kube, namespace, V2)
        st = wait_phase(kube, namespace, "Succeeded", timeout=120)
    assert watch.samples > 100 and watch.voids == [], f"traffic into the void: {watch.voids[:5]}"
    # Every step AWS was told, in permille: 0.5% is the real ALB weight 5 against 995.
    assert canary_shares(moto, rule, canary_arn) == [0, 5, 50, 200, 500, 0]
    assert {primary: 995, canary_arn: 5} in moto.weights_written(rule)
    assert moto.forward_weights(rule) == {primary: 999, canary_arn: 0}
    assert st["canaryWeight"] == 0 and st["lastPromotedSpec"] == st["lastAppliedSpec"]
    assert image_of(kube, namespace, "web-primary") == V2
    # The template was copied once, at the transition to Promoting: v1 at initialization, then v2.
    assert primary_templates(kube, namespace) == [V1, V2]
    wait_for(lambda: replicas_of(kube, namespace, "web") == 0, timeout=SCALED_DOWN, what="canary scaled to 0")
    # Ordinary Services stay ordinary: the API server assigned ClusterIPs.
    core = client.CoreV1Api(kube)
    for name in ("web-primary", "web-canary"):
        assert core.read_namespaced_service(name, namespace).spec.cluster_ip not in (None, "", "None")
    assert core.read_namespaced_service("web", namespace).spec.selector == {"app": "web-primary"}
    assert {"Progressing", "Promoting", "Succeeded"} <= set(reasons(kube, namespace))


def test_failing_rollout_webhook_rolls_back_to_weight_zero(kube, namespace, moto, operator, hooks):
    hooks.respond("/check", 500)
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
                "stepWeight": 10,
                "maxWeight": 50,
                "threshold": 2,
                "webhooks": [
                    {"name": "check", "type": "rollout", "url": f"{hooks.url}/check", "metadata": {"env": "e2e"}}
                ],
            },
        ),
    )
    st = wait_phase(kube, namespace, "Initialized")
    rule, canary_arn = st["listenerRule"]["arn"], st["targetGroups"]["canary"][0]
    set_image(kube, namespace, V2)
    st = wait_phase(kube, namespace, "Failed", timeout=60)
    assert st["failedChecks"] >= 2 and st["canaryWeight"] == 0
    assert moto.forward_weights(rule)[canary_arn] == 0
    assert canary_shares(moto, rule, canary_arn) == [0, 100, 0]  # one step to 10%, then back
    assert image_of(kube, namespace, "web-primary") == "registry.local/app:v1"
    wait_for(lambda: replicas_of(kube, namespace, "web") == 0, timeout=SCALED_DOWN, what="canary scaled to 0")
    payload = hooks.received("/check")[0]
    assert payload == {
        "name": "web",
        "namespace": namespace,
        "phase": "Progressing",
        "checksum": st["lastAppliedSpec"],
        "metadata": {"env": "e2e"},
    }
    assert "Failed" in reasons(kube, namespace)
    # A failed revision is not retried on its own.
    time.sleep(2)
    assert status(kube, namespace)["phase"] == "Failed"


def test_headless_service_stays_headless_with_ip_targets_at_the_container_port(kube, namespace, moto, operator, hooks):
    hooks.respond("/promote", 403)  # hold at maxWeight so the canary pods stay up for inspection
    listener = moto.listener(namespace)
    app(kube, namespace, headless=True, replicas=3)
    create(
        kube,
        namespace,
        canary(
            "web",
            listener=listener,
            rule={"priority": 20},
            analysis={
                "stepWeights": [50],
                "webhooks": [{"name": "gate", "type": "confirm-promotion", "url": f"{hooks.url}/promote"}],
            },
        ),
    )
    st = wait_phase(kube, namespace, "Initialized")
    core = client.CoreV1Api(kube)
    for name in ("web-primary", "web-canary"):
        assert core.read_namespaced_service(name, namespace).spec.cluster_ip == "None"
    elbv2 = moto.client("elbv2")
    arns = st["targetGroups"]["primary"] + st["targetGroups"]["canary"]
    assert {g["TargetType"] for g in elbv2.describe_target_groups(TargetGroupArns=arns)["TargetGroups"]} == {"ip"}
    primary_pods = pod_targets(kube, namespace, "app=web-primary")
    assert len(primary_pods) == 3 and moto.targets(st["targetGroups"]["primary"][0]) == primary_pods
    assert all(port == 8080 for _, port in moto.targets(st["targetGroups"]["primary"][0]))  # not Service port 80

    set_image(kube, namespace, V2)
    wait_phase(kube, namespace, "WaitingPromotion", timeout=60)
    canary_pods = pod_targets(kube, namespace, "app=web")
    wait_for(
        lambda: len(canary_pods) == 3 and moto.targets(st["targetGroups"]["canary"][0]) == canary_pods,
        what="canary pod IPs at 8080",
    )
    assert core.read_namespaced_service("web", namespace).spec.cluster_ip == "None"


def test_backend_refs_split_each_side_by_relative_weight(kube, namespace, moto, operator, hooks):
    hooks.respond("/promote", 403)
    listener = moto.listener(namespace)
    app(kube, namespace)
    for name in ("proxy-a", "proxy-b", "gateway"):
        create(
            kube,
            namespace,
            deployment(name, replicas=1, container_port=8443),
            service(name, port=443, target_port=8443),
        )
    create(
        kube,
        namespace,
        canary(
            "web",
            listener=listener,
            rule={"priority": 30},
            service_extra={
                "backendRefs": {
                    "primary": [
                        {"name": "proxy-a", "port": 443, "weight": 1},
                        {"name": "proxy-b", "port": 443, "weight": 3},
                    ],
                    "canary": [{"name": "gateway", "port": 443}],
                }
            },
            analysis={
                "stepWeights": [10],
                "webhooks": [{"name": "gate", "type": "confirm-promotion", "url": f"{hooks.url}/promote"}],
            },
        ),
    )
    st = wait_phase(kube, namespace, "Initialized")
    assert st["backends"] == {"primary": ["proxy-a:443", "proxy-b:443"], "canary": ["gateway:443"]}
    (a, b), (gw,) = st["targetGroups"]["primary"], st["targetGroups"]["canary"]
    rule = st["listenerRule"]["arn"]
    assert moto.forward_weights(rule) == {a: 250, b: 750, gw: 0}
    assert moto.targets(a) == pod_targets(kube, namespace, "app=proxy-a")
    set_image(kube, namespace, V2)
    wait_phase(kube, namespace, "WaitingPromotion")
    # 90% split 1:3 over the proxies, 10% to the canary gateway: the ALB weights sum to 1000.
    assert moto.forward_weights(rule) == {a: 225, b: 675, gw: 100}
    bindings = client.CustomObjectsApi(kube).list_namespaced_custom_object(
        "awsctl.io", "v1alpha1", namespace, "targetgroupbindings"
    )["items"]
    assert {x["metadata"]["name"] for x in bindings} >= {
        "web-primary-proxy-a",
        "web-primary-proxy-b",
        "web-canary-gateway",
    }


def test_new_revision_mid_rollout_restarts_at_zero_and_promotes_the_latest(kube, namespace, moto, operator):
    listener = moto.listener(namespace)
    app(kube, namespace)
    create(
        kube,
        namespace,
        canary("web", listener=listener, rule={"priority": 10}, analysis={"stepWeights": [10, 20, 30, 40, 50]}),
    )
    st = wait_phase(kube, namespace, "Initialized")
    rule, canary_arn = st["listenerRule"]["arn"], st["targetGroups"]["canary"][0]
    set_image(kube, namespace, V2)
    first = wait_for(
        lambda: (lambda s: s if s.get("canaryWeight", 0) >= 20 else None)(status(kube, namespace)), what="weight 20%"
    )
    set_image(kube, namespace, "registry.local/app:v3")
    st = wait_phase(kube, namespace, "Succeeded", timeout=90)
    assert st["lastPromotedSpec"] != first["lastAppliedSpec"]
    assert image_of(kube, namespace, "web-primary") == "registry.local/app:v3"
    shares = canary_shares(moto, rule, canary_arn)
    peak = shares.index(max(s for s in shares[: shares.index(0, 2)]))  # the first rollout's highest step
    assert shares[peak + 1] == 0 and shares[-1] == 0 and max(shares[peak + 1 :]) == 500


def test_a_revision_pushed_during_promoting_is_analysed_after_not_carried_along(kube, namespace, moto, operator):
    """v2 promotes; v3 arrives while the primary rolls v2 out. The primary gets v2 (copied once, at the
    transition), the canary goes to 0 at once, and v3 is analysed from weight 0 before it reaches the
    primary (Flagger: a revision that arrives during Promoting is analysed after Succeeded)."""
    rule, canary_arn = started(kube, namespace, moto, {"stepWeights": [50]})
    set_image(kube, namespace, V2)
    promoting = wait_phase(kube, namespace, "Promoting", timeout=60)
    v2 = promoting["lastAppliedSpec"]
    v3_image = "registry.local/app:v3"
    set_image(kube, namespace, v3_image)
    seen = []  # (primary image, lastAppliedSpec, phase), sampled until v3 is promoted

    def promoted_v3():
        s = status(kube, namespace)
        seen.append((image_of(kube, namespace, "web-primary"), s.get("lastAppliedSpec"), s.get("phase")))
        return s if s.get("phase") == "Succeeded" and s.get("lastPromotedSpec") not in (None, v2) else None

    st = wait_for(promoted_v3, timeout=150, interval=0.1, what="v3 promoted after its own analysis")
    v3 = st["lastPromotedSpec"]
    # The primary ran v3 only once v3 was the revision under analysis, never during v2's promotion.
    assert {applied for image, applied, _ in seen if image == v3_image} == {v3}
    messages = [e.message or "" for e in events_for(kube, namespace, "web")]
    assert f"promotion of revision {v2} completed" in messages, messages
    assert primary_templates(kube, namespace) == [V1, V2, v3_image]
    shares = canary_shares(moto, rule, canary_arn)
    assert shares == [0, 500, 0, 500, 0], shares  # v2 at 50%, back to 0 at once, then v3 analysed from 0


def test_blue_green_moves_all_traffic_to_the_canary_before_the_primary_changes(kube, namespace, moto, operator, hooks):
    """Blue/green (iterations, no match): the analysis runs at weight 0, then all traffic goes to the
    canary and one more analysis passes under it; only then is the template copied to the primary, and
    traffic comes back to it once the primary runs the new revision (Flagger's runBlueGreen)."""
    check = {"name": "check", "type": "rollout", "url": f"{hooks.url}/check"}
    rule, canary_arn = started(kube, namespace, moto, {"iterations": 2, "webhooks": [check]})
    set_image(kube, namespace, V2)
    seen = []  # (primary image, canary weight AWS shows)

    def promoted():
        seen.append((image_of(kube, namespace, "web-primary"), moto.forward_weights(rule).get(canary_arn, 0)))
        return (lambda s: s if s.get("phase") == "Succeeded" else None)(status(kube, namespace))

    wait_for(promoted, timeout=120, interval=0.1, what="blue/green promoted")
    assert canary_shares(moto, rule, canary_arn) == [0, 999, 0]
    first_v2 = next(i for i, (image, _) in enumerate(seen) if image == V2)
    assert any(weight == 999 for _, weight in seen[:first_v2]), "the primary changed before the canary had all traffic"
    assert primary_templates(kube, namespace) == [V1, V2]
    # Every analysis ran the rollout webhook: two at weight 0, one with all traffic on the canary.
    assert len(hooks.received("/check")) >= 3


def test_an_edit_refused_at_50_percent_does_not_freeze_the_canary(kube, namespace, moto, operator, hooks, cluster):
    """At 50%, an edit the schema lets through but awsctl refuses (steps that go down): the weight is
    held, the refusal is a condition and an event, and `awsctl abort` still takes the canary back to 0,
    verified in AWS, from what status recorded. Once the spec is mended, the canary scales to 0."""
    hooks.respond("/promote", 500)
    gate = {"name": "promote", "type": "confirm-promotion", "url": f"{hooks.url}/promote"}
    rule, canary_arn = started(kube, namespace, moto, {"stepWeights": [50], "webhooks": [gate]})
    set_image(kube, namespace, V2)
    wait_phase(kube, namespace, "WaitingPromotion", timeout=90)
    assert moto.forward_weights(rule)[canary_arn] == 500
    custom = client.CustomObjectsApi(kube)
    custom.patch_namespaced_custom_object(
        "awsctl.io", "v1alpha1", namespace, "canaries", "web", {"spec": {"analysis": {"stepWeights": [50, 20]}}}
    )
    wait_for(
        lambda: any(
            c["type"] == "Ready" and c["reason"] == "InvalidSpec" for c in status(kube, namespace).get("conditions", [])
        ),
        what="the InvalidSpec condition",
    )
    assert "InvalidSpec" in reasons(kube, namespace)
    assert moto.forward_weights(rule)[canary_arn] == 500  # held, not dropped: the refusal alone changes nothing
    aborted = awsctl(cluster, "abort", "web", "-n", namespace, "--wait", "60")
    assert aborted.returncode == 0, aborted.stderr
    st = wait_phase(kube, namespace, "Failed", timeout=30)
    assert st["canaryWeight"] == 0 and "awsctl abort" in st["message"], st
    promoted = next(c for c in st["conditions"] if c["type"] == "Promoted")  # with the phase, not a tick later
    assert promoted["status"] == "False" and "awsctl abort" in promoted["message"]
    assert moto.forward_weights(rule)[canary_arn] == 0
    assert canary_shares(moto, rule, canary_arn)[-1] == 0
    assert replicas_of(kube, namespace, "web") == 2  # a tick that cannot parse the spec scales nothing
    custom.patch_namespaced_custom_object(
        "awsctl.io", "v1alpha1", namespace, "canaries", "web", {"spec": {"analysis": {"stepWeights": [50]}}}
    )
    wait_for(
        lambda: replicas_of(kube, namespace, "web") == 0, timeout=SCALED_DOWN, what="the canary scaled to 0 once mended"
    )
    assert status(kube, namespace)["phase"] == "Failed"


def test_a_weighted_canary_reads_health_from_aws_not_a_stale_count(kube, namespace, moto, operator, hooks):
    """At 10%, every canary target turns unhealthy in AWS while its binding's count (read long ago)
    still says healthy. The weighted canary's health is read from AWS every interval: ALB fails open,
    so the weight goes back to 0 at once, and 50% never goes to known-bad pods."""
    hooks.respond("/increase", 500, first=(200,))  # the first increase (to 10%) only
    gate = {"name": "increase", "type": "confirm-traffic-increase", "url": f"{hooks.url}/increase"}
    rule, canary_arn = started(kube, namespace, moto, {"stepWeights": [10, 50], "webhooks": [gate]})
    set_image(kube, namespace, V2)
    wait_for(lambda: moto.forward_weights(rule)[canary_arn] == 100, timeout=90, what="the canary at 10%")
    moto.unhealthy.update(f"{ip}:{port}" for ip, port in pod_targets(kube, namespace, "app=web"))
    wait_for(lambda: set(moto.target_states(canary_arn).values()) == {"unhealthy"}, timeout=30, what="unhealthy in AWS")
    hooks.respond("/increase", 200)
    st = wait_phase(kube, namespace, "Failed", timeout=30)
    assert "no healthy target" in st["message"], st["message"]
    assert moto.forward_weights(rule)[canary_arn] == 0
    assert 500 not in canary_shares(moto, rule, canary_arn)


def test_deletion_restores_the_default_action_and_the_users_objects(kube, namespace, moto, operator, hooks):
    listener = moto.listener(namespace)
    elbv2 = moto.client("elbv2")
    before = elbv2.describe_listeners(ListenerArns=[listener])["Listeners"][0]["DefaultActions"]
    app(kube, namespace)
    create(kube, namespace, held_for_deletion(listener, hooks))
    st = wait_phase(kube, namespace, "Initialized")
    assert st["listenerRule"]["arn"] == listener  # no rule: the default action is driven
    set_image(kube, namespace, V2)
    st = wait_phase(kube, namespace, "WaitingPromotion")
    assert moto.forward_weights(listener)[st["targetGroups"]["canary"][0]] == 400

    client.CustomObjectsApi(kube).delete_namespaced_custom_object("awsctl.io", "v1alpha1", namespace, "canaries", "web")

    def gone():
        try:
            status(kube, namespace)
            return False
        except ApiException as err:
            return err.status == 404

    wait_for(gone, timeout=120, what="Canary removed")  # the groups go propagationSeconds after the route
    # Traffic went back to the primary (verified) before the listener got its own action back.
    assert moto.weights_written(listener)[-1][st["targetGroups"]["canary"][0]] == 0
    after = elbv2.describe_listeners(ListenerArns=[listener])["Listeners"][0]["DefaultActions"]
    assert [a["Type"] for a in after] == [a["Type"] for a in before] == ["fixed-response"]
    assert moto.awsctl_target_groups() == []
    assert replicas_of(kube, namespace, "web") == 2
    assert client.CoreV1Api(kube).read_namespaced_service("web", namespace).spec.selector == {"app": "web"}


def test_operator_killed_mid_rollout_resumes_without_duplicates(kube, namespace, moto, operator, cluster, tmp_path):
    listener = moto.listener(namespace)
    app(kube, namespace)
    create(
        kube,
        namespace,
        canary("web", listener=listener, rule={"priority": 10}, analysis={"stepWeights": [10, 20, 30, 40, 50, 60]}),
    )
    st = wait_phase(kube, namespace, "Initialized")
    rule, canary_arn = st["listenerRule"]["arn"], st["targetGroups"]["canary"][0]
    set_image(kube, namespace, V2)
    wait_for(lambda: status(kube, namespace).get("canaryWeight", 0) >= 20, what="weight 20%")
    operator.kill()  # SIGKILL, mid-rollout
    at_kill = len(moto.weights_written(rule))
    time.sleep(2)
    operator.start()
    st = wait_phase(kube, namespace, "Succeeded", timeout=90)
    after = canary_shares(moto, rule, canary_arn, since=at_kill)
    assert 0 not in after[:-1], f"the rollout restarted instead of resuming: {after}"
    assert 600 in after and after[-1] == 0
    assert len(moto.awsctl_target_groups()) == 2
    rules = moto.client("elbv2").describe_rules(ListenerArn=listener)["Rules"]
    assert [r["Priority"] for r in rules] == ["10", "default"]
    assert image_of(kube, namespace, "web-primary") == V2


def hook(url):
    return {"webhooks": [{"name": "check", "url": url}]}


@pytest.mark.parametrize(
    "analysis,service_extra,health_check,needle",
    [
        ({"maxWeight": 101}, {}, {}, "maxWeight"),
        ({"stepWeight": 5, "stepWeights": [10]}, {}, {}, "set stepWeight or stepWeights, not both"),
        (
            {},
            {"backendRefs": {"primary": [{"name": f"s{i}", "port": 80} for i in range(6)]}},
            {},
            "backendRefs.primary",
        ),
        (hook("http://"), {}, {}, "webhooks[0].url"),  # no host
        (hook("http://load tester/"), {}, {}, "webhooks[0].url"),  # a space
        (
            {"metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99, "max": 50}}]},
            {},
            {},
            "min must not be above max",
        ),
        ({}, {}, {"matcher": "abc"}, "healthCheck.matcher"),
    ],
)
def test_schema_rejects_bad_specs(kube, namespace, analysis, service_extra, health_check, needle):
    listener = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/x/1/2"
    body = canary("web", listener=listener, analysis=analysis, service_extra=service_extra)
    body["spec"]["loadBalancer"]["targetGroup"]["healthCheck"].update(health_check)
    with pytest.raises(ApiException) as err:
        create(kube, namespace, body)
    assert err.value.status == 422 and needle in err.value.body, err.value.body


def test_bad_input_gets_a_condition_and_an_event_not_a_crash(kube, namespace, moto, operator):
    listener = moto.listener(namespace)
    instance_on_headless = canary("headless", listener=listener, rule={"priority": 2})
    instance_on_headless["spec"]["loadBalancer"]["targetType"] = "instance"  # headless is only known at runtime
    create(
        kube,
        namespace,
        service("headless", port=80, target_port=8080, headless=True),
        deployment("headless", replicas=1, container_port=8080),
        deployment("refs", replicas=1, container_port=8080),
        canary("ghost", listener=listener, rule={"priority": 1}),
        instance_on_headless,
        canary(
            "refs",
            listener=listener,
            rule={"priority": 3},
            service_extra={"backendRefs": {"canary": [{"name": "missing", "port": 80}]}},
        ),
    )

    def ready(name):
        conds = status(kube, namespace, name).get("conditions") or []
        return next((c for c in conds if c["type"] == "Ready"), None)

    for name, reason, field in (
        ("ghost", "TargetNotFound", "spec.targetRef.name"),
        ("headless", "InstanceTargetOnHeadless", "spec.loadBalancer.targetType"),
        ("refs", "BackendNotFound", "spec.service.backendRefs.canary[0].name"),
    ):
        cond = wait_for(
            lambda: (lambda c: c if c and c["reason"] == reason else None)(ready(name)), what=f"{name} {reason}"
        )
        assert cond["status"] == "False" and field in cond["message"]
        wait_for(lambda: reason in reasons(kube, namespace, name), what=f"{reason} event")
    # No traffic shifted and nothing was created in AWS for any of them.
    assert moto.awsctl_target_groups() == [] and moto.weight_writes == []
    rules = moto.client("elbv2").describe_rules(ListenerArn=listener)["Rules"]
    assert [r["Priority"] for r in rules] == ["default"]
    assert operator.proc.poll() is None and "Traceback" not in operator.log()


def test_the_primary_gets_its_own_autoscaler_and_an_unreferenced_one_is_refused(kube, namespace, moto, operator):
    """Flagger's autoscalerRef: the primary was created with the target's replica count and never
    autoscaled. A target an HPA scales is refused until the HPA is named; named, the primary gets a copy."""
    autoscaling = client.AutoscalingV2Api(kube)
    listener = moto.listener(namespace)
    app(kube, namespace)
    hpa = {
        "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 2,
            "maxReplicas": 5,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                }
            ],
        },
    }
    autoscaling.create_namespaced_horizontal_pod_autoscaler(namespace, hpa)
    create(kube, namespace, canary("web", listener=listener, rule={"priority": 10}))
    refused = wait_for(
        lambda: next(
            (
                c
                for c in status(kube, namespace).get("conditions") or ()
                if c.get("reason") == "AutoscalerNotReferenced"
            ),
            None,
        ),
        what="the unreferenced HPA refused",
    )
    assert refused["status"] == "False" and "HorizontalPodAutoscaler" in refused["message"]
    assert "spec.autoscalerRef" in refused["message"]

    client.CustomObjectsApi(kube).patch_namespaced_custom_object(
        "awsctl.io", "v1alpha1", namespace, "canaries", "web", {"spec": {"autoscalerRef": {"name": "web"}}}
    )
    wait_phase(kube, namespace, "Initialized", timeout=90)
    primary = autoscaling.read_namespaced_horizontal_pod_autoscaler("web-primary", namespace)
    assert primary.spec.scale_target_ref.name == "web-primary"
    assert (primary.spec.min_replicas, primary.spec.max_replicas) == (2, 5)
    assert primary.metadata.owner_references[0].kind == "Canary"
    # Several ticks: a copy that matches is not written again (its generation counts spec writes; the HPA
    # controller's own status writes move the resourceVersion, not the generation).
    generation = primary.metadata.generation
    time.sleep(3)
    assert autoscaling.read_namespaced_horizontal_pod_autoscaler("web-primary", namespace).metadata.generation == (
        generation
    )
    autoscaling.patch_namespaced_horizontal_pod_autoscaler("web", namespace, {"spec": {"maxReplicas": 7}})
    wait_for(
        lambda: autoscaling.read_namespaced_horizontal_pod_autoscaler("web-primary", namespace).spec.max_replicas == 7,
        what="the primary's copy follows the user's HPA",
    )


def test_a_pod_in_a_zone_the_load_balancer_does_not_enable_does_not_block_the_canary(kube, namespace, moto, operator):
    """Pods in the VPC (as with the VPC CNI), one node's zone not enabled on the ALB: AWS never checks that
    node's pods (Target.NotInUse). A side waited for healthy == desired, so Initializing never ended."""
    ec2, elbv2 = moto.client("ec2"), moto.client("elbv2")
    nodes = sorted(client.CoreV1Api(kube).list_node(label_selector="type=kwok").items, key=lambda n: n.metadata.name)
    zones = {n.metadata.name: n.metadata.labels["topology.kubernetes.io/zone"] for n in nodes}
    vpc = ec2.create_vpc(CidrBlock="10.244.0.0/16")["Vpc"]["VpcId"]
    subnets = {
        n.metadata.name: ec2.create_subnet(
            VpcId=vpc, CidrBlock=n.spec.pod_cidr, AvailabilityZone=zones[n.metadata.name]
        )["Subnet"]["SubnetId"]
        for n in nodes
    }
    enabled, left_out = [n.metadata.name for n in nodes[:2]], nodes[2].metadata.name
    lb = elbv2.create_load_balancer(Name=f"{namespace}-az", Subnets=[subnets[n] for n in enabled])
    listener = elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancers"][0]["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}],
    )["Listeners"][0]["ListenerArn"]
    web = deployment("web", replicas=3, container_port=8080)
    web["spec"]["template"]["spec"]["topologySpreadConstraints"] = [
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {},
            "matchLabelKeys": ["pod-template-hash"],  # one pod per node, of each Deployment (the primary too)
        }
    ]
    create(kube, namespace, web, service("web", port=80, target_port=8080))
    create(kube, namespace, canary("web", listener=listener, rule={"priority": 10}))
    st = wait_phase(kube, namespace, "Initialized", timeout=90)
    primary = client.CustomObjectsApi(kube).get_namespaced_custom_object(
        "awsctl.io", "v1alpha1", namespace, "targetgroupbindings", "web-primary"
    )["status"]
    assert primary["desiredTargets"] == 3 and primary["healthyTargets"] == 2 and primary["unroutableTargets"] == 1
    routable = next(c for c in primary["conditions"] if c["type"] == "Routable")
    assert routable["status"] == "False" and routable["reason"] == "TargetsNotRoutable"
    on_left_out = {
        p.status.pod_ip
        for p in client.CoreV1Api(kube).list_namespaced_pod(namespace).items
        if p.spec.node_name == left_out and p.metadata.name.startswith("web-primary-")
    }
    assert on_left_out and all(ip in routable["message"] for ip in on_left_out)
    assert "TargetsNotRoutable" in {e.reason for e in events_for(kube, namespace, "web-primary")}
    shown = moto.target_states(st["targetGroups"]["primary"][0])
    assert sorted(shown.values()) == ["healthy", "healthy", "unused"]
