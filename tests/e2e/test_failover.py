"""Two replicas with kopf peering: the standby waits while the active one lives, takes over within
the peering lifetime when the active one is killed (-9) mid-rollout, and finishes the rollout with
no duplicate AWS resource and no weight it did not verify."""

import re
import time
from datetime import datetime
from pathlib import Path

from kubernetes import client

from awsctl.aws.clients import CallCounter
from awsctl.dev.cluster import free_port
from tests.e2e.canaries import V2, app, canary_shares, image_of, set_image, status, wait_phase
from tests.e2e.conftest import Operator, wait_for
from tests.e2e.objects import canary, create
from tests.e2e.test_deploy import apply, manifests

LIFETIME = 10  # awsctl run's default --peering-lifetime
RESUMED = "Resuming operations after the pause"


def peering_crds_and_object(kube, namespace):
    apply(kube, (doc for doc in manifests("peering.yaml") if doc["kind"] == "CustomResourceDefinition"))
    client.CustomObjectsApi(kube).create_namespaced_custom_object(
        "kopf.dev",
        "v1",
        namespace,
        "kopfpeerings",
        {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "awsctl"}},
    )


def peers(kube, namespace) -> dict:
    obj = client.CustomObjectsApi(kube).get_namespaced_custom_object(
        "kopf.dev", "v1", namespace, "kopfpeerings", "awsctl"
    )
    return obj.get("status") or {}


def logged_at(log: str, needle: str) -> float | None:
    """The epoch time of the first JSON log line that contains `needle`."""
    for line in log.splitlines():
        if needle in line:
            stamp = re.search(r'"timestamp": "([^"]+)"', line)
            if stamp:
                return datetime.fromisoformat(stamp.group(1)).timestamp()
    return None


def scrape(port: int) -> dict[str, float]:
    """Every sample of a replica's /metrics, summed over labels, by metric name; writes by API."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
        lines = [line for line in page.read().decode().splitlines() if line and not line.startswith("#")]
    found: dict[str, float] = {}
    for line in lines:
        name, value = line.rsplit(" ", 1)
        labels = name[name.find("{") :] if "{" in name else ""
        base = name.split("{", 1)[0]
        found[base] = found.get(base, 0.0) + float(value)
        if base == "awsctl_aws_api_calls_total" and CallCounter.is_write(re.search(r'action="(\w+)"', labels)[1]):
            found["aws writes"] = found.get("aws writes", 0.0) + float(value)
        if base == "awsctl_kubernetes_api_calls_total" and 'verb="GET"' not in labels:
            found["kubernetes writes"] = found.get("kubernetes writes", 0.0) + float(value)
    return found


def replica(cluster, moto, log: Path, priority: int, namespace: str) -> tuple[Operator, int]:
    """A peering replica with its own /metrics port."""
    port = free_port()
    args = ("--namespace", namespace, "--peering", "awsctl", "--peering-priority", str(priority))
    metrics = ("--metrics-port", str(port), "--metrics-bind-address", "127.0.0.1")
    return Operator(cluster[0], moto, log, extra_args=(*args, *metrics)), port


def test_a_replica_paused_in_the_middle_of_a_tick_writes_nothing_after(kube, namespace, moto, cluster, tmp_path, hooks):
    """A tick held in a slow rollout webhook while a replica of higher priority starts: kopf stops the
    first replica's daemon, but the thread goes on once the webhook answers. Every write it then tries
    (the next weight, the status) is refused by the fence; the new replica finishes the rollout."""
    peering_crds_and_object(kube, namespace)
    first, first_port = replica(cluster, moto, tmp_path / "first.log", 200, namespace)
    second, second_port = replica(cluster, moto, tmp_path / "second.log", 300, namespace)
    first.start()
    try:
        wait_for(lambda: scrape(first_port).get("awsctl_active_replica") == 1, what="the first replica active")
        listener = moto.listener(namespace)
        app(kube, namespace)
        slow = {"name": "slow", "url": f"{hooks.url}/slow", "timeout": "60s"}
        create(
            kube,
            namespace,
            canary(
                "web", listener=listener, rule={"priority": 10}, analysis={"stepWeights": [20, 50], "webhooks": [slow]}
            ),
        )
        st = wait_phase(kube, namespace, "Initialized", timeout=90)
        rule = st["listenerRule"]["arn"]
        held = hooks.hold("/slow")
        set_image(kube, namespace, V2)
        wait_for(lambda: hooks.received("/slow"), timeout=60, what="the first replica's tick held in the webhook")
        assert scrape(first_port)["aws writes"] > 0  # it wrote before: the counts below can move

        second.start()
        wait_for(lambda: scrape(first_port).get("awsctl_active_replica") == 0, timeout=30, what="the first paused")
        before = scrape(first_port)
        weights_before = len(moto.weights_written(rule))
        wait_for(lambda: scrape(second_port).get("awsctl_active_replica") == 1, timeout=30, what="the second active")
        held.set()  # the held tick goes on: its weight step and its status write are the ones to refuse
        wait_for(
            lambda: scrape(first_port).get("awsctl_fenced_writes_total", 0) >= 1,
            timeout=30,
            what="the paused tick's writes refused",
        )
        after = scrape(first_port)
        assert (after["aws writes"], after["kubernetes writes"]) == (before["aws writes"], before["kubernetes writes"])

        st = wait_phase(kube, namespace, "Succeeded", timeout=180)
        # Every weight after the pause was the second replica's, and the rollout only went forward.
        shares = canary_shares(moto, rule, st["targetGroups"]["canary"][0], since=weights_before)
        assert shares == sorted(shares[:-1]) + [0] and 500 in shares
        after = scrape(first_port)
        assert (after["aws writes"], after["kubernetes writes"]) == (before["aws writes"], before["kubernetes writes"])
        assert "Traceback" not in first.log() + second.log()
    finally:
        held_events = list(hooks.held.values())
        for event in held_events:
            event.set()
        first.kill()
        second.stop()


def test_standby_takes_over_a_rollout_when_the_active_replica_is_killed(kube, namespace, moto, cluster, tmp_path):
    peering_crds_and_object(kube, namespace)
    args = ("--namespace", namespace, "--peering", "awsctl")
    active = Operator(cluster[0], moto, tmp_path / "active.log", extra_args=(*args, "--peering-priority", "200"))
    standby = Operator(cluster[0], moto, tmp_path / "standby.log", extra_args=(*args, "--peering-priority", "100"))
    active.start()
    try:
        wait_for(lambda: len(peers(kube, namespace)) == 1, what="the active replica in the peering")
        standby.start()
        wait_for(lambda: len(peers(kube, namespace)) == 2, what="the standby in the peering")

        listener = moto.listener(namespace)
        app(kube, namespace)
        create(
            kube,
            namespace,
            canary("web", listener=listener, rule={"priority": 10}, analysis={"stepWeights": [10, 20, 30, 40, 50, 60]}),
        )
        st = wait_phase(kube, namespace, "Initialized", timeout=90)
        rule, canary_arn = st["listenerRule"]["arn"], st["targetGroups"]["canary"][0]
        set_image(kube, namespace, V2)
        wait_for(lambda: status(kube, namespace).get("canaryWeight", 0) >= 20, timeout=60, what="weight 20%")
        # Mandatory peering starts paused; the standby never resumed, never acted, while the active one lived.
        assert RESUMED not in standby.log() and '"logger": "awsctl.canary"' not in standby.log()
        assert RESUMED in active.log()

        active.kill()  # SIGKILL: no goodbye in the peering object, the standby must notice the silence
        killed_at = time.time()
        at_kill = len(moto.weights_written(rule))
        wait_for(lambda: RESUMED in standby.log(), timeout=LIFETIME + 15, what="the standby resumed")
        takeover = logged_at(standby.log(), RESUMED) - killed_at
        print(f"takeover after kill -9: {takeover:.1f} s (peering lifetime {LIFETIME} s)")
        assert takeover < 15

        st = wait_phase(kube, namespace, "Succeeded", timeout=120)
        shares = canary_shares(moto, rule, canary_arn, since=at_kill)
        assert 0 not in shares[:-1], f"the standby restarted the rollout instead of resuming it: {shares}"
        assert 600 in shares and shares[-1] == 0
        assert shares == sorted(shares[:-1]) + [0]  # steps only forward, then back to the primary
        # No duplicate AWS resource: two groups, one rule (no warm-up rule left), one promotion.
        assert len(moto.awsctl_target_groups()) == 2
        rules = moto.client("elbv2").describe_rules(ListenerArn=listener)["Rules"]
        assert [r["Priority"] for r in rules] == ["10", "default"]
        # Every weight in status is what AWS shows.
        assert moto.forward_weights(rule)[canary_arn] == 0 and st["canaryWeight"] == 0
        assert st.get("pendingWeight") is None
        assert image_of(kube, namespace, "web-primary") == V2
        assert "Traceback" not in standby.log()
    finally:
        active.kill()
        standby.stop()


def test_a_replica_outranked_by_a_restarted_standby_writes_no_binding(kube, namespace, moto, cluster, tmp_path):
    """kopf pauses the outranked replica's watches, not awsctl's binding queue and sweep: both replicas
    wrote targets and managedTargets, and a stale whole-list write could drop a target for good."""
    import urllib.request

    from awsctl.dev.cluster import free_port
    from tests.e2e.objects import binding, deployment, pod_targets, service

    peering_crds_and_object(kube, namespace)
    args = ("--namespace", namespace, "--peering", "awsctl")
    port = free_port()
    first = Operator(
        cluster[0],
        moto,
        tmp_path / "first.log",
        extra_args=(
            *args,
            "--peering-priority",
            "200",
            "--metrics-port",
            str(port),
            "--metrics-bind-address",
            "127.0.0.1",
        ),
    )

    def aws_calls() -> float:
        """Every AWS call the first replica made (awsctl_aws_api_calls_total, all outcomes)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
            lines = page.read().decode().splitlines()
        return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("awsctl_aws_api_calls_total{"))

    standby = Operator(cluster[0], moto, tmp_path / "standby.log", extra_args=(*args, "--peering-priority", "100"))
    restarted = Operator(cluster[0], moto, tmp_path / "restarted.log", extra_args=(*args, "--peering-priority", "300"))
    first.start()
    try:
        wait_for(lambda: RESUMED in first.log(), what="the first replica active")
        standby.start()
        wait_for(lambda: len(peers(kube, namespace)) == 2, what="the standby in the peering")
        arn = moto.target_group(f"{namespace}-web", listener=moto.listener(namespace))
        create(
            kube,
            namespace,
            deployment("web", replicas=2, container_port=8080),
            service("web", port=80, target_port=8080, headless=True),
            binding("web", service="web", port=80, target_group_name=f"{namespace}-web"),
        )
        wait_for(lambda: moto.targets(arn) == pod_targets(kube, namespace, "app=web") != set(), what="registered")

        # The standby restarts and draws a higher priority than the active replica: it takes over.
        standby.stop()
        restarted.start()
        wait_for(lambda: "Pausing operations" in first.log(), timeout=30, what="the first replica paused")
        paused_at = logged_at(first.log(), "Pausing operations")
        wait_for(lambda: RESUMED in restarted.log(), timeout=30, what="the restarted replica active")
        time.sleep(1)  # a reconcile in flight at the pause finishes
        calls_when_paused = aws_calls()

        apps = client.AppsV1Api(kube)
        for replicas in (4, 1, 3):  # churn: every change is the active replica's alone to write
            apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": replicas}})
            wait_for(
                lambda n=replicas: (
                    len(pod_targets(kube, namespace, "app=web")) == n
                    and moto.targets(arn) == pod_targets(kube, namespace, "app=web")
                ),
                timeout=60,
                what=f"{replicas} targets",
            )
        time.sleep(5)  # more than two resync sweeps of the paused replica (--resync-seconds 2)
        later = [line for line in first.log().splitlines() if '"logger": "awsctl.binding"' in line]
        written = [line for line in later if (logged_at(line, "awsctl.binding") or 0) > paused_at]
        assert not written, f"the paused replica wrote bindings: {written[:3]}"
        # Nor did it read: its sweep and drift checks stopped with kopf's watches (it made calls before).
        assert calls_when_paused > 0 and aws_calls() == calls_when_paused
        assert "writes paused" in first.log()
        # No lost target: AWS holds exactly the pods, and status names exactly what was registered.
        assert moto.targets(arn) == pod_targets(kube, namespace, "app=web")
        managed = client.CustomObjectsApi(kube).get_namespaced_custom_object(
            "awsctl.io", "v1alpha1", namespace, "targetgroupbindings", "web"
        )["status"]["managedTargets"]
        assert {tuple(k.rsplit(":", 1)) for k in managed} == {(ip, str(port)) for ip, port in moto.targets(arn)}
    finally:
        first.kill()
        standby.stop()
        restarted.stop()
