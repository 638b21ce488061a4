"""Requests, not only state: stories under constant load through the data plane, counting failed requests.

Each story sends 50 requests a second (open loop) through the listener to the pods that answer, from
the moment the Canary's new rule serves until its pods have settled, and asserts how many failed: none,
apart from a broken canary's own errors while it had weight. The data plane runs with the test ground's
defaults (`awsctl.dev.propagation`): its nodes apply every rule change, registration and deregistration
late, `initial` targets serve nothing, and CloudWatch publishes a minute late.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections import Counter

from kubernetes import client

from awsctl.dev.load import Load
from tests.e2e.canaries import (
    SCALED_DOWN,
    V2,
    app,
    awsctl,
    condition,
    delete_canary,
    held_for_deletion,
    reasons,
    replicas_of,
    set_image,
    status,
    wait_phase,
)
from tests.e2e.conftest import wait_for
from tests.e2e.objects import binding, canary, create, deployment, pod_targets, service

RATE = 50


def primary_whole(kube, namespace: str, replicas: int, gone: list[str]) -> bool:
    """The primary has `replicas` available pods again, and the `gone` ones are not among them. Right after
    a delete, the Deployment's status still counts the deleted pod as available: without the second test,
    the next pod went 80 ms after the first, and the churn was over before the rollout had begun."""
    found = client.AppsV1Api(kube).read_namespaced_deployment_status("web-primary", namespace).status
    pods = client.CoreV1Api(kube).list_namespaced_pod(namespace, label_selector="app=web-primary").items
    live = [p for p in pods if not p.metadata.deletion_timestamp and p.metadata.name not in gone]
    ready = [p for p in live if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or ())]
    return len(ready) == replicas and (found.available_replicas or 0) == replicas and (found.replicas or 0) == replicas


def serving(traffic, listener: str) -> Load:
    """The load, started once the Canary's new rule has reached every node of the load balancer: before
    that, a late node answers with the listener's default action (a 404), as a real ALB's would. There
    was no route before the Canary, so those answers are not the rollout's to lose."""
    url = traffic.wait_listener(listener) + "/"
    time.sleep(traffic.propagation.rule_seconds[1])
    return Load(url, RATE).start()


def more_load(load: Load, seconds: float) -> None:
    """Waits while the load runs `seconds` more, counted in requests sent."""
    settle = len(load.responses) / RATE + seconds
    wait_for(lambda: len(load.responses) / RATE >= settle, timeout=seconds + 20, what=f"{seconds} s more of load")


def test_a_promotion_with_a_bake_loses_no_request(kube, namespace, moto, operator, traffic, report):
    listener = moto.listener(namespace)
    app(kube, namespace)
    create(
        kube,
        namespace,
        canary(
            "web",
            listener=listener,
            rule={"priority": 10},
            analysis={"stepWeights": [5, 25], "bake": {"duration": "5s"}},
        ),
    )
    wait_phase(kube, namespace, "Initialized", timeout=90)
    load = serving(traffic, listener)
    try:
        set_image(kube, namespace, V2)
        wait_phase(kube, namespace, "Succeeded", timeout=180)
        wait_for(lambda: replicas_of(kube, namespace, "web") == 0, timeout=SCALED_DOWN, what="the canary scaled to 0")
        more_load(load, 10)  # the canary's pods stop, the primary serves on
    finally:
        load.stop()
    said = report("promotion", load)
    summary = load.summary()
    assert summary.requests > 20 * RATE
    assert summary.failures == 0, said
    last = Counter(r.version for r in load.responses[-RATE:])
    assert last == {"v2": RATE}, last  # the promoted revision serves everything at the end


def test_primary_pods_deleted_during_progressing_lose_no_request(kube, namespace, moto, operator, traffic, report):
    listener = moto.listener(namespace)
    app(kube, namespace, replicas=3)
    create(
        kube,
        namespace,
        canary(
            "web",
            listener=listener,
            rule={"priority": 10},
            analysis={"interval": "15s", "stepWeights": [5, 10, 15, 20, 25, 30, 35, 40]},
        ),
    )
    wait_phase(kube, namespace, "Initialized", timeout=90)
    load = serving(traffic, listener)
    core = client.CoreV1Api(kube)
    deleted = []
    try:
        set_image(kube, namespace, V2)
        wait_phase(kube, namespace, "Progressing", timeout=60)
        # Pod churn as a node drain under a PodDisruptionBudget (maxUnavailable 1) makes it: the next pod goes
        # once the primary is whole again, its new pod Ready, which the readiness gate makes healthy in AWS.
        while status(kube, namespace).get("phase") == "Progressing" and len(deleted) < 3:
            pods = [
                p.metadata.name
                for p in core.list_namespaced_pod(namespace, label_selector="app=web-primary").items
                if not p.metadata.deletion_timestamp
            ]
            core.delete_namespaced_pod(sorted(pods)[0], namespace)
            deleted.append(sorted(pods)[0])
            wait_for(lambda: primary_whole(kube, namespace, 3, deleted), timeout=90, what="the primary whole again")
        # What is left of 8 steps of 15 s, then the promotion: three new primary pods, each made healthy in
        # AWS by the readiness gate before the next (about 35 s each here, more with two workers).
        wait_phase(kube, namespace, "Succeeded", timeout=360)
    finally:
        load.stop()
    said = report("primary pods deleted", load)
    assert len(deleted) >= 2, deleted
    assert load.summary().failures == 0, said  # 7 of 3891 failed (502) before the primary had a preStop sleep
    # The user's Deployment (the canary) has no preStop hook: said, not changed.
    gap = condition(status(kube, namespace), "GracefulTermination")
    assert (gap["status"], gap["reason"]) == ("False", "NoTerminationDelay") and "preStop" in gap["message"]
    assert "NoTerminationDelay" in reasons(kube, namespace)


def test_a_rollback_on_real_errors_fails_only_the_canarys_own_requests(
    kube, namespace, moto, operator, traffic, report
):
    """v3 answers half its requests with 500. The analysis sees that only through the CloudWatch metrics the
    data plane published from the traffic (a minute's period, once it is over), and rolls v3 back."""
    listener = moto.listener(namespace)
    app(kube, namespace)
    success = {"name": "request-success-rate", "interval": "1m", "thresholdRange": {"min": 99}}
    analysis = {"interval": "5s", "stepWeights": [10, 50], "metrics": [success]}  # the default no-data tolerance
    create(kube, namespace, canary("web", listener=listener, rule={"priority": 10}, analysis=analysis))
    wait_phase(kube, namespace, "Initialized", timeout=90)
    load = serving(traffic, listener)
    try:
        set_image(kube, namespace, "registry.local/app:v3", DEV_ERROR_RATE="0.5")
        st = rolled_back_and_settled(kube, namespace, load, timeout=420)  # a period of its own, a minute late
    finally:
        load.stop()
    said = report("rollback", load)
    failing = st["metrics"][0]
    assert failing["verdict"] == "fail" and failing["value"] < 99, failing
    failed = [r for r in load.responses if r.failed]
    assert failed and {(r.status, r.version) for r in failed} == {(500, "v3")}, said  # v3's own errors only
    assert {r.version for r in load.responses[-RATE:]} == {"v1"}


def test_scaling_the_deployment_mid_rollout_loses_no_request(kube, namespace, moto, operator, traffic, report):
    """Your Deployment is the canary: awsctl never edits it, so its pods need their own preStop sleep (the
    fix for aws-load-balancer-controller#1719). Without one, the Canary's GracefulTermination condition says
    so (see the primary-churn story); with one, scaling it down mid-rollout fails no request."""
    listener = moto.listener(namespace)
    web = deployment("web", replicas=2, container_port=8080)
    # as the GracefulTermination condition advises: at least loadBalancer.propagationSeconds (30 s)
    web["spec"]["template"]["spec"]["containers"][0]["lifecycle"] = {"preStop": {"sleep": {"seconds": 30}}}
    create(kube, namespace, web, service("web", port=80, target_port=8080))
    analysis = {"interval": "3s", "stepWeights": [5, 10, 15, 20, 25, 30, 35, 40, 45, 50]}
    create(kube, namespace, canary("web", listener=listener, rule={"priority": 10}, analysis=analysis))
    wait_phase(kube, namespace, "Initialized", timeout=90)
    load = serving(traffic, listener)
    apps = client.AppsV1Api(kube)
    try:
        set_image(kube, namespace, V2)
        wait_for(lambda: status(kube, namespace).get("canaryWeight", 0) >= 10, timeout=90, what="the canary at 10%")
        apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 4}})
        wait_for(lambda: status(kube, namespace).get("canaryWeight", 0) >= 20, timeout=90, what="the canary at 20%")
        apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 1}})
        st = wait_phase(kube, namespace, "Succeeded", timeout=240)
    finally:
        load.stop()
    said = report("scaled", load)
    assert load.summary().failures == 0, said
    assert condition(st, "GracefulTermination")["status"] == "True"


def test_deleting_a_canary_with_revert_on_deletion_loses_no_request(
    kube, namespace, moto, operator, traffic, hooks, report
):
    """Your app served through your own target group (your binding keeps it filled from your Service) on the
    listener's default action. A Canary takes that action over, rolls out to 40%, and is deleted: traffic
    goes back to the primary, then to your group, and your Deployment is scaled back, with no request lost."""
    listener = moto.listener(namespace)
    yours = moto.target_group(f"{namespace}-yours", port=8080)
    moto.client("elbv2").modify_listener(
        ListenerArn=listener, DefaultActions=[{"Type": "forward", "TargetGroupArn": yours}]
    )
    # Your pods serve through your group until every node has the Canary's route; v2 rolls them right after
    # Initialized, so they need the preStop sleep the GracefulTermination condition asks for (30 s).
    app(kube, namespace, pre_stop=30)
    create(kube, namespace, binding("yours", service="web", port=80, target_group_arn=yours))
    load = Load(traffic.wait_listener(listener) + "/", RATE)
    wait_for(
        lambda: moto.target_states(yours) and set(moto.target_states(yours).values()) == {"healthy"},
        timeout=60,
        what="your group serving",
    )
    load.start()
    try:
        create(kube, namespace, held_for_deletion(listener, hooks))
        wait_phase(kube, namespace, "Initialized", timeout=90)
        set_image(kube, namespace, V2)
        wait_phase(kube, namespace, "WaitingPromotion", timeout=120)
        primary = {ip for ip, _ in pod_targets(kube, namespace, "app=web-primary")}
        delete_canary(kube, namespace, timeout=180, what="the Canary gone")
        more_load(load, 20)  # the primary's pods stop; yours serve
    finally:
        load.stop()
    said = report("deletion", load)
    assert load.summary().failures == 0, said
    versions = Counter(r.version for r in load.responses[-RATE:])
    assert versions == {"v2": RATE}, versions  # your Deployment, now v2, serves everything
    # Your group got the traffic back only once it held your pods, healthy: never the primary's, which
    # the apex Service had put there and which stop once the Canary is gone.
    through_yours = [r for r in traffic.records if r.group == yours]
    assert through_yours and not [r for r in through_yours if r.target.rpartition(":")[0] in primary]


def held_at_half(listener: str, hooks, **top) -> dict:
    """A Canary whose v2 stops at 50% behind a confirm-promotion gate that says no (`/promote` answers 403)."""
    hooks.respond("/promote", 403)
    gate = {"name": "gate", "type": "confirm-promotion", "url": f"{hooks.url}/promote"}
    analysis = {"interval": "3s", "stepWeights": [10, 50], "webhooks": [gate]}
    return canary("web", listener=listener, rule={"priority": 10}, analysis=analysis, **top)


def at_half(kube, namespace: str, moto, traffic, hooks, **top) -> tuple[Load, str]:
    """Your app and a Canary held at 50%, under load from its Initialized on: the running load, the listener."""
    listener = moto.listener(namespace)
    app(kube, namespace)
    spec = held_at_half(listener, hooks)
    spec["spec"]["loadBalancer"].update(top)
    create(kube, namespace, spec)
    wait_phase(kube, namespace, "Initialized", timeout=90)
    load = serving(traffic, listener)
    try:
        set_image(kube, namespace, V2)
        wait_phase(kube, namespace, "WaitingPromotion", timeout=120)
    except BaseException:
        load.stop()
        raise
    assert status(kube, namespace)["canaryWeight"] == 50
    return load, listener


def rolled_back_and_settled(kube, namespace: str, load: Load, timeout: float = 120) -> dict:
    st = wait_phase(kube, namespace, "Failed", timeout=timeout)
    wait_for(lambda: replicas_of(kube, namespace, "web") == 0, timeout=SCALED_DOWN, what="the canary scaled to 0")
    more_load(load, 10)  # the canary's pods stop; the primary serves on
    return st


def test_an_abort_at_half_loses_no_request(kube, namespace, cluster, moto, operator, traffic, hooks, report):
    load, _ = at_half(kube, namespace, moto, traffic, hooks)
    try:
        aborted = awsctl(cluster, "abort", "web", "-n", namespace, "--wait", "60")
        assert aborted.returncode == 0, aborted.stderr
        st = rolled_back_and_settled(kube, namespace, load)
    finally:
        load.stop()
    said = report("abort at 50%", load)
    assert load.summary().failures == 0, said
    assert "awsctl abort" in st["message"]
    assert {r.version for r in load.responses[-RATE:]} == {"v1"}


def test_a_failed_bake_at_full_weight_loses_no_request(kube, namespace, moto, operator, traffic, hooks, report):
    """The canary carries 100% while it bakes, the primary warm; a failed check takes the weight back in one
    verified write, and the canary's pods stay until the nodes have let go of them."""
    listener = moto.listener(namespace)
    app(kube, namespace)
    hooks.respond("/check", 200)
    check = {"name": "check", "type": "rollout", "url": f"{hooks.url}/check"}
    analysis = {"interval": "3s", "stepWeights": [50], "bake": {"weight": 100, "duration": "10m"}, "webhooks": [check]}
    create(kube, namespace, canary("web", listener=listener, rule={"priority": 10}, analysis=analysis))
    wait_phase(kube, namespace, "Initialized", timeout=90)
    load = serving(traffic, listener)
    try:
        set_image(kube, namespace, V2)
        wait_phase(kube, namespace, "Baking", timeout=120)
        more_load(load, 12)  # every node routes all of it to the canary
        assert Counter(r.version for r in load.responses[-RATE:]) == {"v2": RATE}
        hooks.respond("/check", 500)
        st = rolled_back_and_settled(kube, namespace, load)
    finally:
        load.stop()
    said = report("failed bake at 100%", load)
    assert load.summary().failures == 0, said
    assert "bake failed" in st["message"], st["message"]
    assert {r.version for r in load.responses[-RATE:]} == {"v1"}


def test_a_canary_whose_every_target_turns_unhealthy_at_half_goes_back_to_zero_at_once(
    kube, namespace, moto, operator, traffic, hooks, report
):
    """ALB fails open to a group whose targets are all unhealthy: the canary's share would go to them for as
    long as the weight stayed. awsctl reads the weighted canary's health each interval and rolls back."""
    load, _ = at_half(kube, namespace, moto, traffic, hooks)
    try:
        turned = time.monotonic()
        moto.realism.unhealthy.update(f"{ip}:{port}" for ip, port in pod_targets(kube, namespace, "app=web"))
        st = rolled_back_and_settled(kube, namespace, load)
        assert time.monotonic() - turned < 60  # at once, not at the progress deadline (600 s)
    finally:
        moto.realism.unhealthy.clear()
        load.stop()
    said = report("canary unhealthy at 50%", load)
    assert load.summary().failures == 0, said  # its pods still answer: fail-open sent requests there
    assert "no healthy target" in st["message"], st["message"]
    assert {r.version for r in load.responses[-RATE:]} == {"v1"}


class StickyClient:
    """A client that keeps the load balancer's AWSALBTG cookie for its Max-Age, as a browser does."""

    def __init__(self, url: str):
        self.url = url
        self.cookie: tuple[str, float] | None = None  # (value, expires at, monotonic)
        self.answers: list[tuple[float, int, str | None]] = []  # (monotonic time, status, version)

    def get(self) -> tuple[int, str | None]:
        headers = {}
        if self.cookie and self.cookie[1] > time.monotonic():
            headers["Cookie"] = self.cookie[0]
        request = urllib.request.Request(self.url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                status, version, sent = answer.status, answer.headers.get("X-Dev-Version"), answer.headers
        except urllib.error.HTTPError as err:
            status, version, sent = err.code, None, err.headers
        given = sent.get("Set-Cookie") or ""
        if given.startswith("AWSALBTG="):
            value, _, rest = given.partition(";")
            age = next((int(p.split("=")[1]) for p in rest.split(";") if p.strip().startswith("Max-Age=")), 0)
            self.cookie = (value, time.monotonic() + age)
        self.answers.append((time.monotonic(), status, version))
        return status, version


def test_a_sticky_client_is_never_sent_to_a_group_without_live_targets(
    kube, namespace, cluster, moto, operator, traffic, hooks, report
):
    """A client pinned to the canary's group stays there at weight 0 while its cookie lasts: the canary's pods
    must outlive every cookie given out (loadBalancer.stickiness.durationSeconds) and the nodes' propagation."""
    sticky = {"enabled": True, "durationSeconds": 20}
    load, listener = at_half(kube, namespace, moto, traffic, hooks, stickiness=sticky)
    client_ = StickyClient(traffic.wait_listener(listener) + "/")
    try:
        more_load(load, 12)  # every node has the 50% and the stickiness
        for _ in range(50):  # a fresh session until the weighted choice pins it to the canary
            client_.cookie = None
            if client_.get() == (200, "v2"):
                break
        assert client_.answers[-1][1:] == (200, "v2"), client_.answers[-5:]
        client_.get()
        asked = awsctl(cluster, "abort", "web", "-n", namespace)  # no --wait: the client keeps going meanwhile
        assert asked.returncode == 0, asked.stderr
        aborted = time.monotonic()
        while replicas_of(kube, namespace, "web") != 0 or time.monotonic() - aborted < 5:
            assert time.monotonic() - aborted < SCALED_DOWN + 30, "the canary never scaled to 0"
            client_.get()
            time.sleep(0.2)
        for _ in range(25):  # its pods are gone: the cookie has expired, so the primary answers
            client_.get()
            time.sleep(0.2)
        more_load(load, 5)
    finally:
        load.stop()
    said = report("sticky client through a rollback", load)
    assert load.summary().failures == 0, said
    failed = [a for a in client_.answers if a[1] != 200]
    assert not failed, failed
    after = [version for at, _, version in client_.answers if at > aborted + 3]
    assert after[0] == "v2" and after[-1] == "v1", after  # pinned to the canary after the abort, then the primary
