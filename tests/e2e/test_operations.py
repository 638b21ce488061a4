"""Operating a rollout as a person does: /metrics scraped against the Canary's status, Slack-style and
generic alerts on phase changes, and `awsctl pause | resume | promote | abort | retry` from the CLI."""

import os
import subprocess
import sys
import urllib.request

from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from awsctl.dev.cluster import free_port
from tests.e2e.canaries import V2, app, awsctl, canary_shares, set_image, status, wait_phase
from tests.e2e.conftest import Operator, wait_for
from tests.e2e.objects import canary, create

V3 = "registry.local/app:v3"
# Steps a second apart, and far more of them than a pause, a resume and a promote (each an `awsctl` process,
# a few seconds on a busy machine) take: the rollout is paused near its start and never reaches the last.
# With 8 steps, a run with two other stories beside it got from the pause to the last step before the promote.
STEPS = list(range(5, 85, 5))


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples, sample, **labels) -> float | None:
    return samples.get((sample, tuple(sorted(labels.items()))))


def total(samples, sample, **labels) -> float:
    return sum(v for (n, ls), v in samples.items() if n == sample and labels.items() <= dict(ls).items())


def phases(hooks, path):
    return [body.get("phase") or body["attachments"][0]["fields"][1]["value"] for body in hooks.received(path)]


def test_metrics_alerts_and_rollout_commands(cluster, kube, namespace, moto, hooks, tmp_path):
    port = free_port()
    operator = Operator(
        cluster[0],
        moto,
        tmp_path / "operator.log",
        extra_args=("--namespace", namespace, "--metrics-port", str(port), "--metrics-bind-address", "127.0.0.1"),
    ).start()
    try:
        listener = moto.listener(namespace)
        client.CoreV1Api(kube).create_namespaced_secret(
            namespace, {"metadata": {"name": "slack-url"}, "stringData": {"address": f"{hooks.url}/slack"}}
        )
        custom = client.CustomObjectsApi(kube)
        for name, spec in (
            ("slack", {"type": "slack", "channel": "#deploys", "secretRef": {"name": "slack-url"}}),
            ("pager", {"type": "generic", "address": f"{hooks.url}/pager"}),
        ):
            custom.create_namespaced_custom_object(
                "awsctl.io",
                "v1alpha1",
                namespace,
                "alertproviders",
                {"apiVersion": "awsctl.io/v1alpha1", "kind": "AlertProvider", "metadata": {"name": name}, "spec": spec},
            )
        app(kube, namespace)
        create(
            kube,
            namespace,
            canary(
                "web",
                listener=listener,
                rule={"priority": 10},
                analysis={"stepWeights": STEPS},
                alerts=[
                    {"name": "team", "providerRef": {"name": "slack"}},
                    {"name": "oncall", "severity": "error", "providerRef": {"name": "pager"}},
                ],
            ),
        )
        st = wait_phase(kube, namespace, "Initialized", timeout=90)
        rule, canary_arn = st["listenerRule"]["arn"], st["targetGroups"]["canary"][0]
        wait_for(lambda: phases(hooks, "/slack") == ["Initialized"], what="the Initialized alert")
        slack = hooks.received("/slack")[0]
        assert slack["channel"] == "#deploys" and "web." + namespace in slack["text"]

        # Paused mid-rollout, the weight holds and /metrics agrees with the Canary's status.
        set_image(kube, namespace, V2)
        wait_for(lambda: (status(kube, namespace).get("canaryWeight") or 0) > 0, timeout=60, what="weight above 0")
        paused = awsctl(cluster, "pause", "web", "-n", namespace)
        assert paused.returncode == 0 and paused.stdout.strip() == "canary.awsctl.io/web paused"
        held = wait_for(
            lambda: (lambda s: s if "suspend" in (s.get("message") or "") else None)(status(kube, namespace)),
            timeout=15,
            what="the Suspended message",
        )
        samples = wait_for(
            lambda: (
                lambda m: (
                    m
                    if value(m, "awsctl_canary_weight", name="web", namespace=namespace) == held["canaryWeight"]
                    else None
                )
            )(scrape(port)),
            what="the weight scraped",
        )
        assert value(samples, "awsctl_canary_status", name="web", namespace=namespace) == 0  # running
        assert value(samples, "awsctl_canary_phase", name="web", namespace=namespace, phase="Progressing") == 1
        assert value(samples, "awsctl_canary_total", namespace=namespace) == 1
        assert value(samples, "awsctl_canary_failed_checks", name="web", namespace=namespace) == 0
        assert total(samples, "awsctl_aws_api_calls_total", action="ModifyRule", outcome="ok") >= 3
        assert total(samples, "awsctl_weight_verification_seconds_count") >= 3
        assert total(samples, "awsctl_target_registration_seconds_count") >= 1
        assert total(samples, "awsctl_canary_duration_seconds_count", name="web") >= 3
        healthy = sum(
            b["status"].get("healthyTargets", 0)
            for b in custom.list_namespaced_custom_object("awsctl.io", "v1alpha1", namespace, "targetgroupbindings")[
                "items"
            ]
        )
        assert total(samples, "awsctl_target_health", state="healthy") == healthy == 4  # 2 primary, 2 canary
        assert status(kube, namespace)["canaryWeight"] == held["canaryWeight"]  # still held

        # Resumed and promoted: the remaining steps are skipped.
        assert awsctl(cluster, "resume", "web", "-n", namespace).returncode == 0
        promoted = awsctl(cluster, "promote", "web", "-n", namespace, "--wait", "60")
        assert promoted.returncode == 0, promoted.stderr
        assert promoted.stdout.startswith("canary.awsctl.io/web promoted (revision ")
        wait_phase(kube, namespace, "Succeeded", timeout=90)
        shares = canary_shares(moto, rule, canary_arn)
        assert shares[-1] == 0 and max(shares) < 10 * STEPS[-1], f"steps not skipped: {shares}"
        wait_for(lambda: phases(hooks, "/slack")[-1:] == ["Succeeded"], what="the Succeeded alert")
        assert {"Progressing", "Promoting", "Finalising"} <= set(phases(hooks, "/slack"))
        assert hooks.received("/pager") == []  # the error-only alert heard none of it
        samples = scrape(port)
        assert value(samples, "awsctl_canary_status", name="web", namespace=namespace) == 1

        # A new revision, aborted: rolled back at once; then retried and promoted without analysis.
        set_image(kube, namespace, V3)
        wait_for(lambda: (status(kube, namespace).get("canaryWeight") or 0) > 0, timeout=60, what="V3 gets traffic")
        aborted = awsctl(cluster, "abort", "web", "-n", namespace, "--wait", "60")
        assert aborted.returncode == 0, aborted.stderr
        st = wait_phase(kube, namespace, "Failed", timeout=30)
        assert st["canaryWeight"] == 0 and "awsctl abort" in st["message"]
        wait_for(lambda: [b["phase"] for b in hooks.received("/pager")] == ["Failed"], what="the error alert")
        assert hooks.received("/pager")[0]["severity"] == "error"
        wait_for(
            lambda: value(scrape(port), "awsctl_canary_status", name="web", namespace=namespace) == 2,
            what="status 2 (failed) scraped",
        )
        again = awsctl(cluster, "abort", "web", "-n", namespace)
        assert again.returncode == 1 and again.stderr.startswith("error: canary web is Failed: there is no rollout")

        assert awsctl(cluster, "retry", "web", "-n", namespace, "--wait", "60").returncode == 0
        assert awsctl(cluster, "promote", "web", "-n", namespace, "--full", "--wait", "60").returncode == 0
        wait_phase(kube, namespace, "Succeeded", timeout=90)
        assert (
            client.AppsV1Api(kube)
            .read_namespaced_deployment("web-primary", namespace)
            .spec.template.spec.containers[0]
            .image
            == V3
        )
    finally:
        operator.stop()


def test_kubectl_plugin_entry_point(cluster, namespace):
    plugin = os.path.join(os.path.dirname(sys.executable), "kubectl-awsctl")
    shown = subprocess.run([plugin, "--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and shown.stdout.startswith("usage: kubectl awsctl ")
    listed = subprocess.run(
        [plugin, "status", "-n", namespace],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "KUBECONFIG": str(cluster[0].kubeconfig)},
    )
    assert listed.returncode == 0, listed.stderr
